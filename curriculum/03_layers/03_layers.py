# %% [markdown]
# # Module 03: Layers
#
# A neural network is a function with millions of numbers inside it. Those numbers have to be
# *found* (to train them), *saved* (to checkpoint them), *switched* between training and
# inference behaviour, and *composed* into bigger networks. In this module you build the
# machinery that does all of that: the `Module` base class, and the first layers made with it.
#
# **What you build:**
#
# - `Parameter`: a Tensor that is a learnable weight (it asks autograd for a gradient).
# - `Module`: the base class of every layer and model. Assigning `self.fc = Linear(...)` inside
#   it *registers* the child, so `parameters()`, `named_parameters()`, `train()`/`eval()`,
#   `state_dict()` and `load_state_dict()` find every weight of an arbitrarily nested model.
# - `Linear(in_features, out_features)`: `y = x @ W.T + b`, with PyTorch's initialisation.
# - `Dropout(p)`: inverted dropout, active in training only.
# - `Sequential(*layers)`: layers applied one after another.
#
# **Why it matters for systems:** every weight of a model lives in some `Parameter` that the
# framework must be able to enumerate, count, copy, save and load. A `Linear(4096, 4096)` alone
# holds 16.8 million parameters; the memory of a model is the sum over its `parameters()`, and
# a training run of a week lives or dies by a `state_dict()` that restores exactly.
#
# **PyTorch equivalent:** `torch.nn.Parameter`, `torch.nn.Module`, `torch.nn.Linear`,
# `torch.nn.Dropout`, `torch.nn.Sequential`. Names, argument order, weight shapes and
# initialisation follow PyTorch, so `Linear(784, 10)` here and in PyTorch hold the same things.
#
# **Forward only:** this module computes outputs. Module 06 (autograd) will compute gradients
# *through the Tensor operations you use here* (`@`, `.T`, `+`, `*`), so write every layer with
# Tensor operations rather than by reaching into `.data` and back.
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 03_layers` in a terminal to see your points.

# %% tags=["export"]
import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. Parameter: a Tensor that is a weight
#
# A weight is just a Tensor, but the framework must be able to tell it apart from the other
# Tensors a layer touches (inputs, intermediate results, masks). PyTorch does it with a
# subclass, `nn.Parameter`, whose only differences are `requires_grad=True` by default and
# being recognised by `Module`. We do the same: `Parameter` is a `Tensor` (every Tensor
# operation works on it) and `isinstance(value, Parameter)` is how `Module` spots weights.
#
# This one is given: read it, there is nothing to fill in.

# %% tags=["export"]
class Parameter(Tensor):
    """A learnable Tensor: `torch.nn.Parameter`.

    Parameter(data, dtype=None, requires_grad=True)

    Same storage rules as Tensor (float32 unless a dtype is given; a float32 array is shared,
    not copied). The only differences: requires_grad defaults to True, so autograd (module 06)
    will compute a gradient for it, and Module registers a Parameter assigned to an attribute.
    Operations on a Parameter return plain Tensors: `w * 2` is a result, not a new weight.
    """

    def __init__(self, data, dtype=None, requires_grad=True):
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"

# %% [markdown]
# ## 2. Module: registration by attribute assignment
#
# In PyTorch you never list a model's weights by hand. You write
#
# ```python
# class MLP(Module):
#     def __init__(self):
#         super().__init__()
#         self.fc1 = Linear(784, 128)
#         self.fc2 = Linear(128, 10)
# ```
#
# and `model.parameters()` returns all four weights. The trick is `__setattr__`: Python calls
# `self.__setattr__("fc1", value)` for every `self.fc1 = value`. `Module` overrides it to
# **register** the value before storing it:
#
# - a `Parameter` goes into the dict `self._parameters` (name -> Parameter),
# - a `Module` goes into the dict `self._modules` (name -> child module),
# - anything else (ints, lists, None) is an ordinary attribute.
#
# Reassigning a name replaces its registration (assigning `None` to a layer's `bias`
# un-registers the bias). The value is also stored as a normal attribute
# (`object.__setattr__`), so `self.fc1` reads it
# back at normal attribute speed. Python dicts keep insertion order, so the registration order
# is the order in which `__init__` assigned things: that order is what `parameters()` returns.
#
# `__init__` must create `_parameters`, `_modules` and `training` with `object.__setattr__`,
# bypassing our own `__setattr__` (which needs those dicts to exist already). That is why every
# subclass must call `super().__init__()` *before* assigning anything, exactly as in PyTorch.
#
# ## 3. Walking the tree: named_parameters, train/eval
#
# A model is a tree of modules. `named_parameters()` walks it depth-first and names each
# Parameter by its path: `fc1.weight`, `encoder.layers.0.bias`. These **dotted names** are the
# keys of a checkpoint, so they must be stable: the same model code always gives the same names
# in the same order. The order is PyTorch's: a module's own parameters first (in assignment
# order), then each child's, in the order the children were assigned.
#
# A Parameter shared by two modules (weight *tying*, used by language models to share the
# input embedding and the output projection) must be listed **once**: otherwise an optimizer
# would update it twice per step, and the parameter count would be wrong. Skip a Parameter you
# have already seen (compare identities with `id(p)` or `is`, not values).
#
# `train(mode=True)` sets `self.training` on the module **and all its descendants**: a model
# put in evaluation mode must switch off every Dropout inside it, however deep. It returns
# `self`, so `model = Model().eval()` works. `eval()` is `train(False)`.

