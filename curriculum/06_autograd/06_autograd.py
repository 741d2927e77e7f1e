# %% [markdown]
# # Module 06: Autograd
#
# Training a network means asking, for every one of its parameters, "if I nudge you, how does
# the loss change?" That number is the **gradient**, and a model has millions of them to
# compute at every step. Writing each derivative by hand is hopeless; **automatic
# differentiation** computes all of them, exactly, for the cost of about one more forward pass.
# This week you build it: the engine behind `loss.backward()`.
#
# **What you build**
#
# - `Function`: one differentiable operation, with its `forward` and its `backward` side by
#   side, and a context that saves only what `backward` needs.
# - The primitives, one `Function` each: `Add`, `Sub`, `Mul`, `Div`, `Neg`, `MatMul`,
#   `Reshape`, `Transpose`, `GetItem`, `Sum`, `Mean`, `Max`, the activations of module 02
#   (`ReLUFn`, `SigmoidFn`, `TanhFn`, `GELUFn`, `SoftmaxFn`) and the losses of module 04
#   (`LogSoftmaxFn`, `MSELossFn`, `CrossEntropyLossFn`, `BCELossFn`).
# - The engine: `topological_order` and `backward(gradient=None)`, which walks the graph from
#   the loss to the parameters and fills every `.grad`.
# - `no_grad()`, `zero_grad()`, and one **dispatch table** that installs all of it into
#   `Tensor`, the activations and the losses, so that the code of modules 01-05 (your `Linear`
#   included) becomes differentiable without changing a line of it.
#
# **Why it matters for systems:** the backward pass needs values from the forward pass (the
# input of every matmul, the output of every sigmoid). They stay in memory from the moment
# they are computed until backward has used them: that **activation memory**, not the
# parameters, is what runs out first when models grow. You will measure it.
#
# | you build | PyTorch equivalent |
# |---|---|
# | `Function` with `forward`/`backward`, `save_for_backward`, `needs_input_grad` | `torch.autograd.Function`, `ctx.save_for_backward`, `ctx.needs_input_grad` |
# | `tensor.grad_fn`, `grad_fn.inputs` | `tensor.grad_fn`, `grad_fn.next_functions` |
# | `tensor.backward(gradient=None)` | `torch.Tensor.backward` |
# | `no_grad()`, `is_grad_enabled()` | `torch.no_grad()`, `torch.is_grad_enabled()` |
# | `unbroadcast(grad, shape)` | `Tensor.sum_to_size` |
# | `DISPATCH`, `enable_autograd()` | PyTorch's dispatcher (the `Autograd` dispatch key) |
#
# **How to work:** fill in every `raise NotImplementedError(...)` in order, run the check cell
# after each part, then run `pytest --module 06_autograd` in a terminal to see your points.

# %% [markdown]
# ## 1. The idea: a graph of operations, walked backwards
#
# Every operation on tensors that need gradients records *how* its result was made: the
# operation and its inputs. After `loss = CrossEntropyLoss()(x @ W.T + b, y)` the tensors form
# a graph, from the parameters `W` and `b` to the scalar `loss`:
#
# ```
#   W --> Transpose --> MatMul --> Add --> CrossEntropy --> loss
#   x --------------------^         ^
#   b ------------------------------+
# ```
#
# The **chain rule** says how a gradient flows back through one operation `y = f(a, b)`: given
# `dL/dy` (called `grad`, with the shape of `y`), the operation returns `dL/da` and `dL/db`.
# Each operation only needs to know its own local derivative; `backward` starts from
# `dL/dloss = 1` and applies the operations' rules in reverse order. This is **reverse-mode**
# automatic differentiation: one backward pass gives the gradient of one scalar with respect to
# *all* inputs at once, which is exactly the shape of the training problem (one loss, millions
# of parameters). Forward mode would need one pass per parameter.
#
# Two details make it correct on real graphs:
#
# - **Accumulation.** A tensor used twice (`x * x`, or a shared weight, or a residual
#   connection, a "diamond" in the graph) receives one gradient contribution from each use, and
#   its gradient is their **sum**.
# - **Order.** A tensor may only pass its gradient on once *all* its contributions have
#   arrived, so the graph is processed in **topological order**: every tensor before the
#   tensors it was computed from.
#
# ## 2. `Function`: forward and backward side by side
#
# Each primitive is a subclass of `Function` (PyTorch: `torch.autograd.Function`) with two
# methods that sit next to each other, so you can check one against the other:
#
# - `forward(self, *arrays, **params)` computes the result from **NumPy arrays** and calls
#   `self.save_for_backward(...)` with what, and only what, backward will need.
# - `backward(self, grad)` receives `dL/d(result)` and returns a **tuple with one gradient per
#   input**, each of the shape of that input (or `None` for an input that needs none:
#   `self.needs_input_grad[i]` says which, as in PyTorch).
#
# You never call them directly. `Add.apply(a, b)` runs the whole protocol:
#
# 1. make the node, `fn = cls()`;
# 2. call `fn.forward` on the arrays behind the inputs (`x.data` for a Tensor; a plain number
#    or array, a *constant* like the `2` in `x * 2`, is passed as it is);
# 3. wrap the result in a new `Tensor` whose dtype is that of the **first Tensor input**
#    (module 01's rule: `t + 1.5` keeps `t`'s dtype);
# 4. if gradients are enabled (not inside `no_grad()`) and at least one input is a Tensor
#    with `requires_grad`, record the graph: `fn.inputs` (the inputs, as given),
#    `fn.needs_input_grad` (a tuple of booleans, one per input: is it a Tensor that requires a
#    gradient?), and on the result `requires_grad = True` and `grad_fn = fn`.
#
# The node *is* the context: the saved values live on `fn`, and `fn` lives as long as the
# result that points at it through `grad_fn`. When nothing needs a gradient, nothing is
# recorded, `fn` is dropped at once and the saved arrays are freed with it.
#
# **Performance.** `apply` runs for every operation of every training step, so it is the hot
# path of the framework: no copies of the data, one list of arrays, one small tuple. The class
# declares `__slots__`, so a graph node is a small fixed record instead of an object with a
# dictionary (section 10 measures what a node costs).
#
# `no_grad()` switches recording off for a block of code, as `torch.no_grad()` does: used for
# evaluation and for optimizer updates, where building a graph would only waste memory. It
# must restore the *previous* state on exit (no_grad blocks can nest), even when the block
# raises an exception.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core import activations, losses
from tinytorch.core.tensor import Tensor

_grad_enabled = True  # False inside no_grad(): operations record no graph


def is_grad_enabled():
    """Whether operations currently record a graph. PyTorch: torch.is_grad_enabled()."""
    return _grad_enabled


class no_grad:
    """Context manager: inside `with no_grad():` operations record no graph. PyTorch: torch.no_grad()."""

    def __enter__(self):
        """Remember whether recording was on (in self.previous), then switch it off."""
        global _grad_enabled
        ### BEGIN SOLUTION
        self.previous = _grad_enabled
        _grad_enabled = False
        ### END SOLUTION
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        """Restore the state saved by __enter__ (also when the block raised)."""
        global _grad_enabled
        ### BEGIN SOLUTION
        _grad_enabled = self.previous
        ### END SOLUTION
        return False  # never swallow the block's exception


