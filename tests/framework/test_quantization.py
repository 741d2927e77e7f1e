"""The exported quantization code (tinytorch/perf/quantization.py) against NumPy oracles:
PyTorch's affine and symmetric formulas, the scale / 2 round-trip bound, exact per-channel
round trips of constant channels, integer ranges and dtypes, the exact int32 accumulation of
QuantizedLinear (against int64 arithmetic), and edge cases: all-zero tensors, a single value,
negative-only tensors, empty batches, overflow of the accumulator."""

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.perf.quantization import (
    EPS,
    MinMaxObserver,
    PercentileObserver,
    QuantizedLinear,
    calculate_qparams,
    calibrate,
    dequantize,
    int_matmul,
    model_nbytes,
    qrange,
    quantize_model,
    quantize_per_channel,
    quantize_per_tensor,
    swap_layers,
)

F32 = np.float32


def oracle_qparams(lo, hi, symmetric=False, qmin=-128, qmax=127):
    lo, hi = np.minimum(np.asarray(lo, F32), 0).astype(F32), np.maximum(np.asarray(hi, F32), 0).astype(F32)
    if symmetric:
        scale = np.maximum(np.maximum(-lo, hi) / F32((qmax - qmin - 1) / 2), EPS).astype(F32)
        return scale, np.full(scale.shape, (qmin + qmax + 1) // 2)
    scale = np.maximum((hi - lo) / F32(qmax - qmin), EPS).astype(F32)
    return scale, np.clip(qmin - np.round(lo / scale), qmin, qmax).astype(np.int64)


def oracle_quantize(x, scale, zero_point, qmin=-128, qmax=127):
    return np.clip(np.round(np.asarray(x, F32) / scale) + zero_point, qmin, qmax).astype(np.int64)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_qrange_and_dtypes():
    assert qrange(np.int8) == (-128, 127) and qrange(np.uint8) == (0, 255)
    with pytest.raises(TypeError):
        qrange(np.int16)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype, qmin, qmax", [(np.int8, -128, 127), (np.uint8, 0, 255)])
def test_qparams_match_torch_formulas(rng, symmetric, dtype, qmin, qmax):
    lo = rng.uniform(-5, 2, size=50).astype(F32)
    hi = (lo + rng.uniform(0, 5, size=50)).astype(F32)
    scale, zero_point = calculate_qparams(lo, hi, symmetric, dtype)
    want_scale, want_zp = oracle_qparams(lo, hi, symmetric, qmin, qmax)
    assert scale.dtype == np.float32 and zero_point.dtype == np.int64 and scale.shape == (50,)
    np.testing.assert_allclose(scale, want_scale, rtol=1e-6)
    np.testing.assert_array_equal(zero_point, want_zp)
    assert np.all((zero_point >= qmin) & (zero_point <= qmax))


def test_qparams_scalar_shapes_and_errors():
    scale, zero_point = calculate_qparams(-1.0, 1.0)
    assert scale.shape == () and zero_point.shape == ()
    with pytest.raises(ValueError):
        calculate_qparams(1.0, -1.0)
    with pytest.raises(ValueError):
        calculate_qparams(np.array([0.0, 2.0]), np.array([1.0, 1.0]))


@pytest.mark.parametrize("shape", [(1000,), (7, 9), (2, 3, 5)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_round_trip_error_at_most_half_a_step(rng, shape, symmetric):
    x = (rng.standard_normal(shape) * rng.uniform(0.01, 100)).astype(F32)
    scale, zero_point = calculate_qparams(x.min(), x.max(), symmetric)
    q = quantize_per_tensor(x, scale, zero_point)
    assert q.dtype == np.int8 and q.shape == x.shape
    np.testing.assert_array_equal(q, oracle_quantize(x, scale, zero_point))
    back = dequantize(q, scale, zero_point)
    assert back.dtype == np.float32
    assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-5)


@pytest.mark.parametrize("name", ["zeros", "single", "single negative", "negative only", "positive only"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_edge_tensors(rng, name, symmetric):
    x = {"zeros": np.zeros(10, F32), "single": np.array([2.5], F32), "single negative": np.array([-0.75], F32),
         "negative only": -rng.uniform(0.5, 3, size=40).astype(F32),
         "positive only": rng.uniform(0.5, 3, size=40).astype(F32)}[name]
    scale, zero_point = calculate_qparams(x.min(), x.max(), symmetric)
    assert scale >= EPS
    q = quantize_per_tensor(x, scale, zero_point)
    back = dequantize(q, scale, zero_point)
    assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-5) + 1e-12
    assert dequantize(quantize_per_tensor(np.zeros(1, F32), scale, zero_point), scale, zero_point)[0] == 0, \
        "zero is always exact"
    if name == "zeros":
        assert np.all(back == 0)
    if name.startswith("single") and not symmetric:
        np.testing.assert_allclose(back, x, rtol=1e-6)   # the value is an end of the range


def test_quantize_clamps_and_uses_uint8_range(rng):
    x = np.array([-1e6, -1.0, 0.0, 1.0, 1e6], F32)
    assert quantize_per_tensor(x, 0.01, 0).tolist() == [-128, -100, 0, 100, 127]
    u = quantize_per_tensor(x, 0.01, 128, dtype=np.uint8)
    assert u.dtype == np.uint8 and u.tolist() == [0, 28, 128, 228, 255]
    assert quantize_per_tensor(np.array([0.5, 1.5, 2.5, -0.5], F32), 1.0, 0).tolist() == [0, 2, 2, 0], \
        "halves round to even, as PyTorch's nearbyint"
    assert quantize_per_tensor(Tensor(x), 0.01, 0).tolist() == [-128, -100, 0, 100, 127]


def test_dequantize_does_not_wrap_int8():
    q = np.array([-128, 127], np.int8)
    assert dequantize(q, 1.0, 127).tolist() == [-255.0, 0.0]
    assert dequantize(np.array([0, 255], np.uint8), 0.5, 128).tolist() == [-64.0, 63.5]


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_per_channel_matches_broadcast_oracle(rng, axis):
    x = (rng.standard_normal((3, 4, 5)) * rng.uniform(0.1, 10, size=(1, 4, 1))).astype(F32)
    reduce = tuple(i for i in range(3) if i != axis % 3)
    scale, zero_point = calculate_qparams(x.min(axis=reduce), x.max(axis=reduce))
    shape = [1, 1, 1]
    shape[axis] = -1
    q = quantize_per_channel(x, scale, zero_point, axis)
    np.testing.assert_array_equal(q, oracle_quantize(x, scale.reshape(shape), zero_point.reshape(shape)))
    back = dequantize(q, scale, zero_point, axis=axis)
    assert np.all(np.abs(back - x) <= scale.reshape(shape) / 2 * (1 + 1e-5))
    with pytest.raises(ValueError):
        quantize_per_channel(x, scale[:-1], zero_point[:-1], axis)


@pytest.mark.parametrize("symmetric", [False, True])
def test_per_channel_exact_for_constant_channels(rng, symmetric):
    values = np.array([3.0, -2.0, 0.0, 0.125, -7.5], F32)
    x = np.repeat(values[:, None], 6, axis=1)
    scale, zero_point = calculate_qparams(x.min(axis=1), x.max(axis=1), symmetric)
    back = dequantize(quantize_per_channel(x, scale, zero_point, 0), scale, zero_point, axis=0)
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=0)


def test_per_channel_beats_per_tensor_with_an_outlier_row(rng):
    w = rng.standard_normal((8, 32)).astype(F32) * 0.05
    w[3] *= 100
    s_t, z_t = calculate_qparams(w.min(), w.max(), symmetric=True)
    s_c, z_c = calculate_qparams(w.min(axis=1), w.max(axis=1), symmetric=True)
    err_t = np.abs(dequantize(quantize_per_tensor(w, s_t, z_t), s_t, z_t) - w)
    err_c = np.abs(dequantize(quantize_per_channel(w, s_c, z_c, 0), s_c, z_c, axis=0) - w)
    small = np.arange(8) != 3
    assert err_c[small].mean() < err_t[small].mean() / 20


def test_minmax_observer_per_tensor_and_per_channel(rng):
    batches = [rng.standard_normal((int(rng.integers(1, 6)), 4, 3)).astype(F32) for _ in range(4)]
    whole, channels = MinMaxObserver(), MinMaxObserver(symmetric=True, ch_axis=-2)
    for batch in batches:
        assert whole(batch) is batch and channels(Tensor(batch)) is not None
    whole(np.zeros((0, 4, 3), F32))
    every = np.concatenate(batches)
    assert whole.min_val == every.min() and whole.max_val == every.max()
    np.testing.assert_array_equal(channels.min_val, every.min(axis=(0, 2)))
    np.testing.assert_array_equal(channels.max_val, every.max(axis=(0, 2)))
    scale, zero_point = channels.calculate_qparams()
    np.testing.assert_allclose(scale, oracle_qparams(every.min(axis=(0, 2)), every.max(axis=(0, 2)), True)[0], rtol=1e-6)
    assert np.all(zero_point == 0)
    with pytest.raises(RuntimeError):
        MinMaxObserver().calculate_qparams()
    with pytest.raises(TypeError):
        MinMaxObserver(dtype=np.int32)


def test_percentile_observer(rng):
    obs = PercentileObserver(99.0)
    data = [rng.standard_normal(1000).astype(F32) for _ in range(3)]
    data[2][5] = 1e4
    for batch in data:
        obs(batch)
    lo, hi = np.percentile(np.concatenate(data), [1.0, 99.0])
    scale, zero_point = obs.calculate_qparams()
    want = oracle_qparams(lo, hi)
    np.testing.assert_allclose(scale, want[0], rtol=1e-5)
    assert zero_point == want[1]
    assert obs.max_val == 1e4, "the unclipped range is kept for comparison"
    assert scale < MinMaxObserver.calculate_qparams(obs)[0] / 100
    with pytest.raises(ValueError):
        PercentileObserver(40)
    with pytest.raises(RuntimeError):
        PercentileObserver().calculate_qparams()


@pytest.mark.parametrize("zero_point", [0, -128, 37])
def test_int_matmul_is_exact_integer_accumulation(rng, zero_point):
    a = rng.integers(-128, 128, size=(9, 700)).astype(np.int8)      # K = 700: needs float64
    b = rng.integers(-128, 128, size=(700, 5)).astype(np.int8)
    got = int_matmul(a, b, zero_point)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, (a.astype(np.int64) - zero_point) @ b.astype(np.int64))
    small = int_matmul(a[:, :64], b[:64], zero_point)                # float32 path
    np.testing.assert_array_equal(small, (a[:, :64].astype(np.int64) - zero_point) @ b[:64].astype(np.int64))
    u = rng.integers(0, 256, size=(4, 30)).astype(np.uint8)
    np.testing.assert_array_equal(int_matmul(u, b[:30], 128), (u.astype(np.int64) - 128) @ b[:30].astype(np.int64))


def test_int_matmul_refuses_what_int32_cannot_hold():
    a, b = np.zeros((1, 70_000), np.int8), np.zeros((70_000, 1), np.int8)
    with pytest.raises(OverflowError):
        int_matmul(a, b, -128)
    with pytest.raises(TypeError):
        int_matmul(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int8))


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("static", [True, False])
def test_quantized_linear_against_int64_oracle(rng, per_channel, static):
    layer = Linear(37, 11, rng=5)
    x = rng.uniform(-1, 3, size=(2, 6, 37)).astype(F32)
    qp = (F32(4 / 255), -64) if static else None
    ql = QuantizedLinear(layer, qp, per_channel=per_channel)
    w = layer.weight.data
    if per_channel:
        s_w = oracle_qparams(w.min(axis=1), w.max(axis=1), True)[0]
    else:
        s_w = np.full(11, oracle_qparams(w.min(), w.max(), True)[0], F32)
    np.testing.assert_allclose(ql.weight_scale, s_w, rtol=1e-6)
    assert ql.weight_q.dtype == np.int8 and ql.weight_q.min() >= -127
    np.testing.assert_array_equal(ql.weight_q, oracle_quantize(w, s_w[:, None], 0))
    s_x, z_x = qp if static else oracle_qparams(x.min(), x.max())
    y = ql(Tensor(x))
    assert isinstance(y, Tensor) and y.dtype == np.float32 and y.shape == (2, 6, 11)
    acc = (oracle_quantize(x, s_x, z_x) - int(z_x)) @ ql.weight_q.astype(np.int64).T
    np.testing.assert_array_equal(ql.last_accumulator, acc)
    np.testing.assert_allclose(y.data, acc * (F32(s_x) * s_w) + layer.bias.data, rtol=1e-5, atol=1e-5)
    reference = layer(Tensor(x)).data
    assert np.abs(y.data - reference).max() < 0.03 * np.abs(reference).max()


