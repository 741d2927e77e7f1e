# %% [markdown]
# # Module 02: Activations
#
# A neural network is a stack of linear maps with a small non-linear function between them.
# This week you write those functions: **ReLU**, **Sigmoid**, **Tanh**, **GELU** and **Softmax**.
# Each fits in a few lines of NumPy, and each hides a systems lesson: what overflows in float32,
# what costs memory bandwidth, what a training run must keep in memory for the backward pass.
#
# **You will**
# - implement five activations as classes with `forward(x)` (and `__call__`), taking and returning
#   a `Tensor` of float32, exactly like `torch.nn.ReLU()(x)` in PyTorch;
# - make Sigmoid and Softmax *numerically stable*: no overflow, no `nan`, no `RuntimeWarning`,
#   even for inputs of magnitude 10,000;
# - measure what the activations cost in time and memory, and what breaks when you scale up.
#
# **Prerequisites:** Module 01 (`Tensor`). Everything here computes on `x.data`, the NumPy array
# inside a Tensor, and wraps the result in a new Tensor. In Module 06 (Autograd) you will give
# each of these a `backward`; keeping every `forward` a short function of arrays now makes that easy.
#
# | you build | PyTorch equivalent |
# |---|---|
# | `ReLU()` | `torch.nn.ReLU()`, `torch.nn.functional.relu` |
# | `Sigmoid()` | `torch.nn.Sigmoid()`, `torch.sigmoid` |
# | `Tanh()` | `torch.nn.Tanh()`, `torch.tanh` |
# | `GELU()` | `torch.nn.GELU(approximate='tanh')` |
# | `Softmax(dim=-1)` | `torch.nn.Softmax(dim=-1)`, `torch.softmax(x, dim=-1)` |

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Why non-linearity?
#
# A linear layer computes `x @ W`. Two of them in a row compute `(x @ W1) @ W2 = x @ (W1 @ W2)`:
# one linear layer again, however many you stack. Depth buys nothing until something non-linear
# sits between the layers. An activation function `f` is applied **element-wise** (Softmax is the
# exception: it works along one axis), so `f(x @ W1) @ W2` can no longer be collapsed.
#
# The cell below checks the collapse numerically: two stacked linear maps equal one.

# %%
_rng = np.random.default_rng(0)
_x, _w1, _w2 = _rng.standard_normal((4, 3)), _rng.standard_normal((3, 5)), _rng.standard_normal((5, 2))
assert np.allclose((_x @ _w1) @ _w2, _x @ (_w1 @ _w2)), "two linear maps are one linear map"

# %% [markdown]
# ## ReLU: the workhorse
#
# $$\mathrm{ReLU}(x) = \max(0, x)$$
#
# ReLU (rectified linear unit) passes positive values through and zeroes the rest. It is the
# cheapest activation there is: one comparison per element, no exponentials. Its gradient is
# 1 or 0, so it does not shrink gradients the way Sigmoid does (the "vanishing gradient"
# problem that made deep networks hard to train before 2010).
#
# **Your task:** implement `ReLU.forward`. Use `np.maximum`, which is vectorised: never loop over
# elements in Python (a Python loop is 100x slower than the same NumPy call).
#
# Every class in this module follows the same pattern as PyTorch's `nn.Module`: you call the
# object, `relu(x)`, and `__call__` forwards to `forward`.

# %% tags=["export"]
class ReLU:
    """Rectified linear unit, element-wise: ``max(0, x)``. PyTorch: ``torch.nn.ReLU``.

    Cost: one comparison per element, so it runs at memory speed (read x, write y).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Return a new float32 Tensor of the same shape with negative entries set to 0."""
        ### BEGIN SOLUTION
        return Tensor(np.maximum(x.data, 0))
        ### END SOLUTION

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

# %%
# Check ReLU: negatives become 0, positives pass, the shape and dtype are kept.
_y = ReLU()(Tensor([[-2.0, -0.5, 0.0], [0.5, 2.0, 3.0]]))
assert isinstance(_y, Tensor) and _y.shape == (2, 3) and _y.data.dtype == np.float32
assert _y.data.tolist() == [[0.0, 0.0, 0.0], [0.5, 2.0, 3.0]]
print("ReLU ok:", _y.data.tolist())

