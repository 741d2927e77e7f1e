# %% [markdown]
# # Module 07: Optimizers
#
# Backpropagation tells you, for every weight, which way is downhill: the gradient. It does not
# tell you *how far to go*, nor what to do when the valley is a thousand times steeper in one
# direction than in another, nor how to average the noise of mini-batches away. That is the
# optimizer's job, and the choice of optimizer decides whether a network trains in an hour, in a
# week, or not at all. This week you write the three optimizers that train almost every model in
# use today, with exactly PyTorch's update rules:
#
# | you build | what it adds | PyTorch equivalent |
# |---|---|---|
# | `Optimizer` | the contract: `params`, `zero_grad()`, `step()`, `state_dict()`, `load_state_dict()` | `torch.optim.Optimizer` |
# | `SGD(params, lr, momentum, dampening, weight_decay, nesterov)` | a step against the gradient, plus a velocity | `torch.optim.SGD` |
# | `Adam(params, lr, betas, eps, weight_decay)` | a per-weight step size from running averages of the gradient and its square | `torch.optim.Adam` |
# | `AdamW(params, lr, betas, eps, weight_decay=0.01)` | weight decay done right (decoupled) | `torch.optim.AdamW` |
#
# **The systems lesson is memory.** An optimizer keeps *state* for every weight: SGD with
# momentum one extra number per weight, Adam two. For a 7B-parameter model in float32 that is
# 28 GB of weights, 28 GB of gradients and **56 GB of Adam state**: the optimizer, not the model,
# is the biggest thing in GPU memory during training. You will measure it, and see why the
# largest runs shard it across GPUs (ZeRO) or store it in 8 bits.
#
# **No autograd needed.** Module 06 fills every parameter's `.grad` during `backward()`. Here we
# do not depend on it: the checks and the tests set `p.grad` by hand, and in the analysis we
# compute gradients of a quadratic with a formula. The contract between the two modules:
#
# > `p.grad` is `None` (no gradient this step) or a NumPy array of `p`'s shape. A `Tensor`
# > holding such an array is accepted too (its `.data` is used).
#
# **Prerequisites:** Module 01 (`Tensor`) and Module 03 (`Parameter`: a Tensor with
# `requires_grad=True` and a `.grad` attribute; `Module.parameters()`).
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 07_optimizers` in a terminal to see your points.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core.tensor import Tensor


def _grad_array(param):
    """The gradient of `param` as a NumPy array of its shape, or None when it has none.

    The contract with autograd (module 06): `param.grad` is None or a NumPy array of the
    parameter's shape; a Tensor holding such an array is accepted too. (Do not test with
    `hasattr(grad, "data")`: a NumPy array has a `.data` attribute as well, a raw buffer.)
    Raises ValueError when the shapes differ, rather than letting NumPy broadcast a wrong
    gradient silently into the weights.
    """
    grad = param.grad
    if grad is None:
        return None
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if grad.shape != param.shape:
        raise ValueError(f"the gradient of a parameter of shape {param.shape} has shape {grad.shape}")
    return grad

# %% [markdown]
# ## 1. The Optimizer contract
#
# Every PyTorch training loop has the same three optimizer lines:
#
# ```python
# optimizer = SGD(model.parameters(), lr=0.1)     # once: which weights, which hyperparameters
# for x, y in loader:
#     optimizer.zero_grad()                        # forget last step's gradients
#     loss_fn(model(x), y).backward()              # fill every p.grad (module 06)
#     optimizer.step()                             # move every weight, using p.grad
# ```
#
# The base class `Optimizer` holds what all optimizers share:
#
# - `self.params`: the list of parameters to update. `params` may be any *iterable* of Tensors:
#   a list, or a generator such as PyTorch's `model.parameters()`, which can be read only once,
#   so turn it into a list straight away. A single Tensor is a classic mistake
#   (`SGD(layer.weight, ...)`) and raises `TypeError` (iterating a Tensor would walk its rows);
#   an empty list raises `ValueError`; anything that is not a Tensor raises `TypeError`. A
#   parameter listed twice would be updated twice per step: keep it once (by identity).
# - `self.state`: a dict, parameter index -> dict of that parameter's state (its momentum
#   buffer, Adam's moments). It starts empty and is filled *lazily* by `step()`, the first time a
#   parameter has a gradient. PyTorch keys it by the parameter object and turns it into indices
#   in `state_dict()`; we key it by the position in `self.params` from the start.
# - `zero_grad(set_to_none=True)`: set every parameter's `.grad` to **None**, PyTorch's default.
#   Not to zeros: `None` costs no memory and no pass over the weights, and it means "no
#   gradient", so `step()` **skips** that parameter entirely. A zero gradient is different: with
#   momentum or weight decay, a step with `g = 0` still moves the weight. PyTorch keeps the old
#   behaviour behind `set_to_none=False`: each existing gradient array is filled with zeros *in
#   place* (`grad.fill(0)` on the array `_grad_array(p)` returns), and a None stays None.
# - `step()`: each optimizer defines it.
# - `state_dict()` / `load_state_dict()`: checkpoints, in the same class; you write them in
#   section 4 (come back to this cell then, and re-run it and the cells after it).
#
# The helper `_grad_array(p)` above is given: it returns `p.grad` as a NumPy array (unwrapping
# a Tensor) or None, and raises `ValueError` if its shape is not the parameter's. Use it in every
# `step()`.
#
# PyTorch also supports *parameter groups* (a list of dicts, each with its own `lr`, e.g. no
# weight decay on biases); ours have one group, so hyperparameters are plain attributes
# (`optimizer.lr`), which module 08's learning-rate schedules will change between steps.

