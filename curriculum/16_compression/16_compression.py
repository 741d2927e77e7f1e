# %% [markdown]
# # Module 16: Compression
#
# Module 15 kept every weight and stored each in fewer bits. This module removes weights, or
# replaces a model by a smaller one, and measures what that costs in accuracy. Trained networks
# are heavily over-parameterised: most weights can be set to zero, a weight matrix is often
# close to a product of two thin ones, and a small network trained to imitate a big one learns
# more than the same small network trained on labels alone.
#
# **What you build:**
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `sparsity(x)` | the fraction of zeros of an array, a Tensor or a model's weights | `(w == 0).float().mean()` |
# | `magnitude_mask(w, amount)`, `l1_unstructured(layer, amount)` | zero the weights of smallest magnitude, one layer at a time | `torch.nn.utils.prune.l1_unstructured` |
# | `global_unstructured(layers, amount)` | one magnitude threshold across all layers | `prune.global_unstructured(..., prune.L1Unstructured)` |
# | `structured_mask(w, amount, n, dim)`, `ln_structured(layer, ...)` | remove whole neurons (rows) by their norm | `prune.ln_structured(module, "weight", amount, n=2, dim=0)` |
# | `drop_neurons(first, second, keep)` | rebuild two layers without the pruned neurons: really smaller matrices | `torch_pruning`-style dependency-aware pruning |
# | `low_rank(linear, rank)` | a Linear as two thin Linears from its truncated SVD | `torch.linalg.svd`, `torch.svd_lowrank` |
# | `DistillationKL`, `distillation_loss(...)` | knowledge distillation: match a teacher's softened outputs, with its gradient | `F.kl_div(F.log_softmax(s / T), F.softmax(t / T), reduction="batchmean") * T * T` |
#
# **The systems lesson.** Zeros are not savings until a format or a kernel uses them. You will
# measure, on an MLP trained on the digits, how much of it can be removed by each method before
# accuracy falls, how many bytes each result really needs (dense, sparse CSR, smaller dense
# layers, thin factors), and whether it runs any faster: an accuracy-versus-size curve, the
# trade-off every deployment team draws before it ships a model to a phone.
#
# **Prerequisites:** `Linear`, `Module`, `Sequential` (03), `CrossEntropyLoss` (04), autograd's
# `Function` (06), an optimizer (07) to fine-tune, `named_layers` and `measure_latency` (14),
# and, for the final curve, `quantize_model` (15).
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 16_compression` in a terminal to see your points.

# %% tags=["export"]
import numpy as np

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
from tinytorch.perf.profiling import named_layers


def _array(x):
    """The NumPy array behind a Tensor, or x converted to an array."""
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def linear_layers(model):
    """The Linear layers of a model, in order (each once); a Linear on its own is a list of one."""
    return [layer for _, layer in named_layers(model) if isinstance(layer, Linear)]


def prune_count(amount, total):
    """How many of `total` entries to prune: an int is a count, a float a fraction rounded to
    the nearest integer (PyTorch's prune._compute_nparams_toprune). ValueError out of range."""
    if isinstance(amount, (int, np.integer)) and not isinstance(amount, bool):
        if not 0 <= amount <= total:
            raise ValueError(f"cannot prune {amount} of {total} entries")
        return int(amount)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount as a fraction must be in [0, 1], got {amount}")
    return int(round(amount * total))

# %% [markdown]
# ## 1. Sparsity: counting zeros
#
# The **sparsity** of a tensor is the fraction of its entries that are exactly zero. After
# pruning you will measure it instead of trusting the `amount` you asked for.
#
# `sparsity(x)`: for an array or a Tensor, the fraction of zeros (a Python float, 0.0 for an
# empty array); for a `Module`, the fraction of zeros over the **weights** of all its `Linear`
# layers together (`linear_layers(model)`, given), counted entry by entry: pruning targets
# weights, and biases are a negligible part of a model.

# %% tags=["export"]
def sparsity(x):
    """Fraction of entries that are 0 (a float): of an array or Tensor, or of all the Linear
    weights of a Module together."""
    ### BEGIN SOLUTION
    if isinstance(x, Module):
        weights = [layer.weight.data for layer in linear_layers(x)]
        total = sum(w.size for w in weights)
        return float(sum(w.size - np.count_nonzero(w) for w in weights) / total) if total else 0.0
    a = _array(x)
    return float((a.size - np.count_nonzero(a)) / a.size) if a.size else 0.0
    ### END SOLUTION

# %% [markdown]
# ### Check

# %%
assert sparsity(np.array([[0.0, 1.0], [0.0, 0.0]])) == 0.75 and sparsity(np.ones(3)) == 0.0
check_model = Sequential(Linear(4, 2), Linear(2, 2))
check_model[0].weight.data[0] = 0.0                     # 4 of the 12 weights
assert abs(sparsity(check_model) - 4 / 12) < 1e-12
print("sparsity ok")

# %% [markdown]
# ## 2. Unstructured magnitude pruning
#
# The simplest criterion works remarkably well: a weight of small magnitude contributes little
# to its layer's output, so set it to zero. `magnitude_mask(weight, amount)` returns a **mask**,
# a boolean array of the weight's shape, `True` where the weight is kept and `False` for the
# `prune_count(amount, weight.size)` entries of smallest absolute value (`amount` a fraction like
# `0.8`, or a count). Use `np.argsort(np.abs(w), axis=None, kind="stable")` (the flat indices in
# increasing magnitude; stable, so ties go to the lower index) and set the first `k` of them to
# `False` in a flat `True` mask. No Python loop over the entries.
#
# `l1_unstructured(layer, amount)` (given) applies it the way `torch.nn.utils.prune` does: it
# keeps the mask on the layer (`layer.weight_mask`) and zeroes the masked weights. Calling it
# again prunes further: weights already at zero have the smallest magnitude, so they stay
# pruned, and `amount` is the fraction of *all* weights pruned afterwards. Fine-tuning a pruned
# layer would let the optimizer revive its zeros; `apply_masks(model)` (given) zeroes them again,
# to be called after every optimizer step (PyTorch recomputes `weight = weight_orig *
# weight_mask` before every forward instead).
#
# **Global pruning.** Layers differ: a small first layer may need every weight, a large hidden
# layer may lose 95%. `global_unstructured(layers, amount)` ranks the weights of **all** the
# given layers together by magnitude and prunes the `prune_count(amount, total)` smallest,
# wherever they are (PyTorch's `prune.global_unstructured`). Concatenate the flattened absolute
# weights, compute one global mask with `magnitude_mask`, split it back into one mask per layer
# (`np.split` at the cumulative sizes, reshaped), and for each layer store `layer.weight_mask`
# and zero its weights. Return the list of masks. Weights at different scales compete directly:
# this is why global pruning is applied to layers of comparable scale (or after normalisation).

