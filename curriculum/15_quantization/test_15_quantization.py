"""Public graded tests of module 15 (Quantization).

Oracles are computed here in NumPy with PyTorch's formulas (float32 arithmetic, round half to
even): scales and zero points, quantized integers, dequantized values, the int32 accumulator
of a quantized Linear computed with int64 arithmetic.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("15_quantization")

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
def test_calculate_qparams_asymmetric_and_symmetric(student, rng):
    lo, hi = float(-rng.uniform(0.1, 5)), float(rng.uniform(0.1, 5))
    got = student.value(
        "[calculate_qparams(lo, hi), calculate_qparams(lo, hi, symmetric=True),\n"
        " calculate_qparams(lo, hi, dtype=np.uint8), calculate_qparams(lo, hi, True, np.uint8)]",
        lo=lo, hi=hi,
    )
    cases = [(False, "int8"), (True, "int8"), (False, "uint8"), (True, "uint8")]
    for (scale, zero_point), (symmetric, dtype) in zip(got, cases):
        want_scale, want_zp = qparams(lo, hi, symmetric, dtype)
        assert_array(as_array(scale), want_scale, dtype=np.float32, rtol=1e-6, atol=0)
        assert_array(as_array(zero_point), want_zp, dtype=np.int64, rtol=0, atol=0)


@pytest.mark.points(2)
def test_quantize_per_tensor_matches_torch_formula(student, rng):
    x = (rng.standard_normal((6, 7)) * 3).astype(np.float32)
    x[0, :2] = 10.0, -10.0                                  # beyond the range of any scale drawn below
    scale, zero_point = float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 20))
    q8, qu8 = student.value(
        "(quantize_per_tensor(x, scale, zp), quantize_per_tensor(Tensor(x), scale, zp + 128, dtype=np.uint8))",
        x=x, scale=scale, zp=zero_point,
    )
    assert_array(q8, quantize(x, scale, zero_point), dtype=np.int8, rtol=0, atol=0)
    assert_array(qu8, quantize(x, scale, zero_point + 128, "uint8"), dtype=np.uint8, rtol=0, atol=0)
    assert q8.min() == -128 and q8.max() == 127, "values beyond the range are clamped to the int8 limits"


@pytest.mark.points(2)
def test_dequantize_round_trip_within_half_a_step(student, rng):
    x = rng.standard_normal(200).astype(np.float32)
    q = rng.integers(-128, 128, size=(3, 5)).astype(np.int8)
    scales, zps = rng.uniform(0.01, 1, size=5).astype(np.float32), rng.integers(-128, 128, size=5)
    back, per_channel, scale = student.value(
        "s, z = calculate_qparams(x.min(), x.max())\n"
        "(dequantize(quantize_per_tensor(x, s, z), s, z), dequantize(q, scales, zps, axis=1), s)",
        x=x, q=q, scales=scales, zps=zps,
    )
    assert back.dtype == np.float32 and back.shape == x.shape
    assert np.abs(back - x).max() <= scale / 2 * (1 + 1e-5), "inside the range the error is at most scale / 2"
    assert_array(per_channel, (q.astype(np.int64) - zps) * scales, dtype=np.float32)


@pytest.mark.points(2)
def test_quantize_per_channel_along_each_axis(student, rng):
    w = rng.standard_normal((4, 6)).astype(np.float32) * rng.uniform(0.1, 10, size=(4, 1)).astype(np.float32)
    s0, z0 = qparams(w.min(axis=1), w.max(axis=1))
    s1, z1 = qparams(w.min(axis=0), w.max(axis=0), symmetric=True)
    rows, cols = student.value(
        "(quantize_per_channel(w, s0, z0, axis=0), quantize_per_channel(w, s1, z1, axis=1))",
        w=w, s0=s0, z0=z0, s1=s1, z1=z1,
    )
    assert_array(rows, quantize(w, s0[:, None], z0[:, None]), dtype=np.int8, rtol=0, atol=0)
    assert_array(cols, quantize(w, s1[None, :], z1[None, :]), dtype=np.int8, rtol=0, atol=0)
    with pytest.raises(StudentError):
        student.value("quantize_per_channel(w, s0[:3], z0[:3], axis=0)", w=w, s0=s0, z0=z0)


@pytest.mark.points(2)
def test_minmax_observer_over_batches(student, rng):
    batches = [rng.standard_normal((int(rng.integers(2, 6)), 3)).astype(np.float32) for _ in range(3)]
    got = student.value(
        "t, c = MinMaxObserver(), MinMaxObserver(symmetric=True, ch_axis=1)\n"
        "returned = [t(b) is b for b in batches] + [c(b) is b for b in batches]\n"
        "(returned, t.min_val, t.max_val, c.min_val, c.max_val, t.calculate_qparams(), c.calculate_qparams())",
        batches=batches,
    )
    returned, t_min, t_max, c_min, c_max, t_qp, c_qp = got
    assert returned == [True] * 6, "an observer returns its input unchanged"
    every = np.concatenate(batches)
    assert float(t_min) == every.min() and float(t_max) == every.max()
    assert_array(c_min, every.min(axis=0), dtype=np.float32)
    assert_array(c_max, every.max(axis=0), dtype=np.float32)
    assert_array(as_array(t_qp[0]), qparams(every.min(), every.max())[0], rtol=1e-6)
    assert_array(c_qp[0], qparams(every.min(axis=0), every.max(axis=0), symmetric=True)[0], rtol=1e-6)


@pytest.mark.points(1)
def test_percentile_observer_clips_the_extremes(student, rng):
    batches = [np.abs(rng.standard_normal(500)).astype(np.float32) for _ in range(2)]
    batches[1][7] = 100.0
    p = float(rng.uniform(99.0, 99.9))
    scale, zero_point = student.value(
        "obs = PercentileObserver(p)\n"
        "for b in batches:\n"
        "    obs(b)\n"
        "obs.calculate_qparams()",
        batches=batches, p=p,
    )
    lo, hi = np.percentile(np.concatenate(batches), [100 - p, p])
    want_scale, want_zp = qparams(lo, hi)
    assert_array(as_array(scale), want_scale, rtol=1e-5)
    assert_array(as_array(zero_point), want_zp, rtol=0, atol=0)


@pytest.mark.points(2)
def test_quantized_linear_weights_per_channel_and_per_tensor(student, rng):
    fan_in, fan_out = int(rng.integers(3, 12)), int(rng.integers(2, 9))
    w = (rng.standard_normal((fan_out, fan_in)) * rng.uniform(0.1, 3, size=(fan_out, 1))).astype(np.float32)
    qc, sc, qt, st = student.value(
        "layer = Linear(w.shape[1], w.shape[0])\n"
        "layer.weight.data[...] = w\n"
        "c, t = QuantizedLinear(layer), QuantizedLinear(layer, per_channel=False)\n"
        "(c.weight_q, c.weight_scale, t.weight_q, t.weight_scale)",
        w=w,
    )
    want_sc = qparams(w.min(axis=1), w.max(axis=1), symmetric=True)[0]
    want_st = np.full(fan_out, qparams(w.min(), w.max(), symmetric=True)[0], dtype=np.float32)
    assert_array(sc, want_sc, dtype=np.float32, rtol=1e-6)
    assert_array(st, want_st, dtype=np.float32, rtol=1e-6)
    assert_array(qc, quantize(w, want_sc[:, None], 0), dtype=np.int8, rtol=0, atol=0)
    assert_array(qt, quantize(w, want_st[:, None], 0), dtype=np.int8, rtol=0, atol=0)


@pytest.mark.points(2)
def test_quantized_linear_forward_accumulates_exactly(student, rng):
    fan_in, fan_out, rows = int(rng.integers(4, 40)), int(rng.integers(2, 10)), int(rng.integers(1, 6))
    x = rng.uniform(-1, 2, size=(rows, fan_in)).astype(np.float32)
    s_x, z_x = float(rng.uniform(0.01, 0.02)), int(rng.integers(-60, -20))
    y, acc, wq, sw, b = student.value(
        "layer = Linear(x.shape[1], n_out, rng=seed)\n"
        "ql = QuantizedLinear(layer, input_qparams=(s_x, z_x))\n"
        "(ql(Tensor(x)).data, ql.last_accumulator, ql.weight_q, ql.weight_scale, layer.bias.data)",
        x=x, n_out=fan_out, seed=int(rng.integers(1000)), s_x=s_x, z_x=z_x,
    )
    x_q = quantize(x, s_x, z_x).astype(np.int64)
    want_acc = (x_q - z_x) @ wq.astype(np.int64).T
    assert_array(acc, want_acc.astype(np.int32), dtype=np.int32, rtol=0, atol=0)
    assert_array(y, want_acc * (F32(s_x) * sw) + b, dtype=np.float32, rtol=1e-5, atol=1e-5)


@pytest.mark.points(2)
def test_calibrate_observes_the_input_of_each_linear(student, rng):
    batches = [rng.standard_normal((int(rng.integers(2, 8)), 5)).astype(np.float32) for _ in range(3)]
    names, lows, highs, w, b, restored = student.value(
        "model = Sequential(Linear(5, 7, rng=1), ReLU(), Linear(7, 3, rng=2))\n"
        "obs = calibrate(model, batches)\n"
        "(list(obs), [float(o.min_val) for o in obs.values()], [float(o.max_val) for o in obs.values()],\n"
        " model[0].weight.data, model[0].bias.data, 'forward' not in vars(model[0]) and 'forward' not in vars(model[2]))",
        batches=batches,
    )
    every = np.concatenate(batches)
    hidden = np.maximum(every @ w.T + b, 0)
    assert names == ["0", "2"]
    assert lows[0] == pytest.approx(float(every.min())) and highs[0] == pytest.approx(float(every.max()))
    assert lows[1] == pytest.approx(float(hidden.min()), abs=1e-6), "layer 2 sees the ReLU's output"
    assert highs[1] == pytest.approx(float(hidden.max()), rel=1e-5)
    assert restored is True, "calibrate must remove its wrappers"


@pytest.mark.points(2)
def test_quantize_model_replaces_every_linear(student, rng):
    x = rng.random((16, 6)).astype(np.float32)
    types, original, dynamic_qp, static_qp, y_float, y_static = student.value(
        "model = Sequential(Linear(6, 12, rng=3), ReLU(), Linear(12, 4, rng=4))\n"
        "dyn, sta = quantize_model(model), quantize_model(model, [x[:8], x[8:]])\n"
        "([type(l).__name__ for l in sta.layers], type(model[0]).__name__, dyn[0].input_qparams,\n"
        " [float(sta[i].input_qparams[0]) for i in (0, 2)], model(Tensor(x)).data, sta(Tensor(x)).data)",
        x=x,
    )
    assert types == ["QuantizedLinear", "ReLU", "QuantizedLinear"]
    assert original == "Linear", "quantize_model returns a copy; the float model is unchanged"
    assert dynamic_qp is None, "without calibration batches the layers quantize their inputs dynamically"
    assert static_qp[0] == pytest.approx(float(qparams(x.min(), x.max())[0]), rel=1e-6)
    assert np.abs(y_static - y_float).max() < 0.03 * np.abs(y_float).max() + 1e-3
