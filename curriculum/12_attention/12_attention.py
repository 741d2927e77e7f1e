# %% [markdown]
# # Module 12: Attention
#
# A recurrent network reads a sentence one token at a time and squeezes everything it has seen
# into one fixed-size state. **Attention** drops that bottleneck: every token looks at every
# other token directly and decides, with learned similarity scores, how much of each to take.
# It is the core of every transformer (Module 13), from BERT to GPT-4 and Llama.
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `scaled_dot_product_attention(q, k, v, mask=None)` | `softmax(q k^T / sqrt(d_k)) v`, batched, masked | `torch.nn.functional.scaled_dot_product_attention` |
# | `causal_mask(seq_len)` | "a token may not look at the future" | `torch.tril(torch.ones(n, n, dtype=torch.bool))`, `is_causal=True` |
# | `MultiHeadAttention(embed_dim, num_heads)` | several attentions in parallel on learned projections | `torch.nn.MultiheadAttention(..., batch_first=True)` |
#
# **The systems lesson** is memory. The attention matrix holds one weight for every pair of
# tokens: `N x N` numbers per head for a sequence of `N` tokens. Double the context, quadruple
# the memory. You will measure it, and see why a 100k-token context cannot be computed the
# textbook way, and what FlashAttention and KV caching do instead.
#
# **Prerequisites:** `Tensor` (Module 01: `@`, `transpose`, `reshape`), the stable `Softmax`
# (Module 02) and `Module`/`Linear` (Module 03).
#
# **Autograd for free.** Write everything with `Tensor` operations (`@`, `.transpose`,
# `.reshape`, `+`, `*`, `/`) and Module 02's `Softmax`. Module 06 makes exactly those
# operations differentiable, so once it is imported, gradients flow through your attention with
# no change to this file.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core.activations import Softmax
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor

MASK_FILL = -1e9  # the score given to a blocked (query, key) pair: exp(-1e9 - max) is exactly 0

# %% [markdown]
# ## Scaled dot-product attention
#
# Each token `i` produces three vectors: a **query** `q_i` ("what am I looking for?"), a **key**
# `k_j` ("what do I contain?") and a **value** `v_j` ("what do I hand over?"). Token `i` scores
# every token `j` by the dot product `q_i . k_j`, turns the scores of its row into weights with a
# softmax, and returns the weighted average of the values. For all tokens at once, with
# `Q` of shape `(N_q, d_k)`, `K` of shape `(N_k, d_k)`, `V` of shape `(N_k, d_v)`:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# Three details make it work in practice:
#
# 1. **Why divide by `sqrt(d_k)`.** If the entries of `q` and `k` have variance 1, their dot
#    product has variance `d_k`: with `d_k = 64` the scores are typically +-8, the softmax is
#    nearly one-hot and its gradient nearly zero. Dividing by `sqrt(d_k)` brings the variance
#    back to 1.
# 2. **Stable softmax.** Scores can be large (big activations, no scaling, half precision);
#    `exp(1000)` overflows. Module 02's `Softmax` subtracts the row maximum first, so every
#    exponent is `<= 0`. Use `Softmax(dim=-1)`: one distribution per query, over the keys.
# 3. **Masking.** `mask` is boolean, `True` = "query `i` may attend to key `j`" (keep),
#    `False` = blocked; it must broadcast against the scores' shape `(..., N_q, N_k)`. A blocked
#    score is replaced by `MASK_FILL = -1e9` before the softmax, so its weight is exactly 0.
#    (This is the instructor guide's formula, `np.where(mask, scores, -1e9)`.) **A fully masked
#    row** (a query allowed to see nothing) then has all its scores equal to -1e9, so it gets
#    *uniform* weights `1 / N_k`: finite, never NaN. PyTorch fills with `-inf` instead, where such
#    a row has no meaningful softmax (NaN in `nn.MultiheadAttention`).
#
# **Batches.** Everything happens over the last two dimensions; any leading dimensions (batch,
# heads) are carried along, since `@` on Tensors is batched like NumPy's `matmul`. `k^T` is
# `k.transpose(-2, -1)` (or `k.T`), not a full reversal of the axes.
#
# **Write the mask with Tensor arithmetic** so Module 06 can differentiate it: with `keep` the
# mask as float32 0/1, `scores * keep + fill` where `fill` is 0 where kept and `MASK_FILL` where
# blocked gives exactly `np.where(mask, scores, MASK_FILL)`, and blocked scores get zero
# gradient.
#
# **Your task:** implement `scaled_dot_product_attention(q, k, v, mask=None)` returning
# `(output, weights)`: the output `(..., N_q, d_v)` and the weights `(..., N_q, N_k)`, both
# float32 Tensors.