class Function:
    """One differentiable operation: forward and backward side by side. PyTorch: torch.autograd.Function.

    Subclasses define forward(self, *arrays, **params) -> array and backward(self, grad) ->
    tuple (one gradient per input, None where self.needs_input_grad says none is needed).
    Call them through `Subclass.apply(*inputs, **params)`, which returns a Tensor.
    """

    __slots__ = ("inputs", "needs_input_grad", "saved")

    def save_for_backward(self, *values):
        """Keep what backward needs (arrays, shapes, axes): PyTorch's ctx.save_for_backward."""
        self.saved = values

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays, wrap the result in a Tensor (dtype of the first
        Tensor input) and, when gradients are enabled and an input requires one, record the
        node: fn.inputs, fn.needs_input_grad, result.requires_grad and result.grad_fn."""
        ### BEGIN SOLUTION
        fn = cls()
        data = fn.forward(*[x.data if isinstance(x, Tensor) else x for x in inputs], **params)
        first = inputs[0] if isinstance(inputs[0], Tensor) else inputs[1]
        out = Tensor(data, dtype=first.data.dtype)
        if _grad_enabled:
            needs = tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            if True in needs:
                fn.inputs, fn.needs_input_grad = inputs, needs
                out.requires_grad, out.grad_fn = True, fn
        return out
        ### END SOLUTION

# %% [markdown]
# ### A worked example: `Neg`
#
# `y = -a` has the local derivative `-1`, so `dL/da = -grad`. Nothing needs to be saved. Every
# other primitive follows this pattern; note the **tuple** (one gradient per input) and the
# empty `__slots__ = ()`, which keeps the node free of a `__dict__`.

# %% tags=["export"]
class Neg(Function):
    """y = -a."""

    __slots__ = ()

    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)

# %%
# Check apply: a graph is recorded only when an input requires a gradient, and not in no_grad().
_x = Tensor([1.0, -2.0], requires_grad=True)
_y = Neg.apply(_x)
assert isinstance(_y, Tensor) and _y.data.tolist() == [-1.0, 2.0] and _y.dtype == np.float32
assert _y.requires_grad and isinstance(_y.grad_fn, Neg) and _y.grad_fn.inputs[0] is _x
assert _y.grad_fn.needs_input_grad == (True,)
assert Neg.apply(Tensor([1.0])).grad_fn is None, "no input requires grad: nothing to record"
with no_grad():
    assert not is_grad_enabled() and Neg.apply(_x).grad_fn is None
    with no_grad():
        pass
    assert not is_grad_enabled(), "leaving an inner no_grad must not switch recording back on"
assert is_grad_enabled()
print("apply and no_grad ok")

# %% [markdown]
# ## 3. The engine: topological order and `backward`
#
# `backward` must visit every tensor *after* all the tensors computed from it. A depth-first
# search gives that order: a tensor is finished (appended to a list) only after all its inputs
# are finished; reversing that list puts every tensor before its inputs, the root (the loss)
# first. This is micrograd's `build_topo`, with one change: micrograd's version is recursive,
# and Python stops recursing at about 1000 frames, while a real graph (an RNN unrolled over a
# long sequence, a 100-layer network, any training loop that builds on the last step's result)
# easily has tens of thousands of nodes. Use an **explicit stack** instead:
#
# ```
# stack = [(root, False)]
# pop (tensor, expanded):
#     expanded -> all its inputs are finished: append it to the order
#     seen before -> skip it
#     otherwise: mark it seen, push (tensor, True), then push each input that needs a gradient
# ```
#
# Mark a tensor as seen when you **expand** it, not when you push it: in `z = f(x, g(x))`,
# `x` is pushed by `z` and again by `g(x)`, and must finish before `g(x)` does. Follow only
# the inputs whose `needs_input_grad` entry is true: constants and tensors that need no
# gradient are not part of the backward graph.
#
# `backward(self, gradient=None)` then:
#
# 1. checks that `self.requires_grad` (PyTorch raises a `RuntimeError` otherwise);
# 2. takes `gradient`, `dL/dself`: when it is `None`, `self` must hold a single element (a
#    scalar loss) and the gradient is `np.ones_like(self.data)`; for any other shape PyTorch
#    raises `RuntimeError: grad can be implicitly created only for scalar outputs`, and so do
#    you. A given gradient (array or Tensor) must have `self`'s shape;
# 3. keeps a dict `pending` from `id(tensor)` to the sum of the gradients received so far,
#    starting with `{id(self): gradient}`;
# 4. walks the topological order. For each tensor, take its gradient out of `pending` (it is
#    complete now). A **leaf** (no `grad_fn`: a parameter or an input you created) stores it:
#    `tensor.grad` becomes a *copy* of it in the tensor's dtype the first time, and later
#    gradients are **added in place** (gradients accumulate across `backward` calls until
#    `zero_grad()`, as in PyTorch). A non-leaf calls `grad_fn.backward(grad)` and adds each
#    returned gradient whose `needs_input_grad` is true into `pending` for that input.
#
# Why copy the first time? Gradients are shared freely during backward (`Add` hands the *same*
# array to both inputs). A leaf must own its `.grad` before anything adds to it in place, or
# one parameter's update would silently change another's gradient. Inside `pending`, sums make
# new arrays (`a + b`), never `+=`, for the same reason.
#
# Non-leaf tensors keep no `.grad` (PyTorch's default too): their gradients live in `pending`
# only while they are needed, and are freed as the walk moves on.
#
# Check every returned gradient's shape against its input's shape and raise a `RuntimeError`
# naming the Function when they differ: a wrong shape would otherwise broadcast silently into
# a wrong answer (PyTorch's engine checks this too).

# %% tags=["export"]
def topological_order(root):
    """The tensors `root` depends on through inputs that need gradients, each one before all
    of its inputs (root first). Iterative depth-first search: no recursion limit."""
    ### BEGIN SOLUTION
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        fn = tensor.grad_fn
        if fn is not None:
            for x, needed in zip(fn.inputs, fn.needs_input_grad):
                if needed and id(x) not in seen:
                    stack.append((x, False))
    order.reverse()
    return order
    ### END SOLUTION


def backward(self, gradient=None):
    """Compute dself/dleaf for every leaf that self depends on and add it to leaf.grad.
    PyTorch: Tensor.backward(gradient=None). `gradient` may be omitted for a one-element self."""
    ### BEGIN SOLUTION
    if not self.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no grad_fn; "
                           "create the inputs with requires_grad=True")
    if gradient is None:
        if self.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this tensor has "
                               f"shape {self.shape}: call backward(gradient) with a gradient of that shape")
        gradient = np.ones_like(self.data)
    else:
        gradient = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.dtype)
        if gradient.shape != self.shape:
            raise RuntimeError(f"backward(gradient): gradient shape {gradient.shape} differs from the tensor's {self.shape}")
    pending = {id(self): gradient}
    for tensor in topological_order(self):
        grad = pending.pop(id(tensor))
        fn = tensor.grad_fn
        if fn is None:  # a leaf: keep (a private copy of) the gradient
            if tensor.grad is None:
                tensor.grad = np.array(grad, dtype=tensor.data.dtype)
            else:
                tensor.grad += grad
            continue
        for x, needed, g in zip(fn.inputs, fn.needs_input_grad, fn.backward(grad)):
            if needed:
                if g.shape != x.data.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape {g.shape} "
                                       f"for an input of shape {x.data.shape}")
                key = id(x)
                pending[key] = pending[key] + g if key in pending else g
    ### END SOLUTION


def zero_grad(self):
    """Forget the accumulated gradient (PyTorch's zero_grad(set_to_none=True))."""
    self.grad = None


def detach(self):
    """A Tensor sharing this one's data, outside of any graph. PyTorch: Tensor.detach()."""
    return Tensor(self.data, dtype=self.data.dtype)

# %%
# Check the engine on Neg alone (the other primitives come next): a chain, a diamond, a default
# gradient only for one-element tensors, accumulation across calls, and no recursion limit.
_x = Tensor([1.0, 2.0], requires_grad=True)
backward(Neg.apply(Neg.apply(Neg.apply(_x))), np.array([1.0, 10.0]))
assert _x.grad.tolist() == [-1.0, -10.0] and _x.grad.dtype == np.float32
_x.grad = None
_a = Neg.apply(_x)
_order = topological_order(Neg.apply(_a))
assert _order[-1] is _x and _order[-2] is _a, "every tensor comes before its inputs"
_s = Tensor(3.0, requires_grad=True)
backward(Neg.apply(_s))
backward(Neg.apply(_s))
assert _s.grad == -2.0, "a second backward adds to .grad"
try:
    backward(Neg.apply(_x))
    raise AssertionError("backward() without a gradient on a (2,) tensor must raise RuntimeError")
except RuntimeError as err:
    print("non-scalar refused:", err)
_deep = _s
for _ in range(5000):
    _deep = Neg.apply(_deep)
_s.grad = None
backward(_deep)
assert _s.grad == 1.0, "5000 negations: the sign is back to +"
print("engine ok (5000-deep chain without RecursionError)")

# %% [markdown]
# ## 4. Broadcasting, backwards
#
# `x (32, 4) + b (4,)` uses each element of `b` 32 times. By the accumulation rule its gradient
# is the **sum** of the 32 contributions: `grad.sum(axis=0)`. In general, for an input of
# `shape` that was broadcast to `grad.shape`:
#
# 1. sum over the leading axes that broadcasting added (`grad.ndim - len(shape)` of them);
# 2. sum, with `keepdims=True`, over every axis where `shape` has a 1 and `grad` does not.
#
# The result has exactly `shape`. When the shapes already agree (the common case), return
# `grad` unchanged and allocate nothing. The forward broadcast was free (no copy); its
# gradient costs a reduction. PyTorch calls this `sum_to_size`.

# %% tags=["export"]
def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting (the gradient of a broadcast)."""
    ### BEGIN SOLUTION
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
    ### END SOLUTION

# %%
_g = np.arange(24.0).reshape(2, 3, 4)
assert unbroadcast(_g, (2, 3, 4)) is _g, "same shape: no work, no copy"
assert np.array_equal(unbroadcast(_g, (4,)), _g.sum(axis=(0, 1)))
assert np.array_equal(unbroadcast(_g, (3, 1)), _g.sum(axis=(0, 2)).reshape(3, 1))
assert np.array_equal(unbroadcast(_g, ()), _g.sum()) and unbroadcast(_g, (1, 1, 4)).shape == (1, 1, 4)
print("unbroadcast ok")

# %% [markdown]
# ## 5. Arithmetic: `Add`, `Sub`, `Mul`, `Div`
#
# | forward | `dL/da` | `dL/db` | saves |
# |---|---|---|---|
# | `a + b` | `grad` | `grad` | the two shapes |
# | `a - b` | `grad` | `-grad` | the two shapes |
# | `a * b` | `grad * b` | `grad * a` | `a` and `b` |
# | `a / b` | `grad / b` | `-grad * a / b**2` | `a` and `b` |
#
# followed by `unbroadcast(..., shape of that input)`. One operand may be a constant (a number
# or an array): compute only the gradients that `self.needs_input_grad` asks for and return
# `None` for the others. Use `np.shape(v)` for the shape: it works for numbers too.
#
# Look at what each one saves: `Add` keeps two *shapes* (a few bytes), `Mul` keeps both
# *operands* (the whole arrays, alive until backward). That difference is activation memory.

# %% tags=["export"]
class Add(Function):
    """y = a + b, with broadcasting."""

    __slots__ = ()

    def forward(self, a, b):
        self.save_for_backward(np.shape(a), np.shape(b))
        return a + b

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape_a, shape_b = self.saved
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(grad, shape_a) if need_a else None,
                unbroadcast(grad, shape_b) if need_b else None)
        ### END SOLUTION


class Sub(Function):
    """y = a - b, with broadcasting."""

    __slots__ = ()

    def forward(self, a, b):
        self.save_for_backward(np.shape(a), np.shape(b))
        return a - b

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape_a, shape_b = self.saved
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(grad, shape_a) if need_a else None,
                unbroadcast(-grad, shape_b) if need_b else None)
        ### END SOLUTION


class Mul(Function):
    """y = a * b (element-wise), with broadcasting."""

    __slots__ = ()

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        ### BEGIN SOLUTION
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(grad * b, np.shape(a)) if need_a else None,
                unbroadcast(grad * a, np.shape(b)) if need_b else None)
        ### END SOLUTION


class Div(Function):
    """y = a / b (element-wise), with broadcasting."""

    __slots__ = ()

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        ### BEGIN SOLUTION
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        grad_a = grad / b
        return (unbroadcast(grad_a, np.shape(a)) if need_a else None,
                unbroadcast(-grad_a * a / b, np.shape(b)) if need_b else None)
        ### END SOLUTION

# %% [markdown]
# ### Checking gradients: central differences
#
# Every gradient in this module can be checked against the definition of the derivative.
# `numerical_grad` nudges each element of one input by `+h` and `-h` and measures how
# `sum(f(inputs) * upstream)` changes: `(f(x + h) - f(x - h)) / 2h`, accurate to `O(h^2)`.
# It uses float64 (with `h = 1e-6`; in float32 the rounding error of `f` would swamp the
# difference). `gradcheck` compares it with what `backward` computes, like
# `torch.autograd.gradcheck`. It is slow (two forward passes per element), which is exactly
# why we need backpropagation, but it is the oracle for every backward you write, here and in
# later modules.

# %% tags=["export"]
def numerical_grad(fn, arrays, index, upstream, h=1e-6):
    """Central-difference gradient of sum(fn(*Tensors) * upstream) with respect to arrays[index]."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grad = np.zeros_like(arrays[index])
    flat, out = arrays[index].reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        values = []
        for shifted in (old + h, old - h):
            flat[i] = shifted
            with no_grad():
                y = fn(*[Tensor(a, dtype=np.float64) for a in arrays])
            values.append(float(np.sum(y.data * upstream)))
        flat[i] = old
        out[i] = (values[0] - values[1]) / (2 * h)
    return grad


def gradcheck(fn, *arrays, rtol=1e-5, atol=1e-7, seed=0):
    """Whether backward through fn(*Tensors) agrees with central differences, in float64, for
    every input and a random upstream gradient. PyTorch: torch.autograd.gradcheck."""
    tensors = [Tensor(np.array(a, dtype=np.float64), dtype=np.float64, requires_grad=True) for a in arrays]
    y = fn(*tensors)
    upstream = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(upstream)
    for i, t in enumerate(tensors):
        expected = numerical_grad(fn, arrays, i, upstream)
        if t.grad is None or not np.allclose(t.grad, expected, rtol=rtol, atol=atol):
            raise AssertionError(f"gradient of input {i} differs from central differences:\n"
                                 f"backward: {t.grad}\nnumerical: {expected}")
    return True

# %% [markdown]
# `gradcheck` calls `y.backward(...)`, the method, which the dispatch table of section 9
# installs. Until then, this cell checks with the `backward` function directly.

# %%
def _check(fn, *arrays):
    """gradcheck before the registration of section 9."""
    tensors = [Tensor(np.array(a, dtype=np.float64), dtype=np.float64, requires_grad=True) for a in arrays]
    y = fn(*tensors)
    upstream = np.random.default_rng(0).standard_normal(y.shape)
    backward(y, upstream)
    for i, t in enumerate(tensors):
        assert np.allclose(t.grad, numerical_grad(fn, arrays, i, upstream), rtol=1e-5, atol=1e-7), (fn, i)


_rng = np.random.default_rng(0)
_a, _b = _rng.standard_normal((3, 4)), _rng.uniform(0.5, 2.0, (4,))
for _op in (Add, Sub, Mul, Div):
    _check(_op.apply, _a, _b)           # (3, 4) with (4,): b's gradient is summed over rows
    _check(_op.apply, _b[:1], _a)       # (1,) broadcast against (3, 4)
_x = Tensor(_a, requires_grad=True)
backward(Mul.apply(_x, 2.0), np.ones((3, 4)))
assert np.allclose(_x.grad, 2.0), "a constant operand gets no gradient, the Tensor does"
print("Add, Sub, Mul, Div ok")

# %% [markdown]
# ## 6. `MatMul`: the gradient that trains every layer
#
# For `Y = A @ B` with `A (m, k)`, `B (k, n)` and `grad = dL/dY (m, n)`:
#
# $$\frac{\partial L}{\partial A} = \mathrm{grad}\, B^\top \quad (m, n)(n, k) = (m, k), \qquad
#   \frac{\partial L}{\partial B} = A^\top\, \mathrm{grad} \quad (k, m)(m, n) = (k, n)$$
#
# The shapes tell you the formula: there is only one way to multiply them into the right shape.
# Each is another matrix product, so **backward costs about twice the forward** (two matmuls
# for one), which is why a training step costs about three forward passes. And `A`, the layer's
# *input*, must be saved for backward: the activation memory of every `Linear`.
#
# NumPy's matmul also works on stacks (`(batch, m, k) @ (k, n)`, batch dimensions broadcast)
# and on vectors: a 1-d `A` is a row `(1, k)`, a 1-d `B` a column `(k, 1)`, and that
# dimension is removed from the result. Handle them so:
#
# - both 1-d (a dot product, `grad` is 0-d): `dL/dA = grad * B`, `dL/dB = grad * A`;
# - otherwise turn a 1-d `A` into `A[None, :]` and insert the removed axis into `grad`
#   (`np.expand_dims(grad, -2)`); a 1-d `B` into `B[:, None]` and `np.expand_dims(grad, -1)`;
#   transpose the last two axes with `np.swapaxes(M, -1, -2)`; `unbroadcast` each gradient to
#   the (2-d) operand's shape (that sums over broadcast batch dimensions) and reshape it back to
#   the original shape of the input.
#
# Compute only the gradients that `needs_input_grad` asks for: when `A` is the data of a
# batch, skipping `dL/dA` saves one of the two matmuls.
#
# The forward keeps module 01's checks and messages (a `ValueError` naming both shapes).

# %% tags=["export"]
class MatMul(Function):
    """y = a @ b, NumPy's matmul rules (batched, 1-d operands)."""

    __slots__ = ()

    def forward(self, a, b):
        b = np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs at least 1-d operands, got shapes {a.shape} and {b.shape}")
        inner_left, inner_right = a.shape[-1], (b.shape[0] if b.ndim == 1 else b.shape[-2])
        if inner_left != inner_right:
            raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape}; the last dimension of the left "
                             f"operand ({inner_left}) must equal the "
                             f"{'first' if b.ndim == 1 else 'second-to-last'} dimension of the right ({inner_right})")
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        ### BEGIN SOLUTION
        a, b = self.saved
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (grad * b if need_a else None, grad * a if need_b else None)
        a2, b2 = a, b
        if a.ndim == 1:
            a2, grad = a[None, :], np.expand_dims(grad, -2)
        if b.ndim == 1:
            b2, grad = b[:, None], np.expand_dims(grad, -1)
        grad_a = unbroadcast(grad @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if need_a else None
        grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ grad, b2.shape).reshape(b.shape) if need_b else None
        return grad_a, grad_b
        ### END SOLUTION