# %% tags=["export"]
def magnitude_mask(weight, amount):
    """Boolean mask of weight's shape: False for the prune_count(amount, size) entries of smallest
    |weight| (ties: lower flat index first), True elsewhere. PyTorch: prune.l1_unstructured's mask."""
    ### BEGIN SOLUTION
    w = _array(weight)
    k = prune_count(amount, w.size)
    mask = np.ones(w.size, dtype=bool)
    mask[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = False
    return mask.reshape(w.shape)
    ### END SOLUTION


def l1_unstructured(layer, amount):
    """Prune `amount` of layer.weight by magnitude (on top of an earlier mask); store
    layer.weight_mask and zero the pruned weights; return the layer."""
    mask = magnitude_mask(layer.weight.data, amount)
    previous = getattr(layer, "weight_mask", None)
    layer.weight_mask = mask if previous is None else mask & previous
    layer.weight.data *= layer.weight_mask
    return layer


def apply_masks(model):
    """Zero again every masked weight (and bias) of the model's Linear layers, after an
    optimizer step moved them."""
    for layer in linear_layers(model):
        for name in ("weight", "bias"):
            mask = getattr(layer, name + "_mask", None)
            if mask is not None:
                getattr(layer, name).data *= mask


def global_unstructured(layers, amount):
    """Prune the `amount` smallest-magnitude weights among all `layers` together (one global
    threshold); store each layer's weight_mask, zero its weights; return the masks.
    PyTorch: prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=...)."""
    ### BEGIN SOLUTION
    weights = [layer.weight.data for layer in layers]
    flat = np.concatenate([np.abs(w).ravel() for w in weights])
    mask = magnitude_mask(flat, amount)
    splits = np.cumsum([w.size for w in weights])[:-1]
    masks = [part.reshape(w.shape) for part, w in zip(np.split(mask, splits), weights)]
    for layer, layer_mask in zip(layers, masks):
        layer.weight_mask = layer_mask
        layer.weight.data *= layer_mask
    return masks
    ### END SOLUTION

# %% [markdown]
# ### Check: per-layer and global pruning

# %%
w = np.array([[0.5, -0.1, 0.3], [-0.9, 0.05, 0.2]], dtype=np.float32)
assert magnitude_mask(w, 0.5).tolist() == [[True, False, True], [True, False, False]]
assert magnitude_mask(w, 2).tolist() == [[True, False, True], [True, False, True]]
assert magnitude_mask(w, 0.0).all() and not magnitude_mask(w, 1.0).any()
big, small = Linear(8, 8, rng=0), Linear(8, 2, rng=1)
big.weight.data *= 10                                   # the big layer's weights dominate globally
masks = global_unstructured([big, small], 0.5)
assert sum(int((~m).sum()) for m in masks) == 40, "half of the 80 weights"
assert sparsity(small.weight) > sparsity(big.weight), "the small-magnitude layer loses more"
layer = l1_unstructured(Linear(10, 10, rng=2), 0.3)
assert sparsity(layer.weight) == 0.3
l1_unstructured(layer, 0.6)
assert sparsity(layer.weight) == 0.6 and layer.weight_mask.sum() == 40
print(f"global pruning: big layer {sparsity(big.weight):.0%} zeros, small layer {sparsity(small.weight):.0%}")

# %% [markdown]
# ## 3. Structured pruning: removing whole neurons
#
# A matrix with 90% zeros scattered at random is still a dense matrix for BLAS: the same
# multiply-adds run, zeros included. Exploiting unstructured sparsity needs a sparse format
# (CSR: values plus their column indices) and sparse kernels, which only pay off at high
# sparsity, or hardware such as NVIDIA's 2:4 sparse tensor cores. **Structured** pruning removes
# whole rows of `Linear.weight`, that is whole output neurons: the layer becomes a smaller dense
# layer, and every BLAS kernel speeds up.
#
# `structured_mask(weight, amount, n=2, dim=0)` returns a boolean mask of the weight's shape that
# is `False` on the `prune_count(amount, weight.shape[dim])` slices along `dim` with the smallest
# L-n norm (`np.linalg.norm` of each slice, over every other axis: for `dim=0`, the norm of each
# row), ties to the lower index, `True` elsewhere. `ln_structured(layer, amount, n, dim)` (given)
# stores and applies it like `l1_unstructured`, and when `dim=0` also zeroes the bias of the
# pruned neurons (and keeps that mask in `layer.bias_mask`), so that a removed neuron outputs
# exactly 0.
#
# Zeroed rows still cost time: `drop_neurons(first, second, keep)` builds the smaller model.
# Neuron `j` of `first` (a `Linear(a, h)`) is row `j` of `first.weight` and entry `j` of its
# bias; its output feeds **column** `j` of `second.weight` (a `Linear(h, b)`). Given `keep`, a
# boolean array of length `h` (or the indices of the neurons to keep, in order), return two new
# `Linear` layers, `Linear(a, h')` and `Linear(h', b)` with `h'` the number kept, whose weights
# and biases are copies of the kept rows, bias entries and columns. Between them sits an
# element-wise activation with `act(0) = 0` (ReLU): the kept neurons compute exactly what they
# did, and a pruned neuron (row and bias zero) contributed exactly nothing, so the smaller pair
# computes the same function as the masked one.

# %% tags=["export"]
def structured_mask(weight, amount, n=2, dim=0):
    """Boolean mask of weight's shape, False on the prune_count(amount, weight.shape[dim]) slices
    along `dim` with the smallest L-n norm. PyTorch: prune.ln_structured's mask."""
    ### BEGIN SOLUTION
    w = _array(weight)
    dim = dim % w.ndim
    others = tuple(i for i in range(w.ndim) if i != dim)
    norms = np.linalg.norm(np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1), ord=n, axis=1)
    keep = np.ones(w.shape[dim], dtype=bool)
    keep[np.argsort(norms, kind="stable")[:prune_count(amount, w.shape[dim])]] = False
    return np.broadcast_to(np.expand_dims(keep, others), w.shape).copy()
    ### END SOLUTION


