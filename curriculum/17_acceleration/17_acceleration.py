# %% [markdown]
# # Module 17: Acceleration
#
# Module 14 taught you to find where the time goes. This module makes it go faster without
# changing the answer. The same arithmetic can run 1,000x faster or slower depending on *how*
# it is organised: in which language the inner loop runs, how many times each byte crosses
# between memory and the processor, and whether the data the processor needs next is already
# in its cache. None of these tricks changes a single FLOP count; all of them change the time.
#
# **What you build** (every kernel checked against a slow, obviously correct version, and
# timed on your machine):
#
# - **Vectorization:** `gelu(x)` with whole-array NumPy operations instead of a Python loop,
#   and `matmul_broadcast(a, b)`, a matrix product with no Python loop at all that is still
#   far slower than BLAS (finding out why is half of this module).
# - **Operator fusion:** `fusion_traffic(program, ...)` counts the bytes an unfused chain of
#   element-wise kernels moves, and `fused_bias_gelu(x, bias)` computes `gelu(x + bias)` block
#   by block in a cache-sized scratch buffer, never materialising the intermediates.
# - **Cache-friendly tiling:** `matmul_tiled(a, b, tile)`, a blocked matrix product, and a
#   measured sweep of tile sizes.
# - **im2col:** `im2col`/`col2im` (PyTorch's `F.unfold`/`F.fold`) and `conv2d_im2col`, which
#   turns a convolution into one big matrix product.
# - **The roofline:** `measure_peak_flops`, `measure_bandwidth` and `roofline`: the achieved
#   FLOP/s and arithmetic intensity (FLOPs per byte) of *your* kernels against this machine's
#   measured ceilings, as a table.
#
# **Why it matters for systems:** every fast ML framework is these ideas applied relentlessly.
# PyTorch calls BLAS/oneDNN/cuBLAS for matrix products (vectorization and tiling written by
# experts in assembly), `torch.compile` (TorchInductor) fuses chains of element-wise operations
# into one generated kernel, cuDNN picks between im2col-style GEMM, Winograd and FFT
# convolutions, and FlashAttention is tiling plus fusion applied to attention. The roofline
# model is how engineers decide which of these a kernel needs.
#
# **PyTorch equivalent:** `torch.matmul` (BLAS), `torch.nn.functional.gelu(x, approximate="tanh")`,
# `torch.compile` (fusion), `torch.nn.functional.unfold`/`fold` (im2col/col2im),
# `torch.nn.functional.conv2d`, `torch.utils.benchmark` and the roofline view of NVIDIA Nsight
# Compute or Intel Advisor.
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 17_acceleration` in a terminal to see your points. The
# analysis cells time things: run them on a quiet machine, and read the spread they print.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.perf.profiling import measure_latency

# %%
import time

from tinytorch.perf.profiling import peak_memory  # for the checks and the analysis (not exported)

rng = np.random.default_rng(17)

# %% [markdown]
# ## 1. Vectorization: move the loop out of Python
#
# Python executes one bytecode instruction at a time, each a few tens of nanoseconds: a
# type check, a dictionary lookup, an object allocated for every intermediate float. A CPU
# core can do 16-32 floating-point operations in *one* nanosecond with its SIMD units (one
# instruction on 8 or 16 floats at once). **Vectorization** means expressing a computation as
# operations on whole arrays, so that the loop runs in compiled C (NumPy's ufuncs) or in a
# hand-tuned library (BLAS for matrix products) instead of in the interpreter.
#
# Below are the two baselines you will beat. They are given, and they are the *definition*
# of correct: every fast version in this module is checked against them.
#
# - `matmul_naive(a, b)`: the textbook triple loop, `c[i][j] = sum_p a[i][p] * b[p][j]`, in
#   pure Python on lists (`tolist()` first, because indexing a NumPy array element by element
#   is even slower than a list: each `a[i, p]` builds a NumPy scalar object).
# - `gelu_loop(x)`: the GELU activation (tanh approximation, as in GPT-2 and
#   `F.gelu(x, approximate="tanh")`), one element at a time with `math.tanh`:
#
#   `gelu(v) = 0.5 * v * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 * v**3)))`

# %%
def matmul_naive(a, b):
    """The triple-loop matrix product in pure Python (the slow, obviously correct baseline)."""
    rows_a, cols_b = np.asarray(a).tolist(), np.asarray(b).T.tolist()
    out = [[0.0] * len(cols_b) for _ in rows_a]
    for i, row in enumerate(rows_a):
        for j, col in enumerate(cols_b):
            total = 0.0
            for p in range(len(row)):
                total += row[p] * col[p]
            out[i][j] = total
    return np.array(out, dtype=np.result_type(a, b)).reshape(len(rows_a), len(cols_b))


def gelu_loop(x):
    """GELU (tanh approximation) one element at a time in Python (the baseline)."""
    x = np.asarray(x)
    c = math.sqrt(2.0 / math.pi)
    values = [0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v * v * v))) for v in x.ravel().tolist()]
    return np.array(values, dtype=x.dtype).reshape(x.shape)

# %% [markdown]
# ### Exercise: `gelu(x)`, vectorized
#
# Write `gelu(x)` with whole-array NumPy operations (`np.tanh`, `*`, `+`), no Python loop. It
# takes a NumPy array of floats of any shape and returns an array of the same shape **and the
# same dtype** (float32 in, float32 out: multiplying a float32 array by a Python float keeps
# float32 in NumPy 2). `GELU_C = sqrt(2 / pi)` is given, as a Python float: a NumPy scalar
# such as `np.sqrt(2 / np.pi)` is a float64 and would silently promote your float32 result to
# float64 (twice the bytes, the opposite of acceleration).
#
# One trap measured in section 7: write the cube as `h * h * h`, not `h ** 3`. NumPy's
# power function takes a general (slow) path for float32; multiplication is one instruction.
#
# ### Exercise: `matmul_broadcast(a, b)`, a matrix product without any Python loop
#
# Broadcasting can express the whole triple loop in one line: make `a` shape `(m, k, 1)` and
# `b` shape `(1, k, n)`, multiply them into an `(m, k, n)` array of every product
# `a[i, p] * b[p, j]`, and sum over the middle axis. Raise `ValueError` (with both shapes in
# the message) if `a` and `b` are not 2-D or their inner dimensions differ. The result's dtype
# is NumPy's (`np.result_type(a, b)` for float inputs).
#
# It has no Python loop, yet section 7 shows it is far slower than `a @ b`. Count the bytes
# it writes before you run the analysis: an `(m, k, n)` temporary for an `(m, n)` answer.

# %% tags=["export"]
GELU_C = math.sqrt(2.0 / math.pi)


def gelu(x):
    """GELU, tanh approximation, on a whole array: 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))).

    Same shape and dtype as x. PyTorch: torch.nn.functional.gelu(x, approximate="tanh").
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    inner = GELU_C * (x + 0.044715 * (x * x * x))  # x*x*x: float32 `**` takes a slow path
    return 0.5 * x * (1.0 + np.tanh(inner))
    ### END SOLUTION


def matmul_broadcast(a, b):
    """(m, k) @ (k, n) as one broadcast multiply, (m, k, 1) * (1, k, n), summed over k.

    No Python loop, but an (m, k, n) temporary: vectorized is not the same as fast.
    ValueError unless both are 2-D with matching inner dimensions.
    """
    ### BEGIN SOLUTION
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_broadcast needs (m, k) and (k, n) arrays, got {a.shape} and {b.shape}")
    return (a[:, :, None] * b[None, :, :]).sum(axis=1)
    ### END SOLUTION

# %% [markdown]
# ### Check: the vectorized kernels agree with the loops

# %%
x = rng.standard_normal((37, 5)).astype(np.float32)
got = gelu(x)
assert got.shape == x.shape and got.dtype == np.float32, (
    f"gelu(float32 array of shape {x.shape}) returned {got.dtype} of shape {got.shape}; a NumPy float64 "
    f"scalar (np.sqrt(...), np.pi) promotes float32 arrays: use Python floats such as GELU_C")
assert np.allclose(got, gelu_loop(x), rtol=1e-5, atol=1e-6), "gelu differs from gelu_loop"
assert abs(float(gelu(np.array([1.0]))[0]) - 0.8411919906) < 1e-9, "gelu(1.0) is 0.84119..."

a, b = rng.standard_normal((13, 7)), rng.standard_normal((7, 9))
got = matmul_broadcast(a, b)
assert got.shape == (13, 9), f"matmul_broadcast returned shape {got.shape}, expected (13, 9)"
assert np.allclose(got, matmul_naive(a, b)), \
    f"matmul_broadcast differs from the triple loop by up to {np.abs(got - matmul_naive(a, b)).max():.3g}"
assert np.allclose(matmul_naive(a, b), a @ b), "the given baseline and NumPy agree"

try:
    matmul_broadcast(a, a)
    raise AssertionError("matmul_broadcast((13, 7), (13, 7)) must raise ValueError")
except ValueError as err:
    print("shape mismatch:", err)
print("vectorized kernels agree with the loops")

# %% [markdown]
# ## 2. Operator fusion: stop moving intermediates through memory
#
# Write `gelu(x + bias)` in NumPy and each operator is its own **kernel**: a loop that reads
# its whole input arrays from memory and writes a whole new output array back. `gelu(x + bias)`
# is ten such kernels (add the bias, then multiply, multiply, multiply, add, multiply, tanh,
# add, multiply, multiply). For an activation of 4096 x 1024 float32 (16 MB), each kernel
# reads and writes 16 MB or more: far too much for the CPU's caches (a few MB), so every one
# goes to main memory, where moving a float costs much more than computing with it.
#
# A **fused** kernel does all ten operations on one element (or one small block) while it
# sits in registers or cache, then writes only the final result. Same FLOPs, a fraction of the
# bytes. That is what `torch.compile` does to chains of element-wise operations (TorchInductor
# generates one loop for the whole chain), and what cuDNN's and XLA's fused kernels do.
#
# **Counting the traffic.** Describe an unfused chain as a *program*: a list of kernels, each a
# pair `(output_name, input_names)`. This one is `bias_gelu_unfused` below, kernel by kernel:

# %% tags=["export"]
BIAS_GELU_PROGRAM = [
    ("h", ("x", "bias")),   # h = x + bias
    ("c", ("h",)),          # c = h * h          (h read once: both operands are the same array)
    ("c", ("c", "h")),      # c = c * h          h cubed
    ("c", ("c",)),          # c = c * 0.044715
    ("c", ("h", "c")),      # c = h + c
    ("c", ("c",)),          # c = c * GELU_C
    ("c", ("c",)),          # c = tanh(c)
    ("c", ("c",)),          # c = c + 1
    ("c", ("c", "h")),      # c = c * h
    ("y", ("c",)),          # y = c * 0.5
]


def bias_gelu_unfused(x, bias):
    """gelu(x + bias) the way eager NumPy (or eager PyTorch) runs it: one kernel per operator,
    each reading and writing whole arrays (the kernels of BIAS_GELU_PROGRAM, in order)."""
    h = x + bias
    c = h * h
    c = c * h
    c = c * 0.044715
    c = h + c
    c = c * GELU_C
    c = np.tanh(c)
    c = c + 1.0
    c = c * h
    return c * 0.5

# %% [markdown]
# ### Exercise: `fusion_traffic(program, input_numel, out_numel, itemsize)`
#
# The model (the one used to reason about GPU kernels): an **unfused** kernel reads each of
# its distinct inputs from memory once and writes its output once. A **fused** kernel reads
# each *external* input of the program once (a name that no kernel of the program produces:
# `x` and `bias` above) and writes only the **last** kernel's output.
#
# - `program`: list of `(output_name, input_names)` as above.
# - `input_numel`: dict, external input name -> number of elements (`{"x": R * D, "bias": D}`).
# - `out_numel`: the number of elements of every kernel's output (an element-wise chain:
#   they all have the broadcast shape, `R * D` here).
# - `itemsize`: bytes per element (4 for float32).
#
# Count the elements read by each kernel (each distinct input name once per kernel, its size
# from `input_numel` if external, otherwise `out_numel`) and written (`out_numel` per kernel).
# Return a dict of Python ints, in bytes:
#
# - `"unfused"`: all reads and writes of all kernels;
# - `"fused"`: the external inputs once each plus one output;
# - `"avoided"`: `unfused - fused`, the intermediate traffic fusion removes.
#
# Raise `ValueError` for an empty program.

# %% tags=["export"]
def fusion_traffic(program, input_numel, out_numel, itemsize):
    """Bytes moved by an element-wise program run unfused (each kernel reads its distinct inputs
    and writes its output) and fused (external inputs read once, final output written once).

    program: [(output_name, input_names), ...]; input_numel: {external input: elements};
    out_numel: elements of each kernel's output. Returns {"unfused", "fused", "avoided"} (ints).
    """
    ### BEGIN SOLUTION
    if not program:
        raise ValueError("fusion_traffic needs a program of at least one kernel")
    produced = {name for name, _ in program}

    def numel(name):
        return int(input_numel[name]) if name not in produced else int(out_numel)

    unfused = sum(sum(numel(name) for name in set(inputs)) + int(out_numel) for _, inputs in program)
    external = {name for _, inputs in program for name in inputs if name not in produced}
    fused = sum(int(input_numel[name]) for name in external) + int(out_numel)
    return {"unfused": unfused * itemsize, "fused": fused * itemsize, "avoided": (unfused - fused) * itemsize}
    ### END SOLUTION

# %% [markdown]
# Careful with one subtlety: `c` is produced by a kernel, so it is an intermediate even where
# it is read; `h` is read by four kernels, and unfused, each of those reads goes to memory.
#
# ### Exercise: `fused_bias_gelu(x, bias, out=None, block_rows=64)`
#
# NumPy cannot generate a fused loop for us (that needs a compiler: Numba, Triton,
# `torch.compile`), but we can get most of the benefit by hand: process `x` in **blocks of
# rows** small enough to stay in cache, and for each block run the whole chain **in place**
# in one scratch buffer, using the `out=` argument of NumPy's ufuncs
# (`np.multiply(buf, other, out=buf)`, `np.tanh(buf, out=buf)`, `buf *= 0.5`): the block is read from main
# memory once, the ten operations run on cached data, and the result is written once.
#
# - `x`: a 2-D float array `(R, D)`; `bias`: shape `(D,)`. Raise `ValueError` if the shapes do
#   not fit (`x` not 2-D, `bias` not of shape `(D,)`) or `block_rows < 1`.
# - `out`: where to write the result; allocate `np.empty_like(x)` when it is `None`. Return `out`.
# - Allocate at most **two** scratch buffers of `(block_rows, D)` for the whole call (not one
#   per block, and never a temporary of the full size of `x`). The graded test measures the
#   peak memory of your call with module 14's `peak_memory`.
# - The last block may be shorter than `block_rows`: use the first rows of the scratch buffers.
#
# Same values as `gelu(x + bias)`, same dtype as `x`.

# %% tags=["export"]
def fused_bias_gelu(x, bias, out=None, block_rows=64):
    """gelu(x + bias) for x (R, D), bias (D,), computed block by block of `block_rows` rows in
    scratch buffers reused for every block, so no full-size intermediate is ever allocated.

    Writes into `out` (allocated if None) and returns it. PyTorch: torch.compile fuses
    `F.gelu(x + bias, approximate="tanh")` into one kernel.
    """
    ### BEGIN SOLUTION
    x, bias = np.asarray(x), np.asarray(bias)
    if x.ndim != 2 or bias.shape != (x.shape[1],):
        raise ValueError(f"fused_bias_gelu needs x (R, D) and bias (D,), got {x.shape} and {bias.shape}")
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    if out is None:
        out = np.empty_like(x)
    rows = x.shape[0]
    block = min(block_rows, max(rows, 1))
    h_buf = np.empty((block, x.shape[1]), dtype=x.dtype)  # the biased input, reused by 4 kernels
    c_buf = np.empty_like(h_buf)                          # the running value of the chain
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        h, c = h_buf[: stop - start], c_buf[: stop - start]
        np.add(x[start:stop], bias, out=h)
        np.multiply(h, h, out=c)
        c *= h
        c *= 0.044715
        c += h
        c *= GELU_C
        np.tanh(c, out=c)
        c += 1.0
        c *= h
        np.multiply(c, 0.5, out=out[start:stop])
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check: the traffic of the bias-GELU program, and the fused kernel

# %%
R, D = 256, 128
traffic = fusion_traffic(BIAS_GELU_PROGRAM, {"x": R * D, "bias": D}, R * D, 4)
print("bias-GELU traffic in bytes:", traffic)
assert traffic["fused"] == (2 * R * D + D) * 4, "fused: read x and bias once, write y once"
assert traffic["unfused"] == (23 * R * D + D) * 4, "unfused: 13 full-size reads (+ bias) and 10 writes"
assert traffic["avoided"] == traffic["unfused"] - traffic["fused"]

x, bias = rng.standard_normal((R, D)).astype(np.float32), rng.standard_normal(D).astype(np.float32)
expected = gelu_loop(x + bias)
assert np.allclose(bias_gelu_unfused(x, bias), expected, rtol=1e-5, atol=1e-6)
for block_rows in (1, 7, 64, 1000):
    got = fused_bias_gelu(x, bias, block_rows=block_rows)
    assert got.shape == x.shape and got.dtype == np.float32, \
        f"block_rows={block_rows}: got {got.shape} {got.dtype}, expected {x.shape} float32"
    wrong = np.flatnonzero(~np.isclose(got, expected, rtol=1e-5, atol=1e-6).all(axis=1))
    assert wrong.size == 0, f"block_rows={block_rows}: rows {wrong[:5].tolist()}... differ from gelu(x + bias)"
buffer = np.empty_like(x)
assert fused_bias_gelu(x, bias, out=buffer) is buffer, "with out= given, write into it and return it"
fused_peak = peak_memory(lambda: fused_bias_gelu(x, bias, out=buffer, block_rows=16))
unfused_peak = peak_memory(lambda: bias_gelu_unfused(x, bias))
print(f"peak memory: unfused {unfused_peak:,} bytes, fused {fused_peak:,} bytes (x is {x.nbytes:,})")
assert fused_peak < x.nbytes / 2, "the fused kernel must not allocate full-size temporaries"

# %% [markdown]
# ## 3. Cache-friendly tiling
#
# Memory is a hierarchy: registers, L1 cache (tens of KB, a few cycles away), L2 (hundreds of
# KB to a few MB), L3 (shared, a few to tens of MB), then main memory (hundreds of cycles
# away). Hardware moves memory in **cache lines** of 64 bytes and keeps recently used lines.
# A kernel is fast when the data it touches next is already in cache:
#
# - **Spatial locality:** walk memory in the order it is laid out. A C-ordered (row-major)
#   array stores each row contiguously; reading along a row uses every byte of each line
#   fetched, reading down a column uses 4 bytes of each 64-byte line and throws the rest away.
# - **Temporal locality:** reuse data while it is still cached. A matrix product does `2mkn`
#   FLOPs on `mk + kn` inputs: each input element is used `n` or `m` times. The naive loop order
#   streams a whole row of `a` and a whole column of `b` for every output element; once `b` no
#   longer fits in cache, every use reloads it from main memory.
#
# **Tiling** (blocking) splits the product into `tile x tile` blocks:
#
# ```
# C[I, J] += A[I, P] @ B[P, J]      for every block row I, block column J, and block P of k
# ```
#
# Three blocks of `tile x tile` fit in cache at once, so each loaded element is reused `tile`
# times before it is evicted. Every BLAS library (OpenBLAS, MKL, cuBLAS) is built this way, with
# several levels of tiles matched to registers, L1, L2 and L3.
#
# ### Exercise: `matmul_tiled(a, b, tile=64, kernel=np.matmul)`
#
# Loop over blocks of rows of `a` (`I`), blocks of columns of `b` (`J`) and blocks of the inner
# dimension (`P`), each of at most `tile` (the last block of each dimension may be smaller when
# the size is not a multiple of `tile`). For each output block `(I, J)`, accumulate
# `kernel(a[I, P], b[P, J])` over all `P` into a block-sized accumulator, then store it in the
# output. Call `kernel` exactly once per `(I, J, P)` triple: `ceil(m/tile) * ceil(n/tile) *
# ceil(k/tile)` calls. The default kernel is BLAS on one tile; the analysis also passes
# `matmul_broadcast`, to see tiling help a kernel that is *not* already tiled.
#
# The output has dtype `np.result_type(a, b)`. Raise `ValueError` if the arrays are not 2-D, the
# inner dimensions differ, or `tile < 1`.

