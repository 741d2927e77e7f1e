# %% [markdown]
# # Module 01: Tensor
#
# Every number a neural network touches lives in a tensor: the pixels of an image, the weights
# of a layer, the gradients that train it. In this module you build `Tensor`, the data structure
# that the rest of TinyTorch (layers, autograd, attention, transformers) is made of.
#
# **What you build:** a `Tensor` class over a NumPy array, with arithmetic that broadcasts,
# matrix multiplication that checks its shapes, reshaping, reductions and indexing.
#
# **Why it matters for systems:** a tensor is a *view of a block of memory*. How big that block
# is, whether an operation copies it or reuses it, and how many times it is read decide the
# speed and the memory of every model you will ever train. A 1B-parameter model in float32 is
# 4 GB of weights before a single activation or gradient is stored.
#
# **PyTorch equivalent:** `torch.Tensor`. The names you implement here (`shape`, `dtype`,
# `reshape`, `transpose`, `sum(axis, keepdims)`, `@`) mean what they mean in PyTorch, so what
# you learn carries over.
#
# **How to work:** fill in every `raise NotImplementedError(...)` of the class below, run the
# check cells after it, then run `pytest --module 01_tensor` in a terminal to see your points.

# %% [markdown]
# ## 1. Storage: data, shape, dtype, memory
#
# A `Tensor` wraps an `np.ndarray` in `self.data`. We store **float32** by default, as PyTorch
# does: half the memory of NumPy's default float64, and all the precision deep learning needs.
# Integer data (class labels, token ids) keeps an integer dtype when you ask for it with
# `dtype=np.int64`.
#
# Construction converts lists and numbers into a new array, but a NumPy array that already has
# the right dtype is used as it is, without a copy (PyTorch's `torch.from_numpy` does the same):
# every operation below builds its result array once and wraps it, instead of paying for a
# second copy of every result.
#
# `memory_footprint()` returns the bytes the elements occupy: the number of elements times the
# bytes per element (`itemsize`). NumPy already knows this number.
#
# From module 06 on, a tensor also remembers how it was computed; the attributes autograd
# needs (`requires_grad`, `grad`, `grad_fn`) are created here and stay unused until then.
#
# ## 2. Element-wise arithmetic and broadcasting
#
# `a + b` adds element by element. When the shapes differ, NumPy **broadcasts**: it lines the
# shapes up from the right, and every dimension must either match or be 1 (a 1 is stretched
# without copying). A bias of shape `(4,)` added to a batch of shape `(32, 4)` is used 32 times
# but stored once: broadcasting is a *memory* feature, not only a convenience.
#
# Each operation returns a **new** Tensor: it allocates a new block of memory. Python calls the
# *reflected* form (`__radd__`) when the left operand is a plain number: `2 * t` becomes
# `t.__rmul__(2)`. Use `_as_array(other)` so that Tensors and plain numbers both work.
#
# ## 3. Matrix multiplication
#
# `a @ b` is the operation that dominates the cost of neural networks: multiplying an
# `(m, k)` by a `(k, n)` matrix takes `2*m*k*n` floating-point operations. NumPy hands it to a
# BLAS library that uses the CPU's vector units and caches far better than a Python loop could.
# The inner dimensions must agree; when they do not, raise a `ValueError` whose message shows
# both shapes: a good error saves your future self an hour of debugging.
#
# ## 4. Views: reshape and transpose
#
# `reshape` changes how the same elements are grouped; one dimension may be `-1`, meaning
# "whatever makes the sizes agree". `transpose(dim0, dim1)` swaps two dimensions (by default the
# last two, the matrix transpose). In NumPy both usually return **views**: new shape and strides
# over the *same* memory, at no cost. A transposed array is no longer contiguous, which is why
# some operations on it are slower (section 7 measures this).
#
# ## 5. Reductions and indexing
#
# `sum`, `mean` and `max` collapse an `axis` (or all of them when `axis=None`); with
# `keepdims=True` the collapsed axis stays with size 1, so the result still broadcasts against
# the input (you will need that for softmax in module 02). Indexing (`t[0]`, `t[:, 1:3]`) returns
# a Tensor of the selected elements.

# %% tags=["export"]
import numpy as np


def _as_array(value):
    """The NumPy array behind a Tensor, or the value itself (a number or an array)."""
    return value.data if isinstance(value, Tensor) else value


