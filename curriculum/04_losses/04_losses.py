# %% [markdown]
# # Module 04: Losses
#
# A network produces numbers; training needs **one** number that says how wrong they are, so
# that the optimizer can push it down. That number is the loss. This week you write the losses
# that train almost every model in use today:
#
# | you build | use it for | PyTorch equivalent |
# |---|---|---|
# | `log_softmax(x, dim=-1)` | the stable building block | `torch.nn.functional.log_softmax` |
# | `MSELoss()` | regression | `torch.nn.MSELoss`, `F.mse_loss` |
# | `CrossEntropyLoss()` | classification, language models | `torch.nn.CrossEntropyLoss`, `F.cross_entropy` |
# | `BinaryCrossEntropyLoss()` | yes/no outputs, multi-label | `torch.nn.BCELoss`, `F.binary_cross_entropy` |
#
# Each loss is a class called like PyTorch's: `loss_fn = CrossEntropyLoss()`, then
# `loss = loss_fn(prediction, target)`, which returns a **scalar** (0-d) float32 `Tensor`: the
# mean over the batch (PyTorch's default `reduction='mean'`).
#
# **The systems lesson** is numerical again, with a memory twist: a language model's
# cross-entropy works on a `(tokens, vocabulary)` matrix of logits that can be the largest
# tensor of the whole training step. You will measure what it costs and why it must be fused.
#
# **Prerequisites:** Module 01 (`Tensor`) and the max-subtraction trick from Module 02's Softmax.

# %% tags=["export"]
import numpy as np

from tinytorch.core.tensor import Tensor


def _data(value) -> np.ndarray:
    """The NumPy array behind a Tensor; arrays, lists and numbers are converted as they are.

    Losses accept targets as Tensors or as plain arrays (class indices are often int arrays).
    """
    return value.data if isinstance(value, Tensor) else np.asarray(value)

# %% [markdown]
# ## log_softmax and the log-sum-exp trick
#
# Classification losses need the *log* of softmax probabilities:
#
# $$\log \mathrm{softmax}(x)_i = x_i - \log \sum_j e^{x_j}$$
#
# Computing `np.log(softmax(x))` in two steps is doubly bad:
#
# 1. **Overflow**: `e^{x_j}` overflows for logits above about 88 (float32), as in Module 02.
# 2. **Underflow**: even with the max subtracted, a probability such as `e^{-200}` is `0.0` in
#    float32, and `log(0) = -inf`. The loss of a confidently *wrong* prediction becomes `inf`,
#    although its true value, about 200, is a perfectly good number to learn from.
#
# The **log-sum-exp trick** avoids both. With `m = max_j x_j`:
#
# $$\log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}$$
#
# so that
#
# $$\log \mathrm{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}$$
#
# Every exponent is `<= 0` (no overflow), the sum is `>= 1` (its log is finite and `>= 0`), and
# the result `(x_i - m) - log(sum)` is computed by subtraction, never by taking the log of a tiny
# number: `-200` stays `-200`.
#
# **Your task:** implement `log_softmax(x, dim=-1)`, returning a new float32 Tensor.