# %% tags=["export"]
def matmul_tiled(a, b, tile=64, kernel=np.matmul):
    """(m, k) @ (k, n) by tile x tile blocks: C[I, J] = sum over P of kernel(A[I, P], B[P, J]).

    One kernel call per (I, J, P) block triple; edge blocks may be smaller than `tile`.
    ValueError for non-2-D inputs, mismatched inner dimensions or tile < 1.
    """
    ### BEGIN SOLUTION
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_tiled needs (m, k) and (k, n) arrays, got {a.shape} and {b.shape}")
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    (m, k), n = a.shape, b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))
    for i in range(0, m, tile):
        for j in range(0, n, tile):
            acc = np.zeros((min(tile, m - i), min(tile, n - j)), dtype=out.dtype)  # stays in cache
            for p in range(0, k, tile):
                acc += kernel(a[i:i + tile, p:p + tile], b[p:p + tile, j:j + tile])
            out[i:i + tile, j:j + tile] = acc
    return out
    ### END SOLUTION

# %% [markdown]
# ### Check: tiles of every size give the same product

# %%
a, b = rng.standard_normal((45, 30)), rng.standard_normal((30, 21))
for tile in (1, 4, 16, 64):
    assert np.allclose(matmul_tiled(a, b, tile=tile), a @ b), f"tile={tile} gives a different product"