# %% tags=["export"]
class Optimizer:
    """Base class of all optimizers: `torch.optim.Optimizer`.

    Optimizer(params): params is an iterable of Tensors (Parameters), e.g. model.parameters().
    Subclasses set their hyperparameters as attributes, list their names in
    `hyperparameters`, and implement `step()`.

    The gradient contract: before step(), each p.grad is None (skip p) or a NumPy array of
    p's shape (a Tensor holding one is accepted). Autograd (module 06) fills it; tests set it.
    """

    hyperparameters = ()   # names of the attributes saved by state_dict(), e.g. ("lr", "momentum")

    def __init__(self, params):
        """Store `self.params`, a list of the distinct Tensors of `params` in order (a Tensor
        listed twice is kept once, compared by identity).

        Raises TypeError when `params` is a single Tensor or holds something that is not a
        Tensor, and ValueError when it is empty.
        """
        self.state = {}    # parameter index -> {name: value}, filled lazily by step()
        ### BEGIN SOLUTION
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors, such as model.parameters() or [w, b]; "
                            "got a single Tensor (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.params, seen = [], set()
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"an optimizer can only optimize Tensors, got a {type(param).__name__}")
            if id(param) not in seen:
                seen.add(id(param))
                self.params.append(param)
        ### END SOLUTION

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set every parameter's .grad to None (the default, as in
        PyTorch), or, with set_to_none=False, fill each existing gradient array with zeros
        in place (a parameter whose .grad is None keeps None)."""
        ### BEGIN SOLUTION
        for param in self.params:
            if set_to_none:
                param.grad = None
            else:
                grad = _grad_array(param)
                if grad is not None:
                    grad.fill(0)            # the same array, zeroed: what PyTorch's grad.zero_() does
        ### END SOLUTION

    def step(self):
        """Update every parameter that has a gradient; each optimizer defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def state_nbytes(self):
        """The bytes held by the optimizer's state: the sum of nbytes of its state arrays."""
        return sum(value.nbytes for entry in self.state.values() for value in entry.values()
                   if isinstance(value, np.ndarray))

    def __repr__(self):
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"

    # --- checkpoints: implement these two in section 4 ------------------------------------
    def state_dict(self):
        """The optimizer's state as PyTorch lays it out, with *copies* of every array:

            {"state": {index: {name: array copy or number}},      # only parameters with state
             "param_groups": [{hyperparameter: value, ..., "params": [0, 1, ..., n - 1]}]}

        The hyperparameters are those named in `self.hyperparameters`.
        """
        ### BEGIN SOLUTION
        state = {index: {name: value.copy() if isinstance(value, np.ndarray) else value
                         for name, value in entry.items()}
                 for index, entry in self.state.items()}
        group = {name: getattr(self, name) for name in self.hyperparameters}
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}
        ### END SOLUTION

    def load_state_dict(self, state_dict):
        """Restore the hyperparameters and the per-parameter state saved by state_dict().

        Checks before changing anything: ValueError when the number of parameters differs from
        this optimizer's, when a state index is out of range, or when a state array's shape
        differs from its parameter's. Arrays are copied (in the parameter's dtype), so the
        loaded optimizer never shares memory with `state_dict`.
        """
        ### BEGIN SOLUTION
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"the state_dict holds {sum(len(g['params']) for g in groups)} parameters "
                             f"in {len(groups)} groups; this optimizer has {len(self.params)} in one group")
        state = {}
        for index, entry in state_dict["state"].items():
            index = int(index)
            if not 0 <= index < len(self.params):
                raise ValueError(f"state for parameter {index}, but there are only {len(self.params)}")
            param, loaded = self.params[index], {}
            for name, value in entry.items():
                if isinstance(value, (np.ndarray, Tensor)):
                    value = np.array(value.data if isinstance(value, Tensor) else value, dtype=param.dtype)
                    if value.shape != param.shape:
                        raise ValueError(f"state {name!r} of parameter {index} has shape {value.shape}, "
                                         f"the parameter has shape {param.shape}")
                loaded[name] = value
            state[index] = loaded
        for name in self.hyperparameters:
            setattr(self, name, groups[0][name])
        self.state = state
        ### END SOLUTION

# %% [markdown]
# ### Check: the contract

# %%
from tinytorch.core.layers import Linear, Parameter, Sequential

w, b = Parameter(np.ones((2, 3))), Parameter(np.zeros(3))
opt = Optimizer(p for p in [w, b, w])                     # a generator, with w twice
assert opt.params == [w, b] and opt.state == {}, "a generator is read once; a repeated parameter kept once"
w.grad, b.grad = np.ones((2, 3)), np.ones(3)
w_grad = w.grad
opt.zero_grad(set_to_none=False)
assert w.grad is w_grad and not w_grad.any() and not b.grad.any(), "set_to_none=False zeroes in place"
opt.zero_grad()
assert w.grad is None and b.grad is None, "zero_grad() sets gradients to None"
for bad, error in [(w, TypeError), ([], ValueError), ([np.ones(3)], TypeError)]:
    try:
        Optimizer(bad)
        raise AssertionError(f"Optimizer({bad!r}) should raise {error.__name__}")
    except error as err:
        print(f"{error.__name__} ok: {err}")
print("Optimizer contract ok")