def ln_structured(layer, amount, n=2, dim=0):
    """Prune `amount` of the rows (dim=0, output neurons; their bias too) or columns (dim=1) of
    layer.weight with the smallest L-n norm; store layer.weight_mask; return the layer."""
    mask = structured_mask(layer.weight.data, amount, n, dim)
    previous = getattr(layer, "weight_mask", None)
    layer.weight_mask = mask if previous is None else mask & previous
    layer.weight.data *= layer.weight_mask
    if dim % 2 == 0 and layer.bias is not None:
        layer.bias_mask = layer.weight_mask.any(axis=1)  # a removed neuron outputs exactly 0
        layer.bias.data *= layer.bias_mask
    return layer


def drop_neurons(first, second, keep):
    """Two new Linears without the hidden neurons that `keep` (bool mask or indices) leaves out:
    the kept rows and bias entries of `first`, the kept columns of `second`."""
    ### BEGIN SOLUTION
    keep = np.asarray(keep)
    index = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
    slim_first = Linear(first.in_features, len(index), bias=first.bias is not None)
    slim_second = Linear(len(index), second.out_features, bias=second.bias is not None)
    slim_first.weight.data[...] = first.weight.data[index]
    if first.bias is not None:
        slim_first.bias.data[...] = first.bias.data[index]
    slim_second.weight.data[...] = second.weight.data[:, index]
    if second.bias is not None:
        slim_second.bias.data[...] = second.bias.data
    return slim_first, slim_second
    ### END SOLUTION

# %% [markdown]
# ### Check: prune neurons, then drop them

# %%
from tinytorch.core.activations import ReLU

w = np.array([[3.0, 4.0], [0.1, 0.1], [1.0, 0.0], [0.0, -2.0]], dtype=np.float32)   # row norms 5, 0.14, 1, 2
assert structured_mask(w, 0.5)[:, 0].tolist() == [True, False, False, True]
assert structured_mask(w, 1, dim=1).tolist() == [[False, True]] * 4, "column norms 3.2 and 4.5"
first, second = Linear(6, 8, rng=3), Linear(8, 3, rng=4)
ln_structured(first, 0.5)
kept = first.weight_mask.any(axis=1)
assert kept.sum() == 4 and np.all(first.bias.data[~kept] == 0)
slim_first, slim_second = drop_neurons(first, second, kept)
xs = Tensor(np.random.default_rng(5).standard_normal((7, 6)).astype(np.float32))
masked_out = second(ReLU()(first(xs))).data
slim_out = slim_second(ReLU()(slim_first(xs))).data
assert slim_first.weight.shape == (4, 6) and slim_second.weight.shape == (3, 4)
assert np.allclose(masked_out, slim_out, atol=1e-6), "dropping zeroed neurons changes nothing"
print("structured pruning ok: 8 -> 4 hidden neurons, same outputs")