# %% [markdown]
# ## Sigmoid: squashing into (0, 1), safely
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}}$$
#
# Sigmoid maps any real number to a probability-like value in (0, 1). It is the output of a
# binary classifier and the gate inside LSTMs.
#
# **The trap.** Written literally, `1 / (1 + np.exp(-x))` computes `exp(-x)`. For `x = -100`
# that is `exp(100)`, about `2.7e43`, which does not fit in float32 (largest value about
# `3.4e38`): NumPy returns `inf` and prints `RuntimeWarning: overflow encountered in exp`.
# The final answer `1 / inf = 0` happens to be right, but a framework that spews warnings (or,
# with `np.seterr(all="raise")`, crashes) on ordinary inputs is broken, and the same pattern in
# other formulas (`e^x / (1 + e^x)`) gives `inf / inf = nan`.
#
# **The fix: only ever exponentiate a non-positive number.** Let `z = exp(-|x|)`, which lies in
# (0, 1] and can never overflow. Then
#
# - for `x >= 0`: $\sigma(x) = \frac{1}{1 + z}$
# - for `x < 0`: $\sigma(x) = \frac{e^{x}}{1 + e^{x}} = \frac{z}{1 + z}$
#
# Both formulas share the denominator `1 + z` and differ only in the numerator (`1` or `z`), so
# one `np.where` picks the numerator and a single division does the rest. For
# huge `|x|`, `z` underflows to exactly `0.0` (underflow is harmless and silent) and you get
# the exact limits `1.0` and `0.0`. `scipy.special.expit` uses the same two-branch formula.
# (Compiled kernels that compute `exp(-x)` and let it become `inf` get the right answer silently;
# NumPy checks the floating-point flags and warns, which is why you see it here.)
#
# **Your task:** implement `Sigmoid.forward` with this trick. It must give exact `0.0`/`1.0`
# for very large `|x|` and raise no warning for any finite float32 input.