# %% [markdown]
# ## 2. SGD: stochastic gradient descent, with momentum
#
# The simplest rule walks against the gradient `g` with a step size, the **learning rate**
# `lr` (written `γ` below): `p ← p − γ g`. It works, but it is slow on *ill-conditioned*
# problems, valleys that are steep across and shallow along: a learning rate small enough not
# to bounce between the steep walls crawls along the shallow floor.
#
# **Momentum** keeps a running sum of past gradients, a *velocity* `b` (the "momentum buffer"):
# components that keep their sign (along the valley) add up, components that flip sign (across
# it) cancel. With momentum `μ = 0.9` a constant gradient is amplified about 10x.
#
# **Weight decay** `λ` adds `λ p` to the gradient: the gradient of the L2 penalty `λ/2 ‖p‖²`,
# which pulls weights toward zero.
#
# **Nesterov momentum** looks ahead: it uses the gradient where momentum is about to carry the
# weights. PyTorch implements it, without a second gradient evaluation, as `g + μ b`.
#
# PyTorch's documented algorithm (`torch.optim.SGD`), for each parameter `p` with gradient `g`
# at step `t = 1, 2, ...`, which you must reproduce exactly:
#
# ```text
# if λ ≠ 0:   g ← g + λ p
# if μ ≠ 0:
#     if t = 1 (no buffer yet):  b ← g            (a copy; no dampening on the first step)
#     else:                      b ← μ b + (1 − τ) g      τ = dampening
#     if nesterov:  g ← g + μ b
#     else:         g ← b
# p ← p − γ g
# ```
#
# Three details matter for getting exactly PyTorch's numbers: the buffer starts as a *copy* of
# the first gradient (not `(1 − τ) g`), weight decay is added *before* momentum, and Nesterov
# uses the buffer *after* this step's update.
#
# **In place, always.** The update writes into the existing array: `p.data -= ...`, never
# `p.data = p.data - ...`. Rebinding `p.data` would leave the model, a tied weight, or a view of
# the weights (`Tensor` shares arrays) pointing at the old array, and would allocate a
# parameter-sized array per step that the garbage collector must free (for a 1 GB model, 1 GB
# of allocator churn per step). The momentum buffer is likewise created once and updated in
# place (`buf *= μ`, `buf += ...`). It must be a *copy*: a buffer that aliases `p.grad` would be
# corrupted by the next backward pass. And never modify `p.grad` itself: weight decay makes a
# new array `g + λ p`.
#
# **State is float32 like the weights.** Tests hand you gradients in float64 sometimes: create
# the buffer in the parameter's dtype (`np.array(g, dtype=p.dtype)` copies and converts), so its
# memory is exactly one copy of the parameters.
#
# **Your tasks:**
#
# - `SGD.__init__`: validate, with a `ValueError` naming the value: `lr < 0`, `momentum < 0`,
#   `weight_decay < 0`, and `nesterov=True` without a positive momentum or with a non-zero
#   dampening (PyTorch's message: "Nesterov momentum requires a momentum and zero dampening").
#   Then store `self.lr`, `self.momentum`, `self.dampening`, `self.weight_decay` (floats) and
#   `self.nesterov` (a bool). `super().__init__(params)` is already called for you.
# - `SGD.step`: the algorithm above, for each parameter whose gradient (from `_grad_array(p)`)
#   is not None, keeping the buffer in `self.state[i]["momentum_buffer"]` (`i` = the
#   parameter's index in `self.params`; no state at all when `momentum == 0`).

# %% tags=["export"]
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum: `torch.optim.SGD`.

    SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False), same names,
    order and meaning as PyTorch (which defaults lr to 1e-3; here it must be given).
    State per parameter (momentum != 0): {"momentum_buffer": array of the parameter's shape}.
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        ### BEGIN SOLUTION
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={momentum}, dampening={dampening})")
        self.lr, self.momentum, self.dampening = float(lr), float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        ### END SOLUTION

    def step(self):
        """One SGD step (PyTorch's algorithm) on every parameter whose .grad is not None."""
        ### BEGIN SOLUTION
        for index, param in enumerate(self.params):
            grad = _grad_array(param)
            if grad is None:
                continue
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * param.data      # a new array: p.grad is untouched
            if self.momentum != 0:
                state = self.state.setdefault(index, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)   # a copy
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * grad
                grad = grad + self.momentum * buf if self.nesterov else buf
            param.data -= self.lr * grad                          # in place: same array, same dtype
        ### END SOLUTION

# %% [markdown]
# ### Check: SGD against the rule, by hand
#
# One weight `p = 1`, gradients 1, 2, 3, momentum 0.5, lr 0.1. Buffers: 1, then
# 0.5 * 1 + 2 = 2.5, then 0.5 * 2.5 + 3 = 4.25; weights 0.9, 0.65, 0.225.

# %%
p = Parameter(np.array([1.0]))
opt = SGD([p], lr=0.1, momentum=0.5)
for g, expected in [(1.0, 0.9), (2.0, 0.65), (3.0, 0.225)]:
    p.grad = np.array([g])
    opt.step()
    assert np.isclose(p.data[0], expected), f"after gradient {g}: expected {expected}, got {p.data[0]}"
assert np.isclose(opt.state[0]["momentum_buffer"][0], 4.25)