def test_quantized_linear_bytes():
    layer = Linear(64, 32)
    ql = QuantizedLinear(layer)
    assert ql.nbytes() == 64 * 32 + 32 * 4 + 32 * 4
    assert QuantizedLinear(Linear(64, 32, bias=False), (0.1, 0)).nbytes() == 64 * 32 + 32 * 4 + 8
    model = Sequential(Linear(64, 32), ReLU(), Linear(32, 10))
    assert model_nbytes(model) == (64 * 32 + 32 + 32 * 10 + 10) * 4
    assert model_nbytes(quantize_model(model)) == 64 * 32 + 32 * 8 + 32 * 10 + 10 * 8


def test_calibrate_restores_forward_even_on_error(rng):
    model = Sequential(Linear(4, 3, rng=1), ReLU(), Linear(3, 2, rng=2))
    with pytest.raises(ValueError):
        calibrate(model, [np.ones((2, 4), F32), np.ones((2, 5), F32)])
    assert "forward" not in vars(model[0]) and "forward" not in vars(model[2])
    batches = [rng.standard_normal((5, 4)).astype(F32) for _ in range(2)]
    observers = calibrate(model, batches, observer=lambda: MinMaxObserver(symmetric=True))
    every = np.concatenate(batches)
    hidden = np.maximum(every @ model[0].weight.data.T + model[0].bias.data, 0)
    assert list(observers) == ["0", "2"] and observers["0"].symmetric
    assert observers["0"].min_val == every.min() and observers["0"].max_val == every.max()
    np.testing.assert_allclose(observers["2"].max_val, hidden.max(), rtol=1e-6)