# %% [markdown]
# ## 4. Low-rank factorization
#
# A weight matrix `W` of shape `(m, n)` costs `m n` parameters. Its singular value decomposition
# `W = U diag(S) V^T` (`np.linalg.svd(W, full_matrices=False)`, singular values in decreasing
# order) writes it as a sum of `min(m, n)` rank-one pieces of decreasing importance. Keeping the
# first `r` gives the best rank-`r` approximation in the Frobenius norm (Eckart-Young), with error
# `sqrt(S[r]^2 + S[r+1]^2 + ...)`, and it factors into two thin matrices:
#
# $$W \approx \underbrace{U_r \sqrt{S_r}}_{(m, r)} \; \underbrace{\sqrt{S_r} V_r^\top}_{(r, n)}$$
#
# so `Linear(n, m)` becomes `Linear(n, r, bias=False)` followed by `Linear(r, m)` with the
# original bias: `r (m + n)` parameters instead of `m n`, fewer whenever `r < m n / (m + n)`.
# Splitting `sqrt(S)` evenly between the two factors keeps their scales balanced (better for
# fine-tuning and for quantizing them afterwards).
#
# `low_rank(linear, rank)` returns that `Sequential(Linear(n, r, bias=False), Linear(r, m))`
# (float32 weights; the second keeps a copy of the bias, or none). Raise `ValueError` unless
# `1 <= rank <= min(m, n)`.