# %% tags=["export"]
def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None):
    """softmax(q @ k^T / sqrt(d_k)) @ v over the last two dimensions, batched over the leading ones.

    PyTorch: ``torch.nn.functional.scaled_dot_product_attention`` (which returns only the output).

    q: (..., N_q, d_k), k: (..., N_k, d_k), v: (..., N_k, d_v) Tensors.
    mask: None, or booleans (a NumPy array or a Tensor; nonzero = True) broadcastable to
        (..., N_q, N_k): True = the query may attend to the key, False = blocked (score set to
        MASK_FILL, weight exactly 0). A fully blocked row gets uniform weights 1 / N_k.
    Returns (output, weights): Tensors of shapes (..., N_q, d_v) and (..., N_q, N_k); every row
    of weights sums to 1.
    """
    ### BEGIN SOLUTION
    d_k = q.shape[-1]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        allowed = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        keep = Tensor(allowed.astype(np.float32))
        fill = Tensor(np.where(allowed, 0.0, MASK_FILL).astype(np.float32))
        scores = scores * keep + fill
    weights = Softmax(dim=-1)(scores)
    return weights @ v, weights
    ### END SOLUTION

# %%
# Check attention: the guide's single-sequence example, a NumPy formula, rows summing to 1,
# masked weights exactly 0, a fully masked row uniform, huge scores finite.
_rng = np.random.default_rng(0)
_q, _k, _v = (_rng.standard_normal((4, 8)).astype(np.float32) for _ in range(3))
_out, _w = scaled_dot_product_attention(Tensor(_q), Tensor(_k), Tensor(_v))
_s = _q @ _k.T / np.sqrt(8)
_e = np.exp(_s - _s.max(axis=-1, keepdims=True))
assert isinstance(_out, Tensor) and _out.shape == (4, 8) and _w.shape == (4, 4) and _out.dtype == np.float32
assert np.allclose(_w.data, _e / _e.sum(-1, keepdims=True), atol=1e-6)
assert np.allclose(_out.data, _w.data @ _v, atol=1e-6) and np.allclose(_w.data.sum(-1), 1)
_m = np.array([[True, False, True, True]] * 3 + [[False] * 4])
_, _wm = scaled_dot_product_attention(Tensor(_q), Tensor(_k), Tensor(_v), mask=_m)
assert np.all(_wm.data[:3, 1] == 0) and np.allclose(_wm.data.sum(-1), 1) and np.allclose(_wm.data[3], 0.25)
_, _wb = scaled_dot_product_attention(Tensor(_q * 1e4), Tensor(_k), Tensor(_v))   # scores ~ 1e4
assert np.isfinite(_wb.data).all() and np.allclose(_wb.data.sum(-1), 1)
_ob, _ = scaled_dot_product_attention(Tensor(_rng.standard_normal((2, 3, 5, 4))),
                                      Tensor(_rng.standard_normal((2, 3, 6, 4))), Tensor(_rng.standard_normal((2, 3, 6, 7))))
assert _ob.shape == (2, 3, 5, 7)
print("attention ok; weights of the masked example:\n", np.round(_wm.data, 3))

# %% [markdown]
# ## The causal mask
#
# A language model predicts token `t + 1` from tokens `0..t`. During training it sees the whole
# sentence at once, so each position must be stopped from peeking at later positions: query
# `i` may attend to key `j` only when `j <= i`. That is a lower-triangular boolean matrix:
#
# ```
# seq_len = 4        key 0  1  2  3
#            query 0     T  F  F  F
#                  1     T  T  F  F
#                  2     T  T  T  F
#                  3     T  T  T  T
# ```
#
# Every row keeps at least its own position, so no row is ever fully masked.
#
# **Your task:** implement `causal_mask(seq_len)`, returning a `Tensor` of dtype `bool` and
# shape `(seq_len, seq_len)` (PyTorch: `torch.tril(torch.ones(n, n, dtype=torch.bool))`).
# `np.tril` builds it without a loop.