calls = []
counting_kernel = lambda p, q: calls.append(p.shape + q.shape) or p @ q
matmul_tiled(a, b, tile=16, kernel=counting_kernel)
assert len(calls) == 3 * 2 * 2, f"45x30 @ 30x21 with tile 16: 3*2*2 = 12 block products, you made {len(calls)}"
assert np.allclose(matmul_tiled(a, b, tile=8, kernel=matmul_broadcast), matmul_naive(a, b)), \
    "with kernel=matmul_broadcast the product must not change: call kernel(a_block, b_block)"
got = matmul_tiled(a.astype(np.float32), b.astype(np.float32))
assert got.dtype == np.float32, f"float32 inputs gave a {got.dtype} product: use np.result_type(a, b)"
print("tiled matmul ok; block shapes of the first calls:", calls[:3])

# %% [markdown]
# ## 4. im2col: a convolution as one matrix product
#
# A 2-D convolution (module 09 builds the layer) slides a `(C, kh, kw)` filter over an image:
# every output pixel is the dot product of the filter with one `(C, kh, kw)` **patch** of the
# input. The loop version below does exactly that, one patch at a time: correct, and slow.
#
# **im2col** ("image to columns") copies every patch into a column of a matrix, once. For an
# input `(N, C, H, W)` the result `cols` has shape `(N, C * kh * kw, L)`, where `L = oh * ow` is
# the number of output positions. Then the whole convolution is **one matrix product**:
# `weight.reshape(O, C * kh * kw) @ cols[n]`, which BLAS runs at full speed. That is how Caffe,
# early PyTorch and many CPU libraries compute convolutions (cuDNN's "implicit GEMM" does the
# same without materialising `cols`).
#
# The price is memory: every input pixel is copied into up to `kh * kw` columns, so `cols` is
# about `kh * kw` times the input (9x for a 3x3 kernel with stride 1). Section 7 measures it.
#
# **Sizes.** With stride `s` and zero padding `p` on each side:
# `oh = (H + 2 * ph - kh) // sh + 1`, `ow = (W + 2 * pw - kw) // sw + 1`.
#
# **Layout** (PyTorch's `F.unfold`, so you can compare): row `(c * kh + i) * kw + j` of `cols`
# holds input channel `c` at kernel offset `(i, j)`; column `y * ow + x` is output position
# `(y, x)`. So `cols[n, (c * kh + i) * kw + j, y * ow + x] = xpad[n, c, y * sh + i, x * sw + j]`,
# `xpad` being the input with `p` zeros added on each side.
#
# **Vectorize it:** loop over the `kh * kw` kernel offsets only (9 iterations for 3x3), never
# over pixels: for offset `(i, j)`, the strided slice `xpad[:, :, i : i + sh * oh : sh,
# j : j + sw * ow : sw]` is exactly the `(N, C, oh, ow)` values that offset contributes.
#
# **col2im** is the reverse (PyTorch's `F.fold`): given `cols` and the input's shape, add every
# column's values back to the pixels they came from. Pixels that belong to several patches
# receive the **sum** of their copies; padding is cut off at the end. col2im is the backward
# pass of im2col (its adjoint): a convolution layer's gradient with respect to its input is
# `col2im(weight_matrix.T @ grad_out)`.
#
# ### Exercises: `im2col`, `col2im`, `conv2d_im2col`
#
# - `im2col(x, kernel_size, stride=1, padding=0)`: `x` a 4-D array; `kernel_size`, `stride`
#   and `padding` each an int or a pair `(h, w)` (the given `_pair` turns either into a pair,
#   and `_conv_output_size(H, W, kernel_size, stride, padding)` returns `(oh, ow)`). Returns `cols`, same
#   dtype as `x`. Raise `ValueError` if `x` is not 4-D or the output would be empty (`oh < 1`
#   or `ow < 1`).
# - `col2im(cols, input_shape, kernel_size, stride=1, padding=0)`: returns an array of shape
#   `input_shape` (4-D) and the dtype of `cols`. Raise `ValueError` if `cols` does not have the
#   shape `im2col` would give for that input.
# - `conv2d_im2col(x, weight, bias=None, stride=1, padding=0)`: `weight` `(O, C, kh, kw)`,
#   `bias` `(O,)` or `None`; returns `(N, O, oh, ow)`, what `F.conv2d` returns (a
#   cross-correlation, as in every deep-learning library). Raise `ValueError` if the channels
#   of `x` and `weight` differ.