# %%
for _sa, _sb in [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 1, 3, 4), (5, 4, 2))]:
    _check(MatMul.apply, _rng.standard_normal(_sa), _rng.standard_normal(_sb))
print("MatMul ok")

# %% [markdown]
# ## 7. Shapes and reductions: `Reshape`, `Transpose`, `GetItem`, `Sum`, `Mean`, `Max`
#
# These move or combine elements without arithmetic, so their backward moves the gradient
# back to where each element came from:
#
# - **Reshape**: reshape `grad` back to the input's shape.
# - **Transpose** (`dim0`, `dim1`): swapping the same two axes again undoes it (a tensor with
#   fewer than two dimensions was returned unchanged, and so is its gradient).
# - **GetItem** (`a[key]`): the selected elements get `grad`, the others 0. Start from
#   zeros of the input's shape and use `np.add.at(target, indices, values)`, not `target[key] = grad`:
#   with a key such as `[0, 0, 1]` element 0 is used twice and must receive both contributions
#   (plain assignment keeps only the last one).
# - **Sum** over `axis`: every input element contributed once, so each gets `grad`. The forward
#   below saves the shape of the result *with* `keepdims=True`: reshape `grad` to it (that puts
#   back the reduced axes as size 1, whatever `axis` and `keepdims` were), then
#   `np.broadcast_to` the input's shape.
# - **Mean**: the same, divided by the number of elements averaged, `input size / output size`.
# - **Max**: only the maximum receives the gradient. With ties, split it evenly among the
#   tied elements (PyTorch's `amax` rule): `mask = (a == m)` with `m` the kept-dims maximum,
#   gradient `grad * mask / mask.sum(axis, keepdims=True)`.
#
# `np.broadcast_to` returns a read-only view: no copy, and that is fine, since the engine never
# writes into a gradient it did not allocate itself.