# %% tags=["export"]
class Module:
    """Base class of every layer and model: `torch.nn.Module`.

    Subclasses call `super().__init__()` first, assign Parameters and sub-Modules to
    attributes (which registers them), and implement `forward`. Calling the module,
    `module(x)`, runs `forward(x)`.
    """

    def __init__(self):
        # object.__setattr__ bypasses Module.__setattr__, which needs these two dicts to exist.
        object.__setattr__(self, "_parameters", {})  # name -> Parameter, in assignment order
        object.__setattr__(self, "_modules", {})     # name -> child Module, in assignment order
        object.__setattr__(self, "training", True)   # modules start in training mode, like PyTorch

    def __setattr__(self, name, value):
        """`self.name = value`: register a Parameter in self._parameters, a Module in
        self._modules, anything else in neither; a name is registered in at most one of the
        two dicts (remove it from the other, or from both for a plain value). Then store the
        value as an ordinary attribute with object.__setattr__.

        Raises AttributeError, telling the author to call super().__init__() first, when a
        Parameter or Module is assigned before Module.__init__ has run.
        """
        ### BEGIN SOLUTION
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if None in registries:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before Module.__init__(): "
                                     f"call super().__init__() first in {type(self).__name__}.__init__")
        else:
            # A name holds one thing at a time: `self.bias = None` must un-register the bias.
            # Replacing a Parameter by a Parameter keeps its place in the order (dicts keep
            # the position of an existing key), as in PyTorch.
            if isinstance(value, Parameter):
                self._modules.pop(name, None)
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._parameters.pop(name, None)
                self._modules[name] = value
            else:
                self._parameters.pop(name, None)
                self._modules.pop(name, None)
        object.__setattr__(self, name, value)
        ### END SOLUTION

    def forward(self, *args, **kwargs):
        """The computation of the module; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        # PyTorch's __call__ also runs hooks around forward; ours only forwards.
        return self.forward(*args, **kwargs)

    def named_parameters(self):
        """A list of (dotted name, Parameter) pairs of this module and all its descendants.

        Order: the module's own parameters in assignment order, then, for each child in
        assignment order, the child's named_parameters() with "childname." prefixed.
        A Parameter object reachable twice (weight tying) is listed once, under the first name.
        PyTorch returns a generator; a list can be iterated twice and passed to len().
        """
        ### BEGIN SOLUTION
        found, seen = [], set()

        def visit(module, prefix):
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    found.append((prefix + name, param))
            for name, child in module._modules.items():
                visit(child, prefix + name + ".")

        visit(self, "")
        return found
        ### END SOLUTION

    def parameters(self):
        """A list of every Parameter of the module and its descendants (each once)."""
        return [param for _, param in self.named_parameters()]

    def children(self):
        """The direct sub-modules, in assignment order."""
        return list(self._modules.values())

    def train(self, mode=True):
        """Set training mode (`mode=True`) or evaluation mode (`mode=False`) on this module
        and every descendant; return self."""
        ### BEGIN SOLUTION
        self.training = bool(mode)
        for child in self._modules.values():
            child.train(mode)
        return self
        ### END SOLUTION

    def eval(self):
        """Evaluation mode: `train(False)`. Returns self."""
        return self.train(False)

    def zero_grad(self):
        """Forget the gradients of every parameter (used from module 06 on)."""
        for param in self.parameters():
            param.grad = None

    def extra_repr(self):
        """What a layer shows between its parentheses, e.g. 'in_features=3, out_features=2'."""
        return ""

    def __repr__(self):
        children = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"

    # --- checkpoints ---------------------------------------------------------------------
    def state_dict(self):
        """A dict {dotted name: NumPy array} with a *copy* of every parameter's values.

        The keys are the names of named_parameters(), in the same order. The values are
        copies, so a saved state does not change when training continues (PyTorch returns
        tensors sharing memory and leaves the copying to torch.save).
        """
        ### BEGIN SOLUTION
        return {name: param.data.copy() for name, param in self.named_parameters()}
        ### END SOLUTION

    def load_state_dict(self, state_dict):
        """Copy the values of `state_dict` (name -> array or Tensor) into the parameters.

        Checks everything before changing anything, so a bad checkpoint never leaves the
        model half-loaded:
        - KeyError listing the missing and the unexpected keys when the names differ;
        - ValueError naming the parameter and both shapes when a shape differs.
        Then copies each value into the existing parameter array (its dtype is kept), so
        anything holding a reference to a Parameter (an optimizer) sees the new values.
        """
        ### BEGIN SOLUTION
        params = dict(self.named_parameters())
        missing = [name for name in params if name not in state_dict]
        unexpected = [name for name in state_dict if name not in params]
        if missing or unexpected:
            raise KeyError(f"state_dict does not match {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        values = {}
        for name, param in params.items():
            value = state_dict[name]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.shape != param.shape:
                raise ValueError(f"size mismatch for {name!r}: the state_dict has shape {value.shape}, "
                                 f"the model's parameter has shape {param.shape}")
            values[name] = value
        # Every check passed: only now write, in place, converting to the parameter's dtype.
        for name, value in values.items():
            params[name].data[...] = value
        ### END SOLUTION

# %% [markdown]
# ### Check: registration, names, modes
#
# These checks build small modules by hand. `Block` has a parameter of its own and two
# children; it is then nested inside another module.

# %%
class Block(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(3))
        self.inner = Module()
        self.inner.w = Parameter(np.zeros((2, 3)))
        self.note = "not registered"


class Outer(Module):
    def __init__(self):
        super().__init__()
        self.first = Block()
        self.second = Block()
        self.bias = Parameter(np.zeros(3))


outer = Outer()
names = [name for name, _ in outer.named_parameters()]
assert names == ["bias", "first.scale", "first.inner.w", "second.scale", "second.inner.w"], names
assert len(outer.parameters()) == 5 and sum(p.size for p in outer.parameters()) == 3 + 2 * (3 + 6)
assert outer.eval() is outer and not outer.first.inner.training, "eval() must reach every descendant"
assert outer.train().second.inner.training
outer.bias = None                                          # reassigning un-registers
assert [n for n, _ in outer.named_parameters()][0] == "first.scale"
print(outer)
print("registration, named_parameters and train/eval ok:", names)

# %%
outer = Outer()
state = outer.state_dict()
assert list(state) == [n for n, _ in outer.named_parameters()]
state["first.scale"][:] = 7.0                              # a copy: the model is unchanged
assert np.all(outer.first.scale.data == 1.0), "state_dict() must return copies"
outer.load_state_dict(state)
assert np.all(outer.first.scale.data == 7.0)
try:
    outer.load_state_dict({**state, "first.scale": np.zeros(4)})
    raise AssertionError("a shape mismatch should raise ValueError")
except ValueError as err:
    print("shape check ok:", err)
try:
    outer.load_state_dict({"bias": np.zeros(3)})
    raise AssertionError("missing keys should raise KeyError")
except KeyError as err:
    print("key check ok:", err)

# %% [markdown]
# ## 4. Linear: y = x @ W.T + b
#
# `Linear(in_features, out_features)` maps the last dimension of its input from
# `in_features` to `out_features` numbers. Like PyTorch, it stores
#
# - `weight` of shape **`(out_features, in_features)`** (one row per output unit), and
# - `bias` of shape `(out_features,)`, or `None` when `bias=False`,
#
# and computes `y = x @ W.T + b`. The input may be a single vector `(in_features,)`, a batch
# `(batch, in_features)` or more leading dimensions `(batch, seq, in_features)`: matmul
# broadcasts over them, and the bias broadcasts over everything but the last axis. Raise a
# `ValueError` naming both numbers when `x.shape[-1] != in_features`.
#
# **Initialisation.** Weights cannot start at zero: every output unit would compute the same
# thing and receive the same gradient forever. They are drawn at random, and the *scale*
# matters: each output sums `in_features` products, so its variance grows with `in_features`.
# PyTorch draws both `weight` and `bias` uniformly from `[-k, k]` with `k = 1/sqrt(in_features)`
# (its `kaiming_uniform_(a=sqrt(5))`), which keeps the output variance independent of the
# width. Do the same, in float32, drawing from `np.random.default_rng(rng)`: the weight first,
# then the bias. `rng` may be None (fresh randomness), an int seed or a `np.random.Generator`;
# PyTorch uses a global seed (`torch.manual_seed`) instead of an argument.
#
# **Cost.** A forward pass over a batch of B rows does `2 * B * in * out` floating-point
# operations and holds `in * out + out` parameters: the memory of a Linear layer grows with the
# *product* of its widths. Section 7 measures both.

# %% tags=["export"]
class Linear(Module):
    """A fully connected layer, y = x @ W.T + b: `torch.nn.Linear`.

    Linear(in_features, out_features, bias=True, rng=None)

    weight: Parameter of shape (out_features, in_features); bias: Parameter of shape
    (out_features,) or None. Both drawn uniformly from [-1/sqrt(in_features), 1/sqrt(in_features)]
    in float32 (PyTorch's default), weight first, with np.random.default_rng(rng).
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, out_features={out_features}")
        ### BEGIN SOLUTION
        self.in_features = in_features
        self.out_features = out_features
        generator = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(in_features)
        weight = generator.uniform(-bound, bound, size=(out_features, in_features))
        self.weight = Parameter(weight.astype(np.float32))
        if bias:
            self.bias = Parameter(generator.uniform(-bound, bound, size=out_features).astype(np.float32))
        else:
            self.bias = None
        ### END SOLUTION

    def forward(self, x):
        """y = x @ W.T + b for a Tensor x of shape (..., in_features); returns a Tensor."""
        ### BEGIN SOLUTION
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) got an input whose last "
                             f"dimension is {x.shape[-1]} (shape {x.shape}); expected {self.in_features}")
        out = x @ self.weight.T
        if self.bias is not None:
            out = out + self.bias
        return out
        ### END SOLUTION

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