class Tensor:
    """An n-dimensional array of numbers: TinyTorch's `torch.Tensor`.

    Tensor(data, dtype=None, requires_grad=False)

    data: a number, a (nested) list, a NumPy array or another Tensor. An array of the right
        dtype is shared, not copied (like torch.from_numpy); anything else is converted.
    dtype: the NumPy dtype to store; float32 when not given.
    requires_grad: whether autograd (module 06) should compute a gradient for this tensor.
    """

    def __init__(self, data, dtype=None, requires_grad=False):
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        # asarray: no copy when `data` is already an array of this dtype, so wrapping the
        # result of a NumPy operation costs nothing.
        self.data = np.asarray(data, dtype=np.float32 if dtype is None else dtype)
        ### END SOLUTION
        self.requires_grad = requires_grad
        self.grad = None       # filled in by backward() from module 06 on
        self.grad_fn = None    # the operation that produced this tensor (module 06)

    # --- 1. what is stored ----------------------------------------------------------------
    @property
    def shape(self):
        """The size of each dimension, a tuple like (batch, features)."""
        return self.data.shape

    @property
    def size(self):
        """The number of elements: the product of the shape."""
        return self.data.size

    @property
    def dtype(self):
        """The NumPy dtype of the elements (float32 unless asked otherwise)."""
        return self.data.dtype

    @property
    def ndim(self):
        """The number of dimensions (0 for a scalar, 2 for a matrix)."""
        return self.data.ndim

    def numpy(self):
        """The underlying NumPy array (shared, not copied, like torch.Tensor.numpy())."""
        return self.data

    def memory_footprint(self):
        """The bytes occupied by the elements: number of elements * bytes per element."""
        ### BEGIN SOLUTION
        return self.data.nbytes
        ### END SOLUTION

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data.tolist()}, dtype={self.dtype}{grad})"

    def __len__(self):
        return len(self.data)

    # --- 2. element-wise arithmetic, broadcasting -----------------------------------------
    def __add__(self, other):
        """self + other, element-wise with broadcasting."""
        ### BEGIN SOLUTION
        return Tensor(self.data + _as_array(other), dtype=self.dtype)
        ### END SOLUTION

    def __sub__(self, other):
        """self - other, element-wise with broadcasting."""
        ### BEGIN SOLUTION
        return Tensor(self.data - _as_array(other), dtype=self.dtype)
        ### END SOLUTION

    def __mul__(self, other):
        """self * other, element-wise with broadcasting (not a matrix product)."""
        ### BEGIN SOLUTION
        return Tensor(self.data * _as_array(other), dtype=self.dtype)
        ### END SOLUTION

    def __truediv__(self, other):
        """self / other, element-wise with broadcasting."""
        ### BEGIN SOLUTION
        return Tensor(self.data / _as_array(other), dtype=self.dtype)
        ### END SOLUTION

    def __rsub__(self, other):
        """other - self, when the left operand is a number: 1 - t."""
        ### BEGIN SOLUTION
        return Tensor(_as_array(other) - self.data, dtype=self.dtype)
        ### END SOLUTION

    def __rtruediv__(self, other):
        """other / self, when the left operand is a number: 1 / t."""
        ### BEGIN SOLUTION
        return Tensor(_as_array(other) / self.data, dtype=self.dtype)
        ### END SOLUTION

    def __neg__(self):
        """-self."""
        ### BEGIN SOLUTION
        return Tensor(-self.data, dtype=self.dtype)
        ### END SOLUTION

    # Addition and multiplication commute: their reflected forms are the same functions.
    __radd__ = __add__
    __rmul__ = __mul__

    # --- 3. matrix multiplication ---------------------------------------------------------
    def matmul(self, other):
        """The matrix product self @ other, NumPy's matmul rules (batched over leading dims).

        Raises ValueError, naming both shapes, when either operand is 0-d or the inner
        dimensions differ.
        """
        ### BEGIN SOLUTION
        a, b = self.data, _as_array(other)
        b = np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs at least 1-d operands, got shapes {a.shape} and {b.shape}")
        inner_left = a.shape[-1]
        inner_right = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if inner_left != inner_right:
            raise ValueError(
                f"matmul shape mismatch: {a.shape} @ {b.shape}; the last dimension of the left "
                f"operand ({inner_left}) must equal the "
                f"{'first' if b.ndim == 1 else 'second-to-last'} dimension of the right ({inner_right})"
            )
        return Tensor(a @ b, dtype=self.dtype)
        ### END SOLUTION

    def __matmul__(self, other):
        return self.matmul(other)

    # --- 4. views: reshape and transpose --------------------------------------------------
    def reshape(self, *shape):
        """The same elements in a new shape; one dimension may be -1 (inferred).

        Accepts t.reshape(2, 3) and t.reshape((2, 3)). Raises ValueError when the number of
        elements would change.
        """
        ### BEGIN SOLUTION
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        known = int(np.prod([d for d in shape if d != -1]))
        if shape.count(-1) > 1 or (-1 in shape and (known == 0 or self.size % known)) or (
            -1 not in shape and known != self.size
        ):
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} ({self.size} elements) into {shape}")
        return Tensor(self.data.reshape(shape), dtype=self.dtype)
        ### END SOLUTION

    def transpose(self, dim0=-2, dim1=-1):
        """Swap two dimensions (by default the last two). A tensor with fewer than two
        dimensions is returned unchanged, as its matrix transpose is itself."""
        ### BEGIN SOLUTION
        if self.ndim < 2:
            return Tensor(self.data, dtype=self.dtype)
        return Tensor(np.swapaxes(self.data, dim0, dim1), dtype=self.dtype)
        ### END SOLUTION

    @property
    def T(self):
        """The matrix transpose, self.transpose(-2, -1)."""
        return self.transpose()

    # --- 5. reductions and indexing -------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over `axis` (an int, a tuple of ints, or None for all elements)."""
        ### BEGIN SOLUTION
        return Tensor(self.data.sum(axis=axis, keepdims=keepdims), dtype=self.dtype)
        ### END SOLUTION

    def mean(self, axis=None, keepdims=False):
        """Arithmetic mean over `axis` (None for all elements)."""
        ### BEGIN SOLUTION
        return Tensor(self.data.mean(axis=axis, keepdims=keepdims), dtype=self.dtype)
        ### END SOLUTION

    def max(self, axis=None, keepdims=False):
        """Largest element over `axis` (None for all elements)."""
        ### BEGIN SOLUTION
        return Tensor(self.data.max(axis=axis, keepdims=keepdims), dtype=self.dtype)
        ### END SOLUTION

    def __getitem__(self, key):
        """Indexing and slicing, NumPy's rules: t[0], t[:, 1:3], t[mask]."""
        ### BEGIN SOLUTION
        if isinstance(key, Tensor):
            key = key.data
        return Tensor(self.data[key], dtype=self.dtype)
        ### END SOLUTION