# %%
def conv2d_loop(x, weight, bias=None, stride=1, padding=0):
    """The convolution, one output pixel at a time (the slow, obviously correct baseline)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n_img, _, height, width = x.shape
    n_out, _, kh, kw = weight.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((n_img, n_out, oh, ow), dtype=np.result_type(x, weight))
    for n in range(n_img):
        for o in range(n_out):
            for y in range(oh):
                for x_ in range(ow):
                    patch = xpad[n, :, y * sh:y * sh + kh, x_ * sw:x_ * sw + kw]
                    out[n, o, y, x_] = np.sum(patch * weight[o]) + (0 if bias is None else bias[o])
    return out

# %% tags=["export"]
def _pair(value):
    """An int or a pair as a pair of ints: 3 -> (3, 3), (2, 1) -> (2, 1)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"expected an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _conv_output_size(height, width, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1


def im2col(x, kernel_size, stride=1, padding=0):
    """Every (C, kh, kw) patch of x (N, C, H, W) as a column: cols (N, C*kh*kw, oh*ow), row
    (c*kh + i)*kw + j holding channel c at kernel offset (i, j). PyTorch: F.unfold."""
    ### BEGIN SOLUTION
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"im2col needs a 4-D input (N, C, H, W), got shape {x.shape}")
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    n_img, channels, height, width = x.shape
    oh, ow = _conv_output_size(height, width, kernel_size, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit in a {height}x{width} input with padding {(ph, pw)}")
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n_img, channels, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):  # loop over kernel offsets only: each is one strided slice of all pixels
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    return cols.reshape(n_img, channels * kh * kw, oh * ow)
    ### END SOLUTION


def col2im(cols, input_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add every column back onto the pixels it was copied from
    (overlaps summed, padding dropped); returns an array of input_shape. PyTorch: F.fold."""
    ### BEGIN SOLUTION
    cols = np.asarray(cols)
    n_img, channels, height, width = (int(d) for d in input_shape)
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    oh, ow = _conv_output_size(height, width, kernel_size, stride, padding)
    expected = (n_img, channels * kh * kw, oh * ow)
    if cols.shape != expected:
        raise ValueError(f"col2im expected cols of shape {expected} for input {tuple(input_shape)}, got {cols.shape}")
    blocks = cols.reshape(n_img, channels, kh, kw, oh, ow)
    xpad = np.zeros((n_img, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += blocks[:, :, i, j]
    return xpad[:, :, ph:ph + height, pw:pw + width].copy()
    ### END SOLUTION


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation) of x (N, C, H, W) with weight (O, C, kh, kw) as one
    matrix product over im2col's columns; returns (N, O, oh, ow). PyTorch: F.conv2d."""
    ### BEGIN SOLUTION
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d_im2col needs x (N, C, H, W) and weight (O, C, kh, kw), got {x.shape} and {weight.shape}")
    n_out, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding)            # (N, C*kh*kw, L)
    out = weight.reshape(n_out, -1) @ cols                 # (O, C*kh*kw) @ (N, C*kh*kw, L) -> (N, O, L)
    if bias is not None:
        out += np.asarray(bias).reshape(1, n_out, 1)
    oh, ow = _conv_output_size(x.shape[2], x.shape[3], (kh, kw), stride, padding)
    return out.reshape(x.shape[0], n_out, oh, ow)
    ### END SOLUTION

# %% [markdown]
# ### Check: im2col against the definition, col2im as its adjoint, conv against the loop

# %%
x = rng.standard_normal((2, 3, 7, 6))
cols = im2col(x, (3, 2), stride=(2, 1), padding=1)
assert cols.shape == (2, 3 * 3 * 2, 4 * 7), f"im2col gave {cols.shape}, expected (2, 18, 28)"
xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
# one entry by the layout formula: n=1, c=2, offset (i, j) = (1, 0), output position (y, x) = (3, 4)
assert cols[1, (2 * 3 + 1) * 2 + 0, 3 * 7 + 4] == xpad[1, 2, 3 * 2 + 1, 4 * 1 + 0], \
    "cols[n, (c*kh + i)*kw + j, y*ow + x] must be xpad[n, c, y*sh + i, x*sw + j]: check the row and column order"