p = Parameter(np.array([1.0, -2.0]))
data_before = p.data
grad = np.array([0.5, 0.5])
p.grad = grad
SGD([p], lr=0.1, weight_decay=0.1, momentum=0.9, nesterov=True).step()   # first step: b = g + λp
g_wd = np.array([0.5, 0.5]) + 0.1 * np.array([1.0, -2.0])
assert np.allclose(p.data, np.array([1.0, -2.0]) - 0.1 * (g_wd + 0.9 * g_wd))
assert p.data is data_before and p.data.dtype == np.float32, "update p.data in place"
assert np.array_equal(grad, [0.5, 0.5]), "never modify p.grad"

q = Parameter(np.ones(2))
SGD([p, q], lr=0.1).step()                                # q.grad is None: skipped
assert np.array_equal(q.data, np.ones(2))
for kwargs in [dict(lr=-0.1), dict(lr=0.1, momentum=-1), dict(lr=0.1, weight_decay=-1),
               dict(lr=0.1, nesterov=True), dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)]:
    try:
        SGD([p], **kwargs)
        raise AssertionError(f"SGD({kwargs}) should raise ValueError")
    except ValueError as err:
        print("ValueError ok:", err)
print("SGD ok")

# %% [markdown]
# ## 3. Adam: a step size per weight
#
# SGD uses one learning rate for millions of weights whose gradients differ by orders of
# magnitude (an embedding row seen once per batch, a LayerNorm gain seen by every token).
# **Adam** (Kingma and Ba, 2015) keeps two running averages per weight, with decay rates
# `β₁` and `β₂` (`betas`):
#
# - `m`, the first moment: an average of the gradient (momentum);
# - `v`, the second moment: an average of the *squared* gradient (how large it usually is);
#
# and steps by `m / √v`: about `lr` per step in every coordinate, whatever the gradient's scale.
#
# **Bias correction.** `m` and `v` start at zero, so early averages are biased toward zero:
# after one step `m = (1 − β₁) g`, ten times too small with `β₁ = 0.9`, and `v = (1 − β₂) g²`,
# a thousand times too small with `β₂ = 0.999`. Dividing by `1 − βᵗ` removes the bias exactly
# for a constant gradient: at `t = 1`, `m̂ = g` and `v̂ = g²`, so the first step is
# `lr · g / (|g| + ε)`, about `lr` in the direction of `−sign(g)`.
#
# PyTorch's documented algorithm (`torch.optim.Adam`, `amsgrad=False`), per parameter, with a
# step count `t` of its own (it advances only on steps where the parameter has a gradient):
#
# ```text
# if λ ≠ 0:  g ← g + λ p                 (L2 penalty added to the gradient, "weight_decay")
# t ← t + 1
# m ← β₁ m + (1 − β₁) g
# v ← β₂ v + (1 − β₂) g²
# m̂ ← m / (1 − β₁ᵗ)
# v̂ ← v / (1 − β₂ᵗ)
# p ← p − γ m̂ / (√v̂ + ε)
# ```
#
# Mind where `ε` goes: added to `√v̂`, *after* the bias correction (the Adam paper's
# "efficient" variant adds it to `√v` before; the results differ when `ε` is not negligible, and
# the tests check PyTorch's form). `t` is a Python int; `m` and `v` are arrays of the parameter's
# shape and dtype, created (zeros) the first time the parameter has a gradient, and updated in
# place.
#
# **AdamW** (Loshchilov and Hutter, 2019) differs only in the weight decay. In Adam, `λ p` is
# added to the gradient and then divided by `√v̂` like the rest: weights whose gradients are
# large are hardly decayed at all, so "weight decay" does not mean what it means for SGD.
# AdamW *decouples* it: before the Adam update, and independently of it, every weight shrinks
# by the same factor, `p ← p (1 − γ λ)`, and the gradient is used unchanged. This is
# `torch.optim.AdamW`, whose default `weight_decay` is `1e-2` (Adam's is 0), and the optimizer of
# virtually every large language model.
#
# We write both in `Adam.step`: the class attribute `decoupled_weight_decay` (False for Adam,
# True for AdamW, which is given below) says which weight decay to apply.
#
# **Your tasks:**
#
# - `Adam.__init__`: `ValueError` for `lr < 0`, `eps < 0`, `weight_decay < 0`, and either beta
#   outside `[0, 1)`. Store `self.lr`, `self.betas` (a tuple of two floats), `self.eps`,
#   `self.weight_decay`.
# - `Adam.step`: the algorithm above, state in `self.state[i]` with the keys `"step"`,
#   `"exp_avg"` (`m`) and `"exp_avg_sq"` (`v`), PyTorch's names; with
#   `decoupled_weight_decay`, shrink `p.data` in place instead of adding `λ p` to the gradient.