# %% tags=["export"]
def _shape_arg(shape):
    """reshape(2, 3) and reshape((2, 3)) both mean the shape (2, 3)."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


class Reshape(Function):
    """y = a.reshape(shape); one dimension may be -1."""

    __slots__ = ()

    def forward(self, a, shape):
        self.save_for_backward(a.shape)
        return a.reshape(_shape_arg(shape))

    def backward(self, grad):
        ### BEGIN SOLUTION
        (shape,) = self.saved
        return (grad.reshape(shape),)
        ### END SOLUTION


class Transpose(Function):
    """y = a with dimensions dim0 and dim1 swapped (unchanged below two dimensions)."""

    __slots__ = ()

    def forward(self, a, dim0=-2, dim1=-1):
        self.save_for_backward(a.ndim, dim0, dim1)
        return a if a.ndim < 2 else np.swapaxes(a, dim0, dim1)

    def backward(self, grad):
        ### BEGIN SOLUTION
        ndim, dim0, dim1 = self.saved
        return (grad if ndim < 2 else np.swapaxes(grad, dim0, dim1),)
        ### END SOLUTION


class GetItem(Function):
    """y = a[key]: integers, slices, index arrays, boolean masks (NumPy's rules)."""

    __slots__ = ()

    def forward(self, a, key):
        key = key.data if isinstance(key, Tensor) else key
        self.save_for_backward(a.shape, key)
        return a[key]

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape, key = self.saved
        out = np.zeros(shape, dtype=grad.dtype)
        np.add.at(out, key, grad)
        return (out,)
        ### END SOLUTION


class Sum(Function):
    """y = a.sum(axis, keepdims)."""

    __slots__ = ()

    def forward(self, a, axis=None, keepdims=False):
        total = a.sum(axis=axis, keepdims=True)
        self.save_for_backward(a.shape, total.shape)
        return total if keepdims else np.squeeze(total, axis=axis)

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape, kept = self.saved
        return (np.broadcast_to(grad.reshape(kept), shape),)
        ### END SOLUTION


class Mean(Function):
    """y = a.mean(axis, keepdims)."""

    __slots__ = ()

    def forward(self, a, axis=None, keepdims=False):
        mean = a.mean(axis=axis, keepdims=True)
        self.save_for_backward(a.shape, mean.shape)
        return mean if keepdims else np.squeeze(mean, axis=axis)

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape, kept = self.saved
        count = math.prod(shape) // max(math.prod(kept), 1)
        return (np.broadcast_to(grad.reshape(kept) / count, shape),)
        ### END SOLUTION


class Max(Function):
    """y = a.max(axis, keepdims); ties share the gradient equally."""

    __slots__ = ()

    def forward(self, a, axis=None, keepdims=False):
        top = a.max(axis=axis, keepdims=True)
        self.save_for_backward(a, top, axis)
        return top if keepdims else np.squeeze(top, axis=axis)

    def backward(self, grad):
        ### BEGIN SOLUTION
        a, top, axis = self.saved
        mask = a == top
        return (grad.reshape(top.shape) * mask / mask.sum(axis=axis, keepdims=True),)
        ### END SOLUTION

# %%
_t = _rng.standard_normal((2, 3, 4))
_check(lambda x: Reshape.apply(x, shape=(4, -1)), _t)
_check(lambda x: Transpose.apply(x, dim0=0, dim1=2), _t)
_check(lambda x: GetItem.apply(x, key=(slice(None), [0, 0, 2], slice(1, 3))), _t)   # index 0 used twice
for _axis in (None, 0, -1, (0, 2)):
    for _keep in (False, True):
        for _op in (Sum, Mean, Max):
            _check(lambda x: _op.apply(x, axis=_axis, keepdims=_keep), _t)
_x = Tensor([1.0, 3.0, 3.0], requires_grad=True)
backward(Max.apply(_x))
assert _x.grad.tolist() == [0.0, 0.5, 0.5], "tied maxima share the gradient"
print("Reshape, Transpose, GetItem, Sum, Mean, Max ok")

# %% [markdown]
# ## 8. Activations and losses
#
# The forwards repeat modules 02 and 04 exactly (same stable formulas, same checks, same error
# messages); you write the backwards. Choose what to save: many of these derivatives are
# cheapest in terms of the **output**, which is what PyTorch saves for them too.
#
# | Function | derivative | save |
# |---|---|---|
# | `ReLUFn` | `grad * (y > 0)` | the output `y` |
# | `SigmoidFn` | `grad * y * (1 - y)` | `y` |
# | `TanhFn` | `grad * (1 - y * y)` | `y` |
# | `GELUFn` | `grad * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2))` with `t = tanh(c (x + 0.044715 x^3))`, `c = sqrt(2/pi)` | `x` and `t` |
# | `SoftmaxFn` | `y * (grad - sum(grad * y, dim, keepdims=True))` | `y` |
# | `LogSoftmaxFn` | `grad - exp(y) * sum(grad, dim, keepdims=True)` | `y` (the log-probabilities) |
# | `MSELossFn` | `grad * 2 (p - t) / n` for `p`, its negative for `t` | `p - t` |
# | `CrossEntropyLossFn` | `grad * (softmax(z) - onehot(y)) / N` | the log-probabilities and the targets |
# | `BCELossFn` | `grad * (p - y) / (p (1 - p)) / n` for `p` (0 where `p` was clipped), `-grad * (log p - log(1 - p)) / n` for `y` | the clipped `p`, `y`, where clipping was inactive |
#
# `grad` is a scalar (0-d) for the losses: they reduce to one number. The softmax derivative is
# a Jacobian-vector product that never builds the `C x C` Jacobian: `O(C)` memory, not `O(C^2)`.
# Cross-entropy's `softmax(z) - onehot(y)` is bounded in `[-1, 1]`: module 04's fusion pays off
# in backward too (no division by a tiny probability). For the softmax of the cross-entropy,
# `np.exp(logp)` is a fresh array: subtract the one-hot in place (`p[np.arange(N), y] -= 1`).
#
# Targets (`CrossEntropyLossFn`'s class indices) are a parameter, not an input: nothing
# differentiates with respect to a class index.

# %% tags=["export"]
_GELU_C = math.sqrt(2 / math.pi)


class ReLUFn(Function):
    """y = max(0, x) (module 02's ReLU)."""

    __slots__ = ()

    def forward(self, x):
        y = np.maximum(x, 0)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        ### BEGIN SOLUTION
        (y,) = self.saved
        return (grad * (y > 0),)
        ### END SOLUTION


class SigmoidFn(Function):
    """y = 1 / (1 + exp(-x)), overflow-free (module 02's Sigmoid)."""

    __slots__ = ()

    def forward(self, x):
        z = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1, z) / (1 + z)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        ### BEGIN SOLUTION
        (y,) = self.saved
        return (grad * y * (1 - y),)
        ### END SOLUTION