# %% tags=["export"]
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Log of the softmax along ``dim``, computed stably. PyTorch: ``F.log_softmax(x, dim)``.

    ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the maximum along ``dim``: no exp overflows,
    and no log of an underflowed probability is ever taken.
    """
    ### BEGIN SOLUTION
    a = _data(x)
    shifted = a - a.max(axis=dim, keepdims=True)
    return Tensor(shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True)))
    ### END SOLUTION

# %%
# Check log_softmax: exp of the result is a distribution; huge and tiny logits stay finite and exact.
_ls = log_softmax(Tensor([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])).data
assert _ls.dtype == np.float32 and _ls.shape == (2, 3) and np.isfinite(_ls).all()
_e = np.exp([1.0, 2.0, 3.0])
assert np.allclose(_ls[0], np.log(_e / _e.sum())) and np.allclose(np.exp(_ls).sum(axis=-1), 1.0)
assert _ls[1].tolist() == [0.0, -1000.0, -2000.0], _ls[1]   # naive log(softmax) gives -inf here
print("log_softmax ok:\n", _ls)

# %% [markdown]
# ## MSELoss: mean squared error
#
# $$\mathrm{MSE}(\hat y, y) = \frac{1}{n} \sum_{k=1}^{n} (\hat y_k - y_k)^2$$
#
# The loss of regression: predict a number, pay the square of the error. Squaring punishes big
# errors much more than small ones (one outlier at distance 10 costs as much as 100 points at
# distance 1), and makes the gradient `2 (y_hat - y) / n` proportional to the error.
#
# **A silent bug to refuse.** If predictions have shape `(N, 1)` (a `Linear(d, 1)` output) and
# targets shape `(N,)`, broadcasting turns `pred - target` into an `(N, N)` matrix: every
# prediction compared with every target. The loss is a number, training runs, and the model
# learns nothing useful. PyTorch warns about it; your `MSELoss` raises a `ValueError` naming
# both shapes when they differ.
#
# **Your task:** implement `MSELoss.forward(pred, target)`: check the shapes, return the mean of
# the squared differences over *all* elements as a 0-d float32 Tensor.

# %% tags=["export"]
class MSELoss:
    """Mean squared error over all elements. PyTorch: ``torch.nn.MSELoss()`` (reduction='mean').

    ``loss_fn(pred, target)`` returns a 0-d float32 Tensor. Raises ValueError when the shapes
    differ, instead of broadcasting ``(N, 1)`` against ``(N,)`` into an ``(N, N)`` matrix.
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean of ``(pred - target) ** 2``; `target` may be a Tensor or an array."""
        ### BEGIN SOLUTION
        p, t = _data(pred), _data(target)
        if p.shape != t.shape:
            raise ValueError(f"MSELoss: prediction shape {p.shape} differs from target shape {t.shape}")
        diff = p - t
        return Tensor(np.mean(diff * diff))
        ### END SOLUTION

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.forward(pred, target)

# %%
# Check MSELoss: a hand-computed value, a 0-d result, and the (N, 1) vs (N,) trap refused.
_l = MSELoss()(Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[1.0, 0.0], [3.0, 7.0]]))
assert _l.shape == () and _l.data.dtype == np.float32 and _l.data == (0 + 4 + 0 + 9) / 4
try:
    MSELoss()(Tensor(np.zeros((5, 1))), Tensor(np.zeros(5)))
    raise AssertionError("MSELoss should refuse shapes (5, 1) and (5,)")
except ValueError as err:
    print("MSELoss ok:", float(_l.data), "| refused:", err)

# %% [markdown]
# ## CrossEntropyLoss: the loss of classification
#
# A classifier outputs **logits** `z` of shape `(N, C)`: one unnormalised score per example and
# class. The target is the index of the correct class for each example, an integer array of
# shape `(N,)`. Cross-entropy is the negative log-probability that the model gave to the right
# class, averaged over the batch:
#
# $$\mathrm{CE}(z, y) = -\frac{1}{N} \sum_{n=1}^{N} \log \mathrm{softmax}(z_n)_{y_n}$$
#
# A perfect, confident prediction costs 0; a uniform guess over `C` classes costs `log C`
# (2.30 for 10 classes: a useful sanity check of an untrained model's first loss); a confident
# wrong answer costs a lot, and the cost keeps growing, so the gradient keeps pushing.
#
# This is exactly PyTorch's `nn.CrossEntropyLoss`: it takes **logits, not probabilities**, and
# runs `log_softmax` then the negative log-likelihood (`F.nll_loss`) in one step. (A classic
# bug is to put a `Softmax` layer before it: the loss then applies softmax twice, trains slowly
# and can never reach 0.) Fusing the two is what makes it stable: `log_softmax` never takes the
# log of an underflowed probability.
#
# **Picking the right entries.** `logp[np.arange(N), y]` is NumPy's *fancy indexing*: row `n`,
# column `y[n]`, for every `n` at once, with no Python loop.
#
# **Validate the targets.** NumPy quietly accepts a negative index (`-1` means the last class),
# so a label of `-1` (a common "ignore" marker in datasets) would silently train on the wrong
# class. Raise a `ValueError` when the targets are not of shape `(N,)` or not in `[0, C)`.
# Targets may arrive as an integer array or as a `Tensor` (which stores them as float32):
# convert them with `.astype(np.int64)`, PyTorch's `long`.
#
# **Your task:** implement `CrossEntropyLoss.forward(logits, target)`, using your `log_softmax`.

# %% tags=["export"]
class CrossEntropyLoss:
    """Cross-entropy of logits ``(N, C)`` against class indices ``(N,)``, mean over the batch.

    PyTorch: ``torch.nn.CrossEntropyLoss()`` / ``F.cross_entropy``: ``log_softmax`` followed by
    the negative log-likelihood, stable for logits of any magnitude. Returns a 0-d float32 Tensor.
    """

    def forward(self, logits: Tensor, target) -> Tensor:
        """Mean of ``-log_softmax(logits)[n, target[n]]``; ValueError on bad shapes or classes."""
        ### BEGIN SOLUTION
        z, y = _data(logits), _data(target)
        if z.ndim != 2 or y.shape != (z.shape[0],):
            raise ValueError(f"CrossEntropyLoss expects logits (N, C) and targets (N,), got {z.shape} and {y.shape}")
        y = y.astype(np.int64)
        if ((y < 0) | (y >= z.shape[1])).any():
            raise ValueError(f"CrossEntropyLoss: targets must be class indices in [0, {z.shape[1]}), got {y}")
        logp = log_softmax(z, dim=-1).data
        return Tensor(-logp[np.arange(z.shape[0]), y].mean())
        ### END SOLUTION

    def __call__(self, logits: Tensor, target) -> Tensor:
        return self.forward(logits, target)

# %%
# Check CrossEntropyLoss: uniform logits cost log(C); a confident right answer costs ~0; a
# confident wrong one costs its margin (finite); float32 Tensor targets work; bad labels raise.
_ce = CrossEntropyLoss()
assert abs(float(_ce(Tensor(np.zeros((4, 10))), np.array([0, 3, 9, 5])).data) - np.log(10)) < 1e-6
_l = _ce(Tensor([[1000.0, 0.0, 0.0], [0.0, 0.0, 1000.0]]), Tensor([0, 0]))
assert _l.shape == () and _l.data.dtype == np.float32 and float(_l.data) == 500.0, _l
try:
    _ce(Tensor(np.zeros((2, 3))), np.array([0, -1]))
    raise AssertionError("CrossEntropyLoss should refuse the target -1")
except ValueError as err:
    print("CrossEntropyLoss ok:", float(_l.data), "| refused:", err)

# %% [markdown]
# ## BinaryCrossEntropyLoss: probabilities of yes/no
#
# For a single yes/no output (spam or not; or many independent labels at once), the model
# outputs a probability `p` (usually `Sigmoid` of a logit) and the target `y` is 0 or 1:
#
# $$\mathrm{BCE}(p, y) = -\frac{1}{n} \sum_k \big[y_k \log p_k + (1 - y_k) \log (1 - p_k)\big]$$
#
# **The trap: `log(0)`.** A sigmoid output rounds to exactly `0.0` or `1.0` in float32 as soon as
# the logit passes about 17 (for 1) or 104 (for 0), and then `log(0) = -inf`: one saturated
# example makes the whole batch's loss `inf` (or `nan`, as `0 * -inf`).
#
# **The fix here: clip the probabilities** to `[eps, 1 - eps]` before taking logs, with
# `eps = 1e-7` by default. The loss of any single element is then at most about
# `-log(eps)`, about 16. The price: inside the clipped region the loss is flat, so a saturated
# wrong prediction gets **no gradient**. `eps` must also survive float32 rounding: `1 - 1e-8`
# rounds to exactly `1.0` in float32 (its spacing near 1 is about `6e-8`), which would bring
# `log(0)` back.
#
# PyTorch's `nn.BCELoss` takes the same probabilities but clamps each *log* at `-100` instead of
# clipping `p`; for logits, PyTorch recommends `nn.BCEWithLogitsLoss`, which fuses the sigmoid
# into the loss (like `CrossEntropyLoss` fuses softmax) and needs no `eps` at all.
#
# **Your task:** implement `BinaryCrossEntropyLoss.forward(pred, target)`: shapes must match
# (ValueError otherwise), clip `pred` to `[eps, 1 - eps]`, return the mean as a 0-d Tensor.

# %% tags=["export"]
class BinaryCrossEntropyLoss:
    """Binary cross-entropy of probabilities against 0/1 targets, mean over all elements.

    PyTorch: ``torch.nn.BCELoss()`` (also available here as ``BCELoss``). Predictions are
    clipped to ``[eps, 1 - eps]`` so that ``log(0)`` never happens; each element's loss is then
    at most ``-log(eps)`` (about 16 for the default ``eps = 1e-7``). Keep ``eps`` above about
    ``6e-8``: a smaller one rounds ``1 - eps`` to 1.0 in float32.
    """

    def __init__(self, eps: float = 1e-7):
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped; ValueError if shapes differ."""
        ### BEGIN SOLUTION
        p, y = _data(pred), _data(target)
        if p.shape != y.shape:
            raise ValueError(f"BinaryCrossEntropyLoss: prediction shape {p.shape} differs from target shape {y.shape}")
        p = np.clip(p, self.eps, 1 - self.eps)  # log(0) would be -inf
        return Tensor(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        ### END SOLUTION

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.forward(pred, target)


BCELoss = BinaryCrossEntropyLoss  # PyTorch's name

# %%
# Check BinaryCrossEntropyLoss: p = 0.5 costs log 2; saturated probabilities stay finite; the
# bound is -log(eps); shapes must match.
_bce = BinaryCrossEntropyLoss()
assert abs(float(_bce(Tensor([0.5, 0.5]), Tensor([1.0, 0.0])).data) - np.log(2)) < 1e-6
with np.errstate(divide="raise", invalid="raise"):
    _l = _bce(Tensor([1.0, 0.0, 1.0, 0.0]), Tensor([1.0, 0.0, 0.0, 1.0]))
assert _l.shape == () and _l.data.dtype == np.float32 and np.isfinite(_l.data)
assert abs(float(_l.data) - (-np.log(1e-7)) / 2) < 0.2, _l   # two perfect, two maximally wrong
print("BinaryCrossEntropyLoss ok:", float(_l.data))

# %% [markdown]
# ## Systems analysis: stability, time and the memory of a big vocabulary
#
# The cell below measures, with your losses:
#
# 1. **Stability.** Cross-entropy computed naively as `-log(softmax(z)[y])` against yours, for
#    random logits scaled up: how many per-example losses come back `inf` or `nan`.
# 2. **Time.** Naive against stable cross-entropy on a `(4096, 1000)` batch: what the extra
#    max-and-subtract passes cost.
# 3. **Memory.** A language model's loss sees one row of logits per *token*, one column per
#    *vocabulary entry*. We measure the peak memory that your `CrossEntropyLoss` allocates
#    (with `tracemalloc`, which sees NumPy's allocations) for growing vocabularies, as a multiple
#    of the logits' own size, and scale that measurement up to an LLM-sized step.
# 4. **Clipping.** What `BinaryCrossEntropyLoss` reports for a sigmoid output that is confidently
#    wrong, against the true loss computed from the logit, and whether `1 - eps` survives
#    rounding in float32 and float16.

# %% tags=["analysis"]
import time
import tracemalloc


def _naive_cross_entropy(z, y):
    """-log(softmax(z)[y]) per example, written the obvious way (no max, log of a probability)."""
    e = np.exp(z)
    p = e / e.sum(axis=-1, keepdims=True)
    return -np.log(p[np.arange(len(y)), y])


_rng = np.random.default_rng(0)
_z0 = _rng.standard_normal((1000, 10)).astype(np.float32)
_y0 = _rng.integers(0, 10, 1000)

print("1. non-finite per-example losses (of 1000), logits scaled by s")
print(f"{'s':>8} {'naive':>6} {'ours':>5} {'mean loss (ours)':>17}")
for _s in [1, 10, 50, 100, 1000]:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _bad = np.count_nonzero(~np.isfinite(_naive_cross_entropy(_z0 * _s, _y0)))
    _ours = -log_softmax(Tensor(_z0 * _s)).data[np.arange(1000), _y0]
    print(f"{_s:>8} {_bad:>6} {np.count_nonzero(~np.isfinite(_ours)):>5} "
          f"{float(CrossEntropyLoss()(Tensor(_z0 * _s), _y0).data):>17.2f}")


def _best_time(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_z1 = Tensor(_rng.standard_normal((4096, 1000)).astype(np.float32))
_y1 = _rng.integers(0, 1000, 4096)
_t_naive = _best_time(lambda: _naive_cross_entropy(_z1.data, _y1).mean())
_t_ours = _best_time(lambda: CrossEntropyLoss()(_z1, _y1))
print(f"\n2. cross-entropy on {_z1.shape}: naive {_t_naive * 1e3:.1f} ms, "
      f"stable {_t_ours * 1e3:.1f} ms ({_t_ours / _t_naive:.2f}x)")

print("\n3. peak memory of CrossEntropyLoss, 256 tokens x vocabulary C")
_ratios = []
for _c in [1_000, 10_000, 50_000]:
    _z = Tensor(_rng.standard_normal((256, _c)).astype(np.float32))
    _y = _rng.integers(0, _c, 256)
    tracemalloc.start()
    CrossEntropyLoss()(_z, _y)
    _peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _ratios.append(_peak / _z.data.nbytes)
    print(f"   C = {_c:>6}: logits {_z.data.nbytes / 2**20:6.1f} MiB, "
          f"peak extra {_peak / 2**20:6.1f} MiB = {_ratios[-1]:.1f} x the logits")
_tokens, _vocab = 8 * 4096, 128_256  # a batch of 8 sequences of 4096 tokens, Llama-3's vocabulary
_logit_bytes = _tokens * _vocab * 4
print(f"   LLM step: {_tokens} tokens x {_vocab} vocabulary: logits {_logit_bytes / 2**30:.1f} GiB (float32), "
      f"loss temporaries ~{_ratios[-1] * _logit_bytes / 2**30:.1f} GiB more at the measured ratio")
del _z, _z1

# 4. Clipping: target 0, logit z, p = sigmoid(z) rounded to float32. The true loss is
#    log(1 + e^z) (computed from the logit, stably, with np.logaddexp).
print("\n4. BinaryCrossEntropyLoss of a wrong prediction (target 0) with logit z")
for _zv in [5.0, 15.0, 20.0, 50.0]:
    _pz = Tensor(1 / (1 + np.exp(-np.float32(_zv))))
    print(f"   z = {_zv:4.0f}: p = {float(_pz.data):.8f}, loss {float(BinaryCrossEntropyLoss()(_pz, Tensor(0.0)).data):6.2f},"
          f" true {np.logaddexp(0, _zv):6.2f}")
for _dt in (np.float32, np.float16):
    print(f"   {np.dtype(_dt).name}: 1 - eps == 1 for eps in",
          [_eps for _eps in (1e-2, 1e-3, 1e-4, 1e-7, 1e-8) if _dt(1 - _eps) == _dt(1)])

# %% [markdown]
# ## Summary
#
# | you built | stable because | PyTorch |
# |---|---|---|
# | `log_softmax` | log-sum-exp: subtract the max, never `log` of a probability | `F.log_softmax` |
# | `MSELoss` | (no exp or log) refuses mismatched shapes | `nn.MSELoss` |
# | `CrossEntropyLoss` | takes logits and uses `log_softmax` (fused) | `nn.CrossEntropyLoss` |
# | `BinaryCrossEntropyLoss` | clips `p` to `[eps, 1 - eps]` | `nn.BCELoss` (clamps logs at -100) |
#
# In Module 06 each of these gets a `backward`; cross-entropy's turns out to be remarkably
# simple: `(softmax(z) - onehot(y)) / N`. In Module 08 they drive the training loop.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: Why losses take logits
#
# `CrossEntropyLoss` takes raw logits and computes `log_softmax` itself instead of accepting
# probabilities from a `Softmax` layer. Using your stability table, explain what goes wrong when
# softmax and log are computed separately, for large logits and for confidently wrong
# predictions, and why the fused form fixes both. What does fusing change for the backward pass
# you will write in Module 06, and what happens if a user adds a `Softmax` layer before
# PyTorch's `nn.CrossEntropyLoss`?

# %% [markdown] tags=["answer"] question="q1"
# Computed separately, `softmax` needs `exp(z)`, which overflows float32 above about 88.7: the
# row becomes `inf / inf = nan` and the loss is `nan`. Even with the max subtracted, a wrong
# class that is 100+ below the best logit gets probability `exp(-100)`, which underflows to
# exactly 0 in float32 (smallest subnormal about 1.4e-45, i.e. a logit gap of about 103), and
# `-log(0) = inf`. The table shows no failures at scale 1 and 10, about half of the examples
# failing at scale 50 and all of them at 1000, while our `CrossEntropyLoss` stays finite at
# every scale and its mean loss grows with the scale, as the true value does.
#
# `log_softmax` computes `(z - m) - log(sum(exp(z - m)))`: exponents are `<= 0` (no overflow),
# the sum is `>= 1` (finite log), and the log-probability of the wrong class is obtained by
# subtraction (`-200` stays `-200`) instead of `log` of an underflowed number. So the model
# still gets a large, finite loss and gradient exactly when it is confidently wrong, which is
# when it most needs them.
#
# For backward the fusion is a gift: the gradient of mean cross-entropy with respect to the
# logits is `(softmax(z) - onehot(y)) / N`, bounded in [-1, 1] per entry, with no division by
# a tiny probability (the separate chain `d log p = 1/p` then the softmax Jacobian would divide
# by `p` near 0 and multiply by `p` again, losing precision or producing `inf * 0 = nan`). It
# also saves memory: only the softmax (or log-softmax) needs to be kept, not both.
#
# A `Softmax` before `nn.CrossEntropyLoss` applies softmax twice, silently. The loss then sees
# "logits" in [0, 1], so even a perfect prediction (probability 1 on the right class) gets
# only `e / (e + C - 1)` after the second softmax: the loss can never go below
# `log(1 + (C - 1) / e)`, about 1.46 for 10 classes, gradients are squashed by both
# Jacobians, and training is slow and miscalibrated. PyTorch documents that
# `CrossEntropyLoss` expects unnormalised logits for this reason.

# %% [markdown]
# ### q2: Cross-entropy at LLM scale
#
# Your analysis measured the peak memory of `CrossEntropyLoss` as a multiple of the logits'
# size and scaled it to a step of 8 x 4096 tokens over a 128k-token vocabulary. Explain where
# that memory goes in your implementation (which temporaries), how it scales with tokens and
# vocabulary, and why at billions of parameters the loss can need more memory than the whole
# rest of a transformer layer. How do production systems compute this loss without
# materialising it all (for example chunking over tokens, fused or "cut" cross-entropy kernels,
# vocabulary-parallel cross-entropy in Megatron-LM), and what does each trade away?

# %% [markdown] tags=["answer"] question="q2"
# Besides the `(N, C)` logits themselves, `log_softmax` allocates `shifted = z - max` (N x C)
# and `np.exp(shifted)` (N x C), alive at the same time; the exp is freed after its row sums
# and the N x C `log_softmax` result takes its place; the max, the sums and the picked entries
# are only N-sized. The measured peak is therefore 2x the logits, the same ratio at every
# vocabulary size: memory scales linearly in tokens and linearly in vocabulary.
#
# For 8 x 4096 = 32768 tokens and a 128256-entry vocabulary the float32 logits alone are about
# 15.7 GiB, and the temporaries add twice that: about 47 GiB for one loss, more than half of
# an 80 GB accelerator, before the model, its gradients and optimizer state. For training, backward also needs the softmax
# (another N x C). A transformer layer's activations, by contrast, are N x d or N x 4d with
# d of a few thousand: 128k vocabulary columns are 30x wider, so the output projection and
# loss are the largest tensors of the step even though they hold only a few percent of the
# parameters (the vocabulary matrix of a 1B model is about 0.26B parameters at d = 2048).
# Half precision halves it but loses accuracy in the log-sum-exp, so it is usually upcast.
#
# Production approaches: (1) chunk over tokens: compute logits and loss for, say, 1024 tokens
# at a time and accumulate, so peak memory is chunk x C; costs a loop and, for backward,
# recomputing each chunk's logits or storing its gradient. (2) Fused/"cut" cross-entropy
# kernels (Liger-Kernel, Apple's Cut Cross-Entropy) compute the output projection, the online
# log-sum-exp (a running max and sum, as in FlashAttention) and the gradient in one kernel,
# never writing the N x C matrix to memory; they trade generality and engineering effort for
# memory, and sometimes skip tiny gradient entries. (3) Vocabulary-parallel cross-entropy in
# Megatron-LM shards the C columns over tensor-parallel GPUs: each computes its local max and
# sum, and two small all-reduces of N-sized vectors give the global log-sum-exp; it trades
# communication for per-GPU memory.

# %% [markdown]
# ### q3: Clipping, precision and choosing a loss
#
# Your `BinaryCrossEntropyLoss` clips probabilities to `[eps, 1 - eps]`. What does the clipping
# do to the loss and to the gradient of a saturated prediction, and why does the choice of
# `eps` depend on the floating-point format (float32 against float16 or bfloat16)? Compare it
# with PyTorch's two alternatives, `nn.BCELoss` (log clamped at -100) and `nn.BCEWithLogitsLoss`
# (sigmoid fused into the loss). Finally, why do classifiers train with cross-entropy rather
# than `MSELoss` on sigmoid or softmax outputs?

# %% [markdown] tags=["answer"] question="q3"
# Clipping bounds each element's loss by `-log(eps)` (about 16.1 for 1e-7), so a prediction of
# exactly 0 or 1 never gives `inf`/`nan` and one bad example cannot destroy the batch. But inside
# the clipped region the loss is constant: a confidently wrong, saturated prediction gets a
# *zero* gradient with respect to `p` (and through the saturated sigmoid, nearly zero anyway),
# so the model cannot recover it from this example, and the loss under-reports: the analysis
# shows a wrong prediction with logit 20 (p rounds to 1.0 in float32) reported as about 15.9
# instead of its true loss 20, and logit 50 still as 15.9 instead of 50. It also slightly
# biases predictions near 0 or 1.
#
# `eps` must be representable next to 1: in float32 the spacing just below 1 is about 6e-8, so
# `1 - 1e-8` rounds to 1.0 and `log(1 - p)` is `log(0)` again (the analysis lists exactly that
# eps for float32, and already 1e-4 for float16). In float16 the spacing below 1 is about 4.9e-4 and in bfloat16 about 3.9e-3, so eps must be around 1e-3 to 1e-2, which
# caps the loss at only 5-7 and distorts probabilities noticeably. That is why losses are
# computed in float32 under mixed precision (PyTorch autocast even refuses `BCELoss` in half
# precision and points to `BCEWithLogitsLoss`).
#
# `nn.BCELoss` clamps `log p` and `log(1-p)` at -100: exact for all representable `p > 0`,
# bounded at 100 for `p = 0`, but it still receives a probability that the sigmoid already
# rounded to 0 or 1, so information is lost before the loss sees it. `nn.BCEWithLogitsLoss`
# takes the logit `z` and computes `max(z, 0) - z y + log(1 + exp(-|z|))` (the Sigmoid trick
# of Module 02 again): no eps, no clamp, exact for any `z`, and its gradient `sigmoid(z) - y`
# never vanishes for a wrong prediction. It is the production choice, as `CrossEntropyLoss` is
# for multi-class.
#
# MSE on a sigmoid output has gradient `2 (p - y) p (1 - p)`: when the sigmoid saturates on the
# wrong side, `p (1 - p)` is nearly 0 and learning stalls (the vanishing gradient), and the
# loss is bounded by 1 so confident mistakes are barely punished. Cross-entropy's `-log p`
# cancels the sigmoid/softmax derivative, leaving `p - y`: large exactly when the model is
# confidently wrong. It is also the maximum-likelihood objective for a categorical or
# Bernoulli model, so its minimiser gives calibrated probabilities.