# %% tags=["export"]
class Adam(Optimizer):
    """Adam: `torch.optim.Adam` (amsgrad=False), weight_decay as an L2 term in the gradient.

    Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0).
    State per parameter: {"step": int, "exp_avg": m, "exp_avg_sq": v}, arrays of its shape.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    decoupled_weight_decay = False    # AdamW: True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        ### BEGIN SOLUTION
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        beta1, beta2 = betas
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1} (must be in [0, 1))")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {beta2} (must be in [0, 1))")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        self.lr, self.betas, self.eps = float(lr), (float(beta1), float(beta2)), float(eps)
        self.weight_decay = float(weight_decay)
        ### END SOLUTION

    def step(self):
        """One Adam (or AdamW) step, PyTorch's algorithm, on every parameter with a gradient."""
        ### BEGIN SOLUTION
        beta1, beta2 = self.betas
        for index, param in enumerate(self.params):
            grad = _grad_array(param)
            if grad is None:
                continue
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    param.data *= 1 - self.lr * self.weight_decay
                else:
                    grad = grad + self.weight_decay * param.data
            state = self.state.get(index)
            if state is None:
                state = self.state[index] = {"step": 0, "exp_avg": np.zeros_like(param.data),
                                             "exp_avg_sq": np.zeros_like(param.data)}
            state["step"] += 1
            t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            bias_correction1 = 1 - beta1 ** t
            bias_correction2 = 1 - beta2 ** t
            # math.sqrt: a Python float keeps the arithmetic in float32 (NumPy's np.sqrt of a
            # number is a float64 scalar, which would promote every parameter-sized array).
            denom = np.sqrt(v) / math.sqrt(bias_correction2) + self.eps
            param.data -= (self.lr / bias_correction1) * m / denom
        ### END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay: `torch.optim.AdamW`.

    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2). Before each Adam
    update of a parameter with a gradient: p <- p * (1 - lr * weight_decay).
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

# %% [markdown]
# ### Check: Adam's first steps by hand, and a real (tiny) training run
#
# At step 1 the bias correction makes the update `lr * g / (|g| + eps)`: `lr` against the sign
# of the gradient, whatever its scale. Then we train a `Linear` layer from module 03 on a
# regression problem, with the gradient of the mean squared error written out by hand
# (`dL/dW = 2/N (ŷ − y)ᵀ x`): what module 06 will compute for us.

# %%
p = Parameter(np.array([1.0, 1.0, 1.0]))
opt = Adam([p], lr=0.1)
p.grad = np.array([1e-4, 1.0, -1e4])
opt.step()
assert np.allclose(p.data, [0.9, 0.9, 1.1], atol=1e-4), f"step 1 moves every weight by lr: {p.data}"
assert opt.state[0]["step"] == 1 and opt.state[0]["exp_avg"].dtype == np.float32
assert opt.state_nbytes() == 2 * p.data.nbytes, "Adam keeps two arrays per parameter"

p = Parameter(np.array([2.0]))
p.grad = np.array([0.0])                                    # L2 vs decoupled, zero loss gradient
Adam([p], lr=0.1, weight_decay=0.5).step()                 # g = 0.5 * 2 = 1: a full lr step
assert np.isclose(p.data[0], 1.9, atol=1e-6), p.data
p = Parameter(np.array([2.0]))
p.grad = np.array([0.0])
AdamW([p], lr=0.1, weight_decay=0.5).step()                # p * (1 - 0.05), then m = 0: no step
assert np.isclose(p.data[0], 1.9), p.data
for kwargs in [dict(lr=-1), dict(eps=-1e-8), dict(betas=(1.0, 0.999)), dict(betas=(0.9, -0.1)),
               dict(weight_decay=-0.1)]:
    try:
        Adam([p], **kwargs)
        raise AssertionError(f"Adam({kwargs}) should raise ValueError")
    except ValueError as err:
        print("ValueError ok:", err)

rng = np.random.default_rng(0)
x = rng.standard_normal((256, 8)).astype(np.float32)
y = x @ rng.standard_normal((8, 2)).astype(np.float32) + 0.5
for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.05)):
    layer = Linear(8, 2, rng=1)
    opt = make(layer.parameters())
    for _ in range(200):
        err = layer(Tensor(x)).data - y
        opt.zero_grad()
        layer.weight.grad = 2 * err.T @ x / err.size
        layer.bias.grad = 2 * err.sum(axis=0) / err.size
        opt.step()
    loss = float(((layer(Tensor(x)).data - y) ** 2).mean())
    print(f"{type(opt).__name__:>4}: mean squared error after 200 steps {loss:.2e}")
    assert loss < 1e-3, "the optimizer should fit a linear regression"
print("Adam and AdamW ok")

# %% [markdown]
# ## 4. Checkpoints: the optimizer has state too
#
# A long training run is checkpointed every few hours and will be restarted after a crash or a
# pre-emption. Saving the model's `state_dict()` is not enough: Adam's `m`, `v` and step counts
# are part of the training state. Restart with fresh moments and `t = 0` and the bias
# correction starts over, the first steps are full `lr`-sized steps in every coordinate, and the
# loss spikes. A correct checkpoint makes the resumed run **identical** to the uninterrupted one.
#
# PyTorch's layout, which we copy (parameters are referred to by their index, so a checkpoint
# can be loaded into a new process whose parameter objects are different):
#
# ```python
# {"state": {0: {"momentum_buffer": array}, 1: {...}},       # only parameters that have state
#  "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}]}
# ```
#
# **Your tasks:** `Optimizer.state_dict()` returns that dict with *copies* of the state arrays
# (training continues to update the live buffers in place; a checkpoint must not change), and
# `Optimizer.load_state_dict(sd)` validates everything first (number of parameters, indices,
# shapes), then restores the hyperparameters named by `self.hyperparameters` and a copy of the
# state. Both live in the base class, in the `Optimizer` cell of section 1 (go back, implement
# them, re-run that cell and the cells after it), and so work for every optimizer.

# %%
def run(opt, params, grads):
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = grad
        opt.step()
    return [param.data.copy() for param in params]