# %% [markdown]
# ### Check: Linear against NumPy

# %%
layer = Linear(4, 3, rng=0)
assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,) and layer.weight.dtype == np.float32
assert np.all(np.abs(layer.weight.data) <= 0.5) and np.all(np.abs(layer.bias.data) <= 0.5), "bound is 1/sqrt(4)"
assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
x = Tensor(np.arange(8).reshape(2, 4))
y = layer(x)
assert isinstance(y, Tensor) and y.shape == (2, 3)
assert np.allclose(y.data, x.data @ layer.weight.data.T + layer.bias.data, atol=1e-6)
assert layer(Tensor(np.ones((5, 7, 4)))).shape == (5, 7, 3), "leading dimensions broadcast"
assert Linear(4, 3, rng=0).weight.data.tolist() == layer.weight.data.tolist(), "same seed, same weights"
assert Linear(4, 3, bias=False, rng=0).bias is None
try:
    layer(Tensor(np.ones((2, 5))))
    raise AssertionError("a (2, 5) input to Linear(4, 3) should raise ValueError")
except ValueError as err:
    print("shape check ok:", err)
print(layer, "ok")

# %% [markdown]
# ## 5. Dropout: regularisation that must switch off
#
# During training, `Dropout(p)` sets each element of its input to zero with probability `p`,
# so the network cannot rely on any single unit. At inference it must do nothing.
#
# If training drops a fraction `p`, the next layer sees on average `(1 - p)` times the signal
# it will see at inference. **Inverted dropout** fixes the mismatch at training time: the kept
# elements are divided by `(1 - p)`, so the expected value of every element is unchanged and
# inference is the plain identity, with no extra work where latency matters. (PyTorch does
# exactly this.)
#
# - `Dropout(p=0.5, rng=None)`: raise `ValueError` unless `0 <= p <= 1`; keep `self.p` and, in
#   `self.rng`, the generator that `np.random.default_rng` makes of `rng`.
# - `forward(x)`: in evaluation mode (`self.training` False) or when `p == 0`, return `x`
#   unchanged. When `p == 1`, everything is dropped: return zeros of x's shape. Otherwise draw
#   `keep = self.rng.random(x.shape) >= p` (each element kept with probability `1 - p`) and
#   return `x * Tensor(mask)` where the mask holds `1 / (1 - p)` for kept elements and 0 for
#   dropped ones, in float32. Multiplying Tensors (not editing `x.data`) lets autograd flow
#   through the mask in module 06.