# %% [markdown]
# ## 6. Check your work
#
# Run these cells. Each one checks a small case against NumPy; when one fails, its message says
# what was expected. The graded tests (`pytest --module 01_tensor`) check many more, with random
# shapes.

# %%
t = Tensor([[1, 2, 3], [4, 5, 6]])
assert t.shape == (2, 3) and t.dtype == np.float32 and t.size == 6 and t.ndim == 2
assert t.memory_footprint() == 6 * 4, f"expected 24 bytes, got {t.memory_footprint()}"
print("storage ok:", t)

# %%
a = Tensor([[1.0, 2.0], [3.0, 4.0]])
b = Tensor([10.0, 20.0])
assert np.allclose((a + b).data, [[11, 22], [13, 24]]), (a + b)
assert np.allclose((1 - a).data, [[0, -1], [-2, -3]])
assert np.allclose((a * 2).data, a.data * 2) and np.allclose((2 / a).data, 2 / a.data)
assert np.allclose((-a).data, -a.data)
print("arithmetic ok")

# %%
x = Tensor(np.arange(6).reshape(2, 3))
w = Tensor(np.ones((3, 4)))
assert (x @ w).shape == (2, 4) and np.allclose((x @ w).data, x.data @ w.data)
try:
    x @ x
    raise AssertionError("x @ x with shapes (2, 3) and (2, 3) should raise ValueError")
except ValueError as err:
    print("matmul ok; the error reads:", err)