rng = np.random.default_rng(1)
init = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
grads = [[rng.standard_normal((3, 2)), rng.standard_normal(2)] for _ in range(10)]
for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.01), lambda ps: AdamW(ps, lr=0.01)):
    params = [Parameter(a.copy()) for a in init]
    opt = make(params)
    run(opt, params, grads[:5])
    saved_values, saved = [p.data.copy() for p in params], opt.state_dict()
    uninterrupted = run(opt, params, grads[5:])             # keeps updating its buffers in place
    params2 = [Parameter(v) for v in saved_values]           # "a new process"
    opt2 = make(params2)
    opt2.lr = 123.0                                          # restored by load_state_dict
    opt2.load_state_dict(saved)
    resumed = run(opt2, params2, grads[5:])
    assert all(np.array_equal(a, b) for a, b in zip(uninterrupted, resumed)), f"{type(opt).__name__} resume differs"
try:
    SGD([Parameter(np.ones(3))], lr=0.1).load_state_dict(saved)
    raise AssertionError("loading a 2-parameter state into a 1-parameter optimizer should fail")
except ValueError as err:
    print("ValueError ok:", err)
print("state_dict round trip ok: resumed training == uninterrupted training")

# %% [markdown]
# ## 5. Systems analysis: memory and convergence
#
# Run the cell below. It measures, with your optimizers:
#
# 1. **State memory.** One step of each optimizer on a 1.3M-parameter MLP: the bytes of state
#    per parameter (`state_nbytes()`), the temporary memory a step allocates (NumPy's
#    intermediate arrays, traced by `tracemalloc`) and the time per step. Then, from the
#    measured bytes, what training a 1B, 7B and 70B model needs, and what 8-bit optimizer state
#    and ZeRO sharding over 8 GPUs change. (Already at 1B parameters, Adam's training state is
#    16 GB: a 16 GB GPU is full before the first activation is stored.)
# 2. **Convergence on an ill-conditioned quadratic** `f(x) = ½ xᵀHx`, whose gradient `Hx` we
#    write by hand. `H` has eigenvalues from 1 to κ (the condition number: 100 or 10,000),
#    either along the axes (a diagonal `H`) or in a randomly rotated basis. Each optimizer gets
#    its best learning rate from a grid, and we count the steps it needs to reduce `f` a
#    millionfold, next to what theory predicts for gradient descent and for momentum.
# 3. **Weight decay in Adam vs AdamW**: how much two weights whose gradients differ 1000x in
#    scale (pure noise, no signal) shrink in 1000 steps.

# %% tags=["analysis"]
import time
import tracemalloc

# 1. Optimizer state memory, measured on a real model.
model = Sequential(Linear(1024, 1024, rng=0), Linear(1024, 256, rng=1))
rng = np.random.default_rng(0)
grads = [rng.standard_normal(p.shape).astype(np.float32) for p in model.parameters()]
n_params = sum(p.size for p in model.parameters())
weight_bytes = sum(p.data.nbytes for p in model.parameters())
makers = {"SGD": lambda ps: SGD(ps, lr=1e-3), "SGD momentum": lambda ps: SGD(ps, lr=1e-3, momentum=0.9),
          "Adam": lambda ps: Adam(ps, lr=1e-3), "AdamW": lambda ps: AdamW(ps, lr=1e-3)}
print(f"1. one step on {n_params:,} parameters ({weight_bytes / 2**20:.1f} MiB of float32 weights)")
print(f"{'optimizer':<14}{'state B/param':>14}{'state MiB':>10}{'step temp MiB':>14}{'ms/step':>9}")
state_per_param = {}
for name, make in makers.items():
    opt = make(model.parameters())
    for p, g in zip(model.parameters(), grads):
        p.grad = g
    opt.step()                                               # creates the state (lazily)
    tracemalloc.start()
    opt.step()
    temp_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    state_per_param[name] = opt.state_nbytes() / n_params
    print(f"{name:<14}{state_per_param[name]:>14.1f}{opt.state_nbytes() / 2**20:>10.1f}"
          f"{temp_peak / 2**20:>14.1f}{sorted(times)[2] * 1e3:>9.2f}")

bpp = weight_bytes / n_params
print(f"\n   training memory (weights + gradients + optimizer state, before activations), from {bpp:.0f} B/param:")
print(f"   {'model':>6}{'SGD':>9}{'SGD mom.':>10}{'Adam':>9}{'Adam 8-bit':>12}{'Adam ZeRO-1 x8':>16}{'Adam ZeRO-3 x8':>16}   (GB per GPU)")
for billions in (1, 7, 70):
    n = billions * 1e9
    sgd, mom, adam = (n * (2 * bpp + state_per_param[k]) / 1e9 for k in ("SGD", "SGD momentum", "Adam"))
    adam8 = n * (2 * bpp + 2) / 1e9                          # two 1-byte moments (bitsandbytes)
    zero1 = n * (2 * bpp + state_per_param["Adam"] / 8) / 1e9  # state sharded over 8 GPUs
    zero3 = adam / 8                                         # weights, grads and state sharded
    print(f"   {billions:>5}B{sgd:>9.0f}{mom:>10.0f}{adam:>9.0f}{adam8:>12.0f}{zero1:>16.0f}{zero3:>16.0f}")

# 2. Convergence on f(x) = 1/2 x^T H x with the gradient H x written by hand.
dim, max_steps = 20, 2000
rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))
start = np.random.default_rng(1).standard_normal(dim)


def hessian(kappa, rotated):
    eigen = np.diag(np.logspace(0, np.log10(kappa), dim))   # eigenvalues 1 ... kappa
    return rotation @ eigen @ rotation.T if rotated else eigen