# %% tags=["export"]
def causal_mask(seq_len: int) -> Tensor:
    """Boolean Tensor (seq_len, seq_len): True on and below the diagonal (key j <= query i)."""
    ### BEGIN SOLUTION
    return Tensor(np.tril(np.ones((seq_len, seq_len), dtype=bool)), dtype=bool)
    ### END SOLUTION

# %%
# Check causal_mask, then causal attention: position i ignores everything after i.
_cm = causal_mask(4)
assert _cm.dtype == np.bool_ and _cm.shape == (4, 4) and _cm.data.sum() == 10
assert _cm.data.tolist()[1] == [True, True, False, False]
_, _wc = scaled_dot_product_attention(Tensor(_q), Tensor(_k), Tensor(_v), mask=_cm)
assert np.allclose(np.triu(_wc.data, 1), 0) and _wc.data[0, 0] == 1.0
print("causal_mask ok:\n", _cm.data.astype(int))

# %% [markdown]
# ## Multi-head attention
#
# One attention computes one weighting of the tokens: one notion of "relevant". **Multi-head
# attention** runs `num_heads` attentions side by side, each on its own learned projection of
# the input, so one head can follow syntax while another follows coreference:
#
# 1. **Project.** `Q = x W_q^T + b_q`, `K = x W_k^T + b_k`, `V = x W_v^T + b_v`: three
#    `Linear(embed_dim, embed_dim)` layers (`q_proj`, `k_proj`, `v_proj`) on the input `x` of
#    shape `(batch, seq, embed_dim)` (self-attention: queries, keys and values all come from `x`).
# 2. **Split heads.** Cut the last dimension into `num_heads` pieces of
#    `head_dim = embed_dim // num_heads`: reshape `(batch, seq, embed)` to
#    `(batch, seq, heads, head_dim)`, then transpose to `(batch, heads, seq, head_dim)` so that
#    the heads become a batch dimension. No copy of weights, no loop over heads: your batched
#    `scaled_dot_product_attention` runs every head at once.
# 3. **Attend** with the mask (broadcastable to `(batch, heads, seq, seq)`: a `(seq, seq)` causal
#    mask applies to every sequence and head).
# 4. **Concatenate heads**: transpose back to `(batch, seq, heads, head_dim)` and reshape to
#    `(batch, seq, embed_dim)`, the inverse of step 2.
# 5. **Mix heads** with the output projection `out_proj`, another `Linear(embed_dim, embed_dim)`.
#
# The cost is the same as one attention of width `embed_dim`: the heads split the width, they
# do not multiply it. But each head has its own `seq x seq` weight matrix: the attention memory
# is `batch x heads x seq^2`.
#
# This matches `torch.nn.MultiheadAttention(embed_dim, num_heads, bias=True, batch_first=True)`
# called as `mha(x, x, x, attn_mask=...)`, with two differences of convention: PyTorch stores the
# three input projections stacked in one `in_proj_weight` of shape `(3 * embed_dim, embed_dim)`
# (we keep three `Linear`s, as Hugging Face models do), and PyTorch's `attn_mask` uses
# `True` = *blocked* where ours, like `F.scaled_dot_product_attention`, uses `True` = keep.
# PyTorch also returns `(output, weights averaged over heads)` by default; ours returns the
# output alone, or the per-head weights with `need_weights=True` (PyTorch's
# `average_attn_weights=False`).
#
# **Your tasks:**
# - `__init__`: check that `num_heads` divides `embed_dim` (`ValueError` otherwise), store
#   `embed_dim`, `num_heads`, `head_dim`, and create `q_proj`, `k_proj`, `v_proj`, `out_proj`
#   in that order, each a `Linear(embed_dim, embed_dim, bias=bias, rng=...)`, all four drawing
#   from one NumPy Generator made from `rng` by `np.random.default_rng` (so `rng=0` is
#   reproducible and the four layers still get different weights).
# - `forward(x, mask=None, need_weights=False)`: steps 1-5 for `x` of shape
#   `(batch, seq, embed_dim)` (`ValueError` naming the shape otherwise). Return the output
#   Tensor `(batch, seq, embed_dim)`, or `(output, weights)` with the per-head weights
#   `(batch, heads, seq, seq)` when `need_weights=True`.