# %% tags=["export"]
class Sigmoid:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, element-wise. PyTorch: ``torch.nn.Sigmoid``.

    Overflow-safe: only ``exp(-|x|)`` is ever computed, which lies in (0, 1].
    """

    def forward(self, x: Tensor) -> Tensor:
        """Return sigmoid(x) as a new float32 Tensor: values in [0, 1], no overflow warnings."""
        ### BEGIN SOLUTION
        a = x.data
        z = np.exp(-np.abs(a))  # in (0, 1]: cannot overflow
        # numerator 1 where x >= 0, z where x < 0; one division for both branches
        return Tensor(np.where(a >= 0, 1, z) / (1 + z))
        ### END SOLUTION

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

# %%
# Check Sigmoid: sigmoid(0) = 0.5, symmetry sigmoid(-x) = 1 - sigmoid(x), exact limits, and
# no warning: inside np.errstate(...="raise") an overflow would raise FloatingPointError.
with np.errstate(over="raise", invalid="raise", divide="raise"):
    _y = Sigmoid()(Tensor([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4])).data
assert _y.dtype == np.float32
assert _y[3] == 0.5 and _y[0] == 0.0 and _y[-1] == 1.0, _y
assert np.allclose(_y[:3], 1 - _y[4:][::-1]), "sigmoid(-x) should be 1 - sigmoid(x)"
assert abs(_y[4] - 1 / (1 + math.exp(-1))) < 1e-6
print("Sigmoid ok:", _y)

# %% [markdown]
# ## Tanh: zero-centred squashing
#
# $$\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2\sigma(2x) - 1$$
#
# Tanh maps to (-1, 1) and is centred at 0, which keeps the inputs of the next layer centred;
# recurrent networks (LSTM, GRU) use it for their state. Like Sigmoid, it saturates: for large
# `|x|` its gradient is almost 0.
#
# `np.tanh` is already overflow-safe (it is written the careful way inside the C library), so
# use it. **Your task:** implement `Tanh.forward`.

# %% tags=["export"]
class Tanh:
    """Hyperbolic tangent, element-wise, values in [-1, 1]. PyTorch: ``torch.nn.Tanh``."""

    def forward(self, x: Tensor) -> Tensor:
        """Return tanh(x) as a new float32 Tensor."""
        ### BEGIN SOLUTION
        return Tensor(np.tanh(x.data))
        ### END SOLUTION

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

# %%
# Check Tanh: odd function, tanh(0) = 0, saturates at exactly +-1 without warnings.
with np.errstate(over="raise", invalid="raise"):
    _y = Tanh()(Tensor([-1e4, -1.0, 0.0, 1.0, 1e4])).data
assert _y.dtype == np.float32 and _y.tolist()[0] == -1.0 and _y[2] == 0.0 and _y[-1] == 1.0
assert abs(_y[3] - math.tanh(1.0)) < 1e-6 and _y[1] == -_y[3]
print("Tanh ok:", _y)

# %% [markdown]
# ## GELU: the transformer's activation
#
# $$\mathrm{GELU}(x) = x \cdot \Phi(x)$$
#
# where $\Phi$ is the standard normal CDF. Instead of cutting off at 0 like ReLU, GELU weights
# each input by the probability that a standard normal variable is smaller: a smooth ReLU that
# lets small negative values through a little. BERT, GPT-2 and most transformers use it.
#
# $\Phi$ needs the error function `erf`, which NumPy does not provide element-wise. BERT and
# GPT-2 therefore used a **tanh approximation**, and so do we:
#
# $$\mathrm{GELU}(x) \approx \tfrac{1}{2}\, x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,\left(x + 0.044715\, x^3\right)\right)\right)$$
#
# This is exactly what PyTorch computes for `torch.nn.GELU(approximate='tanh')` (and
# `F.gelu(x, approximate='tanh')`); PyTorch's *default* `approximate='none'` uses the exact
# `erf`, and the two differ by at most about `5e-4`.
#
# **Systems note.** Write the cube as `x * x * x`, not `x ** 3`: for float32 arrays NumPy's
# power function is over 100 times slower than two multiplications. GELU is still several
# times more work per element than ReLU (a tanh plus about six multiplies and adds), which you
# will measure below.
#
# **Your task:** implement `GELU.forward` with the tanh approximation.

# %% tags=["export"]
class GELU:
    """Gaussian error linear unit, tanh approximation, element-wise.

    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``, the same formula as
    PyTorch's ``torch.nn.GELU(approximate='tanh')`` (the default ``approximate='none'`` uses erf).
    Beyond ``|x|`` of about 1e12 the cube overflows float32 to inf; tanh(+-inf) = +-1 still gives
    the right limits (x and 0), with NumPy's overflow warning.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Return GELU(x) (tanh approximation) as a new float32 Tensor."""
        ### BEGIN SOLUTION
        a = x.data
        inner = math.sqrt(2 / math.pi) * (a + 0.044715 * (a * a * a))  # a*a*a: ** is slow
        return Tensor(0.5 * a * (1 + np.tanh(inner)))
        ### END SOLUTION

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

# %%
# Check GELU: GELU(0) = 0; large positive x passes through, large negative x goes to 0;
# GELU(1) is close to the exact x * Phi(x) (the approximation error is below 1e-3).
_y = GELU()(Tensor([-20.0, -1.0, 0.0, 1.0, 20.0])).data
_exact = lambda v: v * 0.5 * (1 + math.erf(v / math.sqrt(2)))
assert _y.dtype == np.float32 and _y[2] == 0.0 and _y[-1] == 20.0 and abs(_y[0]) < 1e-6
assert abs(_y[3] - _exact(1.0)) < 1e-3 and abs(_y[1] - _exact(-1.0)) < 1e-3
print("GELU ok:", _y)

# %% [markdown]
# ## Softmax: from scores to a probability distribution
#
# $$\mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$$
#
# Softmax turns a vector of scores (logits) into positive numbers that sum to 1: a classifier's
# output distribution, and the attention weights inside every transformer. Unlike the others it
# is **not element-wise**: each output depends on the whole row, so it takes the axis to
# normalise along, `dim` (PyTorch's name; NumPy calls it `axis`). The default `dim=-1` means
# the last axis: each row of a `(batch, classes)` matrix becomes a distribution.
#
# **The trap, again.** Logits of a confident model are easily `1000`, and `exp(1000)` is `inf`
# in any float format: `inf / inf = nan`, and the whole training run is poisoned.
#
# **The fix: subtract the row maximum first.** For any constant `c`,
# $\frac{e^{x_i - c}}{\sum_j e^{x_j - c}} = \frac{e^{x_i}}{\sum_j e^{x_j}}$ (the factor $e^{-c}$
# cancels). With `c = max(x)`, every exponent is `<= 0`, so every `exp` lies in (0, 1], and the
# largest is exactly 1, so the sum is at least 1 and the division is safe.
#
# Use `keepdims=True` in the reductions so that the `(N, 1)` maxima and sums broadcast back
# against the `(N, C)` input. Entries equal to `-inf` (how attention masks out positions)
# simply get probability 0, as long as the row has one finite entry.
#
# **Your task:** implement `Softmax.forward` along `self.dim`, numerically stable.
# Do not modify `x.data` in place (no `a -= ...`): the caller still owns that array.