class TanhFn(Function):
    """y = tanh(x) (module 02's Tanh)."""

    __slots__ = ()

    def forward(self, x):
        y = np.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        ### BEGIN SOLUTION
        (y,) = self.saved
        return (grad * (1 - y * y),)
        ### END SOLUTION


class GELUFn(Function):
    """y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (module 02's GELU, tanh approximation)."""

    __slots__ = ()

    def forward(self, x):
        t = np.tanh(_GELU_C * (x + 0.044715 * (x * x * x)))
        self.save_for_backward(x, t)
        return 0.5 * x * (1 + t)

    def backward(self, grad):
        ### BEGIN SOLUTION
        x, t = self.saved
        local = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * (x * x))
        return (grad * local,)
        ### END SOLUTION


class SoftmaxFn(Function):
    """y = softmax(x) along dim, max-subtracted (module 02's Softmax)."""

    __slots__ = ()

    def forward(self, x, dim=-1):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        self.save_for_backward(y, dim)
        return y

    def backward(self, grad):
        ### BEGIN SOLUTION
        y, dim = self.saved
        return (y * (grad - (grad * y).sum(axis=dim, keepdims=True)),)
        ### END SOLUTION


class LogSoftmaxFn(Function):
    """y = log_softmax(x) along dim, log-sum-exp trick (module 04's log_softmax)."""

    __slots__ = ()

    def forward(self, x, dim=-1):
        shifted = x - x.max(axis=dim, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        self.save_for_backward(y, dim)
        return y

    def backward(self, grad):
        ### BEGIN SOLUTION
        y, dim = self.saved
        return (grad - np.exp(y) * grad.sum(axis=dim, keepdims=True),)
        ### END SOLUTION


class MSELossFn(Function):
    """loss = mean((pred - target)^2) (module 04's MSELoss); target may be an array."""

    __slots__ = ()

    def forward(self, pred, target):
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"MSELoss: prediction shape {pred.shape} differs from target shape {target.shape}")
        diff = pred - target
        self.save_for_backward(diff.astype(pred.dtype, copy=False))
        return np.mean(diff * diff)

    def backward(self, grad):
        ### BEGIN SOLUTION
        (diff,) = self.saved
        grad_pred = grad * (2.0 / diff.size) * diff
        need_pred, need_target = self.needs_input_grad
        return (grad_pred if need_pred else None, -grad_pred if need_target else None)
        ### END SOLUTION


class CrossEntropyLossFn(Function):
    """loss = mean(-log_softmax(logits)[n, target[n]]) (module 04's CrossEntropyLoss)."""

    __slots__ = ()

    def forward(self, z, target):
        y = target.data if isinstance(target, Tensor) else np.asarray(target)
        if z.ndim != 2 or y.shape != (z.shape[0],):
            raise ValueError(f"CrossEntropyLoss expects logits (N, C) and targets (N,), got {z.shape} and {y.shape}")
        y = y.astype(np.int64)
        if ((y < 0) | (y >= z.shape[1])).any():
            raise ValueError(f"CrossEntropyLoss: targets must be class indices in [0, {z.shape[1]}), got {y}")
        shifted = z - z.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        self.save_for_backward(logp, y)
        return -logp[np.arange(z.shape[0]), y].mean()

    def backward(self, grad):
        ### BEGIN SOLUTION
        logp, y = self.saved
        p = np.exp(logp)
        p[np.arange(len(y)), y] -= 1
        return (p * (grad / len(y)),)
        ### END SOLUTION


class BCELossFn(Function):
    """loss = -mean(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps] (module 04's BCE)."""

    __slots__ = ()

    def forward(self, pred, target, eps=1e-7):
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"BinaryCrossEntropyLoss: prediction shape {pred.shape} differs from target shape {target.shape}")
        p = np.clip(pred, eps, 1 - eps)
        self.save_for_backward(p, target, (pred > eps) & (pred < 1 - eps))
        return -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))

    def backward(self, grad):
        ### BEGIN SOLUTION
        p, y, inside = self.saved
        need_pred, need_target = self.needs_input_grad
        scale = grad / p.size
        grad_pred = scale * (p - y) / (p * (1 - p)) * inside if need_pred else None
        grad_target = -scale * (np.log(p) - np.log(1 - p)) if need_target else None
        return grad_pred, grad_target
        ### END SOLUTION


def log_softmax(x, dim=-1):
    """Differentiable log_softmax along dim (replaces module 04's; arrays are constants)."""
    return LogSoftmaxFn.apply(x if isinstance(x, Tensor) else Tensor(x), dim=dim)

# %%
_z = _rng.standard_normal((4, 5)) * 3
for _fn in (ReLUFn, SigmoidFn, TanhFn, GELUFn, SoftmaxFn, LogSoftmaxFn):
    _check(_fn.apply, _z)