problems = {"diagonal, k=1e2": hessian(1e2, False), "diagonal, k=1e4": hessian(1e4, False),
            "rotated, k=1e4": hessian(1e4, True)}
opts = {"SGD": lambda ps, lr: SGD(ps, lr=lr), "SGD momentum 0.9": lambda ps, lr: SGD(ps, lr=lr, momentum=0.9),
        "SGD Nesterov 0.9": lambda ps, lr: SGD(ps, lr=lr, momentum=0.9, nesterov=True),
        "Adam": lambda ps, lr: Adam(ps, lr=lr)}
learning_rates = np.logspace(-5, 0, 11)


def steps_to_converge(make, h, lr):
    """Steps until f(x) < 1e-6 f(x0), or None; x is a Parameter, the gradient Hx is explicit."""
    x = Parameter(start)
    opt = make([x], lr)
    f0 = 0.5 * x.data @ h @ x.data
    with np.errstate(all="ignore"):
        for step in range(1, max_steps + 1):
            x.grad = h @ x.data
            opt.step()
            f = 0.5 * x.data @ h @ x.data
            if not np.isfinite(f) or f > 1e6 * f0:
                return None
            if f < 1e-6 * f0:
                return step
    return None


start_time = time.perf_counter()
print(f"\n2. steps to reduce f a millionfold (best lr of {len(learning_rates)} in [1e-5, 1]; k = condition number)")
print(f"   {'optimizer':<18}" + "".join(f"{name:>24}" for name in problems))
for name, make in opts.items():
    row = []
    for h in problems.values():
        done = sorted((s, lr) for s, lr in ((steps_to_converge(make, h, lr), lr) for lr in learning_rates) if s)
        row.append(f"{done[0][0]} steps (lr {done[0][1]:.0e})" if done else f"> {max_steps}")
    print(f"   {name:<18}" + "".join(f"{cell:>24}" for cell in row))