# %% tags=["export"]
class Softmax:
    """Softmax along one axis: ``exp(x) / exp(x).sum(dim)``. PyTorch: ``torch.nn.Softmax(dim)``.

    Numerically stable: the maximum along ``dim`` is subtracted first, so no ``exp`` overflows.
    """

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """Return a new float32 Tensor, non-negative, summing to 1 along ``self.dim``."""
        ### BEGIN SOLUTION
        a = x.data
        shifted = a - a.max(axis=self.dim, keepdims=True)  # every exponent <= 0
        e = np.exp(shifted)
        return Tensor(e / e.sum(axis=self.dim, keepdims=True))
        ### END SOLUTION

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

# %%
# Check Softmax: rows sum to 1, equal logits give a uniform row, huge logits stay finite,
# a -inf entry gets probability 0, and dim=0 normalises columns instead.
_p = Softmax()(Tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [1000.0, 0.0, -1000.0]])).data
assert _p.dtype == np.float32 and _p.shape == (3, 3) and np.allclose(_p.sum(axis=-1), 1.0)
assert np.allclose(_p[1], 1 / 3) and np.allclose(_p[2], [1.0, 0.0, 0.0]) and np.isfinite(_p).all()
_e = np.exp([1.0, 2.0, 3.0])
assert np.allclose(_p[0], _e / _e.sum())
_masked = Softmax()(Tensor([0.0, -np.inf, 0.0])).data
assert _masked.tolist() == [0.5, 0.0, 0.5]
assert np.allclose(Softmax(dim=0)(Tensor([[1.0, 2.0], [3.0, 4.0]])).data.sum(axis=0), 1.0)
print("Softmax ok:\n", _p)

# %% [markdown]
# ## Systems analysis: stability, cost and memory
#
# The cell below measures four things with the classes you just wrote:
#
# 1. **Overflow.** The naive formulas against yours, for logits of growing magnitude: how many
#    outputs come back `inf` or `nan`.
# 2. **Time per element.** Each activation on the same million float32 numbers. An element-wise
#    operation reads 4 bytes and writes 4 bytes per element; if it takes about as long as a plain
#    copy, it is *memory-bound* and extra arithmetic is nearly free; if not, it is compute-bound.
# 3. **Activation memory.** During training every layer's output must be kept until the backward
#    pass. We push batches of different sizes through a small 4-layer MLP and add up the bytes
#    of what would be stored.
# 4. **Vanishing gradients.** Backpropagation multiplies one local derivative `f'(x)` per layer.
#    We estimate `f'` of each activation by central differences `(f(x+h) - f(x-h)) / 2h` (no
#    autograd yet) at random pre-activations, and see what 20 layers of it leave of a gradient.
#
# Read the numbers it prints: the ML-systems questions at the end ask about them.

# %% tags=["analysis"]
import time