# %% tags=["export"]
def low_rank(linear, rank):
    """Sequential(Linear(in, rank, bias=False), Linear(rank, out)) whose product is the best
    rank-`rank` approximation of linear.weight (truncated SVD, sqrt(S) in each factor)."""
    ### BEGIN SOLUTION
    out_features, in_features = linear.weight.shape
    if not 1 <= rank <= min(out_features, in_features):
        raise ValueError(f"rank must be in [1, {min(out_features, in_features)}] for a "
                         f"Linear({in_features}, {out_features}), got {rank}")
    u, s, vt = np.linalg.svd(linear.weight.data.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    down = Linear(in_features, rank, bias=False)
    up = Linear(rank, out_features, bias=linear.bias is not None)
    down.weight.data[...] = root[:, None] * vt[:rank]
    up.weight.data[...] = u[:, :rank] * root
    if linear.bias is not None:
        up.bias.data[...] = linear.bias.data
    return Sequential(down, up)
    ### END SOLUTION

# %% [markdown]
# ### Check: the error is the discarded singular values

# %%
dense = Linear(40, 30, rng=6)
s = np.linalg.svd(dense.weight.data.astype(np.float64), compute_uv=False)
for r in (1, 10, 30):
    thin = low_rank(dense, r)
    product = thin[1].weight.data @ thin[0].weight.data
    error = np.linalg.norm(product - dense.weight.data)
    assert abs(error - np.sqrt((s[r:] ** 2).sum())) < 1e-4, (r, error)
    assert thin[0].bias is None and np.array_equal(thin[1].bias.data, dense.bias.data)
print(f"rank 10 keeps {10 * 70} of {40 * 30} weights, error {np.sqrt((s[10:] ** 2).sum()):.3f} "
      f"of ||W|| = {np.linalg.norm(s):.3f}")

# %% [markdown]
# ## 5. Knowledge distillation
#
# A large **teacher** network's outputs carry more than its predicted class: on an image of a 3
# it may give the 8 a probability of 0.01 and the 1 a probability of 0.00001, which tells a
# student what resembles what ("dark knowledge", Hinton, Vinyals and Dean, 2015). Distillation
# trains a small **student** to match the teacher's probabilities **softened** by a
# temperature `T > 1`, which magnifies those small probabilities:
#
# $$p^{(T)} = \mathrm{softmax}(z / T), \qquad
#   \mathcal{L}_{KD} = \frac{T^2}{N} \sum_{n=1}^{N} \sum_c p^{(T)}_{t}[n, c]
#   \left(\log p^{(T)}_{t}[n, c] - \log p^{(T)}_{s}[n, c]\right)$$
#
# the Kullback-Leibler divergence `KL(teacher || student)` of the softened distributions,
# averaged over the batch (`reduction="batchmean"`) and multiplied by `T^2`: in PyTorch,
# `F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean") * T * T`.
# Compute the log-probabilities stably: `log_softmax(a) = a - max - log(sum(exp(a - max)))`.
# Terms where the teacher's probability is 0 contribute 0 (PyTorch's convention `0 log 0 = 0`).
#
# **Its gradient.** With respect to the student's logits, the softmax and the log cancel into a
# simple form (differentiate `log_softmax` and use that each row of `p_t` sums to 1):
#
# $$\frac{\partial \mathcal{L}_{KD}}{\partial z_s[n, c]} = \frac{T}{N}\left(p^{(T)}_{s}[n, c] - p^{(T)}_{t}[n, c]\right)$$
#
# The `T^2` factor is there to cancel the `1 / T^2` this gradient would otherwise have (one `1/T`
# from the softmax, one from the smaller differences of softened probabilities), so the same
# learning rate works at any temperature. With respect to the teacher's logits (rarely needed:
# the teacher is frozen) it is `(T / N) p_t (d - KL_n)`, with `d = log p_t - log p_s` and `KL_n`
# the row's sum of `p_t d`.
#
# **Your tasks.** `DistillationKL` is a module 06 `Function`: `forward(self, student, teacher,
# temperature)` gets the two `(N, C)` logit arrays and returns the loss as a 0-d array (saving
# what backward needs); `backward(self, grad)` returns the pair of gradients (`None` where
# `self.needs_input_grad` says none is needed), each multiplied by the upstream `grad`.
# `distillation_loss(student_logits, teacher_logits, targets, temperature=4.0, alpha=0.5)`
# returns the Tensor `alpha * L_KD + (1 - alpha) * CrossEntropyLoss()(student_logits, targets)`:
# the soft targets of the teacher and the hard labels (module 04's loss, differentiable since
# module 06). The teacher's logits may be an array (convert it to a Tensor of the student
# logits' dtype) or a Tensor that does not require a gradient (the teacher is frozen).

# %% tags=["export"]
def _log_softmax(a):
    shifted = a - a.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class DistillationKL(Function):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch.
    PyTorch: F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction='batchmean') * T**2."""

    __slots__ = ()

    def forward(self, student, teacher, temperature=4.0):
        ### BEGIN SOLUTION
        if student.ndim != 2 or student.shape != teacher.shape:
            raise ValueError(f"DistillationKL needs logits of the same shape (N, C), got {student.shape} and {teacher.shape}")
        t = float(temperature)
        log_ps, log_pt = _log_softmax(student / t), _log_softmax(teacher / t)
        p_t = np.exp(log_pt)
        rows = (p_t * (log_pt - log_ps)).sum(axis=1)      # KL of each row; p_t = 0 terms are 0
        self.save_for_backward(np.exp(log_ps), p_t, log_pt - log_ps, rows, t)
        return np.asarray(t * t * rows.mean(), dtype=student.dtype)
        ### END SOLUTION

    def backward(self, grad):
        ### BEGIN SOLUTION
        p_s, p_t, difference, rows, t = self.saved
        need_student, need_teacher = self.needs_input_grad
        scale = grad * t / p_s.shape[0]
        grad_student = scale * (p_s - p_t) if need_student else None
        grad_teacher = scale * p_t * (difference - rows[:, None]) if need_teacher else None
        return grad_student, grad_teacher
        ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, targets, temperature=4.0, alpha=0.5):
    """alpha * T^2 KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, targets):
    a differentiable 0-d Tensor (Hinton et al. 2015)."""
    ### BEGIN SOLUTION
    teacher = teacher_logits
    if not isinstance(teacher, Tensor):   # an array: a constant, in the student's precision
        teacher = Tensor(teacher, dtype=student_logits.dtype)
    soft = DistillationKL.apply(student_logits, teacher, temperature=temperature)
    hard = CrossEntropyLoss()(student_logits, targets)
    return soft * alpha + hard * (1.0 - alpha)
    ### END SOLUTION

# %% [markdown]
# ### Check: the loss against its definition, the gradient against central differences

# %%
from tinytorch.core.autograd import gradcheck

gen = np.random.default_rng(8)
zs, zt = gen.standard_normal((5, 4)), gen.standard_normal((5, 4)) * 3
loss = DistillationKL.apply(Tensor(zs), Tensor(zt), temperature=2.0).data
ps, pt = np.exp(zs / 2) / np.exp(zs / 2).sum(1, keepdims=True), np.exp(zt / 2) / np.exp(zt / 2).sum(1, keepdims=True)
assert np.isclose(loss, 4 * (pt * np.log(pt / ps)).sum() / 5, rtol=1e-5)
assert DistillationKL.apply(Tensor(zt), Tensor(zt)).data < 1e-6, "a student equal to its teacher: zero loss"
assert gradcheck(lambda s, t: DistillationKL.apply(s, t, temperature=3.0), zs, zt)
labels = gen.integers(0, 4, size=5)
student = Tensor(zs.astype(np.float32), requires_grad=True)
total = distillation_loss(student, Tensor(zt), labels, temperature=2.0, alpha=0.7)
total.backward()
assert student.grad.shape == (5, 4) and total.shape == ()
print(f"distillation loss {float(total.data):.4f}; gradient checked against central differences")

# %% [markdown]
# ## 6. Systems analysis: an accuracy-versus-size curve
#
# Run the cell below. It trains a teacher MLP (64-256-128-10) on the digits, then measures for
# each compression method the test accuracy and the bytes the result really needs:
#
# 1. **global magnitude pruning** at increasing sparsity, without and with a short masked
#    fine-tuning, and the bytes of the pruned weights stored dense or in CSR (float32 values,
#    int32 column indices, one int32 row pointer per row, plus the biases);
# 2. **structured pruning** of the hidden neurons (`ln_structured` on the two hidden layers,
#    then `drop_neurons`), with fine-tuning, and the latency of the smaller dense model against
#    the masked one of the original shape;
# 3. **low-rank factorization** of the two large layers at several ranks;
# 4. **distillation**: a small student (64-32-10) trained on labels alone against the same
#    student trained with `distillation_loss` at temperatures 1 and 4, same epochs, same seeds;
# 5. the whole curve, sorted by size, including module 15's int8 quantization.
#
# Use one BLAS thread for stable timings (`OPENBLAS_NUM_THREADS=1`).

# %% tags=["analysis"]
import copy
import os

from tinytorch.core.autograd import no_grad
from tinytorch.core.optimizers import Adam
from tinytorch.datasets import load_digits, train_test_split
from tinytorch.perf.profiling import measure_latency
from tinytorch.perf.quantization import model_nbytes, quantize_model

print(f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS') or os.environ.get('OMP_NUM_THREADS') or 'default'}")
images, labels = load_digits()
x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, seed=0)


def train(model, epochs, loss_of=None, lr=1e-3, seed=0):
    """Adam on mini-batches of 32; loss_of(model, x, y, rows) defaults to cross-entropy;
    masks (if any) are re-applied after every step."""
    optimizer, shuffle = Adam(model.parameters(), lr=lr), np.random.default_rng(seed)
    loss_fn = CrossEntropyLoss()
    for _ in range(epochs):
        order = shuffle.permutation(len(x_train))
        for start in range(0, len(x_train), 32):
            rows = order[start:start + 32]
            xb = Tensor(x_train[rows])
            loss = loss_fn(model(xb), y_train[rows]) if loss_of is None else loss_of(model, xb, y_train[rows], rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            apply_masks(model)
    return model


def accuracy(model):
    with no_grad():
        return float((model(Tensor(x_test)).data.argmax(axis=1) == y_test).mean())


def csr_nbytes(model):
    """Bytes of the Linear weights in CSR (float32 values, int32 column indices, int32 row
    pointers) plus the float32 biases."""
    total = 0
    for layer in linear_layers(model):
        w = layer.weight.data
        total += np.count_nonzero(w) * (4 + 4) + (w.shape[0] + 1) * 4
        total += 0 if layer.bias is None else layer.bias.data.nbytes
    return total


def mlp(sizes, seed=0):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [Linear(a, b, rng=seed + i), ReLU()]
    return Sequential(*layers[:-1])


def latency_ms(model, batch):
    with no_grad():   # inference: no graph recorded
        return measure_latency(lambda: model(batch), warmup=3, repeats=30)["median"] * 1e3


teacher = train(mlp([64, 256, 128, 10]), epochs=20)
base_acc, base_bytes = accuracy(teacher), model_nbytes(teacher)
batch = Tensor(x_test)
base_ms = latency_ms(teacher, batch)
curve = [("float32 teacher", base_bytes, base_acc)]
print(f"teacher: {base_bytes:,} bytes, accuracy {100 * base_acc:.2f}%, {base_ms:.3f} ms for the {len(x_test)} test digits")
print(f"teacher trained 2 more epochs (the fine-tuning below): {100 * accuracy(train(copy.deepcopy(teacher), 2, seed=1)):.2f}%")

print("\n1. Global magnitude pruning of all three weight matrices, then 2 epochs of masked fine-tuning")
print(f"   {'asked':>6} {'measured':>9} {'per layer':>17} {'acc':>8} {'acc +2 ep':>10} {'dense bytes':>12} "
      f"{'CSR bytes':>10} {'dense ms':>9}")
for amount in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
    pruned = copy.deepcopy(teacher)
    global_unstructured(linear_layers(pruned), amount)
    per_layer = "/".join(f"{100 * sparsity(layer.weight):.0f}" for layer in linear_layers(pruned))
    before = accuracy(pruned)
    train(pruned, epochs=2, seed=1)
    after = accuracy(pruned)
    print(f"   {amount:>6.0%} {sparsity(pruned):>9.2%} {per_layer + ' %':>17} {100 * before:>7.2f}% {100 * after:>9.2f}% "
          f"{model_nbytes(pruned):>12,} {csr_nbytes(pruned):>10,} {latency_ms(pruned, batch):>9.3f}")
    curve.append((f"global pruning {amount:.0%} (CSR)", csr_nbytes(pruned), after))

print("\n2. Structured pruning of hidden neurons (L2 norm of each row), 2 epochs of fine-tuning, then drop_neurons")
print(f"   {'pruned':>6} {'hidden':>9} {'acc':>8} {'acc +2 ep':>10} {'bytes':>8} {'masked ms':>10} {'slim ms':>8}")
for amount in (0.5, 0.75, 0.9):
    pruned = copy.deepcopy(teacher)
    ln_structured(pruned[0], amount)
    ln_structured(pruned[2], amount)
    before = accuracy(pruned)
    train(pruned, epochs=2, seed=1)
    after = accuracy(pruned)
    keep0, keep2 = pruned[0].weight_mask.any(axis=1), pruned[2].weight_mask.any(axis=1)
    a0, b0 = drop_neurons(pruned[0], pruned[2], keep0)
    a1, b1 = drop_neurons(b0, pruned[4], keep2)   # b0 (layer 2 without the dropped inputs) loses its rows next
    slim = Sequential(a0, ReLU(), a1, ReLU(), b1)
    assert np.allclose(slim(batch).data, pruned(batch).data, atol=1e-4), "drop_neurons must not change the function"
    print(f"   {amount:>6.0%} {f'{a0.out_features}/{a1.out_features}':>9} {100 * before:>7.2f}% {100 * after:>9.2f}% "
          f"{model_nbytes(slim):>8,} {latency_ms(pruned, batch):>10.3f} {latency_ms(slim, batch):>8.3f}")
    curve.append((f"structured {amount:.0%} neurons", model_nbytes(slim), accuracy(slim)))

print("\n3. Low-rank factorization of the 256x64 and 128x256 layers, then 2 epochs of fine-tuning")
print(f"   {'rank':>5} {'params':>8} {'acc':>8} {'acc +2 ep':>10} {'relative error W1, W2':>24} {'ms':>7}")
for rank in (4, 8, 16, 32):
    factored = copy.deepcopy(teacher)
    errors = []
    for index in (0, 2):
        dense = factored.layers[index]
        thin = low_rank(dense, rank)
        product = thin[1].weight.data @ thin[0].weight.data
        errors.append(np.linalg.norm(product - dense.weight.data) / np.linalg.norm(dense.weight.data))
        factored.layers[index] = thin
        setattr(factored, str(index), thin)
    before = accuracy(factored)
    train(factored, epochs=2, seed=1)
    after = accuracy(factored)
    params = sum(p.size for p in factored.parameters())
    print(f"   {rank:>5} {params:>8,} {100 * before:>7.2f}% {100 * after:>9.2f}% {errors[0]:>11.3f}, {errors[1]:.3f}"
          f"{latency_ms(factored, batch):>12.3f}")
    curve.append((f"low rank {rank}", model_nbytes(factored), after))

print("\n4. A 64-32-10 student: labels only against distillation (alpha 0.5), mean of 3 seeds")
with no_grad():
    teacher_logits = teacher(Tensor(x_train)).data


def distilled(temperature):
    def loss_of(model, xb, yb, rows):
        return distillation_loss(model(xb), Tensor(teacher_logits[rows]), yb, temperature=temperature, alpha=0.5)
    return loss_of


student_bytes = model_nbytes(mlp([64, 32, 10]))
print(f"   student: {student_bytes:,} bytes, {base_bytes / student_bytes:.1f}x smaller than the teacher")
print(f"   {'training':<22} {'15 epochs':>10} {'40 epochs':>10}")
for name, loss_of in (("labels only", None), ("distilled, T = 1", distilled(1.0)), ("distilled, T = 4", distilled(4.0))):
    means = []
    for epochs in (15, 40):
        runs = [accuracy(train(mlp([64, 32, 10], seed=10 * s), epochs=epochs, loss_of=loss_of, seed=s)) for s in range(3)]
        means.append(float(np.mean(runs)))
    print(f"   {name:<22} {100 * means[0]:>9.2f}% {100 * means[1]:>9.2f}%")
    curve.append((f"student, {name}, 40 ep", student_bytes, means[1]))
int8 = quantize_model(teacher, [x_train[:500]])
curve.append(("int8 teacher (module 15)", model_nbytes(int8), accuracy(int8)))

print("\n5. Accuracy versus size, smallest first")
for name, size, acc in sorted(curve, key=lambda row: row[1]):
    print(f"   {name:<32} {size:>9,} bytes {base_bytes / size:>6.1f}x smaller {100 * acc:>7.2f}% "
          f"({100 * (acc - base_acc):+.2f} pp)")

# %% [markdown]
# ## 7. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 6 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (zeros that do not save anything).**
# Section 6 pruned the teacher globally to increasing sparsity and stored the result dense and
# in CSR. At what sparsity did accuracy start to fall, with and without fine-tuning, and how did
# the global threshold distribute the zeros? From which sparsity does CSR take fewer bytes than
# dense, and why not at 50%? Would the 90%-sparse model run faster with NumPy's dense matmul?
# What do sparse kernels and NVIDIA's 2:4 structured sparsity change?

# %% [markdown] tags=["answer"] question="q1"
# Without fine-tuning, accuracy already slipped at 50% global sparsity (95.8% against 96.7%) and
# collapsed from 80% on (84%, then 54% at 90%): the removed weights were small but not useless,
# and their absence shifts every activation downstream. Two epochs of masked fine-tuning
# (`apply_masks` after every step) recovered everything up to 80% (96.9%) and most of 90%
# (93.6%); at 95% and 98% too little is left (76%, 28%). The global threshold did not prune the
# layers equally: at 90% overall the 128x256 hidden layer lost 95% of its weights and the first
# and last layers about 80%, because the largest layer has the smallest weights (its
# initialisation bound is 1/sqrt(256)) and the most redundancy. CSR stores 8 bytes per kept
# weight (float32 value and int32 column index) plus a row pointer per row, so it only beats the
# 4 bytes per weight of dense storage above 50% sparsity: at 50% it was slightly larger (204,892
# against 203,304 bytes), at 70% 1.6x smaller, at 90% 4.7x. NumPy's dense matmul does every
# multiply-add, zeros included: the pruned models took as long as the dense teacher (the measured
# differences are machine noise). Sparse CPU kernels need roughly 90% sparsity or more to beat
# dense BLAS because of their irregular memory access; NVIDIA's 2:4 structured sparsity (two
# zeros in every group of four, 2-bit indices) is regular enough for tensor cores to skip the
# zeros, for up to 2x on the matrix product at exactly 50% sparsity.

# %% [markdown]
# **Question 2 (structure versus freedom).**
# Compare structured pruning (whole neurons, then `drop_neurons`) with unstructured pruning and
# low-rank factorization at similar sizes in section 6's curve. Which kept more accuracy for its
# bytes, which made the model measurably faster, and why? Explain with your implementation why
# dropping a pruned neuron also removes a column of the next layer, and what breaks in a network
# with residual connections or attention heads.

# %% [markdown] tags=["answer"] question="q2"
# Per byte, structure won on this model: 50% of the hidden neurons removed with `ln_structured`
# and `drop_neurons` gave a 3x smaller dense model that reached 97.3% after fine-tuning (the
# teacher fine-tuned the same two epochs scored 96.2%), 75% removed gave 7.7x smaller at 94%,
# and rank-8 factors 7x smaller at 95.8%, while unstructured pruning needed 43.5 KB of CSR (4.7x)
# for 93.6%. Only the slim and the factored models ran faster: they are smaller dense matrices,
# so every BLAS call does proportionally less work (the slim 50% model ran in a fraction of the
# time of the masked model of the original shape, about the ratio of their multiply-adds),
# whereas masked zeros cost as much as any other number. Unstructured pruning is the most flexible (it can keep the
# one important weight of a row) and keeps more accuracy at equal nonzero count, but it needs a
# sparse format and sparse kernels to save anything. In `drop_neurons`, hidden neuron `j` is row
# `j` of `first.weight` and bias entry `j`, and its activation is input `j` of the next layer, so
# column `j` of `second.weight` multiplies it: removing the neuron removes that column, and the
# function is unchanged only because a pruned neuron outputs ReLU(0) = 0. In a network with
# residual connections the hidden size of the residual stream is shared by every block's input
# and output projection and by the embedding, so a channel can only be removed everywhere at
# once (dependency groups, as in torch-pruning); attention heads are pruned as a unit (the rows
# of Q, K and V of the head and the matching columns of the output projection), and layer norms
# see a different dimension.

# %% [markdown]
# **Question 3 (distillation and the 1B-parameter model).**
# Section 6 trained the same small student on labels alone and with the teacher's softened
# outputs. What did distillation change, and what information does the teacher give at
# temperature 4 that a one-hot label does not? Explain the `T^2` factor with your gradient.
# For compressing a 1B-parameter language model for a phone, how would you combine the methods
# of this module and module 15, and what does each cost (teacher inference for every training
# example, fine-tuning data, hardware support)?

# %% [markdown] tags=["answer"] question="q3"
# Distillation did not help this student much: after 40 epochs, T = 1 gave 96.2% against 95.9%
# for labels alone (within the spread of the three seeds), and T = 4 gave 95.0%, slower still
# at 15 epochs (88.7% against 92.8%). The teacher's softened outputs say which wrong classes an
# image resembles (a 3 is closer to an 8 or a 5 than to a 1), information that a one-hot label
# lacks and that Hinton et al. found most useful when the teacher knows much more than the
# labels; here the teacher (96.7%) is barely better than the student, its logits are very
# confident (a margin of several units between its top two classes), and at T = 4 the student
# spends its 32 neurons matching the relative sizes of tiny probabilities instead of the decision
# boundary, so it converges more slowly. The measurement, not the textbook, decides. The `T^2`:
# my `DistillationKL.backward` returns `(T / N)(p_s - p_t)`; without the factor it would be
# `(1 / (T N))(p_s - p_t)`, shrinking as `1 / T^2` relative to the cross-entropy term, and every
# change of temperature would need a new learning rate and alpha. For a 1B-parameter language
# model on a phone I would prune structurally (attention heads, MLP neurons, whole layers, as
# Minitron and Llama 3.2 1B were obtained from larger models), then recover accuracy by
# distillation from the original model on a few billion tokens, then quantize the weights to
# int8 or int4 with per-group scales (module 15): 2 GB in float16, about 1 GB after 50%
# structured pruning, about 0.3 GB in int4. The costs: a teacher forward pass for every training
# token (or stored top-k logits), a fine-tuning dataset and GPU time, and evaluation of every
# step; unstructured sparsity only if the phone's accelerator has sparse kernels.