_check(lambda x: SoftmaxFn.apply(x, dim=0), _z)
_targets = np.array([0, 4, 2, 2])
_check(lambda z: CrossEntropyLossFn.apply(z, target=_targets), _z)
_check(MSELossFn.apply, _z, _rng.standard_normal((4, 5)))
_check(lambda p, y: BCELossFn.apply(p, y), _rng.uniform(0.05, 0.95, (3, 2)), _rng.uniform(0, 1, (3, 2)))
print("activations and losses ok")

# %% [markdown]
# ## 9. Installing autograd: one dispatch table
#
# Modules 01-04 compute with plain NumPy and know nothing about gradients. How does
# `x @ self.weight.T + self.bias` in your `Linear` start building graphs? We could have edited
# every method of modules 01-04 (`if requires_grad: ...` everywhere), or patched each method by
# hand, scattered over the code. Instead, **one table** says which differentiable
# implementation answers each operation, and one loop installs it:
#
# - it is readable in one screen: the complete list of what is differentiable, and by which
#   `Function`;
# - modules 01-04 stay as they were: forward-only code that is easy to read and to grade, and
#   `disable_autograd()` puts them back;
# - it is how PyTorch works too, at a larger scale: every operator call goes through a
#   **dispatcher** that picks a kernel by "dispatch key". The `Autograd` key comes first and
#   records the graph, then passes the call on to the `CPU` or `CUDA` kernel that computes.
#   Adding autograd to an operator means registering one more entry, never editing the kernel.
#
# After `enable_autograd()` (which importing `tinytorch.core.autograd` runs), `Tensor` also has
# `backward`, `zero_grad` and `detach`, and `Module.zero_grad()` from module 03 resets every
# parameter's gradient. Names imported *before* the import keep the old objects: import
# `log_softmax` after `tinytorch.core.autograd`, or use `losses.log_softmax`.
#
# The results are the same as before, bit for bit, with one difference: an activation or a
# loss now returns the dtype of its input (PyTorch's rule) instead of always float32, so that
# float64 gradient checks stay in float64.

# %% tags=["export"]
DISPATCH = {
    # (owner, attribute):                  the implementation installed there
    (Tensor, "__add__"):                     lambda self, other: Add.apply(self, other),
    (Tensor, "__radd__"):                    lambda self, other: Add.apply(self, other),
    (Tensor, "__sub__"):                     lambda self, other: Sub.apply(self, other),
    (Tensor, "__rsub__"):                    lambda self, other: Sub.apply(other, self),
    (Tensor, "__mul__"):                     lambda self, other: Mul.apply(self, other),
    (Tensor, "__rmul__"):                    lambda self, other: Mul.apply(self, other),
    (Tensor, "__truediv__"):                 lambda self, other: Div.apply(self, other),
    (Tensor, "__rtruediv__"):                lambda self, other: Div.apply(other, self),
    (Tensor, "__neg__"):                     lambda self: Neg.apply(self),
    (Tensor, "matmul"):                      lambda self, other: MatMul.apply(self, other),
    (Tensor, "__matmul__"):                  lambda self, other: MatMul.apply(self, other),
    (Tensor, "reshape"):                     lambda self, *shape: Reshape.apply(self, shape=shape),
    (Tensor, "transpose"):                   lambda self, dim0=-2, dim1=-1: Transpose.apply(self, dim0=dim0, dim1=dim1),
    (Tensor, "sum"):                         lambda self, axis=None, keepdims=False: Sum.apply(self, axis=axis, keepdims=keepdims),
    (Tensor, "mean"):                        lambda self, axis=None, keepdims=False: Mean.apply(self, axis=axis, keepdims=keepdims),
    (Tensor, "max"):                         lambda self, axis=None, keepdims=False: Max.apply(self, axis=axis, keepdims=keepdims),
    (Tensor, "__getitem__"):                 lambda self, key: GetItem.apply(self, key=key),
    (Tensor, "backward"):                    backward,
    (Tensor, "zero_grad"):                   zero_grad,
    (Tensor, "detach"):                      detach,
    (activations.ReLU, "forward"):           lambda self, x: ReLUFn.apply(x),
    (activations.Sigmoid, "forward"):        lambda self, x: SigmoidFn.apply(x),
    (activations.Tanh, "forward"):           lambda self, x: TanhFn.apply(x),
    (activations.GELU, "forward"):           lambda self, x: GELUFn.apply(x),
    (activations.Softmax, "forward"):        lambda self, x: SoftmaxFn.apply(x, dim=self.dim),
    (losses, "log_softmax"):                 log_softmax,
    (losses.MSELoss, "forward"):             lambda self, pred, target: MSELossFn.apply(pred, target),
    (losses.CrossEntropyLoss, "forward"):    lambda self, logits, target: CrossEntropyLossFn.apply(logits, target=target),
    (losses.BinaryCrossEntropyLoss, "forward"): lambda self, pred, target: BCELossFn.apply(pred, target, eps=self.eps),
}

_ORIGINAL = {}  # what enable_autograd replaced, for disable_autograd


def enable_autograd():
    """Install every entry of DISPATCH (idempotent). Runs when tinytorch.core.autograd is imported."""
    for (owner, name), implementation in DISPATCH.items():
        _ORIGINAL.setdefault((owner, name), vars(owner).get(name))
        setattr(owner, name, implementation)


def disable_autograd():
    """Put back the forward-only implementations of modules 01-04."""
    for (owner, name), original in _ORIGINAL.items():
        if original is None:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _ORIGINAL.clear()


enable_autograd()

# %% [markdown]
# ## 10. Check your work: gradients through the whole framework
#
# From here on, ordinary TinyTorch code builds graphs. `gradcheck` compares a whole expression
# with central differences, and module 03's `Linear` trains with module 04's loss.

# %%
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss

_p, _q = _rng.standard_normal((3, 4)), _rng.uniform(0.5, 2.0, (1, 4))
assert gradcheck(lambda a, b: (a * b - a / b + 2.0 - b) @ a.T, _p, _q)
assert gradcheck(lambda a: Tanh()(a).sum(axis=0) * Sigmoid()(a).max() - GELU()(a)[1:, ::2].mean(), _p)
assert gradcheck(lambda a: a * a + a, _p), "a tensor used twice gets the sum of both contributions"

# The diamond: y = a * b with a = x + 1 and b = x * 2; dy/dx = b + 2a = 4x + 2.
_x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
(_a, _b) = (_x + 1, _x * 2)
(_a * _b).sum().backward()
assert np.allclose(_x.grad, 4 * _x.data + 2), _x.grad

# Linear + CrossEntropyLoss: the gradient of the logits is (softmax - onehot) / N.
_layer = Linear(5, 3, rng=0)
_inputs, _labels = Tensor(_rng.standard_normal((8, 5))), _rng.integers(0, 3, 8)
_loss = CrossEntropyLoss()(_layer(_inputs), _labels)
_loss.backward()
_probs = np.exp(_layer(_inputs).data) / np.exp(_layer(_inputs).data).sum(axis=1, keepdims=True)
_dz = (_probs - np.eye(3)[_labels]) / 8
assert np.allclose(_layer.weight.grad, _dz.T @ _inputs.data, atol=1e-6)
assert np.allclose(_layer.bias.grad, _dz.sum(axis=0), atol=1e-6)
_layer.zero_grad()
assert _layer.weight.grad is None and _layer.bias.grad is None
with no_grad():
    assert _layer(_inputs).grad_fn is None, "evaluation builds no graph"
print("loss", float(_loss.data), "| Linear's weight and bias receive their gradients")

# %%
# A few steps of gradient descent on a tiny classifier: the loss must go down.
_model = Sequential(Linear(5, 16, rng=1), ReLU(), Linear(16, 3, rng=2))
_losses = []
for _step in range(30):
    _loss = CrossEntropyLoss()(_model(_inputs), _labels)
    _model.zero_grad()
    _loss.backward()
    with no_grad():
        for _param in _model.parameters():
            _param.data -= 0.5 * _param.grad
    _losses.append(float(_loss.data))
