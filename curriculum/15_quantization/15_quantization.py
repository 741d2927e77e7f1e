# %% [markdown]
# # Module 15: Quantization
#
# A trained float32 model spends 4 bytes on every weight. Most of those bits are noise: the
# weights of a layer lie in a narrow range, and 256 well-placed levels describe them well
# enough that the model's predictions barely change. **Quantization** stores weights (and
# computes with activations) as 8-bit integers plus a few floats that say how to read them:
# 4x less memory, 4x less memory traffic, and integer arithmetic that every modern CPU, GPU and
# phone accelerates.
#
# **What you build:**
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `calculate_qparams(min_val, max_val, symmetric, dtype)` | the scale and zero point that map a float range onto int8 | `observer.calculate_qparams()` |
# | `quantize_per_tensor(x, scale, zero_point)` | floats to integers, `round(x / scale) + zero_point`, clamped | `torch.quantize_per_tensor(x, scale, zp, torch.qint8)` |
# | `dequantize(q, scale, zero_point, axis=None)` | integers back to floats, `(q - zero_point) * scale` | `q.dequantize()`, `torch.dequantize` |
# | `quantize_per_channel(x, scales, zero_points, axis)` | one scale per output channel | `torch.quantize_per_channel` |
# | `MinMaxObserver`, `PercentileObserver` | calibration: the range of the values seen over calibration batches | `torch.ao.quantization.MinMaxObserver`, `PerChannelMinMaxObserver`, `HistogramObserver` |
# | `QuantizedLinear(linear, input_qparams)` | int8 weights, int32 accumulation, float output | `torch.ao.nn.quantized.Linear`, `torch.ao.nn.quantized.dynamic.Linear` |
# | `calibrate(model, batches)`, `quantize_model(model, batches)` | observe, then replace every `Linear` of a trained model | `torch.ao.quantization.prepare` / `convert`, `quantize_dynamic` |
#
# **The systems lesson.** You will train an MLP on the digits with the framework you built,
# quantize it, and **measure**: the bytes of its weights (about 4x fewer), its test accuracy
# (within one percentage point), the error that per-tensor and per-channel scales make, what an
# outlier does to a min/max calibration, and the latency of int8 arithmetic done in NumPy (which
# has no int8 matrix product, so the speed-up real hardware gives is not what you will see).
#
# **Prerequisites:** `Tensor` (01), `Linear`, `Module`, `Sequential` (03), autograd and an
# optimizer (06, 07) to train the model, `named_layers` and `measure_latency` (14).
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 15_quantization` in a terminal to see your points.

# %% tags=["export"]
import copy

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.perf.profiling import named_layers

EPS = np.float32(np.finfo(np.float32).eps)  # the smallest scale: a range of width 0 still gets one


def _array(x):
    """The NumPy array behind a Tensor, or x converted to an array."""
    return np.asarray(x.data if isinstance(x, Tensor) else x)


QRANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}  # torch.qint8, torch.quint8


def qrange(dtype=np.int8):
    """(quant_min, quant_max) of an integer dtype: int8 -> (-128, 127), uint8 -> (0, 255)."""
    dtype = np.dtype(dtype)
    if dtype not in QRANGES:
        raise TypeError(f"quantization here supports int8 and uint8, got {dtype}")
    return QRANGES[dtype]

# %% [markdown]
# ## 1. Scale and zero point: an affine map from floats to integers
#
# An int8 holds one of 256 integers, -128 to 127. To store a float `x` in it we pick a **scale**
# `s` (a positive float: the step between two neighbouring levels) and a **zero point** `z` (an
# integer: the level that represents the real number 0), and store
#
# $$q = \mathrm{clamp}\big(\mathrm{round}(x / s) + z,\ q_{min},\ q_{max}\big), \qquad \hat x = (q - z)\, s .$$
#
# Every `x` inside the range that the levels cover comes back within **half a step**:
# `|x - x_hat| <= s / 2` (rounding); outside the range it is clamped (clipping error, unbounded).
# Choosing the range is therefore a trade: a wide range never clips but has coarse steps, a
# narrow one has fine steps but clips the extremes.
#
# Given the smallest and largest value to represent, `min_val` and `max_val`, PyTorch's
# observers compute `(s, z)` like this (you will too):
#
# 1. **Make the range contain 0**: `min_neg = min(min_val, 0)`, `max_pos = max(max_val, 0)`. Zero
#    must be exactly representable (it is, as the level `z`): zero padding, ReLU outputs and
#    pruned weights are all exact zeros, and `x_hat` of 0 must be 0.
# 2. **Asymmetric (affine)**, PyTorch's `per_tensor_affine`: the range `[min_neg, max_pos]` is
#    spread over all the levels: `s = (max_pos - min_neg) / (q_max - q_min)` and
#    `z = q_min - round(min_neg / s)`, clamped to `[q_min, q_max]`. Good for activations: after
#    a ReLU every value is `>= 0`, and an asymmetric range spends no level on negatives.
# 3. **Symmetric**, PyTorch's `per_tensor_symmetric`: the range is `[-m, m]` with
#    `m = max(-min_neg, max_pos)` and `z` is the middle level: 0 for int8 (128 for uint8). We use
#    the *narrow* range `[-127, 127]` (255 levels, PyTorch's `quant_min=-127`, also what
#    TensorRT and ONNX Runtime use for weights): `s = m / 127`, `+m` and `-m` both map exactly
#    to `+-127`, and `-128` is never produced. Good for weights: they are centred on 0, and with
#    `z = 0` the integer matrix product needs no zero-point correction on the weight side.
# 4. **Never divide by zero**: `s = max(s, EPS)` (float32's machine epsilon, PyTorch's `eps`),
#    so an all-zero tensor still gets a valid scale.
#
# Compute in float32 (`np.float32`), like PyTorch: return the scale as a float32 array and the
# zero point as an int64 array, both of the shape of `min_val` (a 0-d array for one tensor, one
# entry per channel for per-channel ranges). Raise `ValueError` when some `min_val > max_val`.
#
# **Rounding.** `np.round` rounds halves to the nearest even integer (2.5 -> 2, 3.5 -> 4), like
# the `nearbyint` that PyTorch's kernels call. Python's `round` on a float does the same.

# %% tags=["export"]
def calculate_qparams(min_val, max_val, symmetric=False, dtype=np.int8):
    """(scale, zero_point) mapping [min_val, max_val] (extended to contain 0) onto `dtype`'s
    integers: float32 and int64 arrays of min_val's shape (0-d per tensor, (C,) per channel).

    Asymmetric: scale = (max_pos - min_neg) / (q_max - q_min), zero_point = q_min - round(min_neg / scale).
    Symmetric: scale = max(|min_neg|, max_pos) / 127 (narrow range +-127), zero_point the middle
    level (0 for int8, 128 for uint8). scale >= EPS. PyTorch: MinMaxObserver.calculate_qparams.
    """
    ### BEGIN SOLUTION
    qmin, qmax = qrange(dtype)
    min_val, max_val = np.asarray(min_val, np.float32), np.asarray(max_val, np.float32)
    if np.any(min_val > max_val):
        raise ValueError(f"min_val must be <= max_val, got {min_val} and {max_val}")
    min_neg = np.minimum(min_val, np.float32(0))
    max_pos = np.maximum(max_val, np.float32(0))
    if symmetric:
        half = np.float32((qmax - qmin - 1) / 2)  # 127: the narrow range [-127, 127] around the middle
        scale = np.maximum(np.maximum(-min_neg, max_pos) / half, EPS)
        zero_point = np.full(scale.shape, (qmin + qmax + 1) // 2, dtype=np.int64)
    else:
        scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), EPS)
        zero_point = np.clip(qmin - np.round(min_neg / scale), qmin, qmax).astype(np.int64)
    return scale.astype(np.float32), zero_point
    ### END SOLUTION

# %% [markdown]
# ### Check: the parameters of a few ranges

# %%
scale, zero_point = calculate_qparams(-1.0, 3.0)
assert scale.dtype == np.float32 and zero_point.dtype == np.int64 and scale.shape == ()
assert np.isclose(scale, 4 / 255) and zero_point == -128 + 64, (scale, zero_point)   # -1.0 / (4/255) = -63.75 -> -64
scale, zero_point = calculate_qparams(-1.0, 3.0, symmetric=True)
assert np.isclose(scale, 3 / 127) and zero_point == 0
scale, zero_point = calculate_qparams(2.0, 5.0)             # the range is extended to contain 0
assert np.isclose(scale, 5 / 255) and zero_point == -128
scale, zero_point = calculate_qparams(0.0, 0.0)             # all zeros: the smallest scale, never 0
assert scale == EPS and zero_point == -128
scales, zero_points = calculate_qparams(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), symmetric=True, dtype=np.uint8)
assert scales.shape == (2,) and np.allclose(scales, [1 / 127, 2 / 127]) and zero_points.tolist() == [128, 128]
print("calculate_qparams ok:", calculate_qparams(-1.0, 3.0))

# %% [markdown]
# ## 2. Quantize and dequantize
#
# `quantize_per_tensor(x, scale, zero_point, dtype=np.int8)` returns the integers
# `clamp(round(x / scale) + zero_point, q_min, q_max)` as an array of `dtype` (int8 or uint8;
# PyTorch's `torch.quantize_per_tensor(x, scale, zero_point, torch.qint8)` keeps them in a
# quantized tensor whose `int_repr()` is this array). `x` may be a Tensor or an array; divide in
# float32. `scale` and `zero_point` may be numbers or arrays that broadcast against `x`:
# `quantize_per_channel` below uses that. Quantizing runs on every activation at inference, so
# make one float32 copy of `x` and do the division, rounding, shift and clamp **in place** on it
# (`out=` arguments, `/=`, `+=`): each temporary array of a large activation costs an allocation
# and one more pass over memory. Keep everything float32: adding an int64 zero point to a
# float32 array promotes it to float64, about 10x slower here.
#
# `dequantize(q, scale, zero_point, axis=None)` returns `(q - zero_point) * scale` as a float32
# array. Subtract in a wide integer type first: `q - zero_point` computed in int8 wraps around
# (`np.int8(-128) - 127` is not -255). With `axis=None`, `scale` and `zero_point` are numbers (or
# broadcast); with an `axis`, they hold one entry per index of that axis of `q` (per channel).
#
# **Memory.** The integers take one byte each (`q.nbytes == q.size`), the float32 input four.

# %% tags=["export"]
def quantize_per_tensor(x, scale, zero_point, dtype=np.int8):
    """clamp(round(x / scale) + zero_point, q_min, q_max) as an array of `dtype` (int8 or uint8).
    scale and zero_point are numbers or arrays that broadcast against x.
    PyTorch: torch.quantize_per_tensor(x, scale, zero_point, dtype).int_repr()."""
    ### BEGIN SOLUTION
    qmin, qmax = qrange(dtype)
    levels = np.array(_array(x), dtype=np.float32)      # one float32 copy, then every step in place
    levels /= np.asarray(scale, np.float32)
    np.round(levels, out=levels)
    levels += np.asarray(zero_point, np.float32)        # float32 throughout: an int64 would promote to float64
    np.clip(levels, np.float32(qmin), np.float32(qmax), out=levels)
    return levels.astype(dtype)
    ### END SOLUTION


def dequantize(q, scale, zero_point, axis=None):
    """(q - zero_point) * scale as float32. With `axis`, scale and zero_point hold one entry per
    index of that axis (per channel). PyTorch: Tensor.dequantize()."""
    ### BEGIN SOLUTION
    q = _array(q)
    scale, zero_point = np.asarray(scale, np.float32), np.asarray(zero_point, np.int64)
    if axis is not None:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return ((q.astype(np.int64) - zero_point) * scale).astype(np.float32)
    ### END SOLUTION

# %% [markdown]
# ### Check: a round trip loses at most half a step

# %%
x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
scale, zero_point = calculate_qparams(x.min(), x.max())
q = quantize_per_tensor(x, scale, zero_point)
assert q.dtype == np.int8 and q.nbytes * 4 == x.nbytes
assert q.min() == -128 and q.max() == 127, "the calibrated range uses every level"
error = np.abs(dequantize(q, scale, zero_point) - x).max()
assert error <= scale / 2 * 1.0001, f"round-trip error {error} above half a step {scale / 2}"
assert quantize_per_tensor(np.array([1000.0, -1000.0]), scale, zero_point).tolist() == [127, -128], "clamped"
assert dequantize(np.array([-128], np.int8), 0.5, 127).tolist() == [-127.5], "subtract in a wide type"
print(f"round trip of 1000 normal values: max error {error:.5f} <= scale/2 = {scale / 2:.5f}")

# %% [markdown]
# ## 3. Per-channel quantization
#
# One scale for a whole weight matrix is set by its single largest entry. If one output neuron
# (one row of `Linear.weight`, shape `(out_features, in_features)`) has weights 100x larger than
# the others, every other row is quantized with steps 100x too coarse and loses nearly all its
# levels. **Per-channel** quantization gives each row its own scale (and zero point): PyTorch's
# `torch.quantize_per_channel(x, scales, zero_points, axis, dtype)` and the default for the
# weights of quantized `Linear` and `Conv` layers. It costs one float per row, nothing per weight.
#
# `quantize_per_channel(x, scales, zero_points, axis, dtype=np.int8)`: `scales` and
# `zero_points` have one entry per index of `axis` of `x`. Reshape them so that they broadcast
# along that axis (shape `[1, ..., -1, ..., 1]`, the -1 at `axis`) and reuse `quantize_per_tensor`.
# Raise `ValueError` when their length differs from `x.shape[axis]`.

# %% tags=["export"]
def quantize_per_channel(x, scales, zero_points, axis, dtype=np.int8):
    """Quantize x with scales[c], zero_points[c] along `axis` (one per channel c).
    PyTorch: torch.quantize_per_channel(x, scales, zero_points, axis, dtype).int_repr()."""
    ### BEGIN SOLUTION
    x = _array(x)
    scales, zero_points = np.asarray(scales, np.float32), np.asarray(zero_points, np.int64)
    if scales.shape != (x.shape[axis],) or zero_points.shape != (x.shape[axis],):
        raise ValueError(f"need one scale and zero point per index of axis {axis} ({x.shape[axis]}), "
                         f"got shapes {scales.shape} and {zero_points.shape}")
    shape = [1] * x.ndim
    shape[axis] = -1
    return quantize_per_tensor(x, scales.reshape(shape), zero_points.reshape(shape), dtype)
    ### END SOLUTION

# %% [markdown]
# ### Check: one outlier row ruins per-tensor scales, not per-channel ones

# %%
w = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32) * 0.05
w[0] *= 100                                                  # one row of large weights
s_t, z_t = calculate_qparams(w.min(), w.max(), symmetric=True)
s_c, z_c = calculate_qparams(w.min(axis=1), w.max(axis=1), symmetric=True)
per_tensor = dequantize(quantize_per_tensor(w, s_t, z_t), s_t, z_t)
per_channel = dequantize(quantize_per_channel(w, s_c, z_c, axis=0), s_c, z_c, axis=0)
err_t, err_c = np.abs(per_tensor - w)[1:].mean(), np.abs(per_channel - w)[1:].mean()
assert err_c < err_t / 10, (err_t, err_c)
assert np.all(np.abs(per_channel - w) <= s_c[:, None] / 2 * 1.0001)
print(f"mean error of the small rows: per tensor {err_t:.2e}, per channel {err_c:.2e}")

# %% [markdown]
# ## 4. Calibration: observing the range
#
# Weights are known after training, so their range is exact. The range of an **activation**
# (the input of a layer) depends on the data: it is estimated by running a few **calibration
# batches** through the float model and recording what each layer sees. PyTorch calls the
# objects that record ranges *observers*: an observer is called on a tensor, records, and
# returns the tensor unchanged, so it can sit in the forward pass.
#
# `MinMaxObserver(symmetric=False, dtype=np.int8, ch_axis=None)` keeps the running minimum and
# maximum over every batch it has seen (`min_val`, `max_val`: float32, `None` before the first
# batch). With `ch_axis=None` they are numbers (0-d arrays); with a `ch_axis` they have one
# entry per index of that axis, reduced over all the other axes (PyTorch's
# `PerChannelMinMaxObserver(ch_axis=0)`). An empty batch changes nothing.
# `calculate_qparams()` (given) turns the range into `(scale, zero_point)`.
#
# Min/max is exact but fragile: one outlier in one calibration batch stretches the range for
# good, and every other value gets coarser steps. `PercentileObserver(percentile=99.99)` instead
# clips the range to the `100 - p` and `p` percentiles of every value seen (TensorRT's
# percentile calibration): it gives up exactness on a few rare extremes to keep fine steps for
# the bulk. It keeps the values of every batch (given `forward`) and computes
# `np.percentile(all_values, [100 - p, p])` when asked; production tools keep a fixed-size
# histogram instead (PyTorch's `HistogramObserver`), so calibration memory does not grow.

# %% tags=["export"]
class MinMaxObserver:
    """Running min/max of everything seen: torch.ao.quantization.MinMaxObserver, or with
    ch_axis, PerChannelMinMaxObserver. Call it on a batch (returns the batch unchanged), then
    calculate_qparams()."""

    def __init__(self, symmetric=False, dtype=np.int8, ch_axis=None):
        qrange(dtype)  # checks the dtype
        self.symmetric, self.dtype, self.ch_axis = symmetric, dtype, ch_axis
        self.min_val = None
        self.max_val = None

    def forward(self, x):
        """Update min_val/max_val with the batch x (per channel along ch_axis); return x."""
        ### BEGIN SOLUTION
        a = _array(x)
        if a.size == 0:
            return x
        if self.ch_axis is None:
            axes = None
        else:
            channel = self.ch_axis % a.ndim
            axes = tuple(i for i in range(a.ndim) if i != channel)
        low, high = a.min(axis=axes).astype(np.float32), a.max(axis=axes).astype(np.float32)
        if self.min_val is not None:
            low, high = np.minimum(self.min_val, low), np.maximum(self.max_val, high)
        self.min_val, self.max_val = low, high
        return x
        ### END SOLUTION

    def __call__(self, x):
        return self.forward(x)

    def calculate_qparams(self):
        """(scale, zero_point) for the range seen so far."""
        if self.min_val is None:
            raise RuntimeError("this observer has seen no data: call it on calibration batches first")
        return calculate_qparams(self.min_val, self.max_val, self.symmetric, self.dtype)

    def __repr__(self):
        return f"{type(self).__name__}(min_val={self.min_val}, max_val={self.max_val})"


class PercentileObserver(MinMaxObserver):
    """Clip the range to the (100 - p)-th and p-th percentiles of every value seen (per tensor).
    PyTorch's HistogramObserver plays this role (it minimises the quantization error instead)."""

    def __init__(self, percentile=99.99, symmetric=False, dtype=np.int8):
        super().__init__(symmetric=symmetric, dtype=dtype)
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = float(percentile)
        self.values = []  # one float32 copy of every batch: memory grows with calibration data

    def forward(self, x):
        a = _array(x)
        if a.size:
            self.values.append(a.astype(np.float32).ravel())
            super().forward(a)  # min_val/max_val: the unclipped range, for comparison
        return x

    def calculate_qparams(self):
        """(scale, zero_point) for [percentile(100 - p), percentile(p)] of all values seen."""
        ### BEGIN SOLUTION
        if not self.values:
            raise RuntimeError("this observer has seen no data: call it on calibration batches first")
        low, high = np.percentile(np.concatenate(self.values), [100.0 - self.percentile, self.percentile])
        return calculate_qparams(low, high, self.symmetric, self.dtype)
        ### END SOLUTION

# %% [markdown]
# ### Check: calibration over batches, and an outlier

# %%
obs = MinMaxObserver()
for batch in ([[0.5, 2.0], [1.0, 0.0]], [[-1.0, 0.25]], np.zeros((0, 2))):
    assert obs(np.array(batch)) is not None
assert obs.min_val == -1.0 and obs.max_val == 2.0
per_row = MinMaxObserver(symmetric=True, ch_axis=1)
per_row(np.array([[1.0, -3.0], [2.0, 0.5]]))
per_row(np.array([[-4.0, 1.0]]))
assert per_row.min_val.tolist() == [-4.0, -3.0] and per_row.max_val.tolist() == [2.0, 1.0]
activations = np.abs(np.random.default_rng(2).standard_normal(10_000)).astype(np.float32)
activations[0] = 80.0                                       # one outlier in the calibration data
minmax, pct = MinMaxObserver(), PercentileObserver(99.9)
minmax(activations), pct(activations)
s_mm, s_p = minmax.calculate_qparams()[0], pct.calculate_qparams()[0]
assert s_p < s_mm / 10, "the percentile range ignores the outlier"
print(f"scale with min/max {s_mm:.4f}, with the 99.9th percentile {s_p:.4f}")

# %% [markdown]
# ## 5. QuantizedLinear: int8 weights, int32 accumulation, float output
#
# A quantized `Linear` computes `y = x W^T + b` with integers. With the input quantized
# per tensor (`x ~ (x_q - z_x) s_x`) and the weights symmetric per output channel
# (`W[o] ~ W_q[o] s_w[o]`, zero point 0):
#
# $$y_{n,o} = s_x\, s_w[o] \sum_i (x_q[n, i] - z_x)\, W_q[o, i] \; + \; b_o .$$
#
# The sum is pure integer arithmetic, done once per output; the two scales multiply the result
# once. **Why int32 accumulation?** Each product of two 8-bit numbers needs up to 16 bits, and a
# sum of `K` of them `16 + log2(K)` bits: int8 or int16 accumulators would overflow after a few
# terms, int32 holds sums of up to about 66,000 products of full-range values. Hardware int8
# units (x86 VNNI `vpdpbusd`, ARM `sdot`, NVIDIA tensor cores) all multiply int8 and accumulate
# in int32. The bias is added in float here (PyTorch's dynamic `Linear` does the same; its
# static one quantizes it to int32 with scale `s_x s_w`).
#
# **Integer matrix products in NumPy.** NumPy has no int8 GEMM, and its integer `matmul` does not
# use BLAS at all (about 20x slower than float32). `int_matmul(a, b, a_zero_point)` (given) uses
# a trick that is exact: float32 represents every integer up to `2**24` exactly, float64 every
# integer up to `2**53`. When no partial sum can exceed that (`K * max|a - z| * max|b|` below
# the limit, for the largest values the dtypes allow), a float BLAS product of integer-valued
# matrices *is* the integer product, bit for bit.
# It returns int32 and raises `OverflowError` when a real int32 accumulator would overflow.
#
# **Your tasks.**
#
# - `QuantizedLinear(linear, input_qparams=None, per_channel=True)`: in `__init__`, quantize
#   `linear.weight` symmetric int8 (`calculate_qparams(..., symmetric=True)`): per channel, one
#   scale per row from the row's min and max; otherwise one scale from the whole matrix,
#   repeated for every row. Store `self.weight_scale` (float32, shape `(out_features,)`) and
#   `self.weight_q` (int8, shape `(out_features, in_features)`). The bias (given) is kept as a
#   float32 array.
# - `forward(x)`: the input's `(scale, zero_point)` are `self.input_qparams` when calibrated
#   (**static** quantization), or, when it is `None`, computed from this batch's own min and max
#   (asymmetric; **dynamic** quantization: PyTorch's `quantize_dynamic`). Quantize `x` per tensor
#   to int8, accumulate with `int_matmul` against `weight_q.T`, multiply by
#   `input_scale * weight_scale` and add the bias: return a float32 `Tensor` of shape
#   `(..., out_features)` (leading dimensions of any number, like `Linear`). Store the last
#   accumulator (the int32 array, before scaling) in `self.last_accumulator`: tests read it.

# %% tags=["export"]
def int_matmul(a, b, a_zero_point=0):
    """The exact integer product (a - a_zero_point) @ b of int8/uint8 arrays, as int32 (what an
    int8 GEMM with int32 accumulators returns). Computed with float BLAS, which is exact while
    no partial sum can exceed 2**24 (float32) or 2**53 (float64). OverflowError when an int32
    accumulator could overflow (more than about 66,000 products of full-range values)."""
    (a_min, a_max), (b_min, b_max) = qrange(a.dtype), qrange(b.dtype)  # int8 or uint8 operands only
    # The worst case the dtypes allow: K products of the largest |a - z| and |b| (no pass over the data).
    largest_a = max(abs(a_min - a_zero_point), abs(a_max - a_zero_point))
    bound = a.shape[-1] * largest_a * max(abs(b_min), abs(b_max))
    if bound >= 2**31:
        raise OverflowError(f"an int32 accumulator could overflow: up to {bound:,} in a sum of {a.shape[-1]} products")
    exact = np.float32 if bound < 2**24 else np.float64  # every partial sum is then an exact float
    shifted = a.astype(exact)
    shifted -= exact(a_zero_point)
    return (shifted @ b.astype(exact)).astype(np.int32)


class QuantizedLinear(Module):
    """A Linear with int8 weights (symmetric, per output channel by default), int8 inputs,
    int32 accumulation and float32 output. input_qparams=(scale, zero_point) from calibration
    (static), or None to quantize each batch with its own range (dynamic).
    PyTorch: torch.ao.nn.quantized.Linear, torch.ao.nn.quantized.dynamic.Linear."""

    def __init__(self, linear, input_qparams=None, per_channel=True):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.per_channel = per_channel
        ### BEGIN SOLUTION
        w = linear.weight.data
        if per_channel:
            scale, _ = calculate_qparams(w.min(axis=1), w.max(axis=1), symmetric=True)
        else:
            scale, _ = calculate_qparams(w.min(), w.max(), symmetric=True)
            scale = np.full(self.out_features, scale, dtype=np.float32)
        self.weight_scale = scale
        self.weight_q = quantize_per_channel(w, scale, np.zeros(self.out_features, np.int64), axis=0)
        ### END SOLUTION
        self.bias = None if linear.bias is None else linear.bias.data.astype(np.float32).copy()
        if input_qparams is None:
            self.input_qparams = None
        else:
            self.input_qparams = (np.float32(input_qparams[0]), int(input_qparams[1]))
        self.last_accumulator = None

    def forward(self, x):
        """y = s_x * s_w * int_matmul(x_q, W_q^T, z_x) + b, a float32 Tensor."""
        ### BEGIN SOLUTION
        a = np.asarray(_array(x), np.float32)
        if self.input_qparams is None:   # dynamic: this batch's own range
            scale, zero_point = calculate_qparams(a.min(initial=0.0), a.max(initial=0.0))
        else:                            # static: the calibrated range
            scale, zero_point = self.input_qparams
        x_q = quantize_per_tensor(a, scale, zero_point)
        self.last_accumulator = int_matmul(x_q, self.weight_q.T, int(zero_point))
        # int32 * float32 would promote to float64: convert the accumulator once, stay in float32.
        out = self.last_accumulator.astype(np.float32)
        out *= np.float32(scale) * self.weight_scale
        if self.bias is not None:
            out += self.bias
        return Tensor(out)
        ### END SOLUTION

    def nbytes(self):
        """Bytes stored: int8 weights, float32 scales and bias, the input's scale and zero point."""
        stored = self.weight_q.nbytes + self.weight_scale.nbytes
        stored += 0 if self.bias is None else self.bias.nbytes
        return stored + (0 if self.input_qparams is None else 4 + 4)

    def extra_repr(self):
        mode = "dynamic" if self.input_qparams is None else f"static, input scale={float(self.input_qparams[0]):.4g}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, int8 weights "
                f"{'per channel' if self.per_channel else 'per tensor'}, {mode}")


def model_nbytes(model):
    """Bytes of a model's stored numbers: each leaf layer's parameters (QuantizedLinear: nbytes())."""
    total = 0
    for _, layer in named_layers(model):
        if isinstance(layer, QuantizedLinear):
            total += layer.nbytes()
        elif isinstance(layer, Module):
            total += sum(p.data.nbytes for p in layer.parameters())
    return total

# %% [markdown]
# ### Check: a QuantizedLinear against its float layer

# %%
layer = Linear(32, 8, rng=3)
xb = np.random.default_rng(4).random((5, 32)).astype(np.float32)
ql = QuantizedLinear(layer)
assert ql.weight_q.dtype == np.int8 and ql.weight_q.shape == (8, 32) and ql.weight_scale.shape == (8,)
assert np.abs(ql.weight_q).max(axis=1).tolist() == [127] * 8, "each row's largest weight maps to +-127"
y_float, y_int8 = layer(Tensor(xb)).data, ql(Tensor(xb)).data
assert y_int8.dtype == np.float32 and y_int8.shape == (5, 8)
assert ql.last_accumulator.dtype == np.int32
assert np.abs(y_int8 - y_float).max() < 0.02 * np.abs(y_float).max(), np.abs(y_int8 - y_float).max()
print(f"QuantizedLinear: max |int8 - float| = {np.abs(y_int8 - y_float).max():.5f}, "
      f"{ql.nbytes()} bytes against {layer.weight.data.nbytes + layer.bias.data.nbytes} in float32")

# %% [markdown]
# ## 6. Quantizing a whole model: calibrate, then convert
#
# PyTorch's post-training static quantization is three steps: `prepare` inserts an observer
# before each layer to quantize, the user runs calibration batches through the model, `convert`
# replaces each layer by its quantized version using the ranges observed. You write both halves.
#
# **`calibrate(model, batches, observer=MinMaxObserver)`** returns a dict `{name: observer}`, one
# new observer (`observer()`, a class or any function returning one) per `Linear` among
# `named_layers(model)`, keyed by its dotted name, which has observed **the input** of that
# layer on every batch. To see the inputs, wrap each `Linear`'s `forward` for the duration of the
# calibration, like module 14's `trace_forward` did: with `original = layer.forward`, set
# `object.__setattr__(layer, "forward", wrapped)` where `wrapped(x)` calls the observer on `x`
# and returns `original(x)`; run `model(Tensor(batch))` for each batch under `no_grad()`
# (calibration needs no graph); and, in a `finally:` block (an error must not leave the model
# patched), remove each wrapper again with `object.__delattr__` of the attribute `"forward"`
# (the class's `forward` then shows through). Batches may be
# arrays or Tensors.
#
# **`quantize_model(model, calibration_batches=None, observer=MinMaxObserver, per_channel=True)`**
# returns a quantized **copy** (`copy.deepcopy`; the float model is left unchanged, like
# `torch.ao.quantization.quantize_dynamic(model, inplace=False)`) in which every `Linear` is
# replaced by a `QuantizedLinear`: static, with `observer.calculate_qparams()` as its input's
# parameters, when calibration batches are given (calibrate the copy); dynamic otherwise. Use
# `swap_layers(model, replacements)` (given): it replaces every occurrence of each layer in
# `replacements` (a dict `{id(old_layer): new_layer}`), in `Sequential`s and sub-modules, and
# returns the model (or the replacement, when the model itself is a `Linear`).

# %% tags=["export"]
def swap_layers(model, replacements):
    """Replace every occurrence of a layer whose id is in `replacements` ({id(old): new}) inside
    model (Sequential entries and registered children, recursively); return the model, or its
    replacement when the model itself is replaced."""
    if id(model) in replacements:
        return replacements[id(model)]
    if isinstance(model, Sequential):
        for index, layer in enumerate(model.layers):
            if id(layer) in replacements:
                model.layers[index] = replacements[id(layer)]
                if isinstance(layer, Module):
                    setattr(model, str(index), model.layers[index])
            elif isinstance(layer, Module):
                swap_layers(layer, replacements)
    elif isinstance(model, Module):
        for name, child in list(model._modules.items()):
            if id(child) in replacements:
                setattr(model, name, replacements[id(child)])
            else:
                swap_layers(child, replacements)
    return model


def calibrate(model, batches, observer=MinMaxObserver):
    """Run `batches` through `model` (no_grad) with an observer on the input of every Linear;
    return {dotted name: observer}. PyTorch: prepare(model) then calibration forward passes."""
    ### BEGIN SOLUTION
    observers, patched = {}, []

    def observed(obs, original):
        def forward(x):
            obs(x)
            return original(x)
        return forward

    try:
        for name, layer in named_layers(model):
            if isinstance(layer, Linear):
                observers[name] = observer()
                object.__setattr__(layer, "forward", observed(observers[name], layer.forward))
                patched.append(layer)
        with no_grad():
            for batch in batches:
                model(batch if isinstance(batch, Tensor) else Tensor(batch))
    finally:
        for layer in patched:
            object.__delattr__(layer, "forward")
    return observers
    ### END SOLUTION


def quantize_model(model, calibration_batches=None, observer=MinMaxObserver, per_channel=True):
    """A copy of `model` with every Linear replaced by a QuantizedLinear: static (input ranges
    calibrated on `calibration_batches`) or dynamic (None). PyTorch: prepare/convert, quantize_dynamic."""
    ### BEGIN SOLUTION
    quantized = copy.deepcopy(model)
    observers = {} if calibration_batches is None else calibrate(quantized, calibration_batches, observer)
    replacements = {}
    for name, layer in named_layers(quantized):
        if isinstance(layer, Linear):
            qparams = observers[name].calculate_qparams() if name in observers else None
            replacements[id(layer)] = QuantizedLinear(layer, qparams, per_channel=per_channel)
    return swap_layers(quantized, replacements)
    ### END SOLUTION

# %% [markdown]
# ### Check: a small model, dynamic and static

# %%
from tinytorch.core.activations import ReLU

small = Sequential(Linear(16, 32, rng=5), ReLU(), Linear(32, 4, rng=6))
data = np.random.default_rng(7).random((64, 16)).astype(np.float32)
seen = calibrate(small, [data[:32], data[32:]])
assert list(seen) == ["0", "2"] and "forward" not in vars(small[0]), "wrappers removed"
assert seen["0"].min_val == data.min() and seen["0"].max_val == data.max()
dynamic, static = quantize_model(small), quantize_model(small, [data[:32], data[32:]])
assert isinstance(small[0], Linear), "the float model is unchanged"
assert [type(layer).__name__ for layer in static.layers] == ["QuantizedLinear", "ReLU", "QuantizedLinear"]
assert dynamic[0].input_qparams is None and static[0].input_qparams is not None
reference = small(Tensor(data)).data
for quantized in (dynamic, static):
    assert np.abs(quantized(Tensor(data)).data - reference).max() < 0.02 * np.abs(reference).max()
print(f"float {model_nbytes(small)} bytes -> int8 {model_nbytes(static)} bytes")
print(static)

# %% [markdown]
# ## 7. Systems analysis: a trained model in int8
#
# Run the cell below. It trains an MLP (64-256-128-10) on the digits with your framework
# (module 06's autograd, module 07's Adam, a plain loop), then measures:
#
# 1. the weight bytes and test accuracy of the float32 model and of its int8 versions:
#    dynamic, static with min/max calibration, static with percentile calibration, and
#    per-tensor instead of per-channel weights;
# 2. the weight round-trip error of each layer, per tensor and per channel, in units of the
#    layer's typical weight;
# 3. what one outlier value in the calibration data does to a min/max calibration, and to a
#    percentile one;
# 4. the latency of the float32 and the int8 model (a median after warm-up, module 14's
#    `measure_latency`), batch 1 and the whole test set, and where the int8 model's time goes.
#
# The claims of this module (about 4x fewer bytes, less than one percentage point of accuracy
# lost) are checked by the asserts at the end of the cell, on your implementation. Use one BLAS
# thread for stable timings (`OPENBLAS_NUM_THREADS=1`); the cell prints what it ran with.

# %% tags=["analysis"]
import os

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.datasets import load_digits, train_test_split
from tinytorch.perf.profiling import measure_latency

print(f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS') or os.environ.get('OMP_NUM_THREADS') or 'default'}")
images, labels = load_digits()
x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, seed=0)
mlp = Sequential(Linear(64, 256, rng=0), ReLU(), Linear(256, 128, rng=1), ReLU(), Linear(128, 10, rng=2))
optimizer, loss_fn, shuffle = Adam(mlp.parameters(), lr=1e-3), CrossEntropyLoss(), np.random.default_rng(0)
for epoch in range(20):
    order = shuffle.permutation(len(x_train))
    for start in range(0, len(x_train), 32):
        rows = order[start:start + 32]
        loss = loss_fn(mlp(Tensor(x_train[rows])), y_train[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def accuracy(model):
    with no_grad():
        return float((model(Tensor(x_test)).data.argmax(axis=1) == y_test).mean())


calibration = [x_train[i:i + 100] for i in range(0, 500, 100)]   # 5 batches of training images
variants = {
    "float32": mlp,
    "int8 dynamic": quantize_model(mlp),
    "int8 static min/max": quantize_model(mlp, calibration),
    "int8 static 99.99th pct": quantize_model(mlp, calibration, observer=lambda: PercentileObserver(99.99)),
    "int8 static, per-tensor W": quantize_model(mlp, calibration, per_channel=False),
}
float_bytes, float_acc = model_nbytes(mlp), accuracy(mlp)
print(f"\n1. {len(x_test)} test digits; weights and biases in bytes")
print(f"   {'model':<27} {'bytes':>8} {'x smaller':>9} {'accuracy':>9} {'change (pp)':>12}")
results = {}
for name, model in variants.items():
    results[name] = (model_nbytes(model), accuracy(model))
    size, acc = results[name]
    print(f"   {name:<27} {size:>8,} {float_bytes / size:>9.2f} {100 * acc:>8.2f}% {100 * (acc - float_acc):>+12.2f}")
weight_f32 = sum(layer.weight.data.nbytes for _, layer in named_layers(mlp) if isinstance(layer, Linear))
weight_i8 = sum(layer.weight_q.nbytes + layer.weight_scale.nbytes
                for _, layer in named_layers(variants["int8 static min/max"]) if isinstance(layer, QuantizedLinear))
print(f"   weight matrices alone: {weight_f32:,} -> {weight_i8:,} bytes ({weight_f32 / weight_i8:.2f}x smaller)")

print("\n2. Weight round-trip error, mean |w - w_hat| / mean |w|")
for name, layer in named_layers(mlp):
    if isinstance(layer, Linear):
        w = layer.weight.data
        s_t, _ = calculate_qparams(w.min(), w.max(), symmetric=True)
        s_c, _ = calculate_qparams(w.min(axis=1), w.max(axis=1), symmetric=True)
        err_t = np.abs(dequantize(quantize_per_tensor(w, s_t, 0), s_t, 0) - w).mean()
        err_c = np.abs(dequantize(quantize_per_channel(w, s_c, np.zeros(len(w), np.int64), 0), s_c, 0, axis=0) - w).mean()
        print(f"   layer {name} {str(w.shape):<10} per tensor {err_t / np.abs(w).mean():.4f}   "
              f"per channel {err_c / np.abs(w).mean():.4f}   (row scales vary {s_c.max() / s_c.min():.1f}x)")

print("\n3. One pixel of one calibration image replaced by an outlier value v (the pixels are in [0, 1])")
print(f"   {'v':>6} {'min/max: input scale':>22} {'accuracy':>9} {'percentile: input scale':>25} {'accuracy':>9}")
for v in (1.0, 10.0, 100.0, 1000.0):
    corrupted = [batch.copy() for batch in calibration]
    corrupted[0][0, 36] = v
    row = f"   {v:>6g}"
    for make in (MinMaxObserver, lambda: PercentileObserver(99.99)):
        bad = quantize_model(mlp, corrupted, observer=make)
        row += f" {float(bad[0].input_qparams[0]):>22.5f} {100 * accuracy(bad):>8.2f}%"
    print(row)

print("\n4. Latency, median of 30 runs after 3 warm-up runs, under no_grad() (inference records no graph)")
int8_model = variants["int8 static min/max"]
for rows in (1, len(x_test)):
    batch = Tensor(x_test[:rows])
    with no_grad():
        t_f = measure_latency(lambda: mlp(batch), warmup=3, repeats=30)["median"]
        t_q = measure_latency(lambda: int8_model(batch), warmup=3, repeats=30)["median"]
    print(f"   batch {rows:>4}: float32 {t_f * 1e3:7.3f} ms, int8 {t_q * 1e3:7.3f} ms ({t_q / t_f:.2f}x the float time)")
big = Tensor(x_test)
first = int8_model[0]
a = big.data
s_in, z_in = first.input_qparams
steps = {
    "quantize the input": lambda: quantize_per_tensor(a, s_in, z_in),
    "int_matmul (int32 accumulation)": lambda: int_matmul(quantize_per_tensor(a, s_in, z_in), first.weight_q.T, z_in),
    "float32 matmul of the same shape": lambda: a @ mlp[0].weight.data.T,
}
for label, step in steps.items():
    print(f"   layer 0, {label:<34} {measure_latency(step, warmup=3, repeats=30)['median'] * 1e3:7.3f} ms")

size_ratio = float_bytes / results["int8 static min/max"][0]
drop = 100 * (float_acc - results["int8 static min/max"][1])
print(f"\nMeasured: {size_ratio:.2f}x fewer bytes, {drop:+.2f} percentage points of accuracy lost (static min/max)")
assert size_ratio > 3.5, f"int8 should store about 4x fewer bytes, measured {size_ratio:.2f}x"
assert drop < 1.0, f"int8 should lose under 1 percentage point of accuracy, lost {drop:.2f}"

# %% [markdown]
# ## 8. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 7 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (where the error comes from).**
# Section 7 measured the accuracy of the int8 model with dynamic and static inputs, min/max and
# percentile calibration, per-tensor and per-channel weights, and the weight round-trip error of
# each layer. Which choices mattered and which did not, and why (rounding versus clipping error,
# the `scale / 2` bound, the spread of the row scales)? What did one corrupted calibration image
# do to min/max calibration, and what does that teach about choosing calibration data?

# %% [markdown] tags=["answer"] question="q1"
# Every value inside the calibrated range comes back within `scale / 2` (rounding error); values
# outside are clamped (clipping error, unbounded). With 255 levels over a layer's range the
# weight error is under about 1% of the typical weight (section 7, table 2), so every int8
# variant stayed within a fraction of a point of the float accuracy: the argmax of ten logits
# rarely flips. Per-channel weights cut the weight error by a third to a half, most in the layer
# whose row scales vary most (5x), because a per-tensor scale is set by the largest weight of the
# whole matrix and every smaller row wastes levels; on this small model that did not change the
# accuracy, but it is free (one float per row). Dynamic quantization uses each batch's exact
# range (no clipping, no calibration, one min/max pass per call); static min/max matched it
# because the calibration images cover the test range. The percentile observer cost 0.2 points
# here: it clips the rare brightest values that min/max keeps. The outlier table shows the other
# side: one pixel of value 1000 in one calibration image multiplied the min/max input scale by
# 1000, every real pixel (0 to 1) then rounds to the zero level, and accuracy fell to chance
# (under 10%), while the percentile range did not move. The digits are robust to coarse inputs
# (even 3 levels per pixel kept 96%), a real model less so. Calibration data must be
# representative and clean (a few hundred real inputs, checked for outliers), and a robust
# observer (percentile, histogram/MSE) protects against rare extremes at the price of clipping.

# %% [markdown]
# **Question 2 (smaller is not automatically faster).**
# Section 7 measured about 4x fewer bytes but timed the int8 model in NumPy. Explain the latency
# you measured, step by step (quantizing the input, `int_matmul`, rescaling), and why real int8
# hardware is faster than float32 when NumPy is not. Why must the accumulator be int32? For a
# model whose weights do not fit in cache, which resource does int8 save, and what would you
# expect for a memory-bound workload such as generating text one token at a time?

# %% [markdown] tags=["answer"] question="q2"
# The int8 model was no faster (often slower) in NumPy: `QuantizedLinear.forward` adds passes that
# the float layer does not have (a min/max or calibrated quantize of the input, a round and clamp,
# a cast of the int8 weights to float for `int_matmul`, a rescale by `s_x * s_w` and the bias),
# each reading and writing a whole activation, and the product itself still runs as a float BLAS
# GEMM because NumPy has no int8 GEMM (its integer `matmul` does not use BLAS and was about 20x
# slower). Real hardware executes int8 multiply-accumulates natively: x86 VNNI (`vpdpbusd`) does
# 4 int8 products per 32-bit lane per instruction, ARM `sdot` likewise, NVIDIA tensor cores
# double their float16 throughput in int8; fused kernels quantize and rescale inside the GEMM. The
# accumulator must be int32 because a product of two int8 values needs 16 bits and a sum of `K`
# of them `16 + log2 K` bits; `int_matmul` raises `OverflowError` beyond that. The main saving
# is memory traffic: 4x fewer weight bytes to move from DRAM per forward pass. Generating text
# one token at a time reads every weight once per token with almost no reuse, so it is memory-
# bandwidth bound: 7B float16 weights (14 GB) read at 100 GB/s cap decoding at about 7 tokens/s,
# int8 (7 GB) about doubles it, int4 about quadruples it, even with float arithmetic after
# dequantization (weight-only quantization, as in llama.cpp or GPTQ kernels).

# %% [markdown]
# **Question 3 (what breaks at 1B parameters).**
# Your MLP lost well under a point of accuracy. Large language models are harder to quantize:
# some activation channels carry values 100x larger than the rest (outlier features), and the
# error of one layer feeds the next across dozens of layers. Using what you measured about
# per-tensor versus per-channel scales and about outliers, explain why int8 activations per
# tensor fail there, and how LLM.int8(), SmoothQuant, group-wise weight-only int4 (GPTQ, AWQ)
# or quantization-aware training address it. Estimate the memory of a 1B-parameter model in
# float32, float16, int8 and int4, including the scales.

# %% [markdown] tags=["answer"] question="q3"
# An activation quantized per tensor gets one scale for all its channels: section 7's corrupted
# image showed one extreme value multiplying the min/max scale by about 50 and destroying the
# precision of everything else, and the per-tensor weight table showed the same effect for a few
# large rows. In LLMs beyond a few billion parameters a handful of hidden dimensions carry
# systematic outliers in every token, so a per-tensor int8 activation scale wipes out the other
# channels, and per-channel activation scales cannot be factored out of the matrix product over
# the input dimension. LLM.int8() splits the matrix product: the outlier columns in float16, the
# rest in int8 (vector-wise scales). SmoothQuant divides the outlier activation channels by a
# per-channel factor and multiplies the matching weight columns by it, moving the difficulty into
# the weights where per-channel quantization absorbs it. Weight-only int4 uses one scale per
# group of 64-128 weights (finer than per row) and GPTQ/AWQ choose the rounding or scales to
# minimise the layer's output error on calibration data; quantization-aware training simulates
# the rounding during training (straight-through gradient) so the weights adapt. Errors also
# compound across layers, so evaluation must be end to end on real tasks. Memory of 1B parameters:
# float32 4 GB, float16 2 GB, int8 1 GB plus one float32 scale per row (a few MB), int4 0.5 GB
# plus one float16 scale per group of 128 (about 16 MB, 3%), which is what puts such models on
# phones and laptops.