y = rng.standard_normal(cols.shape)
back = col2im(y, x.shape, (3, 2), stride=(2, 1), padding=1)
assert back.shape == x.shape, f"col2im returned {back.shape}, expected the input shape {x.shape}"
# the adjoint identity: <im2col(x), y> == <x, col2im(y)> for every x and y
assert np.isclose(np.sum(cols * y), np.sum(x * back)), (
    "col2im is not the adjoint of im2col: pixels in several patches must receive the sum of their "
    "copies (+=, not =), and the padding must be cut off at the end")
weight, bias = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
for stride, padding in ((1, 0), (2, 1), ((1, 2), (2, 0))):
    got = conv2d_im2col(x, weight, bias, stride=stride, padding=padding)
    want = conv2d_loop(x, weight, bias, stride=stride, padding=padding)
    assert got.shape == want.shape, f"stride={stride}, padding={padding}: shape {got.shape}, expected {want.shape}"
    assert np.allclose(got, want), (f"stride={stride}, padding={padding}: values differ by up to "
                                    f"{np.abs(got - want).max():.3g}; reshape the weight to (O, C*kh*kw) "
                                    f"and add the bias per output channel")
print("im2col, col2im and conv2d_im2col agree with the loops; output", got.shape)

# %% [markdown]
# ## 5. The roofline: how fast *could* this kernel be?
#
# A kernel is limited by one of two ceilings:
#
# - **compute**: the machine's peak FLOP/s (`P`), reached only when the arithmetic units are
#   never waiting for data;
# - **memory**: the bandwidth `B` (bytes/s) between main memory and the core. A kernel that does
#   `F` FLOPs on `Q` bytes of traffic cannot run faster than `Q / B` seconds.
#
# Its **arithmetic intensity** `I = F / Q` (FLOPs per byte) decides which one applies: the
# best FLOP/s it can reach is `min(P, I * B)`. Plot that against `I` on log-log axes and you get
# a roof: a slanted line (memory-bound, rate proportional to intensity) meeting a flat one
# (compute-bound) at the **ridge point** `I = P / B`. Kernels left of the ridge can only get
# faster by moving fewer bytes (fusion, smaller dtypes: module 15's int8); kernels right of it
# by computing better (vectorization, tiling for registers).
#
# Intensities from the shapes (minimal traffic: each input read once, the output written once):
#
# - element-wise add of two arrays of `N` float32: `N` FLOPs on `12 N` bytes, `I = 1/12`;
# - matrix product `(m, k) @ (k, n)`: `2 m k n` FLOPs on `(m k + k n + m n) * itemsize` bytes;
#   for square `n x n` float32, `I = n / 6`: it grows with the size, so big matmuls are
#   compute-bound and everything element-wise is memory-bound.
#
# **Measuring the ceilings.** Vendors publish peaks no program reaches; measure your own:
#
# - `measure_peak_flops(n=1024, dtype=np.float32, warmup=2, repeats=5, clock=None)`: time the
#   BLAS product of two `(n, n)` arrays of `dtype` (any values: fill them once, outside the
#   timed function) with module 14's `measure_latency(fn, warmup, repeats, clock)` and return
#   `2 * n**3 / fastest` as a Python float, `fastest` being the **minimum** time.
# - `measure_bandwidth(nbytes=2**26, warmup=2, repeats=5, clock=None)`: time copying one array
#   of `nbytes` bytes into another that already exists (`np.copyto(dst, src)`: no allocation in
#   the timed function) and return the bytes moved per second, counting both the read and the
#   write: `2 * nbytes / fastest`, a Python float. Use a `uint8` array of `nbytes` elements. The
#   default, 64 MiB, is far larger than any cache, so this measures main memory.
#
# Why the minimum here, when module 14 taught medians? A *ceiling* answers "how fast can this
# machine go", and the least disturbed run is the best estimate of that (it is what `timeit`
# reports); other processes only ever make a run slower. The kernels placed under the roof are
# timed with medians ("how fast does it typically go"), so they sit below the roofs they are
# compared with. On a busy shared machine even the minimum can be disturbed: a kernel above
# 100% of its roof means the roof was measured too low, or the kernel's data stayed in a cache
# (faster than the main memory the bandwidth was measured on).
#
# Pass `warmup`, `repeats` and `clock` through to `measure_latency` (with a fake clock the
# result is then exact; that is how it is graded). Raise `ValueError` for `n < 1` or
# `nbytes < 1`.
#
# **The table.** `roofline(kernels, peak_flops, bandwidth)` takes a list of dicts, each with
# `"name"`, `"flops"`, `"bytes"` and `"seconds"` (a measured median), and returns a new list
# of dicts, one per kernel in the same order, with these keys:
#
# - `"name"`, `"flops"`, `"bytes"`, `"seconds"`: copied;
# - `"intensity"`: `flops / bytes`; `"achieved"`: `flops / seconds` (FLOP/s);
# - `"attainable"`: `min(peak_flops, intensity * bandwidth)`;
# - `"fraction"`: `achieved / attainable` (how close the kernel runs to its own roof);
# - `"bound"`: `"memory"` if `intensity * bandwidth < peak_flops` (left of the ridge), else
#   `"compute"`.
#
# A copy counted as `2 * nbytes` slightly *under*states the hardware's traffic: before writing a
# cache line the CPU usually reads it ("write-allocate"), so a copy really moves about `3 *
# nbytes`, and a kernel that only reads (a sum) can beat the copy's bandwidth. Benchmarks such
# as STREAM count the way we do; keep it in mind when a memory-bound kernel lands above 100%.
#
# Numbers as Python floats (`"name"` a string, `"bound"` a string). Raise `ValueError` if
# `peak_flops` or `bandwidth` is not positive. `format_roofline` (given) prints it.

# %% tags=["export"]
def measure_peak_flops(n=1024, dtype=np.float32, warmup=2, repeats=5, clock=None):
    """This machine's matrix-product FLOP/s: 2*n^3 / the fastest time of an (n, n) @ (n, n) BLAS
    product, timed with measure_latency. The compute roof of the roofline."""
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    a = np.ones((n, n), dtype=dtype)
    b = np.ones((n, n), dtype=dtype)
    stats = measure_latency(lambda: np.matmul(a, b), warmup=warmup, repeats=repeats, clock=clock)
    return float(2 * n**3 / stats["min"])  # a ceiling: the least disturbed run
    ### END SOLUTION


def measure_bandwidth(nbytes=2**26, warmup=2, repeats=5, clock=None):
    """Main-memory bandwidth in bytes/s: 2*nbytes (read + write) / the fastest time of copying
    nbytes into an existing array, timed with measure_latency. The memory roof."""
    ### BEGIN SOLUTION
    if nbytes < 1:
        raise ValueError(f"nbytes must be >= 1, got {nbytes}")
    src = np.ones(int(nbytes), dtype=np.uint8)
    dst = np.empty_like(src)  # allocated (and paged in by the warm-up) outside the timed copy
    stats = measure_latency(lambda: np.copyto(dst, src), warmup=warmup, repeats=repeats, clock=clock)
    return float(2 * nbytes / stats["min"])
    ### END SOLUTION