# %% tags=["export"]
class Dropout(Module):
    """Inverted dropout: `torch.nn.Dropout`.

    Dropout(p=0.5, rng=None). In training mode each element is zeroed with probability p and
    the survivors are scaled by 1/(1-p); in evaluation mode the input is returned unchanged.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        ### BEGIN SOLUTION
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)
        ### END SOLUTION

    def forward(self, x):
        """x with a random fraction p of its elements zeroed and the rest scaled by 1/(1-p)
        (training mode), or x itself (evaluation mode)."""
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = self.rng.random(x.shape) >= self.p
        mask = keep.astype(np.float32) / np.float32(1.0 - self.p)
        return x * Tensor(mask)
        ### END SOLUTION

    def extra_repr(self):
        return f"p={self.p}"

# %% [markdown]
# ### Check: Dropout

# %%
drop = Dropout(0.25, rng=0)
x = Tensor(np.ones((200, 100)))
out = drop(x).data
assert set(np.unique(out).tolist()) <= {0.0, np.float32(1 / 0.75)}, "kept elements are scaled by 1/(1-p)"
assert abs((out == 0).mean() - 0.25) < 0.02, f"about 25% should be dropped, got {(out == 0).mean():.3f}"
assert abs(out.mean() - 1.0) < 0.03, "inverted dropout keeps the mean"
assert drop.eval()(x) is x, "evaluation mode is the identity"
assert np.all(Dropout(1.0)(x).data == 0) and Dropout(0.0)(x) is x
for bad in (-0.1, 1.5):
    try:
        Dropout(bad)
        raise AssertionError(f"Dropout({bad}) should raise ValueError")
    except ValueError:
        pass
print("dropout ok")

# %% [markdown]
# ## 6. Sequential: composition
#
# Most networks are, at least in part, a chain: `Linear -> ReLU -> Dropout -> Linear`.
# `Sequential(*layers)` stores the layers in order and its `forward` feeds the output of each
# into the next.
#
# - Keep the layers in a list, `self.layers`, in the order given. A layer may be any callable:
#   a Module, module 02's `ReLU()`, or a plain function.
# - Register every layer that is a `Module` as a child named by its position, `"0"`, `"1"`,
#   ... (Python's `setattr` assigns an attribute whose name is a string such as
#   `str(index)`), as PyTorch does: parameters are then named `0.weight`, `2.bias`, and
#   `train()`/`eval()` reach the Dropouts inside. Non-Module
#   callables have no parameters and no mode, so they are not registered.

# %% tags=["export"]
class Sequential(Module):
    """Layers applied in order: `torch.nn.Sequential`.

    Sequential(*layers): layers may be Modules or any callables; Modules are registered as
    children "0", "1", ... by their position. seq[i] and len(seq) work as on a list.
    """

    def __init__(self, *layers):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = list(layers)
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Module):
                setattr(self, str(index), layer)
        ### END SOLUTION

    def forward(self, x):
        """Apply each layer to the output of the previous one; return the last output."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