assert _losses[-1] < 0.5 * _losses[0], _losses
print(f"training: loss {_losses[0]:.3f} -> {_losses[-1]:.3f}")

# %% [markdown]
# ## 11. Systems analysis: what backward costs in memory and time
#
# The cell below measures, with your engine:
#
# 1. **Activation memory vs depth.** An MLP of width 512 and growing depth, batch 64: the bytes
#    the graph keeps alive for backward (every array saved by a `Function`, the parameters
#    themselves not counted), against the bytes of the parameters, and the peak memory of forward + backward (`tracemalloc`), with and
#    without `no_grad()`.
# 2. **What each op saves.** The saved bytes per node for `Add`, `Mul`, `MatMul`, `ReLU`,
#    `GELU`: shapes only, or whole arrays.
# 3. **Per-op overhead.** Forward + backward of small (4 x 4) operations, in microseconds per
#    op: the price of the tape in Python, against the same ops with autograd disabled and
#    against the raw NumPy call. PyTorch measures about 13 us per op for this on a CPU, most of
#    it in its dispatcher and autograd bookkeeping.
# 4. **Checkpointing.** The memory of keeping every activation against keeping only every
#    k-th and recomputing the rest in backward.

# %% tags=["analysis"]
import time
import tracemalloc


def _owner(array):
    """The array that owns the memory behind a view (a transpose of a weight is no new memory)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _saved_bytes(root, exclude=()):
    """Bytes of memory that the graph behind root keeps alive for backward: every array saved by
    a Function, counted once per buffer, without the buffers in `exclude` (the parameters)."""
    seen, total = {id(_owner(e)) for e in exclude}, 0
    for tensor in topological_order(root):
        if tensor.grad_fn is not None:
            for value in tensor.grad_fn.saved:
                if isinstance(value, np.ndarray) and id(_owner(value)) not in seen:
                    seen.add(id(_owner(value)))
                    total += _owner(value).nbytes
    return total


_rng = np.random.default_rng(0)
_width, _batch = 512, 64
_x = Tensor(_rng.standard_normal((_batch, _width)))
_y = _rng.integers(0, 10, _batch)
print("1. activation memory of Linear+ReLU stacks, width 512, batch 64")
print(f"{'depth':>6} {'params MiB':>11} {'saved MiB':>10} {'peak fwd+bwd MiB':>17} {'peak no_grad MiB':>17}")
for _depth in (1, 2, 4, 8, 16):
    _net = Sequential(*[m for _ in range(_depth) for m in (Linear(_width, _width, rng=0), ReLU())], Linear(_width, 10, rng=0))
    _params = sum(p.data.nbytes for p in _net.parameters())
    tracemalloc.start()
    _loss = CrossEntropyLoss()(_net(_x), _y)
    _saved = _saved_bytes(_loss, exclude=[p.data for p in _net.parameters()])
    _loss.backward()
    _peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del _loss
    _net.zero_grad()
    tracemalloc.start()
    with no_grad():
        CrossEntropyLoss()(_net(_x), _y)
    _peak_eval = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{_depth:>6} {_params / 2**20:>11.2f} {_saved / 2**20:>10.2f} {_peak / 2**20:>17.2f} {_peak_eval / 2**20:>17.2f}")

print("\n2. bytes saved for backward by one node, inputs (256, 256) float32")
_u = Tensor(_rng.standard_normal((256, 256)), requires_grad=True)
_v = Tensor(_rng.standard_normal((256, 256)), requires_grad=True)
for _name, _make in [("Add", lambda: _u + _v), ("Mul", lambda: _u * _v), ("MatMul", lambda: _u @ _v),
                     ("ReLU", lambda: ReLU()(_u)), ("GELU", lambda: GELU()(_u)), ("Sum", lambda: _u.sum())]:
    _out = _make()
    _b = sum(s.nbytes for s in _out.grad_fn.saved if isinstance(s, np.ndarray))
    print(f"   {_name:>7}: {_b:>9,} bytes  ({_b / _u.data.nbytes:.1f} x one input)")


def _per_op_us(fn, repeat=2000):
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


_a = Tensor(_rng.standard_normal((4, 4)), requires_grad=True)
_b = Tensor(_rng.standard_normal((4, 4)), requires_grad=True)
_g = np.ones((4, 4), np.float32)
_cases = [("add", lambda: _a + _b, lambda: _a.data + _b.data),
          ("mul", lambda: _a * _b, lambda: _a.data * _b.data),
          ("matmul", lambda: _a @ _b, lambda: _a.data @ _b.data),
          ("relu", lambda: ReLU()(_a), lambda: np.maximum(_a.data, 0)),
          ("sum", lambda: _a.sum(), lambda: _a.data.sum())]
print("\n3. microseconds per op on (4, 4) tensors")
print(f"{'op':>7} {'numpy':>7} {'no autograd':>12} {'forward (tape)':>15} {'forward+backward':>17}")
for _name, _op, _raw in _cases:
    _t_raw = _per_op_us(_raw)
    _t_fwd = _per_op_us(_op)

    def _both(op=_op):
        out = op()
        out.backward(np.ones(out.shape, np.float32))
    _t_both = _per_op_us(_both)
    disable_autograd()
    _t_plain = _per_op_us(_op)
    enable_autograd()
    print(f"{_name:>7} {_t_raw:>7.2f} {_t_plain:>12.2f} {_t_fwd:>15.2f} {_t_both:>17.2f}")
_chain = 200


def _long_chain():
    h = _a
    for _ in range(_chain):
        h = h * 1.01 + _b
    h.sum().backward()


print(f"   a chain of {2 * _chain + 1} ops, forward+backward: {_per_op_us(_long_chain, repeat=5) / (2 * _chain + 1):.2f} us/op")

print("\n4. checkpointing a chain of 32 tanh(h @ W) layers, batch 128, width 256")


def _segment(h, weights):
    for w in weights:
        h = Tanh()(h @ w)
    return h


def _checkpointed_grad(x, weights, k):
    """d sum(chain(x)) / dx keeping only every k-th activation; each segment is recomputed in backward."""
    kept, h = [], x
    with no_grad():                                   # forward: no graph, keep segment inputs only
        for start in range(0, len(weights), k):
            kept.append(h)
            h = _segment(h, weights[start:start + k])
    grad = np.ones(h.shape, np.float32)
    for index in reversed(range(len(kept))):          # backward: recompute one segment at a time
        inp = Tensor(kept[index].data, requires_grad=True)
        _segment(inp, weights[index * k:(index + 1) * k]).backward(grad)
        grad = inp.grad
    return grad


_ws = [Tensor(_rng.standard_normal((256, 256)) / 16) for _ in range(32)]
_xc = Tensor(_rng.standard_normal((128, 256)), requires_grad=True)
tracemalloc.start()
_segment(_xc, _ws).sum().backward()
_peak_full = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
_start = time.perf_counter()
_segment(_xc, _ws).sum().backward()
_t_full = time.perf_counter() - _start
print(f"   full graph        : peak {_peak_full / 2**20:6.2f} MiB, {_t_full * 1e3:6.1f} ms")
for _k in (2, 4, 8, 16):
    tracemalloc.start()
    _gk = _checkpointed_grad(_xc, _ws, _k)
    _peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _start = time.perf_counter()
    _checkpointed_grad(_xc, _ws, _k)
    _t = time.perf_counter() - _start
    assert np.allclose(_gk, _xc.grad / 2, rtol=1e-4, atol=1e-6), "checkpointing must not change the gradient"
    print(f"   checkpoint every {_k:>2}: peak {_peak / 2**20:6.2f} MiB, {_t * 1e3:6.1f} ms "
          f"({32 // _k} kept inputs + one segment of {_k} recomputed)")

# %% [markdown]
# ## Summary
#
# | piece | what it does | PyTorch |
# |---|---|---|
# | `Function.apply` | forward on arrays, records `grad_fn`, `inputs`, `needs_input_grad` | `torch.autograd.Function.apply` |
# | `save_for_backward` | keeps only what backward needs, alive until the graph dies | `ctx.save_for_backward` |
# | `topological_order` | iterative DFS, every tensor before its inputs | the engine's dependency counting |
# | `backward` | sums contributions (diamonds, reuse), leaves accumulate across calls | `Tensor.backward` |
# | `unbroadcast` | gradient of broadcasting = sum over the stretched axes | `sum_to_size` |
# | `no_grad` | no graph, no saved activations | `torch.no_grad` |
# | `DISPATCH` | one table installs the differentiable ops into modules 01-04 | the dispatcher's `Autograd` key |
#
# Next week (Module 07) the optimizers consume the `.grad` arrays you just produced:
# `p.data -= lr * p.grad` inside `no_grad()`, then `zero_grad()`.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: Activation memory
#
# Your analysis measured the bytes that the graph keeps for backward as the MLP gets deeper,
# against the parameters, and what each kind of node saves. Explain where that memory comes
# from in your `Function`s (which ones save arrays, which only shapes, and why), how it scales
# with batch size, width and depth, and what happens to it under `no_grad()`. Estimate it for a
# 1B-parameter transformer trained on long sequences: what breaks first at that scale, and how
# do activation checkpointing (recomputation) and the choice of what to save trade compute for
# memory?

# %% [markdown] tags=["answer"] question="q1"
# Every `Function` keeps in `self.saved` what its backward needs, and the node lives as long as
# the result's `grad_fn` points at it. `Add`/`Sub`/`Sum`/`Reshape` keep only shapes (bytes);
# `Mul`/`Div`/`MatMul` keep both operands (the input of every `Linear`, i.e. an activation of
# batch x width); `ReLUFn`/`SigmoidFn`/`TanhFn`/`SoftmaxFn` keep their output, `GELUFn` keeps
# its input and `tanh` (2x), cross-entropy the (N, C) log-probabilities. The analysis shows the
# saved bytes growing linearly with depth, by one 64 x 512 float32 array (128 KiB) per
# Linear+ReLU: ReLU's saved output is the very buffer the next `MatMul` saves as its input, and
# the weight's transpose is a view of the parameter, not new memory. The peak of forward +
# backward grows faster because the parameter gradients (as large as the parameters) are
# allocated too, while the peak under `no_grad()` stays flat: nothing is recorded, each
# activation is freed as soon as the next layer has consumed it. Saved memory is linear in
# batch, in width (per activation) and in depth, while parameters grow with width squared and
# do not depend on the batch.
#
# For a 1B transformer (24 layers, d = 2048, 16k tokens per step) each layer saves on the order
# of 30 values per token per hidden unit (projection inputs, attention probabilities, the 4x
# MLP input of GELU): about 2 GB per layer in bf16, ~50 GB total, far more than the 2 GB of
# weights. Activation memory, not parameters, is what exhausts the GPU first, and it grows with
# sequence length (quadratically for naive attention scores).
#
# Checkpointing keeps only every k-th layer's input and recomputes the segment in backward:
# memory drops from L activations to about L/k + k (sqrt(L) with k = sqrt(L)) for about one
# extra forward pass (~30% more compute). Choosing what to save matters the same way: saving
# outputs instead of inputs when the derivative allows (ReLU, sigmoid, tanh), saving a 1-byte
# mask instead of a float array for ReLU/dropout, recomputing cheap element-wise ops (GELU) in
# backward, and FlashAttention never storing the T x T attention matrix.

# %% [markdown]
# ### q2: The cost of the tape
#
# Your analysis timed forward and forward + backward of small operations with and without
# autograd, against raw NumPy. Where do those microseconds go in your implementation (walk
# through `Function.apply`, the topological sort and `backward` for one op), how do they compare
# with the arithmetic itself on a 4 x 4 tensor and on a 4096 x 4096 one, and when does this
# overhead dominate a training step? What do production frameworks do about it (C++ engines,
# fusion and compilation such as `torch.compile` or CUDA graphs, larger batches)?

# %% [markdown] tags=["answer"] question="q2"
# On 4 x 4 tensors the NumPy call itself is well under a microsecond, the forward-only module
# 01 op costs about a microsecond more (allocating a Tensor), and the taped forward a few
# microseconds, forward + backward several more: the arithmetic is a small fraction of the
# time. Per op, `apply` creates the node, builds the list of arrays, calls `forward`, wraps the
# result in a `Tensor` and builds the `needs_input_grad` tuple; backward then pushes and pops
# the node twice in `topological_order`, calls `fn.backward` (new arrays for every gradient),
# checks shapes and updates the `pending` dict. All of that is Python bytecode and small
# allocations, independent of the tensor size. On a 4096 x 4096 matmul (~137 GFLOP for
# forward + backward) the same overhead is a rounding error: the step is compute-bound.
#
# The overhead dominates whenever tensors are small relative to the number of ops: small
# batches, small models, RNN-style loops over time steps, optimizers updating thousands of
# small parameter tensors one by one, inference with batch 1. Then the GPU or CPU waits on the
# interpreter (PyTorch's ~13 us per op is the same problem in C++ plus dispatcher).
#
# Remedies: write the engine and dispatcher in C++ (PyTorch's autograd engine), make ops bigger
# (larger batches, fused ops such as cross-entropy with log-softmax or bias+GELU), capture the
# whole graph once and replay it (CUDA graphs), or compile it (`torch.compile`/XLA/JAX `jit`
# trace the Python once, fuse element-wise chains and generate one kernel, so the per-op Python
# cost disappears); multi-tensor "foreach" optimizers batch the tiny per-parameter updates.

# %% [markdown]
# ### q3: Correctness at scale: accumulation, order and precision
#
# Your `backward` sums the contributions of a tensor used several times, walks the graph in
# topological order with an explicit stack, copies a leaf's first gradient and adds later ones
# in place, and your tests check everything against central differences. Explain what would go
# wrong without each of these (a recursive walk on a 5000-op graph, processing a tensor before
# all its consumers, storing the shared gradient array without a copy), why gradients
# accumulate until `zero_grad()` and how gradient accumulation over micro-batches uses that,
# and why gradient checks need float64 and a well-chosen `h`. What does this mean for
# training in float16 or bfloat16?

# %% [markdown] tags=["answer"] question="q3"
# A recursive walk uses one Python frame per node: a 5000-op chain (an unrolled RNN, a long
# loop) exceeds the default recursion limit of 1000 and raises `RecursionError`; the explicit
# stack in `topological_order` uses heap memory instead. Processing a tensor before all its
# consumers delivered their gradients (e.g. `x` in `z = f(x, g(x))` when `x` is marked seen at
# push time) would send a partial gradient onward and then either drop or double-count the
# rest: diamonds, residual connections and tied weights would all be wrong. The `pending` dict
# adds contributions with `a + b` (new arrays) because `Add.backward` hands the same array to
# both inputs; storing that array as a leaf's `.grad` and later adding in place would silently
# modify another parameter's gradient, so the first gradient is copied.
#
# Gradients accumulate across `backward()` calls until `zero_grad()` sets them to `None`: this
# is what lets a large batch be processed as k micro-batches (each loss divided by k, backward
# after each, one optimizer step at the end) when the whole batch's activations do not fit in
# memory; forgetting `zero_grad()` in a normal loop, conversely, sums gradients of all past
# steps.
#
# Central differences have truncation error O(h^2) and rounding error about eps_machine * |f| /
# h. In float32 (eps ~1e-7) the best h is ~1e-3 and the error ~1e-5 relative at best, too
# coarse to distinguish a subtly wrong backward; float64 (eps ~1e-16) with h = 1e-6 gives
# ~1e-10, so `gradcheck` works in float64. In float16 (eps ~1e-3, max 65504) or bfloat16 (eps
# ~8e-3) gradients themselves underflow to zero or overflow: mixed-precision training keeps a
# float32 master copy of the weights, accumulates gradients in float32, and scales the loss
# (loss scaling) so small float16 gradients do not flush to zero.