def roofline(kernels, peak_flops, bandwidth):
    """Place measured kernels under the roofline: for each {"name", "flops", "bytes", "seconds"},
    add intensity (FLOP/byte), achieved and attainable FLOP/s, fraction of the roof, and bound."""
    ### BEGIN SOLUTION
    if peak_flops <= 0 or bandwidth <= 0:
        raise ValueError(f"peak_flops and bandwidth must be positive, got {peak_flops} and {bandwidth}")
    rows = []
    for kernel in kernels:
        flops, nbytes, seconds = float(kernel["flops"]), float(kernel["bytes"]), float(kernel["seconds"])
        intensity = flops / nbytes
        memory_roof = intensity * bandwidth
        attainable = min(float(peak_flops), memory_roof)
        achieved = flops / seconds
        rows.append({"name": str(kernel["name"]), "flops": flops, "bytes": nbytes, "seconds": seconds,
                     "intensity": intensity, "achieved": achieved, "attainable": attainable,
                     "fraction": achieved / attainable,
                     "bound": "memory" if memory_roof < peak_flops else "compute"})
    return rows
    ### END SOLUTION


def format_roofline(rows, peak_flops, bandwidth):
    """The roofline table as text: one line per kernel, with the machine's roofs in the header."""
    lines = [f"peak {peak_flops / 1e9:.1f} GFLOP/s, bandwidth {bandwidth / 1e9:.1f} GB/s, "
             f"ridge point {peak_flops / bandwidth:.1f} FLOP/byte",
             f"{'kernel':<30} {'FLOP/byte':>10} {'GFLOP/s':>9} {'roof GFLOP/s':>13} {'% of roof':>10} {'bound':>8}"]
    for row in rows:
        lines.append(f"{row['name']:<30} {row['intensity']:>10.3f} {row['achieved'] / 1e9:>9.3f} "
                     f"{row['attainable'] / 1e9:>13.2f} {100 * row['fraction']:>9.1f}% {row['bound']:>8}")
    return "\n".join(lines)

# %% [markdown]
# ### Check: the roofline with a fake clock, and one real measurement

# %%
readings = iter([0.0, 0.5, 1.0, 1.25, 2.0, 3.0])      # three timed runs: 0.5, 0.25, 1.0 s
got = measure_peak_flops(n=16, warmup=1, repeats=3, clock=lambda: next(readings))
assert got == 2 * 16**3 / 0.25, f"expected 2 * 16**3 / 0.25 = {2 * 16**3 / 0.25} (the fastest run), got {got}"
readings = iter([0.0, 2.0, 2.0, 2.5, 3.0, 4.0])      # 2.0, 0.5, 1.0 s: the fastest is 0.5
got = measure_bandwidth(nbytes=1000, warmup=0, repeats=3, clock=lambda: next(readings))
assert got == 4000.0, f"expected 2 * 1000 bytes / 0.5 s = 4000.0 (read + write, the fastest run), got {got}"
rows = roofline([{"name": "add", "flops": 100, "bytes": 1200, "seconds": 2e-6},
                 {"name": "matmul", "flops": 2e9, "bytes": 1.2e7, "seconds": 0.2}], peak_flops=1e10, bandwidth=1e9)
assert [r["bound"] for r in rows] == ["memory", "compute"], [r["bound"] for r in rows]
assert rows[0]["attainable"] == 1e9 * 100 / 1200, f"add: min(peak, intensity * bandwidth), got {rows[0]['attainable']}"
assert rows[1]["attainable"] == 1e10, f"matmul: right of the ridge, the roof is the peak; got {rows[1]['attainable']}"
assert rows[0]["achieved"] == 5e7 and abs(rows[1]["fraction"] - 1.0) < 1e-12, "achieved: the FLOPs divided by the seconds"
print(format_roofline(rows, 1e10, 1e9))
small_peak = measure_peak_flops(n=128, warmup=1, repeats=3)
print(f"a 128x128 product on this machine: {small_peak / 1e9:.2f} GFLOP/s")
assert small_peak > 1e7, "a 128x128 BLAS product runs at more than 10 MFLOP/s on any machine"

# %% [markdown]
# ## 6. Where these ideas live in PyTorch
#
# | this module | PyTorch and the hardware libraries |
# |---|---|
# | `gelu`, `matmul_broadcast` | every eager op is a vectorized C++/CUDA kernel; `torch.matmul` calls MKL/OpenBLAS/cuBLAS |
# | `fused_bias_gelu`, `fusion_traffic` | `torch.compile` (TorchInductor) generates one kernel per fusible chain; `torch.nn.functional.scaled_dot_product_attention` is a fused kernel |
# | `matmul_tiled` | the blocking inside BLAS, CUTLASS and Triton's `tl.dot` tiles (`BLOCK_M`, `BLOCK_N`, `BLOCK_K`) |
# | `im2col`, `col2im`, `conv2d_im2col` | `F.unfold`, `F.fold`; cuDNN and oneDNN choose GEMM, implicit GEMM, Winograd or FFT per layer (`torch.backends.cudnn.benchmark = True` times them) |
# | `roofline` | Nsight Compute's and Intel Advisor's roofline charts |
#
# At 1B parameters the same questions decide everything: a transformer's big matrix products
# are compute-bound and run near the roof, while its normalisations, activations, softmax and
# (during generation, batch 1) even its matrix-vector products are memory-bound, which is why
# fused kernels, FlashAttention and low-precision weights matter more than FLOP counts.

# %% [markdown]
# ## 7. Systems analysis: measure every claim
#
# The cell below times every kernel of this module on your machine (medians after warm-up
# with module 14's `measure_latency`; the p25-p75 spread is printed where it matters) and
# prints:
#
# 1. vectorization: the Python loops against NumPy and BLAS, and `h ** 3` against `h * h * h`;
# 2. fusion: unfused against fused bias-GELU on a 16 MB activation, the bytes counted by
#    `fusion_traffic` and the peak memory measured by `peak_memory`, for several block sizes;
# 3. locality and tiling: reading a matrix along rows against down columns, then a sweep of
#    tile sizes for `matmul_tiled` with the BLAS kernel and with `matmul_broadcast`;
# 4. im2col: the loop convolution against `conv2d_im2col`, and the memory `cols` costs;
# 5. the roofline: this machine's measured peak and bandwidth, and your kernels under it.
#
# For stable numbers use one BLAS thread (`OPENBLAS_NUM_THREADS=1 jupyter lab`) on a quiet
# machine. It takes under a minute.

# %% tags=["analysis"]
import os

threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default (all cores)"
print(f"BLAS threads: {threads}; CPU cores: {os.cpu_count()}\n")


def median_time(fn, repeats=5, warmup=1):
    stats = measure_latency(fn, warmup=warmup, repeats=repeats)
    return stats["median"], stats


def spread(stats):
    return f"p25-p75 {stats['p25'] * 1e3:.3f}-{stats['p75'] * 1e3:.3f} ms"


measured = []  # (name, flops, bytes, seconds) of every kernel, for the roofline table


def record(name, flops, nbytes, seconds):
    measured.append({"name": name, "flops": flops, "bytes": nbytes, "seconds": seconds})


print("1. Vectorization")
n = 96
a32 = rng.standard_normal((n, n)).astype(np.float32)
t_naive, _ = median_time(lambda: matmul_naive(a32, a32), repeats=3)
t_bcast, _ = median_time(lambda: matmul_broadcast(a32, a32), repeats=7)
t_blas, s_blas = median_time(lambda: a32 @ a32, repeats=21)
mm_flops, mm_bytes = 2 * n**3, 3 * n * n * 4
print(f"   {n}x{n} matmul: naive {t_naive * 1e3:9.2f} ms | broadcast {t_bcast * 1e3:7.3f} ms | "
      f"BLAS {t_blas * 1e3:7.4f} ms ({spread(s_blas)})")
print(f"   BLAS is {t_naive / t_blas:,.0f}x faster than the Python loop and {t_bcast / t_blas:,.1f}x faster "
      f"than the loop-free broadcast (which writes an {n}x{n}x{n} temporary: {n**3 * 4 / 2**20:.1f} MB "
      f"for a {n * n * 4 / 2**10:.0f} KB answer; measured peak {peak_memory(lambda: matmul_broadcast(a32, a32)) / 2**20:.1f} MB)")