# %% tags=["export"]
class MultiHeadAttention(Module):
    """Multi-head self-attention. PyTorch: ``torch.nn.MultiheadAttention(embed_dim, num_heads,
    bias=bias, batch_first=True)`` called as ``mha(x, x, x)``.

    MultiHeadAttention(embed_dim, num_heads, bias=True, rng=None)

    Parameters, in order: q_proj, k_proj, v_proj, out_proj, each a Linear(embed_dim, embed_dim)
    (weight (out, in), y = x @ W.T + b). head_dim = embed_dim // num_heads.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        if num_heads < 1 or embed_dim < 1 or embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        generator = np.random.default_rng(rng)
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias, rng=generator)
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias, rng=generator)
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias, rng=generator)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, rng=generator)
        ### END SOLUTION

    def forward(self, x: Tensor, mask=None, need_weights: bool = False):
        """Self-attention of x (batch, seq, embed_dim); mask broadcastable to (batch, heads, seq, seq).

        Returns the output Tensor (batch, seq, embed_dim), or (output, weights) with weights
        (batch, heads, seq, seq) when need_weights is True.
        """
        ### BEGIN SOLUTION
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention({self.embed_dim}, {self.num_heads}) expects input of shape "
                             f"(batch, seq, {self.embed_dim}), got {x.shape}")
        batch, seq, _ = x.shape

        def split_heads(t):  # (batch, seq, embed) -> (batch, heads, seq, head_dim)
            return t.reshape(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = split_heads(self.q_proj(x)), split_heads(self.k_proj(x)), split_heads(self.v_proj(x))
        heads, weights = scaled_dot_product_attention(q, k, v, mask=mask)
        merged = heads.transpose(1, 2).reshape(batch, seq, self.embed_dim)
        out = self.out_proj(merged)
        return (out, weights) if need_weights else out
        ### END SOLUTION

# %%
# Check MultiHeadAttention: parameters, shapes, a hand-written NumPy forward, and causality
# (changing a later token does not change earlier outputs).
_mha = MultiHeadAttention(8, 2, rng=0)
assert [n for n, _ in _mha.named_parameters()] == [f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
                                                   for w in ("weight", "bias")]
_x = _rng.standard_normal((3, 5, 8)).astype(np.float32)
_y, _wh = _mha(Tensor(_x), need_weights=True)
assert _y.shape == (3, 5, 8) and _wh.shape == (3, 2, 5, 5) and np.allclose(_wh.data.sum(-1), 1)
_P = {n: p.data for n, p in _mha.named_parameters()}
_proj = lambda name, a: a @ _P[name + ".weight"].T + _P[name + ".bias"]
_split = lambda a: a.reshape(3, 5, 2, 4).transpose(0, 2, 1, 3)
_sc = _split(_proj("q_proj", _x)) @ _split(_proj("k_proj", _x)).transpose(0, 1, 3, 2) / 2.0
_ew = np.exp(_sc - _sc.max(-1, keepdims=True))
_ref = ((_ew / _ew.sum(-1, keepdims=True)) @ _split(_proj("v_proj", _x))).transpose(0, 2, 1, 3).reshape(3, 5, 8)
assert np.allclose(_y.data, _proj("out_proj", _ref), atol=1e-5)
_x2 = _x.copy()
_x2[:, 3:] += 1.0
_ya, _yb = _mha(Tensor(_x), mask=causal_mask(5)).data, _mha(Tensor(_x2), mask=causal_mask(5)).data
assert np.allclose(_ya[:, :3], _yb[:, :3], atol=1e-6) and not np.allclose(_ya[:, 3:], _yb[:, 3:])
print("MultiHeadAttention ok:", _mha)

# %% [markdown]
# ## Systems analysis: the quadratic wall
#
# The cell below measures, with your code, at a fixed width (`d_k = 64`, one head) for sequence
# lengths `N` from 64 to 1024:
#
# 1. **Memory**: the bytes of the `weights` Tensor that your attention returns (`N x N`
#    float32), against the bytes of `q`, `k`, `v` and the output (`N x 64` each), and the peak
#    memory your function allocates (`tracemalloc` sees NumPy's buffers).
# 2. **Time** of one call, best of several runs.
# 3. **Tiling**: the same attention computed 128 queries at a time (each block's rows still see
#    every key, so the result is identical), to see what happens to the peak memory when the
#    `N x N` matrix never exists all at once, the idea behind FlashAttention.
#
# Then it scales the measured bytes per score up to a 1B-parameter-class model and to a
# 100k-token context.

# %% tags=["analysis"]
import time
import tracemalloc


def _best_time(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_bytes(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _tiled_attention(q, k, v, block=128):
    """Attention 128 queries at a time: each block needs a (block, N) score matrix, never (N, N)."""
    outs = [scaled_dot_product_attention(Tensor(q.data[i:i + block]), k, v)[0].data
            for i in range(0, q.shape[0], block)]
    return np.concatenate(outs)


_rng = np.random.default_rng(0)
_d = 64
_rows = []
print(f"{'N':>5} {'weights':>10} {'q,k,v,out':>10} {'peak':>10} {'tiled peak':>11} {'time':>9} {'time/N^2':>9}")
for _n in [64, 128, 256, 512, 1024]:
    _q, _k, _v = (Tensor(_rng.standard_normal((_n, _d)).astype(np.float32)) for _ in range(3))
    _out, _w = scaled_dot_product_attention(_q, _k, _v)
    _io = 4 * _q.data.nbytes
    _peak = _peak_bytes(lambda: scaled_dot_product_attention(_q, _k, _v))
    _tiled_peak = _peak_bytes(lambda: _tiled_attention(_q, _k, _v))
    assert np.allclose(_tiled_attention(_q, _k, _v), _out.data, atol=1e-5)
    _t = _best_time(lambda: scaled_dot_product_attention(_q, _k, _v))
    _rows.append((_n, _w.data.nbytes, _t))
    print(f"{_n:>5} {_w.data.nbytes / 2**10:>8.0f} K {_io / 2**10:>8.0f} K {_peak / 2**10:>8.0f} K "
          f"{_tiled_peak / 2**10:>9.0f} K {_t * 1e3:>7.2f} ms {_t / _n**2 * 1e9:>6.2f} ns")

_bytes_per_score = _rows[-1][1] / _rows[-1][0] ** 2
print(f"\nweights grow {_rows[-1][1] / _rows[-2][1]:.1f}x when N doubles (512 -> 1024); "
      f"time {_rows[-1][2] / _rows[-2][2]:.1f}x; {_bytes_per_score:.0f} bytes per score")

# Scale the measurement up. A 1B-parameter-class decoder (e.g. 16 layers, 32 heads, width 2048,
# as in Llama 3.2 1B): training keeps every layer's attention weights for the backward pass.
_layers, _heads, _width = 16, 32, 2048
print(f"\nattention weights kept for backward, 1 sequence, {_layers} layers x {_heads} heads, float32:")
for _ctx in [2_048, 8_192, 32_768, 100_000]:
    _per_layer = _heads * _ctx**2 * _bytes_per_score
    _qkv = 3 * _ctx * _width * _bytes_per_score
    print(f"   N = {_ctx:>7}: {_per_layer / 2**30:>9.2f} GiB per layer, {_layers * _per_layer / 2**30:>9.1f} GiB "
          f"all layers   (q, k, v of a layer: {_qkv / 2**20:.0f} MiB)")
# At inference, generating token t without a cache recomputes keys and values of all t earlier
# tokens; a KV cache stores them instead: 2 (k and v) x layers x N x width numbers.
_kv = 2 * _layers * 100_000 * _width * _bytes_per_score
print(f"KV cache for a 100k-token context: {_kv / 2**30:.1f} GiB (float32). Key/value projections per layer "
      f"to generate 100k tokens: {100_000 * 100_001 // 2:.2e} token positions without a cache, {100_000:.0e} with one")

# %% [markdown]
# ## Summary
#
# | you built | key idea | PyTorch / production |
# |---|---|---|
# | `scaled_dot_product_attention` | `softmax(q k^T / sqrt(d_k)) v`, stable, masked with -1e9 | `F.scaled_dot_product_attention` (dispatches to FlashAttention kernels) |
# | `causal_mask` | `tril`: no looking ahead | `is_causal=True` |
# | `MultiHeadAttention` | heads = a batch dimension via reshape + transpose | `nn.MultiheadAttention(batch_first=True)` |
#
# The `N x N` weights are the price of letting every token see every other. Production systems
# pay it differently: **FlashAttention** tiles the computation so the matrix is never stored
# (an online softmax keeps a running max and sum per row; backward recomputes the tiles), and a
# **KV cache** (Module 18) keeps past keys and values during generation so each new token costs
# `O(N)` instead of recomputing `O(N^2)`. Module 13 stacks your `MultiHeadAttention` into a
# transformer block.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: The quadratic wall
#
# Using your analysis table, describe how the memory of the attention weights and the time of
# one attention call grow with the sequence length `N` at a fixed width, and compare them with
# the memory of `q`, `k`, `v` and the output. Which term dominates, from which `N` on, and why?
# Use the scaled-up numbers to explain what breaks for a 1B-parameter model trained on long
# sequences or run on a 100k-token context, and what the tiled measurement says about where
# that memory is actually needed.

# %% [markdown] tags=["answer"] question="q1"
# The weights are an `N x N` float32 matrix: 4 bytes per score, 16 KiB at N = 64 and 4 MiB
# at N = 1024, growing 4.0x each time `N` doubles. `q`, `k`, `v` and the output are `N x 64`
# each and only double: at N = 64 the four of them (64 KiB) are 4x the weights, at N = 256 they
# are equal (256 KiB each), and from then on the weights dominate (4 MiB against 1 MiB at
# 1024). The crossover is at `N = 4 d`: quadratic beats linear as soon as the sequence is
# longer than a few head widths. The peak memory of one call is about 4x the weights (16 MiB at
# 1024): scores, the max-subtracted copy, the exponentials and the weights are all `N x N`
# buffers alive at once. Time also grows about 4x per doubling at large `N` (two `N x N x d`
# matrix products plus an `N x N` softmax); at small `N` fixed Python overhead dominates, and
# time per score jumps when the `N x N` buffers stop fitting in the CPU cache (between 256 and
# 512 here).
#
# Scaled up with the measured 4 bytes per score: with 32 heads and 16 layers, a single 8k-token
# sequence needs 8 GiB of attention weights per layer and 128 GiB over all layers, which
# training keeps for backward (and softmax backward needs them); at 32k tokens it is 128 GiB
# per layer, at 100k about 1.2 TiB per layer. A 1B-parameter model's weights are only 4 GB in
# float32, so the activations, not the parameters, break first: the batch no longer fits on an
# 80 GB GPU already at a few thousand tokens, and at 100k tokens even inference cannot hold
# one layer's matrix. Meanwhile `q`, `k`, `v` of a layer stay at a few hundred MiB to a GiB:
# linear in `N`.
#
# The tiled measurement computes exactly the same output with a peak of `block x N` scores
# instead of `N x N`: the matrix is never needed as a whole, only one block of rows at a time.
# The quadratic *compute* remains (every pair still gets scored), but the quadratic *memory* is
# an artefact of materialising the matrix. FlashAttention pushes this to both dimensions.

# %% [markdown]
# ### q2: Stability, scaling and masks
#
# Explain why attention divides the scores by `sqrt(d_k)` and why the softmax must subtract the
# row maximum, using what happens to scores of size 1e4 in your inline check. Your masking
# replaces blocked scores by -1e9 rather than -inf: what weights does a fully masked row get in
# your implementation, what would -inf give, and why can -1e9 itself be a problem in float16
# or bfloat16? How does PyTorch's `F.scaled_dot_product_attention` handle masks and causality
# (`attn_mask`, `is_causal`) and the two opposite boolean conventions between it and
# `nn.MultiheadAttention`?

# %% [markdown] tags=["answer"] question="q2"
# With `q` and `k` entries of variance 1, `q . k` is a sum of `d_k` products with variance
# `d_k`, so its standard deviation is `sqrt(d_k)`: 8 for `d_k = 64`. Without the scaling the
# softmax saturates to a near one-hot vector, whose Jacobian `diag(p) - p p^T` is almost zero:
# gradients vanish and the model trains slowly. Dividing by `sqrt(d_k)` keeps the scores at unit
# variance whatever the head width.
#
# Scores of size 1e4 (the check multiplies `q` by 1e4) make `exp(score)` overflow float32
# (limit about 88.7) to `inf`, and `inf / inf = nan`: every weight of the row is NaN. Subtracting
# the row maximum makes every exponent `<= 0`, the largest term exactly `exp(0) = 1`, so the sum
# is in `[1, N]` and the result is exact up to rounding; the check confirms finite rows that
# sum to 1.
#
# With -1e9, a fully masked row has all scores equal to -1e9; after subtracting its max all
# exponents are 0, so it gets uniform weights `1/N_k` and outputs the mean of the values:
# finite but meaningless, which a padding query can tolerate (its output is ignored). With
# `-inf`, the row max is `-inf` and `-inf - (-inf) = nan`: the whole row, then the output,
# then through the next layers the loss, become NaN. -1e9 is not representable in float16
# (max 65504): it becomes `-inf` and the NaN comes back, so half-precision code uses the dtype's
# own minimum (`torch.finfo(dtype).min`) or computes the softmax in float32; in bfloat16 -1e9 is
# representable, but with 8 bits of mantissa the softmax is usually computed in float32 anyway.
#
# `F.scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False)` takes a boolean
# mask with True = take part in attention (our convention) or a float mask that is *added*
# to the scores; `is_causal=True` applies the causal mask without building it, which lets fused
# kernels skip the masked tiles altogether (about half the work). `nn.MultiheadAttention`'s
# boolean `attn_mask` and `key_padding_mask` use the opposite convention, True = *not* allowed,
# a classic source of silently inverted masks when moving between the two APIs.

# %% [markdown]
# ### q3: Heads, FlashAttention and KV caching
#
# Your `MultiHeadAttention` splits `embed_dim` into heads with reshape and transpose instead of
# looping over heads. What does a head cost in parameters, FLOPs and attention memory compared
# with one head of the full width, and what does the reshape/transpose cost? Then explain the
# two production answers to the quadratic wall: how FlashAttention computes exact attention
# without storing the `N x N` matrix (what it trades), and how a KV cache speeds up
# autoregressive generation (what it stores, how its memory grows with context, and why
# multi-query / grouped-query attention shrink it).

# %% [markdown] tags=["answer"] question="q3"
# The four projections hold `4 (E^2 + E)` parameters whatever the number of heads: heads split
# the width (`head_dim = E / H`), they do not add weights. The projections cost `4 N E^2`
# multiply-adds and the scores and weighted sum `2 N^2 E` in total over all heads, again
# independent of `H`. What grows with `H` is the attention memory: each head has its own
# `N x N` weights, `B x H x N^2` in all, so 8 heads need 8x the weight memory of one
# full-width head. The reshape is free (a view); the transpose makes the batched matmul read
# strided memory, and the merge's reshape after the transpose copies the `B x N x E` output
# once: linear, negligible next to the `N^2` terms. Running all heads as one batched matmul
# instead of a Python loop keeps the work in one BLAS call.
#
# FlashAttention (Dao et al., 2022) tiles `Q`, `K`, `V` into blocks that fit in on-chip SRAM.
# For each query block it streams the key/value blocks, keeping per row a running maximum `m`
# and running sum `l` of exponentials (the online softmax): when a new block raises the
# maximum, the accumulated output and sum are rescaled by `exp(m_old - m_new)`. The result is
# exact attention (not an approximation), with `O(N)` extra memory instead of `O(N^2)`, and
# faster because the bottleneck was reading and writing the `N x N` matrix in GPU memory, not
# the FLOPs. Backward recomputes the score tiles from `Q`, `K` and the saved row statistics
# instead of storing them: it trades extra FLOPs for memory traffic, and it needs a fused,
# hardware-specific kernel. Our tiled measurement is the first half of the idea (query blocks).
#
# In autoregressive generation, each new token needs attention of its query against the keys
# and values of all previous tokens, which do not change. Without a cache, every step recomputes
# the projections of the whole prefix: `O(N^2)` projection work to generate `N` tokens. A KV
# cache stores `K` and `V` of each layer and appends one row per step, so each step costs
# `O(N)` for the attention row and `O(1)` for the projections. Its memory is
# `2 x layers x N x E` per sequence (the analysis prints 24 GiB in float32 for a 100k context
# with 16 layers of width 2048), linear in context and batch, and it becomes the limit on batch
# size and context length in serving. Multi-query attention (one `K`/`V` head shared by all
# query heads) and grouped-query attention (a few `K`/`V` heads, as in Llama 2 70B and Llama 3)
# divide the cache by the ratio of query heads to KV heads, at a small quality cost; paged
# attention (vLLM) avoids fragmenting it.
