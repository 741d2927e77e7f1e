"""Hidden graded tests of module 15 (Quantization): values, shapes, scales and zero points drawn
at grading time, plus the edge cases (all-zero, a single value, negative-only tensors, uint8,
dynamic inputs, nested models). Oracles: PyTorch's formulas in NumPy, int64 accumulation."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("15_quantization"), pytest.mark.hidden]

F32 = np.float32
EPS = F32(np.finfo(np.float32).eps)
RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def qparams(lo, hi, symmetric=False, dtype="int8"):
    qmin, qmax = RANGES[dtype]
    lo, hi = np.minimum(np.asarray(lo, F32), F32(0)), np.maximum(np.asarray(hi, F32), F32(0))
    if symmetric:
        scale = np.maximum(np.maximum(-lo, hi) / F32((qmax - qmin - 1) / 2), EPS)
        return scale.astype(F32), np.full(scale.shape, (qmin + qmax + 1) // 2, dtype=np.int64)
    scale = np.maximum((hi - lo) / F32(qmax - qmin), EPS).astype(F32)
    return scale, np.clip(qmin - np.round(lo / scale), qmin, qmax).astype(np.int64)


def as_array(value):
    """A 0-d result (one scale, one zero point) crosses the kernel boundary as a NumPy scalar."""
    return np.asarray(value) if isinstance(value, np.generic) else value


def quantize(x, scale, zero_point, dtype="int8"):
    qmin, qmax = RANGES[dtype]
    levels = np.round(np.asarray(x, F32) / np.asarray(scale, F32)) + np.asarray(zero_point, F32)
    return np.clip(levels, qmin, qmax).astype(dtype)


@pytest.mark.points(2)
def test_qparams_edge_cases_and_per_channel_arrays(student, rng):
    lows = rng.uniform(-4, 1, size=6).astype(np.float32)
    highs = (lows + rng.uniform(0, 4, size=6)).astype(np.float32)
    neg, pos = float(-rng.uniform(0.5, 3)), float(rng.uniform(0.5, 3))
    got = student.value(
        "[calculate_qparams(lows, highs), calculate_qparams(lows, highs, symmetric=True),\n"
        " calculate_qparams(0.0, 0.0), calculate_qparams(neg, neg), calculate_qparams(pos, pos),\n"
        " calculate_qparams(neg, neg / 2, True, np.uint8)]",
        lows=lows, highs=highs, neg=neg, pos=pos,
    )
    cases = [(lows, highs, False, "int8"), (lows, highs, True, "int8"), (0.0, 0.0, False, "int8"),
             (neg, neg, False, "int8"), (pos, pos, False, "int8"), (neg, neg / 2, True, "uint8")]
    for (scale, zero_point), (lo, hi, symmetric, dtype) in zip(got, cases):
        want_scale, want_zp = qparams(lo, hi, symmetric, dtype)
        assert_array(as_array(scale), want_scale, dtype=np.float32, rtol=1e-6, atol=0)
        assert_array(as_array(zero_point), want_zp, dtype=np.int64, rtol=0, atol=0)
    with pytest.raises(StudentError) as err:
        student.value("calculate_qparams(hi, lo)", lo=neg, hi=pos)
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_round_trips_of_edge_tensors(student, rng):
    c = float(rng.uniform(0.5, 5))
    cases = {
        "zeros": np.zeros((3, 4), np.float32),
        "single": np.array([c], np.float32),
        "negative": -np.abs(rng.standard_normal(50)).astype(np.float32) - 0.1,
        "wide": (rng.standard_normal(300) * rng.uniform(1, 100)).astype(np.float32),
    }
    got = student.value(
        "out = {}\n"
        "for name, x in cases.items():\n"
        "    for sym in (False, True):\n"
        "        s, z = calculate_qparams(x.min(), x.max(), symmetric=sym)\n"
        "        q = quantize_per_tensor(x, s, z)\n"
        "        out[f'{name} {sym}'] = (q, dequantize(q, s, z), float(s))\n"
        "out",
        cases=cases,
    )
    for name, x in cases.items():
        for symmetric in (False, True):
            q, back, scale = got[f"{name} {symmetric}"]
            want_scale, want_zp = qparams(x.min(), x.max(), symmetric)
            assert_array(q, quantize(x, want_scale, want_zp), dtype=np.int8, rtol=0, atol=0)
            assert back.dtype == np.float32
            assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-5) + 1e-7, f"{name}: error above scale / 2"
    assert np.all(got["zeros False"][1] == 0) and np.all(got["zeros True"][1] == 0), "zero is exact"
    assert got["single False"][1][0] == pytest.approx(c, rel=1e-6), "a single value is an end of its range: exact"


@pytest.mark.points(2)
def test_per_channel_exact_for_constant_channels(student, rng):
    channels = rng.uniform(-5, 5, size=5).astype(np.float32)
    channels[int(rng.integers(5))] = 0.0
    x = np.repeat(channels[None, :, None], 3, axis=0).repeat(4, axis=2)   # (3, 5, 4), constant per axis-1 channel
    q, back, q_sym = student.value(
        "s, z = calculate_qparams(x.min(axis=(0, 2)), x.max(axis=(0, 2)))\n"
        "q = quantize_per_channel(x, s, z, axis=1)\n"
        "ss, zs = calculate_qparams(x.min(axis=(0, 2)), x.max(axis=(0, 2)), symmetric=True)\n"
        "(q, dequantize(q, s, z, axis=1), quantize_per_channel(x, ss, zs, axis=1))",
        x=x,
    )
    s, z = qparams(x.min(axis=(0, 2)), x.max(axis=(0, 2)))
    assert_array(q, quantize(x, s[None, :, None], z[None, :, None]), dtype=np.int8, rtol=0, atol=0)
    assert_array(back, x, dtype=np.float32, rtol=1e-6, atol=0)
    nonzero = channels != 0
    assert np.all(np.abs(q_sym[:, nonzero]) == 127), "a constant channel sits at +-127 when symmetric"


@pytest.mark.points(2)
def test_observers_per_channel_3d_and_errors(student, rng):
    batches = [rng.standard_normal((2, 4, int(rng.integers(2, 5)))).astype(np.float32) for _ in range(3)]
    p = float(rng.uniform(95, 99.5))
    lo, hi, pct, empty_ok = student.value(
        "o = MinMaxObserver(ch_axis=1)\n"
        "for b in batches:\n"
        "    o(b)\n"
        "o(np.zeros((0, 4, 2), np.float32))\n"
        "po = PercentileObserver(p, symmetric=True)\n"
        "for b in batches:\n"
        "    po(Tensor(b))\n"
        "(o.min_val, o.max_val, po.calculate_qparams(), True)",
        batches=batches, p=p,
    )
    every = np.concatenate([b.transpose(1, 0, 2).reshape(4, -1) for b in batches], axis=1)
    assert_array(lo, every.min(axis=1), dtype=np.float32)
    assert_array(hi, every.max(axis=1), dtype=np.float32)
    values = np.concatenate([b.ravel() for b in batches])
    want = qparams(*np.percentile(values, [100 - p, p]), symmetric=True)
    assert_array(as_array(pct[0]), want[0], rtol=1e-5)
    assert_array(as_array(pct[1]), want[1], rtol=0, atol=0)
    with pytest.raises(StudentError) as err:
        student.value("MinMaxObserver().calculate_qparams()")
    assert err.value.is_a("RuntimeError")


@pytest.mark.points(2)
def test_quantized_linear_dynamic_batched_and_no_bias(student, rng):
    fan_in, fan_out = int(rng.integers(4, 30)), int(rng.integers(2, 10))
    x = rng.uniform(-2, 3, size=(2, int(rng.integers(1, 5)), fan_in)).astype(np.float32)
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    y, acc, wq, sw = student.value(
        "layer = Linear(w.shape[1], w.shape[0], bias=False)\n"
        "layer.weight.data[...] = w\n"
        "ql = QuantizedLinear(layer)\n"
        "(ql(Tensor(x)).data, ql.last_accumulator, ql.weight_q, ql.weight_scale)",
        x=x, w=w,
    )
    s_w = qparams(w.min(axis=1), w.max(axis=1), symmetric=True)[0]
    assert_array(sw, s_w, dtype=np.float32, rtol=1e-6)
    assert_array(wq, quantize(w, s_w[:, None], 0), dtype=np.int8, rtol=0, atol=0)
    s_x, z_x = qparams(x.min(), x.max())
    want_acc = (quantize(x, s_x, z_x).astype(np.int64) - z_x) @ wq.astype(np.int64).T
    assert_array(acc, want_acc.astype(np.int32), dtype=np.int32, rtol=0, atol=0)
    assert_array(y, want_acc * (s_x * s_w), dtype=np.float32, rtol=1e-5, atol=1e-5)
    assert np.abs(y - x @ w.T).max() < 0.05 * np.abs(x @ w.T).max(), "close to the float layer"


@pytest.mark.points(2)
def test_calibrate_and_quantize_a_nested_model(student, rng):
    x = rng.random((int(rng.integers(10, 30)), 5)).astype(np.float32)
    names, types, qp, y_float, y_quant, left_alone = student.value(
        "class Net(Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.encoder = Sequential(Linear(5, 9, rng=1), ReLU())\n"
        "        self.head = Linear(9, 3, rng=2)\n"
        "    def forward(self, x):\n"
        "        return self.head(self.encoder(x))\n"
        "net = Net()\n"
        "obs = calibrate(net, [x])\n"
        "q = quantize_model(net, [x[: len(x) // 2], x[len(x) // 2:]])\n"
        "(list(obs), [type(q.encoder[0]).__name__, type(q.head).__name__],\n"
        " [float(q.encoder[0].input_qparams[0]), int(q.encoder[0].input_qparams[1])],\n"
        " net(Tensor(x)).data, q(Tensor(x)).data, type(net.head).__name__ == 'Linear')",
        x=x,
    )
    assert names == ["encoder.0", "head"]
    assert types == ["QuantizedLinear", "QuantizedLinear"]
    scale, zero_point = qparams(x.min(), x.max())
    assert qp[0] == pytest.approx(float(scale), rel=1e-6) and qp[1] == int(zero_point)
    assert left_alone is True
    assert np.abs(y_quant - y_float).max() < 0.03 * np.abs(y_float).max() + 1e-3