record(f"matmul naive {n}", mm_flops, mm_bytes, t_naive)
record(f"matmul broadcast {n}", mm_flops, mm_bytes, t_bcast)
record(f"  same, counting its temporary", mm_flops, mm_bytes + 2 * n**3 * 4, t_bcast)  # written, read back
record(f"matmul BLAS {n}", mm_flops, mm_bytes, t_blas)

v = rng.standard_normal(100_000).astype(np.float32)
t_loop, _ = median_time(lambda: gelu_loop(v), repeats=3)
t_vec, s_vec = median_time(lambda: gelu(v), repeats=11)
print(f"   gelu on {v.size:,} float32: loop {t_loop * 1e3:.2f} ms, vectorized {t_vec * 1e3:.3f} ms "
      f"({spread(s_vec)}): {t_loop / t_vec:.0f}x")
t_pow, _ = median_time(lambda: v ** 3, repeats=11)
t_mul, _ = median_time(lambda: v * v * v, repeats=11)
print(f"   cube of {v.size:,} float32: v ** 3 {t_pow * 1e3:.3f} ms, v * v * v {t_mul * 1e3:.3f} ms "
      f"({t_pow / t_mul:.1f}x)")

print("\n2. Fusion: gelu(x + bias) on a 4096 x 1024 float32 activation")
R, D = 4096, 1024
xf = rng.standard_normal((R, D)).astype(np.float32)
bf = rng.standard_normal(D).astype(np.float32)
outf = np.empty_like(xf)
traffic = fusion_traffic(BIAS_GELU_PROGRAM, {"x": R * D, "bias": D}, R * D, 4)
t_unf, s_unf = median_time(lambda: bias_gelu_unfused(xf, bf), repeats=7)
gelu_flops = len(BIAS_GELU_PROGRAM) * R * D  # one FLOP per element per kernel (tanh counted as 1)
print(f"   counted traffic: unfused {traffic['unfused'] / 2**20:.0f} MB, fused {traffic['fused'] / 2**20:.0f} MB, "
      f"avoided {traffic['avoided'] / 2**20:.0f} MB ({traffic['unfused'] / traffic['fused']:.1f}x fewer bytes)")
print(f"   {'variant':<22} {'median ms':>10} {'p25-p75 ms':>16} {'speed-up':>9} {'peak MB':>8}")
print(f"   {'unfused (10 kernels)':<22} {t_unf * 1e3:>10.2f} {s_unf['p25'] * 1e3:>7.2f}-{s_unf['p75'] * 1e3:<7.2f} "
      f"{1.0:>8.2f}x {peak_memory(lambda: bias_gelu_unfused(xf, bf)) / 2**20:>8.1f}")
record("bias+gelu unfused", gelu_flops, traffic["unfused"], t_unf)
best = None
for block_rows in (1, 8, 64, 512, 4096):
    t_f, s_f = median_time(lambda: fused_bias_gelu(xf, bf, out=outf, block_rows=block_rows), repeats=7)
    peak = peak_memory(lambda: fused_bias_gelu(xf, bf, out=outf, block_rows=block_rows))
    label = f"fused, {block_rows} rows ({block_rows * D * 4 / 2**10:,.0f} KB)"
    print(f"   {label:<22} {t_f * 1e3:>10.2f} {s_f['p25'] * 1e3:>7.2f}-{s_f['p75'] * 1e3:<7.2f} "
          f"{t_unf / t_f:>8.2f}x {peak / 2**20:>8.1f}")
    if best is None or t_f < best[1]:
        best = (block_rows, t_f)
record(f"bias+gelu fused ({best[0]} rows)", gelu_flops, traffic["fused"], best[1])

print("\n3. Locality and tiling")
m = rng.standard_normal((4096, 4096)).astype(np.float32)
t_cols, _ = median_time(lambda: np.ascontiguousarray(m.T), repeats=5)
t_copy, _ = median_time(lambda: m.copy(), repeats=5)
print(f"   64 MB matrix: copy along rows {t_copy * 1e3:.1f} ms, transposed copy (reads down columns) "
      f"{t_cols * 1e3:.1f} ms: {t_cols / t_copy:.1f}x slower for the same bytes")
n = 256
at, bt = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
t_whole, _ = median_time(lambda: at @ bt, repeats=11)
print(f"   {n}x{n} matmul, one BLAS call: {t_whole * 1e3:.3f} ms ({2 * n**3 / t_whole / 1e9:.1f} GFLOP/s); "
      f"tile {n} below is matmul_broadcast untiled (a {n**3 * 4 / 2**20:.0f} MB temporary)")
print(f"   {'tile':>6} {'calls':>7} {'BLAS-tile ms':>13} {'GFLOP/s':>8} {'broadcast-tile ms':>18} {'GFLOP/s':>8} "
      f"{'temporary KB':>13}")
best_tile = None
for tile in (8, 16, 32, 64, 128, 256):
    t_t, _ = median_time(lambda: matmul_tiled(at, bt, tile=tile), repeats=3)
    t_b, _ = median_time(lambda: matmul_tiled(at, bt, tile=tile, kernel=matmul_broadcast), repeats=3)
    if best_tile is None or t_b < best_tile[1]:
        best_tile = (tile, t_b)
    print(f"   {tile:>6} {math.ceil(n / tile) ** 3:>7} {t_t * 1e3:>13.2f} {2 * n**3 / t_t / 1e9:>8.2f} "
          f"{t_b * 1e3:>18.2f} {2 * n**3 / t_b / 1e9:>8.2f} {tile**3 * 4 / 2**10:>13,.0f}")
print(f"   tiling the broadcast kernel: best tile {best_tile[0]}, {t_b / best_tile[1]:.1f}x faster than untiled")
record(f"matmul BLAS {n}", 2 * n**3, 3 * n * n * 4, t_whole)
record(f"broadcast {n} untiled", 2 * n**3, 3 * n * n * 4, t_b)
record(f"broadcast {n} tiled ({best_tile[0]})", 2 * n**3, 3 * n * n * 4, best_tile[1])

print("\n4. im2col: a 3x3 convolution, 8 images of 16 channels 32x32 -> 32 channels")
xc = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
wc = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
small = xc[:1, :, :16, :16]
t_loopc, _ = median_time(lambda: conv2d_loop(small, wc, padding=1), repeats=3)
t_smallc, _ = median_time(lambda: conv2d_im2col(small, wc, padding=1), repeats=11)
t_im2c, s_im2c = median_time(lambda: conv2d_im2col(xc, wc, padding=1), repeats=7)
t_cols, _ = median_time(lambda: im2col(xc, 3, padding=1), repeats=7)
conv_flops = 2 * 8 * 32 * 32 * 32 * 16 * 9
conv_bytes = (xc.size + wc.size + 8 * 32 * 32 * 32) * 4
print(f"   1 image 16x16: loop {t_loopc * 1e3:.1f} ms, im2col {t_smallc * 1e3:.3f} ms: {t_loopc / t_smallc:.0f}x")
print(f"   8 images 32x32: im2col conv {t_im2c * 1e3:.2f} ms ({spread(s_im2c)}), of which im2col itself "
      f"{t_cols * 1e3:.2f} ms ({100 * t_cols / t_im2c:.0f}%)")
cols_bytes = im2col(xc, 3, padding=1).nbytes
print(f"   input {xc.nbytes / 2**20:.1f} MB -> cols {cols_bytes / 2**20:.1f} MB ({cols_bytes / xc.nbytes:.1f}x); "
      f"peak memory of the conv {peak_memory(lambda: conv2d_im2col(xc, wc, padding=1)) / 2**20:.1f} MB")