for kappa in (1e2, 1e4):
    gd, heavy_ball = (kappa - 1) / (kappa + 1), (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    print(f"   theory, k={kappa:.0e}: error x{gd:.4f} per step for gradient descent ({np.log(1e-3) / np.log(gd):.0f} steps), "
          f"x{heavy_ball:.3f} with ideal momentum ({np.log(1e-3) / np.log(heavy_ball):.0f} steps)")
print(f"   ({time.perf_counter() - start_time:.1f} s)")

# 3. Weight decay: L2-in-the-gradient (Adam) vs decoupled (AdamW), gradients that are pure noise.
scales = np.array([0.001, 1.0], dtype=np.float32)
noise = np.random.default_rng(1).standard_normal((1000, 2)).astype(np.float32) * scales
print("\n3. weight left after 1000 steps of noise-only gradients, lr 1e-3, weight_decay 0.1 (start 1.0)")
for make in (lambda ps: Adam(ps, lr=1e-3, weight_decay=0.1), lambda ps: AdamW(ps, lr=1e-3, weight_decay=0.1)):
    p = Parameter(np.ones(2))
    opt = make([p])
    for g in noise:
        p.grad = g.copy()
        opt.step()
    print(f"   {type(opt).__name__:<6} gradient scale 0.001: {p.data[0]:.3f}    gradient scale 1: {p.data[1]:.3f}")

# %% [markdown]
# ## 6. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers that section 5 printed. These answers are graded by a TA (10 points each) with the
# course rubric: understanding, references to your implementation, and systems implications.
#
# **Question 1 (optimizer state at scale).**
# Section 5 measured the bytes of optimizer state per parameter for SGD, SGD with momentum,
# Adam and AdamW. Explain the numbers from your `step()` code. How much memory does training a
# 7B-parameter model with Adam need in float32 before any activation, and what fits on one
# 80 GB GPU? What do 8-bit optimizers and ZeRO sharding change, and what do they cost? Why does
# a step also allocate temporary memory, and what do fused optimizers do about it?

# %% [markdown] tags=["answer"] question="q1"
# SGD without momentum keeps no state (0 bytes per parameter): `step()` only reads `p.grad`.
# With momentum, `self.state[i]["momentum_buffer"]` is one float32 array of the parameter's
# shape, 4 bytes per parameter (1x the weights); Adam and AdamW keep `exp_avg` and `exp_avg_sq`,
# 8 bytes per parameter (2x the weights), plus an int step count. The buffers are created in the
# parameter's dtype with `np.zeros_like(p.data)`, so float64 gradients do not double them.
#
# A 7B model in float32: weights 28 GB + gradients 28 GB + Adam state 56 GB = 112 GB (16 bytes
# per parameter, the measured table), before activations: it does not fit on one 80 GB GPU;
# Adam quadruples the memory of the weights alone and the optimizer is the largest item. SGD
# with momentum would need 84 GB, plain SGD 56 GB. 8-bit optimizers (bitsandbytes) quantise `m`
# and `v` block-wise to one byte each: 2 bytes of state per parameter instead of 8 (70 GB in the
# table for 7B), at the cost of a quantise/dequantise per step and some care (block-wise scales,
# keeping embeddings in 32 bits) to match accuracy. ZeRO (DeepSpeed, PyTorch FSDP) shards the
# state (stage 1), gradients (2) and weights (3) across N data-parallel GPUs, so each holds 1/N:
# with 8 GPUs ZeRO-1 brings 7B Adam to 63 GB and ZeRO-3 to 14 GB per GPU, paid for with
# communication (reduce-scatter of gradients, all-gather of weights every step). Mixed precision
# and CPU/NVMe offload are the other levers. The temporaries: each NumPy expression
# (`(1 - beta1) * grad`, `np.sqrt(v)`, `m / denom`) allocates a parameter-sized array, so an Adam
# step briefly needs about 4x the weights' bytes on top of the state (measured: ~20 MiB for 5 MiB
# of weights; SGD ~1x for `lr * grad`) and makes many passes over memory. PyTorch's `foreach` and `fused=True` Adam do the whole update in one kernel that reads
# p, g, m, v once and writes them in place, which is both faster (memory bandwidth bound) and
# allocation-free.

# %% [markdown]
# **Question 2 (convergence and conditioning).**
# Using the convergence table of section 5, compare SGD, momentum, Nesterov and Adam on the
# ill-conditioned quadratic. Why does momentum help, and by how much in theory? Why does Adam
# do very well when `H` is diagonal but lose much of its advantage when `H` is rotated? What did
# part 3 show about weight decay in Adam versus AdamW, and why?

# %% [markdown] tags=["answer"] question="q2"
# Plain SGD must keep `lr < 2 / λ_max` not to bounce off the steep walls, so along the shallow
# direction (λ = 1) the error shrinks only by about `(κ - 1)/(κ + 1)` per step: theory says ~345
# steps for κ = 100 and the table measured 381; for κ = 1e4 it would need ~35,000 and did not
# finish in 2000. Momentum accumulates the consistent gradient along the valley floor in its
# buffer while the components that flip sign across it cancel; with ideal lr and μ the rate
# becomes `(√κ - 1)/(√κ + 1)`, a square-root dependence on κ (34 instead of 345 steps for
# κ = 100; 345 instead of 34,539 for κ = 1e4). The measured momentum and Nesterov runs are 3-5x
# faster than SGD at κ = 100 and the only SGD variants to finish at κ = 1e4; they do not reach
# the ideal rate because μ = 0.9 is fixed (the optimum for κ = 100 is about 0.67) and the lr grid
# is coarse. Nesterov's look-ahead `g + μ b` damps the oscillation more (81 steps against 122).
# Adam divides each coordinate by √v̂, the running RMS of that coordinate's own gradient. When
# `H` is diagonal the coordinates *are* the eigen-directions, so Adam is invariant to their
# scales: it needed ~120 steps at κ = 100 and at κ = 1e4 alike, where SGD failed. When `H` is
# rotated every coordinate mixes steep and shallow directions, a per-coordinate scale cannot undo
# the rotation, and Adam needed 786 steps, no better than momentum. Real networks sit in between:
# layers and embedding rows have very different gradient scales (which Adam fixes), but the
# curvature is not axis-aligned. Part 3: with Adam's L2 term, `λ p` is added to the gradient and
# then divided by √v̂. For the weight whose gradient noise has scale 1, √v̂ ≈ 1 and the decay is
# almost nothing; for scale 0.001 the decay term dominates the normalised step, and the weight is
# pulled toward zero fast (0.26 left), so the strength of "weight decay" depends on the gradient
# scale. AdamW shrinks every weight by the same `1 - lr·λ` per step (0.9999^1000 ≈ 0.905; the
# table shows 0.92 and 0.91, plus the noise steps), which is what weight decay means; that is why
# AdamW regularises predictably and is the default for transformers.

# %% [markdown]
# **Question 3 (correctness of state: checkpoints, in-place updates, None gradients).**
# Your `state_dict()` copies the state and `load_state_dict()` validates before writing. What
# goes wrong when a run is resumed from a checkpoint that saved the model but not the optimizer
# (think of Adam's bias correction), or from a `state_dict()` that returned references to the
# live buffers? Why must `step()` update `p.data` and the buffers in place, and why does
# `zero_grad()` set gradients to `None` rather than to zeros?

# %% [markdown] tags=["answer"] question="q3"
# Resuming Adam without its state restarts `m = v = 0` and `t = 0`: the bias correction makes
# the first steps `lr·sign(g)`-sized in every coordinate, as large as at the start of
# training, and `v̂` is estimated from one noisy gradient, so the loss spikes and can diverge
# (warm-up schedules exist for exactly this). Momentum SGD loses its velocity. The section 4
# check shows that with the state restored the resumed run is bit-identical to the uninterrupted
# one. If `state_dict()` returned the live arrays, `step()` keeps updating them in place (`m *=
# beta1`), so the "checkpoint" silently changes after it is taken and a resume uses buffers from
# the future; hence the copies (PyTorch leaves the copy to `torch.save` serialising right away).
# Validating shapes and counts before writing means a checkpoint of another model fails with a
# clear error instead of leaving a half-loaded optimizer. In-place updates (`p.data -= ...`,
# `buf *= μ`) keep the array that the model, tied weights and views refer to, so everyone sees
# the new values, and allocate no new parameter-sized arrays per step (for a 1B model, 4 GB per
# rebinding); the optimizer's memory is then exactly what section 5 measured. `zero_grad()` to
# `None` frees the gradient memory between steps and costs no memset over every parameter, and
# it lets `step()` tell "no gradient" from "zero gradient": a frozen or unused parameter (a
# branch not taken, an embedding row not seen) is skipped entirely, while a zero gradient would
# still apply momentum and weight decay, and in Adam advance its step count. It also turns a
# forgotten backward into a visible no-op rather than a silent accumulation of old gradients.