def _best_time(fn, repeat=5):
    """Best wall-clock time of fn() over `repeat` runs (the minimum filters out noise)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _naive_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _naive_softmax(a):
    e = np.exp(a)
    return e / e.sum(axis=-1, keepdims=True)


# 1. Overflow: fraction of non-finite outputs, naive vs stable (warnings silenced for the naive ones).
_rng = np.random.default_rng(0)
_base = _rng.standard_normal((256, 100)).astype(np.float32)
print("1. non-finite outputs (of", _base.size, ") for logits scaled by s")
print(f"{'s':>8} {'naive softmax':>14} {'Softmax':>8} {'naive e^x/(1+e^x)':>18} {'Sigmoid':>8}")
for _scale in [1, 10, 30, 100, 1000]:
    _a = _base * _scale
    with np.errstate(over="ignore", invalid="ignore"):
        _bad_naive = np.count_nonzero(~np.isfinite(_naive_softmax(_a)))
        _bad_naive_sig = np.count_nonzero(~np.isfinite(np.exp(_a) / (1 + np.exp(_a))))
    _bad_ours = np.count_nonzero(~np.isfinite(Softmax()(Tensor(_a)).data))
    _bad_ours_sig = np.count_nonzero(~np.isfinite(Sigmoid()(Tensor(_a)).data))
    print(f"{_scale:>8} {_bad_naive:>14} {_bad_ours:>8} {_bad_naive_sig:>18} {_bad_ours_sig:>8}")
print("   float32 exp overflows above x =", float(np.log(np.finfo(np.float32).max)),
      "; float16 above x =", float(np.log(np.finfo(np.float16).max)))

# 2. Time per element on 1M float32 values, against a plain copy (pure memory traffic).
_x = Tensor(_rng.standard_normal(1_000_000).astype(np.float32))
print("\n2. time per element on", _x.size, "float32 values (x copy: relative to a plain copy)")
print(f"{'op':>18} {'ns/elem':>8} {'x copy':>7}")
_t_copy = _best_time(lambda: _x.data.copy())
_ops = [("copy", lambda: _x.data.copy()), ("ReLU", lambda: ReLU()(_x)),
        ("Sigmoid", lambda: Sigmoid()(_x)), ("Tanh", lambda: Tanh()(_x)),
        ("GELU", lambda: GELU()(_x)), ("naive sigmoid", lambda: _naive_sigmoid(_x.data)),
        ("Softmax(1000 rows)", lambda: Softmax()(Tensor(_x.data.reshape(1000, 1000)))),
        ("naive softmax", lambda: _naive_softmax(_x.data.reshape(1000, 1000)))]
for _name, _fn in _ops:
    _t = _best_time(_fn)
    _t_copy = _t if _name == "copy" else _t_copy
    print(f"{_name:>18} {_t / _x.size * 1e9:8.2f} {_t / _t_copy:7.1f}")
_t_pow = _best_time(lambda: _x.data ** 3)
_t_mul = _best_time(lambda: _x.data * _x.data * _x.data)
print(f"   x**3 vs x*x*x: {_t_pow / _t_mul:.0f}x slower")

# 3. Activation memory of a 4-layer MLP (width 1024) per batch: bytes of the outputs a training
#    step keeps for backward (each Linear's output and each activation's output).
print("\n3. activation memory stored for backward, 4 x (Linear 1024 + GELU)")
_ws = [(_rng.standard_normal((1024, 1024)) / 32).astype(np.float32) for _ in range(4)]
for _batch in [32, 128, 512]:
    _h, _stored = Tensor(_rng.standard_normal((_batch, 1024)).astype(np.float32)), []
    for _w in _ws:
        _z = Tensor(_h.data @ _w)
        _h = GELU()(_z)
        _stored += [_z, _h]
    _bytes = sum(t.data.nbytes for t in _stored)
    _params = sum(w.nbytes for w in _ws)
    print(f"   batch {_batch:>4}: activations {_bytes / 2**20:6.1f} MiB"
          f"  (parameters {_params / 2**20:.1f} MiB, ratio {_bytes / _params:.2f})")


# 4. Vanishing gradients: local derivatives by central differences (h = 1e-3 is plenty in float32).
#    "best^20": the largest local derivative to the 20th power, what 20 layers leave at best;
#    "flat": the share of inputs where |f'(x)| < 0.01 (saturated or dead: almost no gradient).
print("\n4. local derivatives f'(x) at pre-activations x ~ N(0, s^2)")
print(f"{'':>8} {'mean s=1':>9} {'mean s=5':>9} {'best':>6} {'best^20':>8} {'flat at s=5':>12}")
_h = 1e-3
for _name, _act in [("ReLU", ReLU()), ("Sigmoid", Sigmoid()), ("Tanh", Tanh()), ("GELU", GELU())]:
    _d = {}
    for _s in (1.0, 5.0):
        _pre = _rng.standard_normal(10_000) * _s
        _d[_s] = np.abs(_act(Tensor(_pre + _h)).data - _act(Tensor(_pre - _h)).data) / (2 * _h)
    _best = max(_d[1.0].max(), _d[5.0].max())
    print(f"{_name:>8} {_d[1.0].mean():9.3f} {_d[5.0].mean():9.3f} {_best:6.2f} {_best ** 20:8.1e}"
          f" {np.mean(_d[5.0] < 0.01):12.0%}")

# %% [markdown]
# ## Summary
#
# | class | formula | stability trick | cost per element | PyTorch |
# |---|---|---|---|---|
# | `ReLU` | `max(0, x)` | none needed | one compare | `nn.ReLU` |
# | `Sigmoid` | `1 / (1 + e^-x)` | exponentiate only `-abs(x)` | one exp | `nn.Sigmoid` |
# | `Tanh` | `tanh(x)` | library `tanh` | one tanh | `nn.Tanh` |
# | `GELU` | `x Phi(x)`, tanh approx. | `x*x*x`, saturating tanh | tanh + ~6 flops | `nn.GELU(approximate='tanh')` |
# | `Softmax` | `e^x / sum e^x` | subtract the max along `dim` | exp + 2 reductions | `nn.Softmax(dim)` |
#
# The derivative table explains the history: Sigmoid's slope is at most 0.25, so 20 sigmoid
# layers shrink a gradient by about `1e-12` even in the best case, and Tanh's slope collapses once
# inputs grow (saturation). ReLU and GELU keep a slope near 1 on half of their inputs, which is
# why hidden layers use them and Sigmoid survives mainly at outputs and in gates.
#
# Next week (Module 03) these activations go between `Linear` layers; in Module 04 the
# log-sum-exp version of the Softmax trick makes cross-entropy stable; in Module 06 each
# `forward` gets its `backward`.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: Overflow and precision
#
# Your `Sigmoid` never computes `exp` of a positive number and your `Softmax` subtracts the row
# maximum. Using the overflow table from the analysis cell, explain at what input magnitude the
# naive formulas break in float32, why, and what the failure looks like to a training run.
# Mixed-precision training computes many activations in float16 or bfloat16: how does the
# breaking point change there, and why do frameworks still compute Softmax in float32 even when
# the rest of the layer runs in half precision?

# %% [markdown] tags=["answer"] question="q1"
# `exp(x)` overflows float32 once `x` exceeds `ln(3.4e38)`, about 88.7. The naive softmax
# computes `exp` of every logit, so as soon as one logit in a row passes 88.7 that row becomes
# `inf / inf = nan`; the table shows zero bad outputs at scale 1 and 10, the first non-finite
# outputs at scale 30 (random normal logits times 30 exceed 88.7 in a few rows) and about half
# of all outputs at scale 1000 (every entry that overflowed becomes `nan`).
# The naive `e^x / (1 + e^x)` sigmoid fails the same way for large positive inputs. `Sigmoid`
# computes only `z = exp(-|x|)` in (0, 1], and `Softmax` subtracts the row max so all exponents
# are <= 0 and the denominator is >= 1: zero bad outputs at every scale.
#
# To a training run the failure is silent and contagious: one `nan` in a forward pass becomes a
# `nan` loss, `nan` gradients, and after the optimizer step `nan` weights everywhere; the loss
# curve just ends. Warnings (or crashes with `np.seterr(all='raise')`) on valid inputs are also
# a bug in a framework.
#
# In float16 the largest value is 65504, so `exp` overflows at `x` about 11.1: ordinary
# attention scores or logits overflow, which is why the max-subtraction is mandatory there.
# bfloat16 has float32's exponent range (overflow at about 88.7) but only 8 bits of mantissa,
# so the sum of many small `exp` terms loses precision (adding 1e-3 to 1.0 may do nothing).
# Frameworks therefore upcast reductions such as softmax, log-softmax and layer-norm to float32
# (PyTorch autocast lists softmax as a float32 op; fused attention kernels keep the running max
# and sum in float32) while matmuls run in half precision, where they are fast and tolerant.

# %% [markdown]
# ### q2: What does an activation cost?
#
# The analysis cell timed each activation per element next to a plain copy. Which of your
# activations are memory-bound and which are compute-bound on this machine, and what in your
# code explains the difference (for example GELU against ReLU, `x ** 3` against `x * x * x`)?
# Production frameworks *fuse* the activation into the preceding matrix multiply (cuBLASLt
# epilogues, `torch.compile`, fused bias-GELU kernels): what does fusion save, and why does that
# matter more as models grow to billions of parameters?

# %% [markdown] tags=["answer"] question="q2"
# ReLU is the cheapest, a small multiple of a plain copy: it reads 4 bytes, does one compare and
# writes 4 bytes, so memory traffic is the limit (memory-bound). Sigmoid and Tanh cost several times a
# copy because each element needs a transcendental (`exp` or `tanh`), about 10-20 flops; GELU is
# the most expensive element-wise op in the table since it adds a tanh to about six multiplies
# and adds, and in NumPy every one of them is a separate pass that allocates a temporary array
# (`a * a`, `* a`, `* 0.044715`, `+ a`, ...), so it reads and writes memory many times. `x ** 3`
# calls the general power function and measured far slower than `x * x * x`. Stability has a
# price in NumPy: the stable Sigmoid makes more passes (`abs`, negate, `exp`, compare, `where`,
# add, divide) than the naive one and measured a few times slower. Softmax needs two
# reductions plus the exp and division: several passes over the data; the naive version skips
# the max and subtract passes and is faster, and wrong.
#
# Fusion computes the activation while the matmul's output tile is still in registers or cache:
# the `(batch, hidden)` result is written once instead of being written by the matmul, read by
# the activation, and written again (and NumPy's temporaries disappear). That saves one or more
# full round trips to memory per layer and per kernel launch. On a GPU the matmul is
# compute-bound and extremely fast, so the unfused element-wise ops, which are bandwidth-bound,
# can take a large share of the step time. At 1B+ parameters the hidden sizes and token counts
# make every activation tensor hundreds of megabytes, so each saved pass is gigabytes of memory
# traffic per step; fused kernels (bias+GELU epilogues, FlashAttention's fused softmax) are how
# production systems keep the GPU's arithmetic units busy.

# %% [markdown]
# ### q3: Activation memory in training
#
# Training keeps every layer's output until the backward pass. Using the activation-memory
# numbers from the analysis cell, describe how that memory scales with batch size, width and
# depth, and estimate it for a 1B-parameter transformer trained with a realistic batch. Which
# of your activations could compute their gradient from their *output* alone, and which need
# their *input*? What do production systems do when activation memory, not parameters, is what
# no longer fits (activation checkpointing, in-place operations, recomputation)?

# %% [markdown] tags=["answer"] question="q3"
# The measured memory is `2 tensors x layers x batch x width x 4 bytes`: linear in batch size,
# in width and in depth. With width 1024 and 4 layers it is 1 MiB at batch 32, 4 MiB at batch
# 128 and 16 MiB at batch 512, where it equals the 16 MiB of parameters; parameters do not
# depend on the batch, activations do, so beyond that batch they dominate.
#
# A 1B-parameter transformer (about 24 layers, width 2048, 4x MLP) processing 8 sequences of
# 2048 tokens has 16k tokens per step; each layer stores on the order of 30 values per token
# per hidden unit (inputs of the projections, attention probabilities, the 4x-wide MLP input to
# GELU, ...): about `16k x 2048 x 30 x 2 bytes (bf16)` = 2 GB per layer, ~50 GB for 24 layers,
# far more than the 2 GB of bf16 weights (16 GB with Adam states). Activations are what stop
# fitting first.
#
# Gradients from the output alone: ReLU (`y > 0`), Sigmoid (`y (1 - y)`), Tanh (`1 - y^2`)
# and Softmax (`y * (g - sum(g y))`) can save only their output, which the next layer often
# stores anyway. GELU needs its input `x` (its derivative involves `tanh(inner(x))`), so it
# costs an extra saved tensor of the 4x-wide MLP hidden size, or recomputation.
#
# Production answers: activation (gradient) checkpointing stores only each block's input and
# recomputes the rest in backward (about 30% more compute for a large memory cut);
# `nn.ReLU(inplace=True)` overwrites its input when autograd allows; fused kernels recompute
# cheap element-wise ops (GELU) in backward instead of storing them; FlashAttention never
# stores the `T x T` attention matrix; and sequence/tensor parallelism shards the activations
# across GPUs. Storing activations in bf16 or fp8 halves or quarters the bytes.