record("conv loop (1 image 16x16)", 2 * 32 * 16 * 16 * 16 * 9, (small.size + wc.size + 32 * 16 * 16) * 4, t_loopc)
record("conv im2col (8 images 32x32)", conv_flops, conv_bytes, t_im2c)

print("\n5. The roofline of this machine and of your kernels")
peaks = {size: measure_peak_flops(n=size, warmup=1, repeats=5) for size in (256, 512, 1024)}
peak = max(peaks.values())  # the roof: the best rate any BLAS product reached
print("   BLAS products: " + ", ".join(f"{size}: {rate / 1e9:.1f} GFLOP/s" for size, rate in peaks.items()))
bandwidth = measure_bandwidth(nbytes=2**26, warmup=1, repeats=7)
add_a, add_b = rng.standard_normal(2**22).astype(np.float32), rng.standard_normal(2**22).astype(np.float32)
add_out = np.empty_like(add_a)
t_add, _ = median_time(lambda: np.add(add_a, add_b, out=add_out), repeats=11)
record("add 4M float32", add_a.size, 3 * add_a.nbytes, t_add)
print(format_roofline(roofline(measured, peak, bandwidth), peak, bandwidth))

# %% [markdown]
# ## 8. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 7 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (vectorized is not the same as fast).**
# Section 7 timed the same matrix product three ways: the Python triple loop, your loop-free
# `matmul_broadcast`, and BLAS. Using the measured times and the roofline table, explain both
# gaps: why removing the Python loop helps so much, and why the broadcast version, with no
# Python loop at all, is still far from BLAS. Where do `gelu` and the element-wise add sit
# on the roofline, and why can no amount of vectorization make them reach the peak FLOP/s?

# %% [markdown] tags=["answer"] question="q1"
# The Python loop pays interpreter overhead (bytecode dispatch, a boxed float per operation)
# for every one of the `2n^3` FLOPs: it ran at a few MFLOP/s, thousands of times below BLAS
# (6,252x for 96x96 in my run). Vectorizing moves the loop into compiled code, but
# `matmul_broadcast` materialises an `(m, k, n)` temporary: 3.4 MB for a 96x96 product whose
# answer is 36 KB (the peak `peak_memory` measured). Its real traffic is the temporary written
# and read back, about `8 n^3` bytes for `2 n^3` FLOPs, an intensity of 0.25 FLOP/byte instead
# of the `n/6 = 16` the shapes allow. The table's second broadcast row counts that traffic: it
# lands far left of the ridge point (15-30 FLOP/byte in my runs), memory-bound, at a large
# fraction of its memory roof (even above it in one run: a 3.4 MB temporary partly stays in the
# L3 cache, faster than the main memory the roof was measured on), so it is limited by moving
# bytes, not by Python. BLAS does the same FLOPs with
# blocking for registers and caches (each loaded element reused many times, the temporary never
# exists) and SIMD fused multiply-adds, reaching 50-70% of the measured peak. `gelu` (0.11
# FLOP/byte unfused) and the add (1/12) are far left of the ridge: their roof is `intensity x
# bandwidth`, well under 1 GFLOP/s, and no vectorization can raise it; only moving fewer bytes
# can (fusion, lower precision, folding them into the preceding matmul's epilogue). At 1B
# parameters this is why normalisations, activations and softmax take a share of the time far
# above their share of the FLOPs, and why batch-1 decoding (matrix-vector, about 1 FLOP/byte in
# fp16) is limited by memory bandwidth, not by the GPU's peak.

# %% [markdown]
# **Question 2 (fusion).**
# Your `fusion_traffic` counted the bytes an unfused bias-GELU moves and section 7 timed it
# against `fused_bias_gelu` for several block sizes, with the peak memory of each. How does
# the measured speed-up compare with the ratio of bytes counted, and why are they not the
# same? Explain the effect of the block size at both extremes. What does `torch.compile` do
# for a model full of such chains, and which operations cannot be fused this way?

# %% [markdown] tags=["answer"] question="q2"
# `fusion_traffic` counts `(23N + D)` elements for the unfused chain against `(2N + D)` fused:
# 368 MB against 32 MB for the 4096x1024 activation, 11.5x fewer bytes. The measured speed-up
# was much smaller, 2.3x at its best (64-row blocks, 256 KB of scratch), while the peak memory
# fell from 48 MB (three full-size temporaries alive at once) to 0.5 MB. The gap has three
# causes: my fused kernel is not one loop, NumPy still makes ten passes over each block, only
# from cache instead of main memory; tanh is real arithmetic (tens of instructions per
# element, counted as one FLOP), so part of the time is compute that fusion does not remove
# (the fused row sits at a few % of its memory roof, so it is no longer memory-bound); and
# each block pays ten ufunc calls of overhead. With 1-row blocks that overhead (4096 x 10
# calls) dominates and the fused kernel was slower than the unfused one (0.8x); with
# 4096-row blocks the scratch buffers are 16 MB each, no longer in cache, and only the
# allocations are saved (1.3x). The sweet spot fits the L2 cache. `torch.compile`
# (TorchInductor) traces the model, groups chains of element-wise and reduction operations
# (bias, activation, dropout, residual add, LayerNorm) and generates one kernel per group that
# keeps intermediates in registers, which is where most of its speed-ups on transformers come
# from. What cannot be fused this way: operations whose output needs all of an input first or
# that reuse data differently, such as a matmul feeding a softmax feeding a matmul; those need
# algorithmic restructuring, like FlashAttention's tiled online softmax.

# %% [markdown]
# **Question 3 (tiling and im2col).**
# Describe the tile-size sweep section 7 printed, for the BLAS kernel and for the broadcast
# kernel: where is each fastest, and why do very small and very large tiles lose? Then use
# the im2col measurements: how much faster than the loop is the im2col convolution, and what
# does it cost in memory? What would break for a convolutional network on 224x224 images with
# a batch of 256, and what do cuDNN and other libraries do instead?

# %% [markdown] tags=["answer"] question="q3"
# With the BLAS kernel, small tiles lose to overhead: tile 8 is 32,768 Python iterations and
# BLAS calls for a 256x256 product (465 ms against 1 ms for one call); the rate climbs with the
# tile and reaches the single-call rate at 128-256, because BLAS already tiles internally for
# registers and caches far better than a Python loop can. With the broadcast kernel each tile
# product writes a tile^3 temporary: tile 64 (1 MB, fits in L2) was fastest, 1.5x faster than
# untiled (a 64 MB temporary that streams through main memory), tile 128 (8 MB, past L2) was
# slower again, and small tiles lost to per-call overhead: a U-shaped curve, the classic cache
# effect. The transposed copy (8x slower than a row-order copy of the same 64 MB) shows the same
# cost of bad locality without any arithmetic. im2col turned the convolution into one matmul
# and ran about 1,000x faster than the per-pixel loop, but `cols` was 9.0x the input (kh*kw for
# a 3x3 kernel at stride 1) and the conv's peak memory 5.5 MB for a 0.5 MB input. For a batch of
# 256 images of 64 channels at 224x224 in float32 the input is 3.3 GB and cols about 30 GB:
# it does not fit. Libraries avoid materialising it: implicit GEMM (cuDNN, CUTLASS) gathers
# the patches tile by tile into shared memory, Winograd cuts the multiplications of 3x3
# convolutions, FFT convolutions suit large kernels, oneDNN on CPUs uses direct convolutions on
# blocked layouts (nChw16c), and `torch.backends.cudnn.benchmark = True` times the candidates
# per layer and keeps the fastest that fits the workspace memory.