# %%
v = Tensor(np.arange(12))
assert v.reshape(3, -1).shape == (3, 4) and v.reshape((2, 6)).shape == (2, 6)
assert x.transpose().shape == (3, 2) and np.allclose(x.T.data, x.data.T)
assert x.sum().data == 15 and np.allclose(x.sum(axis=0).data, [3, 5, 7])
assert x.mean(axis=1, keepdims=True).shape == (2, 1) and x.max().data == 5
assert np.allclose(x[:, 1:].data, [[1, 2], [4, 5]])
print("views, reductions and indexing ok")

# %% [markdown]
# ## 7. Systems analysis: copies, views and memory
#
# Run the cell below. It measures, on your machine:
#
# 1. how the memory of a square float32 matrix grows with its side (quadratically),
# 2. what a reshape costs compared with a real copy (a view costs almost nothing),
# 3. how a matrix product's time grows with size (cubically, in FLOPs).
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


print(f"{'side':>6} {'MB (float32)':>13} {'MB (float64)':>13}")
for side in (256, 512, 1024, 2048):
    m32 = Tensor(np.zeros((side, side)))
    m64 = Tensor(np.zeros((side, side)), dtype=np.float64)
    print(f"{side:>6} {m32.memory_footprint() / 1e6:>13.1f} {m64.memory_footprint() / 1e6:>13.1f}")

big = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
view_s = _median_seconds(lambda: big.reshape(512, 2048))
copy_s = _median_seconds(lambda: big.copy())
print(f"reshape (a view): {view_s * 1e6:9.1f} us   copy: {copy_s * 1e6:9.1f} us   "
      f"-> the copy costs {copy_s / view_s:,.0f}x the view")

for n in (64, 128, 256, 512):
    left = Tensor(np.random.default_rng(1).standard_normal((n, n)))
    seconds = _median_seconds(lambda: left @ left)
    print(f"matmul {n:>4}x{n:<4}: {seconds * 1e3:8.3f} ms, {2 * n**3 / seconds / 1e9:6.2f} GFLOP/s")

# %% [markdown]
# ## 8. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 7 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (memory).** Section 7 measured the memory of float32 and float64 matrices.
# A model has 1 billion parameters. How much memory do its weights take in float32, float64 and
# float16? Training with Adam also stores a gradient and two moment estimates per parameter:
# how much memory is that in float32, and what does it mean for which GPUs can train it?

# %% [markdown] tags=["answer"] question="q1"
# One billion parameters take 4 GB in float32 (4 bytes each, exactly `memory_footprint()`'s
# `nbytes`), 8 GB in float64 and 2 GB in float16. Training with Adam keeps weights, gradients
# and two moments: 4 x 4 GB = 16 GB in float32 before any activation is stored, so a 16 GB GPU
# cannot train it without mixed precision, sharding the optimizer state (ZeRO) or offloading.
# Memory grows linearly with parameters but the activations grow with batch x sequence too.

# %% [markdown]
# **Question 2 (views and copies).** Your `reshape` and `transpose` return new Tensors. Using the
# timings of section 7, explain the difference between a view and a copy. When does NumPy have
# to copy, and why does a transposed matrix make some later operations slower?

# %% [markdown] tags=["answer"] question="q2"
# A view is a new shape and strides over the same buffer: section 7 shows reshape costing
# microseconds while a copy of a 4 MB matrix costs far more, proportional to its bytes.
# NumPy must copy when the requested layout cannot be expressed with strides over the existing
# buffer, e.g. reshaping a transposed (non-contiguous) array. A transpose swaps strides, so
# walking it row by row jumps through memory and defeats caches and vector loads; BLAS may copy
# it into a contiguous buffer first. PyTorch exposes the same idea with `.contiguous()`.

# %% [markdown]
# **Question 3 (cost of operations).** Section 7 timed matrix products of growing size. How does
# the time grow with n, and why? Broadcasting a `(4,)` bias over a `(32, 4)` batch: how many
# times is the bias stored, and how many times is it read? What would break first if the batch
# were 1,000,000 rows?

# %% [markdown] tags=["answer"] question="q3"
# An n x n matmul does 2n^3 FLOPs, so doubling n multiplies the time by about 8 once the
# matrices no longer fit in cache; small sizes are dominated by call overhead and reach lower
# GFLOP/s. The broadcast bias is stored once and read 32 times, with no copy. With a million
# rows, the (1,000,000 x 4) result is 16 MB per operation: every element-wise op allocates a
# new array, so memory traffic and temporary allocations, not arithmetic, dominate; in-place or
# fused operations avoid that.