# %% [markdown]
# ### Check: a small multi-layer perceptron
#
# `relu` below is a stand-in for module 02's `ReLU` (any callable works in `Sequential`).

# %%
def relu(t):
    return Tensor(np.maximum(t.data, 0))


mlp = Sequential(Linear(64, 32, rng=1), relu, Dropout(0.5, rng=2), Linear(32, 10, rng=3))
assert [n for n, _ in mlp.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
assert sum(p.size for p in mlp.parameters()) == 64 * 32 + 32 + 32 * 10 + 10
batch = Tensor(np.random.default_rng(0).random((5, 64)))
mlp.eval()
assert not mlp[2].training, "eval() must reach the Dropout inside"
w0, b0, w3, b3 = (p.data for p in mlp.parameters())
expected = np.maximum(batch.data @ w0.T + b0, 0) @ w3.T + b3
assert np.allclose(mlp(batch).data, expected, atol=1e-5), "evaluation mode: a deterministic MLP"
copy = Sequential(Linear(64, 32), relu, Dropout(0.5), Linear(32, 10)).eval()
copy.load_state_dict(mlp.state_dict())
assert np.allclose(copy(batch).data, mlp(batch).data), "a state_dict round-trip reproduces the model"
print(mlp)
print("Sequential ok, output shape", mlp(batch).shape)

# %% [markdown]
# ## 7. Systems analysis: where the memory of a model lives
#
# Run the cell below. It measures, on your machine:
#
# 1. the parameter memory and forward time of a square `Linear(w, w)` as the width `w` grows,
#    and from the measured bytes per parameter, what a 1B-parameter model needs;
# 2. how the scale of the activations evolves through a stack of 12 `Linear` + ReLU layers,
#    for three initialisations: yours (PyTorch's default), standard normal weights, and
#    Kaiming-normal (`std = sqrt(2 / in_features)`, designed for ReLU);
# 3. what Dropout costs in training mode: the time of the mask and its memory.
#
# Read the numbers it prints before answering the questions at the end.

# %% tags=["analysis"]
import time


def _median_seconds(fn, repeats=5):
    """Median wall time of fn() over a few runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


batch_size = 64
print(f"{'width':>6} {'parameters':>12} {'MB':>8} {'forward ms':>11} {'GFLOP/s':>8}")
total_params = total_bytes = 0
for width in (128, 256, 512, 1024, 2048):
    fc = Linear(width, width, rng=0)
    n_params = sum(p.size for p in fc.parameters())
    n_bytes = sum(p.memory_footprint() for p in fc.parameters())
    total_params, total_bytes = total_params + n_params, total_bytes + n_bytes
    xb = Tensor(np.ones((batch_size, width)))
    seconds = _median_seconds(lambda: fc(xb), repeats=3)
    flops = 2 * batch_size * width * width
    print(f"{width:>6} {n_params:>12,} {n_bytes / 1e6:>8.2f} {seconds * 1e3:>11.3f} {flops / seconds / 1e9:>8.2f}")

bytes_per_param = total_bytes / total_params
weights_gb = 1e9 * bytes_per_param / 1e9
print(f"\nmeasured {bytes_per_param:.1f} bytes per parameter -> a 1B-parameter model: "
      f"{weights_gb:.1f} GB of weights; training with Adam (weights + gradients + 2 moments): "
      f"{4 * weights_gb:.1f} GB, before any activation")

# 2. Activation scale through 12 layers of width 256 (standard deviation after each ReLU).
rng = np.random.default_rng(0)
inputs = Tensor(rng.standard_normal((256, 256)))
inits = {
    "PyTorch default U(+-1/sqrt(n))": lambda n: rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), (n, n)),
    "standard normal N(0, 1)": lambda n: rng.standard_normal((n, n)),
    "Kaiming normal N(0, 2/n)": lambda n: rng.standard_normal((n, n)) * np.sqrt(2 / n),
}
print(f"\n{'initialisation':<32} activation std after layers 1, 4, 8, 12")
for label, draw in inits.items():
    h, stds = inputs, []
    for depth in range(1, 13):
        fc = Linear(256, 256, bias=False)
        fc.load_state_dict({"weight": draw(256)})
        h = relu(fc(h))
        stds.append(float(h.data.std()))
    print(f"{label:<32} " + "  ".join(f"{stds[d - 1]:10.3g}" for d in (1, 4, 8, 12)))

# 3. Dropout in training mode: the mask is as large as the activation.
act = Tensor(np.ones((256, 4096)))
drop = Dropout(0.1, rng=0)
identity_s = _median_seconds(lambda: act * 1.0)
dropout_s = _median_seconds(lambda: drop(act))
mask_bytes = act.size * np.dtype(np.float32).itemsize
print(f"\nDropout on a (256, 4096) activation: {dropout_s * 1e3:.2f} ms vs {identity_s * 1e3:.2f} ms for a "
      f"plain multiply ({dropout_s / identity_s:.1f}x); the mask is {mask_bytes / 1e6:.1f} MB, "
      f"kept for the backward pass in module 06")

# %% [markdown]
# ## 8. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 7 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (parameter memory at scale).**
# Section 7 measured the parameter memory of `Linear(w, w)` as the width grows. How does it
# grow with `w`, and why? A model has 1 billion parameters: how much memory do its weights need
# in float32, and how much does training it with Adam need? What breaks first on a single 16 GB
# GPU, and what do production frameworks do about it?

# %% [markdown] tags=["answer"] question="q1"
# `Linear(w, w)` holds `w*w + w` parameters, so its memory grows quadratically: doubling the
# width multiplies it by about 4 (section 7: 2048 wide is ~16.8 MB, 4x the 1024-wide layer).
# `memory_footprint()` summed over `parameters()` gives 4 bytes per float32 parameter, so 1B
# parameters are 4 GB of weights. Training with Adam also keeps a gradient and two moment
# estimates per parameter: 16 GB before a single activation, so a 16 GB GPU cannot even hold the
# training state; activations (which grow with batch size) come on top. Production systems use
# mixed precision (bf16/fp16 weights and activations, fp32 master copy), shard parameters,
# gradients and optimizer state across GPUs (ZeRO / FSDP), offload to CPU memory, and
# recompute activations (checkpointing). The forward cost grows as `2*B*w*w` FLOPs, also
# quadratic in width, so bigger layers are compute-bound while small ones are overhead-bound.

# %% [markdown]
# **Question 2 (initialisation).**
# Your `Linear` draws its weights from `U(-1/sqrt(in_features), 1/sqrt(in_features))`. Using
# the activation scales section 7 measured through 12 layers, explain why the bound depends on
# `in_features`, what happens with standard normal weights, and why Kaiming initialisation
# behaves differently from PyTorch's default under ReLU. What does this mean for training a
# 100-layer network in float16?

# %% [markdown] tags=["answer"] question="q2"
# Each output of `x @ W.T` sums `in_features` products, so its variance is
# `in_features * Var(w) * Var(x)`: the bound 1/sqrt(in_features) cancels the width. With N(0, 1)
# weights every layer multiplies the variance by about n/2 = 128 (ReLU keeps half), so the
# measured std explodes by orders of magnitude in 12 layers. PyTorch's default has
# Var(w) = 1/(3n), so with ReLU the variance shrinks by about 6x per layer and the signal
# vanishes; Kaiming normal, Var(w) = 2/n, compensates exactly for ReLU and the std stays near
# 1. In a 100-layer float16 network (max ~65504, smallest normal ~6e-5) an exploding signal
# overflows to inf and a vanishing one underflows to 0, so gradients become NaN or zero:
# initialisation (plus normalisation layers and residual connections) is what makes deep
# low-precision training possible. The cost is zero at run time, it is all in the choice.

# %% [markdown]
# **Question 3 (modes and checkpoints).**
# Dropout behaves differently in training and evaluation mode. What goes wrong if a model is
# served with `training=True`, and why does inverted dropout scale during training instead of
# at inference? Your `load_state_dict` checks every key and shape before writing anything: why
# does that matter when restoring a checkpoint of a large model after a crash, and what does
# section 7 say about the memory cost of Dropout during training?

# %% [markdown] tags=["answer"] question="q3"
# Served in training mode, `Dropout.forward` keeps drawing masks: predictions become random (the
# same input gives different outputs) and noisier; forgetting `model.eval()` is a classic
# production bug, which is why `train()` must reach every descendant. Inverted dropout divides
# the kept units by (1-p) during training so the expected activation is unchanged and inference
# is the identity: no extra multiply where latency and cost per request matter. `load_state_dict`
# validates names and shapes first, then copies in place: a checkpoint from a different
# architecture fails with a clear message instead of silently leaving some layers loaded and
# others random, which could waste days of GPU time or ship a broken model; copying in place
# also keeps optimizer references valid. Section 7 shows the mask is as large as the activation
# (4 MB for 256x4096 in float32) and costs more than a plain multiply, and it must be kept for the
# backward pass: dropout adds activation memory proportional to batch x width.