def test_quantize_model_copies_and_handles_nesting_and_sharing(rng):
    shared = Linear(6, 6, rng=3)

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.body = Sequential(Linear(5, 6, rng=1), ReLU(), shared, ReLU(), shared)
            self.head = Linear(6, 2, rng=2)

        def forward(self, x):
            return self.head(self.body(x))

    net = Net()
    x = rng.random((20, 5)).astype(F32)
    q = quantize_model(net, [x])
    assert isinstance(net.body[0], Linear) and isinstance(net.head, Linear), "the float model is unchanged"
    assert isinstance(q.body[0], QuantizedLinear) and isinstance(q.head, QuantizedLinear)
    assert q.body[2] is q.body[4] and isinstance(q.body[2], QuantizedLinear), "a shared layer stays shared"
    assert q.body._modules["2"] is q.body[2], "Sequential's registered children follow its list"
    reference = net(Tensor(x)).data
    assert np.abs(q(Tensor(x)).data - reference).max() < 0.05 * np.abs(reference).max()
    alone = quantize_model(Linear(3, 2, rng=0))
    assert isinstance(alone, QuantizedLinear) and alone.input_qparams is None


def test_swap_layers_returns_the_replacement_for_the_root():
    old, new = Linear(2, 2), Linear(2, 2)
    assert swap_layers(old, {id(old): new}) is new


def test_trained_like_model_keeps_its_predictions(rng):
    """A model whose logits are well separated: int8 keeps almost every argmax."""
    model = Sequential(Linear(20, 64, rng=1), ReLU(), Linear(64, 5, rng=2))
    x = rng.standard_normal((500, 20)).astype(F32)
    q = quantize_model(model, [x[:100]])
    agree = (q(Tensor(x)).data.argmax(1) == model(Tensor(x)).data.argmax(1)).mean()
    assert agree > 0.97
