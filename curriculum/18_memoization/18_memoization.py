# %% [markdown]
# # Module 18: Memoization (KV caching)
#
# Your GPT of Module 13 generates text one token at a time, and for every new token it runs the
# whole model on the whole context again. Producing 256 tokens from an 8-token prompt pushes
# tens of thousands of token positions through the model, although only 263 different ones
# exist. Almost all of that work recomputes numbers it has computed before.
#
# **Memoization** means computing a pure function once per input and looking the result up
# afterwards (Python's `functools.lru_cache`). In a decoder-only transformer the numbers worth
# keeping are the **keys and values** of attention: those of a past position never change
# when new tokens arrive, because causal attention lets a position see only its past. Keep
# them in a **KV cache**, and each new token costs one position through the model plus one row
# of attention over the cache. Every LLM server does this (Hugging Face's `past_key_values`,
# vLLM, llama.cpp). Its cost is memory, and for large models that memory sets the batch size
# and the context length a GPU can serve.
#
# | you build | what it does | PyTorch / production equivalent |
# |---|---|---|
# | `KVCache(num_layers, batch_size, num_heads, max_len, head_dim)` | preallocated keys and values per layer; `update` writes new positions and returns the views so far; `reset`; `nbytes` | Hugging Face `StaticCache` (`update(key_states, value_states, layer_idx)`), gpt-fast's `KVCache` |
# | `kv_cache_bytes(...)` | the memory formula `2 x layers x batch x heads x head_dim x max_len x bytes` | the sizing rule of vLLM's and TensorRT-LLM's cache managers |
# | `cached_attention(q, keys, values)` | the new queries against every cached key | `F.scaled_dot_product_attention` on the cache |
# | `cached_self_attention(attn, x, cache, layer_idx)` | your `MultiHeadAttention` for new positions only | `GPT2Attention.forward(..., layer_past, use_cache=True)` |
# | `forward_cached(model, tokens, cache)` | your GPT on the new tokens, reading and filling the cache | `model(input_ids, past_key_values=cache)` |
# | `generate_cached(model, prompt, max_new_tokens, ...)` | prefill, then one token per step; exactly `model.generate`'s tokens | `model.generate(..., use_cache=True)` |
#
# **The systems view.** Uncached generation of `n` tokens after a prompt of `T` runs
# `sum_{i<n} (T + i)` token positions through the model, about `n T + n^2 / 2`: quadratic in
# the length. Cached generation runs `T + n - 1` of them: linear. You will measure the
# speed-up as the length grows, see why it is smaller than that ratio (a single token is a
# matrix-vector product: overhead- and memory-bound), and measure what the cache costs in
# bytes, then scale the formula up: for a 7B-parameter model serving a batch of long
# sequences, the cache needs more memory than the weights.
#
# **Inference only.** Nothing here is trained: the cache holds plain NumPy arrays and the
# model runs under `no_grad()`, so no autograd graph is recorded (a graph would keep every
# activation of every step alive).
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after
# each part, then run `pytest --module 18_memoization` in a terminal to see your points.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core.attention import MASK_FILL
from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformers import sample_next_token

# %%
from tinytorch.core.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.transformers import GPT, count_parameters

# %% [markdown]
# ## 1. Why keys and values can be memoized
#
# Look at one layer of your GPT at position `t`. Its query, key and value are linear
# projections of `ln1(x_t)`, where `x_t` is the residual stream at position `t`. The causal mask
# makes the output of every layer at position `t` depend on the tokens `0..t` only, so `x_t`, and
# with it `k_t` and `v_t`, is fixed once tokens `0..t` are known: appending token `t + 1` cannot
# change it. Uncached generation recomputes all of them anyway, for every new token.
#
# The check below measures this on a small GPT: it computes the keys of every layer for a
# sequence and for the same sequence with one more token, and compares the common positions.
# (The keys are read with the model's own layers, the way `TransformerBlock.forward` computes
# them.)

# %%
def keys_of_every_layer(model, tokens):
    """The keys (batch, seq, dim) of each layer of `model` on `tokens`, by running its blocks."""
    with no_grad():
        x = model.position_embedding(model.token_embedding(tokens))
        mask, keys = causal_mask(x.shape[-2]), []
        for block in model.blocks.layers:
            keys.append(block.attn.k_proj(block.ln1(x)).data)
            x = block(x, mask=mask)
    return keys


_demo = GPT(50, 32, 16, 2, 3, rng=0)
_ids = np.random.default_rng(0).integers(0, 50, size=(1, 12))
_short, _long = keys_of_every_layer(_demo, _ids[:, :11]), keys_of_every_layer(_demo, _ids)
for _layer, (_a, _b) in enumerate(zip(_short, _long)):
    assert np.allclose(_a, _b[:, :11], atol=1e-5), f"layer {_layer}: a past key changed"
print(f"the keys of positions 0..10 are the same with and without token 11, in all "
      f"{len(_short)} layers (largest difference {max(np.abs(a - b[:, :11]).max() for a, b in zip(_short, _long)):.1e})")

# %% [markdown]
# ## 2. The cache: preallocated keys and values
#
# A `KVCache` holds, for each of the model's `num_layers` layers, one array of keys and one of
# values, each of shape `(batch_size, num_heads, max_len, head_dim)`: the layout attention
# uses after splitting heads, with room for `max_len` positions. Allocating the whole capacity
# once (`np.zeros`) and writing into it is what Hugging Face's `StaticCache`, gpt-fast and
# TensorRT-LLM do: growing the arrays with `np.concatenate` at every step would copy the whole
# cache each time (quadratic copying) and fragment memory.
#
# `self.lengths[layer]` counts the positions written so far in each layer (the layers are filled
# one after the other during a forward pass; after a pass they are all equal, and `seq_len`
# returns the length of layer 0).
#
# - `__init__(num_layers, batch_size, num_heads, max_len, head_dim, dtype=np.float32)`: store the
#   sizes as attributes of the same names (and `dtype` as `np.dtype(dtype)`), the lists
#   `self.keys` and `self.values` of `num_layers` zero arrays each, and `self.lengths`, a list of
#   `num_layers` zeros. `ValueError` unless every size is at least 1.
# - `update(key, value, layer_idx)` (Hugging Face's argument order): `key` and `value` have shape
#   `(batch_size, num_heads, n, head_dim)` for `n >= 1` new positions. Write them at positions
#   `lengths[layer_idx] .. lengths[layer_idx] + n - 1` of that layer, advance its length by `n`,
#   and return `(keys, values)`: **views** (slices, no copy) of that layer's arrays up to the new
#   length, shape `(batch_size, num_heads, length, head_dim)`. Raise `ValueError` if the shape is
#   wrong, or if the new positions do not fit in `max_len` (say so: the cache is full), before
#   writing anything.
# - `reset()`: forget everything (all lengths back to 0), for a new prompt. No need to clear the
#   arrays: positions at or after `length` are never read, and the next `update` overwrites them.
# - `nbytes`: the bytes the cache holds, measured as the sum of `.nbytes` of its arrays (a
#   property, like NumPy's `ndarray.nbytes`).
#
# `kv_cache_bytes(num_layers, num_heads, head_dim, max_len, batch_size=1, dtype=np.float32)` is
# the formula: 2 (keys and values) x layers x batch x heads x head_dim x max_len x the bytes of
# one number (`np.dtype(dtype).itemsize`), an `int`. A cache's `nbytes` must equal it.
#
# **Your tasks:** `KVCache.__init__`, `update`, `reset`, `nbytes`, and `kv_cache_bytes`.

# %% tags=["export"]
def kv_cache_bytes(num_layers, num_heads, head_dim, max_len, batch_size=1, dtype=np.float32):
    """Bytes of a KV cache: 2 (keys, values) x layers x batch x heads x head_dim x max_len x itemsize.

    An int. With grouped-query attention, num_heads is the number of key/value heads.
    """
    ### BEGIN SOLUTION
    return int(2 * num_layers * batch_size * num_heads * head_dim * max_len * np.dtype(dtype).itemsize)
    ### END SOLUTION


class KVCache:
    """Keys and values of the positions seen so far, per layer, in preallocated arrays.

    KVCache(num_layers, batch_size, num_heads, max_len, head_dim, dtype=np.float32)

    keys[layer], values[layer]: arrays (batch_size, num_heads, max_len, head_dim);
    lengths[layer]: the positions written so far. Hugging Face: StaticCache (update(key_states,
    value_states, layer_idx), get_seq_length()); gpt-fast: KVCache.
    """

    def __init__(self, num_layers, batch_size, num_heads, max_len, head_dim, dtype=np.float32):
        ### BEGIN SOLUTION
        sizes = dict(num_layers=num_layers, batch_size=batch_size, num_heads=num_heads, max_len=max_len,
                     head_dim=head_dim)
        if min(sizes.values()) < 1:
            raise ValueError(f"every size of a KVCache must be at least 1, got {sizes}")
        self.num_layers, self.batch_size, self.num_heads = num_layers, batch_size, num_heads
        self.max_len, self.head_dim, self.dtype = max_len, head_dim, np.dtype(dtype)
        shape = (batch_size, num_heads, max_len, head_dim)
        self.keys = [np.zeros(shape, dtype=self.dtype) for _ in range(num_layers)]
        self.values = [np.zeros(shape, dtype=self.dtype) for _ in range(num_layers)]
        self.lengths = [0] * num_layers
        ### END SOLUTION

    @classmethod
    def for_model(cls, model, batch_size=1, max_len=None):
        """A cache sized for a GPT of Module 13: its layers, heads, head_dim, weight dtype and
        (unless max_len is given) its context window."""
        attn = model.blocks.layers[0].attn
        return cls(len(model.blocks.layers), batch_size, attn.num_heads,
                   model.max_len if max_len is None else max_len, attn.head_dim,
                   dtype=attn.k_proj.weight.data.dtype)

    @property
    def seq_len(self):
        """The number of positions cached (in layer 0). Hugging Face: get_seq_length()."""
        return self.lengths[0]

    def update(self, key, value, layer_idx):
        """Write key and value (batch, heads, n, head_dim) after the cached positions of layer
        layer_idx; return views of that layer's keys and values up to the new length."""
        ### BEGIN SOLUTION
        expected = (self.batch_size, self.num_heads, self.head_dim)
        for name, array in (("key", key), ("value", value)):
            if array.ndim != 4 or (array.shape[0], array.shape[1], array.shape[3]) != expected:
                raise ValueError(f"{name} must have shape (batch {self.batch_size}, heads {self.num_heads}, "
                                 f"new positions, head_dim {self.head_dim}), got {array.shape}")
        if key.shape != value.shape:
            raise ValueError(f"key and value must have the same shape, got {key.shape} and {value.shape}")
        start = self.lengths[layer_idx]
        end = start + key.shape[2]
        if end > self.max_len:
            raise ValueError(f"the KV cache is full: {start} positions cached, {key.shape[2]} more do not fit "
                             f"in max_len={self.max_len}")
        self.keys[layer_idx][:, :, start:end] = key
        self.values[layer_idx][:, :, start:end] = value
        self.lengths[layer_idx] = end
        return self.keys[layer_idx][:, :, :end], self.values[layer_idx][:, :, :end]
        ### END SOLUTION

    def reset(self):
        """Forget every cached position (the arrays stay allocated)."""
        ### BEGIN SOLUTION
        self.lengths = [0] * self.num_layers
        ### END SOLUTION

    @property
    def nbytes(self):
        """The bytes held by the key and value arrays (measured from the arrays)."""
        ### BEGIN SOLUTION
        return int(sum(array.nbytes for array in self.keys + self.values))
        ### END SOLUTION

    def __repr__(self):
        return (f"KVCache(layers={self.num_layers}, batch={self.batch_size}, heads={self.num_heads}, "
                f"max_len={self.max_len}, head_dim={self.head_dim}, {self.dtype}, "
                f"seq_len={self.seq_len}, {self.nbytes:,} bytes)")

# %% [markdown]
# ### Check: writing, reading, overflowing, resetting, counting bytes

# %%
_rng = np.random.default_rng(0)
_cache = KVCache(num_layers=2, batch_size=3, num_heads=4, max_len=10, head_dim=5)
assert len(_cache.keys) == len(_cache.values) == 2 and _cache.keys[0].shape == (3, 4, 10, 5)
assert _cache.keys[0].dtype == np.float32 and _cache.lengths == [0, 0] and _cache.seq_len == 0
_k1, _v1 = _rng.standard_normal((3, 4, 6, 5)), _rng.standard_normal((3, 4, 6, 5))
_k2, _v2 = _rng.standard_normal((3, 4, 1, 5)), _rng.standard_normal((3, 4, 1, 5))
_cache.update(_k1, _v1, 0)
_keys, _values = _cache.update(_k2, _v2, 0)
assert _keys.shape == (3, 4, 7, 5) and np.shares_memory(_keys, _cache.keys[0]), "return views, not copies"
assert np.allclose(_keys, np.concatenate([_k1, _k2], axis=2)) and np.allclose(_values, np.concatenate([_v1, _v2], axis=2))
assert _cache.lengths == [7, 0] and _cache.seq_len == 7
try:
    _cache.update(_rng.standard_normal((3, 4, 4, 5)), _rng.standard_normal((3, 4, 4, 5)), 0)
    raise AssertionError("7 + 4 positions do not fit in max_len=10: expected a ValueError")
except ValueError as error:
    print("full cache:", error)
assert _cache.lengths == [7, 0], "a refused update must not change the cache"
_cache.reset()
assert _cache.lengths == [0, 0] and np.allclose(_cache.update(_k2, _v2, 1)[0], _k2)
assert _cache.nbytes == kv_cache_bytes(2, 4, 5, 10, batch_size=3) == 2 * 2 * 3 * 4 * 5 * 10 * 4
assert kv_cache_bytes(2, 4, 5, 10, dtype=np.float16) == 2 * 2 * 4 * 5 * 10 * 2
print("KVCache ok:", _cache)

# %% [markdown]
# ## 3. Attention over the cache
#
# When the cache holds positions `0..t-1` and the new position `t` arrives, the layer needs only
# the new query `q_t`, of shape `(batch, heads, 1, head_dim)`, against all keys and values
# `0..t` (the new key and value written into the cache first):
#
# $$\mathrm{out}_t = \mathrm{softmax}\Big(\frac{q_t K_{0..t}^\top}{\sqrt{d_k}}\Big) V_{0..t}$$
#
# **No mask is needed for one new token.** The causal mask exists to stop a query from seeing
# positions *after* it. The cache holds only positions up to `t`, all of them at or before the
# query: row `t` of the causal mask is all True. The future is not masked out, it simply has not
# been computed yet. (This is also why the cost of the new row is linear in `t`: one dot product
# per cached key, instead of the `t x t` score matrix of the uncached pass.)
#
# **The prefill** is different: the prompt's `n` positions go through the model in one pass,
# `n` queries at once, and query `i` (absolute position `t - n + i` for a cache of length `t`
# after the write) may see keys `0..t-n+i` only. That is the causal mask shifted by the cached
# length: `np.tril(np.ones((n, t), bool), k=t - n)`. For `n = 1` it is a row of `t` Trues: the
# same rule covers both cases, and you may skip building it when `n == 1`.
#
# `cached_attention(q, keys, values)`: NumPy arrays `q (..., n, d)`, `keys` and `values`
# `(..., t, d)` with `t >= n` (the new positions are the last `n` of the cache); returns the
# array `(..., n, d)`. Use Module 12's recipe: scores divided by `sqrt(d)`, blocked scores set to
# `MASK_FILL`, a max-subtracted softmax over the keys, then the weighted sum of the values.
#
# **Your task:** `cached_attention`.

# %% tags=["export"]
def cached_attention(q, keys, values):
    """softmax(q @ keys^T / sqrt(d)) @ values for the last n positions of a cache of length t.

    q: (..., n, d); keys, values: (..., t, d), t >= n, the n new positions last. Query i sees keys
    0..t-n+i: one new query (n = 1) sees every cached key, so it needs no mask; a prefill (n > 1)
    uses the causal mask shifted by t - n. Returns a NumPy array (..., n, d).
    """
    ### BEGIN SOLUTION
    n, t = q.shape[-2], keys.shape[-2]
    scores = (q @ np.swapaxes(keys, -1, -2)) / math.sqrt(q.shape[-1])
    if n > 1:  # a prefill: query i may not see the keys after position t - n + i
        scores = np.where(np.tril(np.ones((n, t), dtype=bool), k=t - n), scores, MASK_FILL)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ values
    ### END SOLUTION

# %% [markdown]
# ### Check: against Module 12's attention with a causal mask
#
# Full causal attention over `t` positions computed by `scaled_dot_product_attention`; its last
# row must equal the cached attention of the last query, and its last three rows the cached
# attention of the last three queries (a prefill after a cached past).

# %%
_q, _k, _v = (_rng.standard_normal((2, 3, 9, 4)).astype(np.float32) for _ in range(3))
_full, _ = scaled_dot_product_attention(Tensor(_q), Tensor(_k), Tensor(_v), mask=causal_mask(9))
assert cached_attention(_q[:, :, -1:], _k, _v).shape == (2, 3, 1, 4)
assert np.allclose(cached_attention(_q[:, :, -1:], _k, _v), _full.data[:, :, -1:], atol=1e-5)
assert np.allclose(cached_attention(_q[:, :, -3:], _k, _v), _full.data[:, :, -3:], atol=1e-5)
assert np.allclose(cached_attention(_q, _k, _v), _full.data, atol=1e-5)
print("cached_attention ok: one query, a partial prefill and a full prefill match causal attention")

# %% [markdown]
# ## 4. Your GPT, with a cache
#
# Only attention mixes positions. Everything else in a transformer block (the LayerNorms, the
# four projections, the MLP, the residual additions) works on each position on its own, so for
# new positions it can run on the new positions only. The cached forward pass therefore uses the
# GPT's own modules unchanged, and replaces one thing: attention reads the past from the cache.
#
# **`cached_self_attention(attn, x, cache, layer_idx)`**, for your `MultiHeadAttention` `attn`
# and `x`, a Tensor `(batch, n, embed_dim)` of the `n` new positions (already normalised by
# `ln1`):
#
# 1. project with `attn.q_proj`, `attn.k_proj`, `attn.v_proj` (call them on `x`), and split the
#    heads of each result's array: `(batch, n, embed_dim) -> (batch, num_heads, n, head_dim)`
#    (reshape, then swap axes 1 and 2, as in Module 12);
# 2. `cache.update(k, v, layer_idx)`, which returns every key and value so far;
# 3. `cached_attention(q, keys, values)`;
# 4. merge the heads back to `(batch, n, embed_dim)` and return `attn.out_proj` of it (a Tensor).
#
# **`forward_cached(model, tokens, cache)`**: the logits `(batch, n, vocab_size)` (a Tensor) of
# `n` new token ids `(batch, n)` that follow the `cache.seq_len` positions already cached,
# computed under `no_grad()` (inference only: the result must carry no graph):
#
# 1. the token embedding of the new ids plus the **position** embedding of their absolute
#    positions, `cache.seq_len .. cache.seq_len + n - 1` (not `0..n-1`: they come after the
#    cache), that is `model.position_embedding.weight[start:start + n]`;
# 2. for each block `i` of `model.blocks.layers`, the block's own computation
#    (`TransformerBlock.forward`: two residual branches) with attention replaced: the first branch
#    adds `cached_self_attention(block.attn, block.ln1(x), cache, i)` to `x`, the second adds the
#    block's MLP of `block.ln2(x)`, unchanged;
# 3. `model.lm_head(model.ln_f(x))`.
#
# Raise `ValueError` if the new positions would go past `model.max_len` (there is no position
# embedding for them). On an empty cache, `forward_cached(model, tokens, cache)` equals
# `model(tokens)`: the prefill. After it, feeding one token at a time gives the last rows of
# `model` on the longer sequence.
#
# **Your tasks:** `cached_self_attention` and `forward_cached`.

# %% tags=["export"]
def cached_self_attention(attn, x, cache, layer_idx):
    """MultiHeadAttention `attn` on the new positions x (batch, n, embed_dim), the past read from
    (and the new keys and values written to) layer layer_idx of cache. Returns a Tensor (batch, n, embed_dim)."""
    ### BEGIN SOLUTION
    batch, n, _ = x.shape

    def split_heads(t):  # (batch, n, embed) -> (batch, heads, n, head_dim)
        return t.data.reshape(batch, n, attn.num_heads, attn.head_dim).transpose(0, 2, 1, 3)

    q, k, v = split_heads(attn.q_proj(x)), split_heads(attn.k_proj(x)), split_heads(attn.v_proj(x))
    keys, values = cache.update(k, v, layer_idx)
    merged = cached_attention(q, keys, values).transpose(0, 2, 1, 3).reshape(batch, n, attn.embed_dim)
    return attn.out_proj(Tensor(merged, dtype=merged.dtype))     # keep the model's dtype (float64 too)
    ### END SOLUTION


def forward_cached(model, tokens, cache):
    """Logits (batch, n, vocab_size) of a Module 13 GPT for n new token ids (batch, n) that follow
    the cache.seq_len cached positions; fills the cache. Inference only (no graph is recorded).
    Hugging Face: model(input_ids, past_key_values=cache, use_cache=True)."""
    ### BEGIN SOLUTION
    tokens = np.asarray(tokens, dtype=np.int64)
    start, n = cache.seq_len, tokens.shape[-1]
    if start + n > model.max_len:
        raise ValueError(f"positions {start}..{start + n - 1} go past the model's max_len={model.max_len}")
    with no_grad():
        x = model.token_embedding(tokens) + model.position_embedding.weight[start:start + n]
        for layer_idx, block in enumerate(model.blocks.layers):
            x = x + cached_self_attention(block.attn, block.ln1(x), cache, layer_idx)
            x = x + block.mlp(block.ln2(x))
        return model.lm_head(model.ln_f(x))
    ### END SOLUTION

# %% [markdown]
# ### Check: cached logits are the uncached logits
#
# A prompt of 5 tokens prefilled, then 4 more fed one at a time and 3 more at once: every row of
# logits must match `model(tokens)` on the whole sequence.

# %%
_model = GPT(40, 24, 16, 4, 2, rng=1)
_tokens = _rng.integers(0, 40, size=(2, 12))
with no_grad():
    _reference = _model(_tokens).data
_cache = KVCache.for_model(_model, batch_size=2)
_rows = [forward_cached(_model, _tokens[:, :5], _cache)]
_rows += [forward_cached(_model, _tokens[:, i:i + 1], _cache) for i in range(5, 9)]
_rows.append(forward_cached(_model, _tokens[:, 9:], _cache))
assert all(r.grad_fn is None and not r.requires_grad for r in _rows), "inference only: no graph"
_cached = np.concatenate([r.data for r in _rows], axis=1)
assert _cached.shape == (2, 12, 40) and _cache.seq_len == 12
assert np.allclose(_cached, _reference, atol=1e-5), np.abs(_cached - _reference).max()
print(f"forward_cached ok: largest difference from the uncached logits {np.abs(_cached - _reference).max():.1e}")

# %% [markdown]
# ## 5. Generation with the cache
#
# `generate_cached(model, prompt, max_new_tokens, temperature=1.0, top_k=None, seed=None)` must
# return **exactly** what `model.generate` returns with the same arguments: the same greedy
# tokens, and the same sampled ones for the same seed. So it picks each token with Module 13's
# `sample_next_token` (imported above), from one `np.random.default_rng(seed)` for the whole
# call, exactly as `generate` does.
#
# 1. Make a cache for the model and the batch (`KVCache.for_model(model, batch_size, max_len)`),
#    sized for what will be used: `min(model.max_len, prompt length + max_new_tokens)`.
# 2. **Prefill**: `forward_cached` on the prompt (its last `model.max_len` tokens, as `generate`
#    crops); the logits of its last position give the first new token.
# 3. **Decode**: for each new token, sample it, append it, and feed it alone to `forward_cached`
#    to get the next logits. Do not run the model after the last new token: its logits would be
#    thrown away. That is one forward call per new token, as in `generate`, but each processes
#    one position instead of the whole context.
# 4. **The window slides.** `generate` runs the model on the last `model.max_len` tokens only.
#    Once the sequence is longer than that, every token of the window moves to a new position,
#    and with learned absolute positions every cached key and value becomes stale. So when the
#    cache is full (`cache.seq_len == cache.max_len`), `reset()` it and prefill the last
#    `model.max_len` tokens again: exact, but no faster than `generate`. (Models with rotary
#    positions and a rolling cache, Mistral's sliding-window attention, or StreamingLLM's
#    attention sinks avoid this; GPT-2 in Hugging Face simply refuses sequences past its
#    1,024 positions.)
#
# Return a NumPy int64 array, the prompt followed by the new ids, with the prompt's shape
# convention (1-d in, 1-d out), as `generate` does.
#
# **Your task:** `generate_cached`.

# %% tags=["export"]
def generate_cached(model, prompt, max_new_tokens, temperature=1.0, top_k=None, seed=None):
    """model.generate(prompt, max_new_tokens, temperature, top_k, seed), token for token, with a KV
    cache: a prefill of the prompt, then one position per new token. Returns NumPy int64 ids
    (prompt then new tokens), 1-d for a 1-d prompt. Hugging Face: generate(..., use_cache=True)."""
    tokens = np.array(prompt, dtype=np.int64)
    single = tokens.ndim == 1
    tokens = tokens[None, :] if single else tokens
    generator = np.random.default_rng(seed)
    ### BEGIN SOLUTION
    window = model.max_len
    kv = KVCache.for_model(model, batch_size=len(tokens), max_len=min(window, tokens.shape[1] + max_new_tokens))
    logits = forward_cached(model, tokens[:, -window:], kv).data[:, -1, :]
    for step in range(max_new_tokens):
        next_ids = sample_next_token(logits, temperature, top_k, generator)
        tokens = np.concatenate([tokens, next_ids[:, None].astype(np.int64)], axis=1)
        if step == max_new_tokens - 1:
            break                         # the last token's logits would be thrown away
        if kv.seq_len == kv.max_len:      # the window slides: every position moves
            kv.reset()
            logits = forward_cached(model, tokens[:, -window:], kv).data[:, -1, :]
        else:
            logits = forward_cached(model, tokens[:, -1:], kv).data[:, -1, :]
    ### END SOLUTION
    return tokens[0] if single else tokens

# %% [markdown]
# ### Check: the same tokens as `model.generate`, greedy and sampled

# %%
_prompt = _rng.integers(0, 40, size=6)
for _kwargs in (dict(temperature=0), dict(temperature=0.9, seed=3), dict(temperature=1.3, top_k=5, seed=7)):
    _want = _model.generate(_prompt, 12, **_kwargs)
    _got = generate_cached(_model, _prompt, 12, **_kwargs)
    assert _got.dtype == np.int64 and _got.shape == (18,), (_got.dtype, _got.shape)
    assert np.array_equal(_got, _want), (_kwargs, _got, _want)
_batch = _rng.integers(0, 40, size=(3, 4))
assert np.array_equal(generate_cached(_model, _batch, 8, seed=1), _model.generate(_batch, 8, seed=1))
assert np.array_equal(generate_cached(_model, _prompt, 30, seed=2), _model.generate(_prompt, 30, seed=2)), \
    "6 + 30 tokens go past max_len=24: the window slides"
print("generate_cached ok:", generate_cached(_model, _prompt, 12, temperature=0).tolist())

# %% [markdown]
# ## 6. Systems analysis: time saved, memory spent
#
# Run the cell below. It measures, on your implementation:
#
# 1. **Generation time**, uncached (`model.generate`) against cached (`generate_cached`), for 32,
#    64, 128 and 256 new tokens after an 8-token prompt, on a small GPT (vocabulary 256, width 128,
#    4 heads, 2 layers, context 320: the size is printed): the median of 3 runs each (Module 14's
#    `measure_latency`), the speed-up, the milliseconds per new token, and the number of token
#    positions each pushes through the model (the work ratio a perfect implementation would reach).
#    It checks that both produce the same tokens.
# 2. **One decoding step** at growing context lengths: the uncached forward over the whole context
#    against one cached step (one new token against a cache of that length).
# 3. **Memory**: the cache's `nbytes` against `kv_cache_bytes` and against what `tracemalloc`
#    (Module 14's `peak_memory`) sees allocated when the cache is built; the peak memory of a whole
#    generation, uncached and cached; and the formula scaled to GPT-2 small and to a 7B-parameter
#    model (32 layers, 32 heads of 128, float16), per sequence and for a batch, against the bytes
#    of their weights.
#
# Times are CPU seconds of this process (`time.process_time` as the clock of `measure_latency`):
# on a shared machine, other programs taking turns on the cores inflate wall-clock times but not
# the work this process does. With one BLAS thread (`OPENBLAS_NUM_THREADS=1`, printed by the cell)
# and a quiet machine, the two agree. The cell takes about a minute: uncached generation of 256
# tokens is the slow part.

# %% tags=["analysis"]
import os
import time

from tinytorch.perf.profiling import measure_latency, peak_memory

print(f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS') or os.environ.get('OMP_NUM_THREADS') or 'default'}")
cpu = time.process_time      # CPU seconds of this process: other programs on the machine do not inflate it
gpt = GPT(vocab_size=256, max_len=320, dim=128, num_heads=4, num_layers=2, rng=0)
prompt = np.random.default_rng(0).integers(0, 256, size=8)
print(f"GPT(vocab 256, max_len 320, dim 128, 4 heads, 2 layers): {count_parameters(gpt):,} parameters, "
      f"{sum(p.data.nbytes for p in gpt.parameters()) / 2**20:.2f} MiB of float32 weights")

print("\n1. Generation after an 8-token prompt (median of 3 runs, CPU time of this process)")
print(f"   {'new':>5} {'uncached s':>11} {'cached s':>9} {'speed-up':>9} {'ms/token unc.':>14} "
      f"{'ms/token cached':>16} {'positions unc.':>15} {'cached':>7} {'ratio':>6}")
generate_cached(gpt, prompt, 4)                                    # warm the code paths once
speedups = {}
for new in (32, 64, 128, 256):
    same = np.array_equal(gpt.generate(prompt, new, temperature=0), generate_cached(gpt, prompt, new, temperature=0))
    same &= np.array_equal(gpt.generate(prompt, new, seed=new), generate_cached(gpt, prompt, new, seed=new))
    assert same, f"{new} new tokens: cached generation differs from model.generate"
    slow = measure_latency(lambda: gpt.generate(prompt, new, temperature=0), warmup=0, repeats=3, clock=cpu)["median"]
    fast = measure_latency(lambda: generate_cached(gpt, prompt, new, temperature=0), warmup=1, repeats=3,
                           clock=cpu)["median"]
    positions = sum(len(prompt) + i for i in range(new))            # uncached: the whole context every step
    cached_positions = len(prompt) + new - 1                        # cached: the prompt once, then one each
    speedups[new] = slow / fast
    print(f"   {new:>5} {slow:>11.3f} {fast:>9.3f} {slow / fast:>8.1f}x {1e3 * slow / new:>14.2f} "
          f"{1e3 * fast / new:>16.2f} {positions:>15,} {cached_positions:>7,} {positions / cached_positions:>5.0f}x")
print(f"   same tokens as model.generate (greedy and sampled) at every length; speed-up at 256 new tokens: "
      f"{speedups[256]:.1f}x")

print("\n2. One decoding step at a context of c tokens (median of 5 runs, CPU time)")
print(f"   {'c':>5} {'uncached forward ms':>20} {'cached step ms':>15} {'ratio':>6}")
decode_kv = KVCache.for_model(gpt)
ids = np.random.default_rng(1).integers(0, 256, size=(1, 320))
for c in (16, 64, 128, 256):
    decode_kv.reset()
    forward_cached(gpt, ids[:, :c - 1], decode_kv)                 # c - 1 positions cached

    def one_step():
        decode_kv.lengths = [c - 1] * decode_kv.num_layers        # rewind: time the same step again
        forward_cached(gpt, ids[:, c - 1:c], decode_kv)

    with no_grad():
        full = measure_latency(lambda: gpt(ids[:, :c]), warmup=1, repeats=5, clock=cpu)["median"]
    step = measure_latency(one_step, warmup=2, repeats=5, clock=cpu)["median"]
    print(f"   {c:>5} {1e3 * full:>20.2f} {1e3 * step:>15.3f} {full / step:>5.1f}x")

print("\n3. Memory of the cache")
cache = KVCache.for_model(gpt, max_len=len(prompt) + 256)
formula = kv_cache_bytes(2, 4, 32, len(prompt) + 256)
allocated = peak_memory(lambda: KVCache.for_model(gpt, max_len=len(prompt) + 256))
print(f"   this GPT, {len(prompt) + 256} positions: nbytes {cache.nbytes:,}, formula {formula:,}, "
      f"tracemalloc saw {allocated:,} bytes allocated ({cache.nbytes / (len(prompt) + 256):,.0f} bytes per token)")
assert cache.nbytes == formula and formula <= allocated < formula + 16_384
peak_slow = peak_memory(lambda: gpt.generate(prompt, 128, temperature=0))
peak_fast = peak_memory(lambda: generate_cached(gpt, prompt, 128, temperature=0))
print(f"   peak memory of generating 128 tokens: uncached {peak_slow / 2**20:.2f} MiB, "
      f"cached {peak_fast / 2**20:.2f} MiB (its cache: {kv_cache_bytes(2, 4, 32, len(prompt) + 128) / 2**20:.2f} MiB)")
configs = {"GPT-2 small, float32": dict(layers=12, heads=12, head_dim=64, context=1024, params=124e6, itemsize=4),
           "7B model, float16": dict(layers=32, heads=32, head_dim=128, context=4096, params=6.7e9, itemsize=2)}
print(f"   {'model':<22} {'context':>7} {'KB/token':>9} {'1 sequence':>11} {'batch 32':>10} {'weights':>9}")
for name, c in configs.items():
    dtype = np.float16 if c["itemsize"] == 2 else np.float32
    one = kv_cache_bytes(c["layers"], c["heads"], c["head_dim"], c["context"], dtype=dtype)
    batch = kv_cache_bytes(c["layers"], c["heads"], c["head_dim"], c["context"], batch_size=32, dtype=dtype)
    print(f"   {name:<22} {c['context']:>7} {one / c['context'] / 1024:>9.0f} {one / 2**30:>9.2f} GiB "
          f"{batch / 2**30:>7.1f} GiB {c['params'] * c['itemsize'] / 2**30:>6.1f} GiB")

# %% [markdown]
# ## 7. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 6 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (where the speed-up comes from, and where it stops).**
# Section 6 measured uncached and cached generation for 32 to 256 new tokens. How does each time
# grow with the number of new tokens, and why? Compare the measured speed-up with the ratio of
# token positions processed: why is it so much smaller, and what does the single-step table say
# about what limits a cached step on your machine? For a model with billions of parameters on a
# GPU, what limits one decoding step, and what do servers do about it?

# %% [markdown] tags=["answer"] question="q1"
# Uncached, each of the `n` steps runs the whole model on the whole context (`T + i` positions),
# so the time per token grows with the length and the total is quadratic: the positions column
# counts `n T + n^2 / 2` (34,688 for 256 tokens). The single-step table shows the uncached forward
# growing with the context, faster than linearly at 256 tokens, where the `seq x seq` attention
# arrays of every head become large. Cached, the prompt is processed once and each new
# token is one position through the model plus one attention row over the cache (linear in
# `t`, tiny at this width): the time per token stays almost flat and the total grows linearly.
# So the measured speed-up grows with the length (a few x at 32 tokens, about 10x at 256 in my
# run), but it stays far below the 132x ratio of positions. The cached step processes a
# single token: every Linear is a matrix-vector product (one multiply-add per weight loaded, so
# memory-bound), and its cost is dominated by fixed per-call overhead: Python, `Module.__call__`,
# `Function.apply`, small NumPy calls and allocations: under a millisecond of CPU per step whatever
# the context, which is why the step time barely moves from 16 to 256 cached tokens. The uncached
# forward amortises the same overhead over all positions with efficient matrix-matrix products.
#
# At billions of parameters, one decoding step must read every weight from memory for one token
# per sequence (12.5 GiB for the 7B model in float16, from the table) plus the whole KV cache: it
# is memory-bandwidth bound (tokens per second = bandwidth / bytes read), not compute-bound. Servers
# batch many sequences per step (continuous batching in vLLM, TGI, TensorRT-LLM) so that each
# weight loaded serves many tokens; they cut the launch overhead with CUDA graphs or
# `torch.compile`, shrink the bytes read with int8/int4 weights and quantized caches, and use
# speculative decoding to verify several tokens per weight pass.

# %% [markdown]
# **Question 2 (why the cache is exact).**
# Your `generate_cached` returns exactly the tokens of `model.generate`. Explain why caching keys and
# values changes no result: which property of the model makes a past key or value final, why a
# single new query needs no mask while the prefill does, and what happens (in your code) once the
# sequence is longer than `max_len`. Could the cached and uncached logits ever differ, and could
# that change a token? What would break the cache's validity in other architectures?

# %% [markdown] tags=["answer"] question="q2"
# The causal mask makes the output of every layer at position `t` a function of tokens `0..t` only
# (section 1 measured it: the keys of the past positions are unchanged, to 1e-7, when a token is
# appended). So `k_t` and `v_t` of every layer are final as soon as token `t` is processed, and the
# uncached pass recomputes identical numbers. Everything else in a block (LayerNorm, projections,
# MLP, residuals) is per position, so `forward_cached` runs it on the new positions only. A single
# new query is the last position: every key in the cache is at or before it, so row `t` of the
# causal mask is all True and masking would change nothing; the future has not been computed, so
# there is nothing to hide. A prefill of `n` positions has `n` queries, and query `i` must not see
# the `n - 1 - i` later new keys, hence `tril(..., k=t - n)` in `cached_attention`.
#
# Past `max_len`, `generate` crops to the last `max_len` tokens, which gives every token a new
# absolute position embedding: every cached key and value is stale. My code resets the cache and
# prefills the window again (exact, as slow as uncached); rotary embeddings with a rolling buffer
# or attention sinks are how long-running models avoid it.
#
# The logits are equal only up to floating-point rounding: a `1 x t` matrix-vector product sums in
# a different order than the `t x t` BLAS product, so they agree to about 1e-6 (`np.allclose`).
# A token could differ only if two logits tie within that error (greedy) or a uniform draw falls
# within it of a cumulative-probability boundary (sampling): possible in principle, vanishingly rare
# in float32. Validity breaks wherever a past position's representation depends on the future:
# bidirectional encoders (BERT), models whose positions shift (the sliding window above), or layers
# that mix positions outside attention (batch statistics, a non-causal convolution).

# %% [markdown]
# **Question 3 (the memory bill).**
# Section 6 measured the bytes of your cache and compared them with `kv_cache_bytes`. Derive the
# formula from your `KVCache`, and use the table for GPT-2 and the 7B model: at what batch size and
# context does the cache outweigh the weights, and what does that mean for serving? Why is the cache
# preallocated rather than grown with `np.concatenate`, and what does preallocating to `max_len`
# waste? Name techniques that reduce the cache's memory and what each trades.

# %% [markdown] tags=["answer"] question="q3"
# My `KVCache` allocates, per layer, a key and a value array of `batch x heads x max_len x head_dim`
# numbers: `2 x layers x batch x heads x head_dim x max_len x itemsize` bytes, which `nbytes` and
# tracemalloc confirmed (264 positions of my small GPT: 540,672 bytes, 2 KiB per token,
# `2 x layers x dim x 4` bytes). Per token it is `2 x layers x dim` numbers: GPT-2 small needs
# 72 KiB per token in float32 (72 MiB for 1,024 tokens, against 473 MiB of weights); the 7B model
# needs 512 KiB per token in float16, 2 GiB per 4k-token sequence, so a batch of 32 such sequences
# needs 64 GiB, five times its 12.5 GiB of weights. Beyond a handful of long sequences the cache,
# not the model, fills the GPU: it caps the batch size (and so the throughput) and the context length.
#
# Preallocating writes each new position in place, O(1) per step; growing with `np.concatenate`
# copies the whole cache at every step (quadratic copying) and fragments memory. But reserving
# `max_len` for every sequence wastes the unused tail when most answers are short (the allocation
# is virtual at first: NumPy's zeros are untouched pages until written, yet a GPU allocator reserves
# them for real). Remedies: PagedAttention (vLLM) allocates the cache in fixed-size blocks on demand,
# like virtual memory pages, and shares prompt blocks between sequences; multi-query and
# grouped-query attention (Llama 2 70B: 8 key/value heads for 64 query heads) divide the cache by
# the number of heads sharing a key, at a small quality cost; quantizing the cache to int8 or FP8
# halves it, with a small accuracy cost; sliding-window attention caps its length at the window,
# losing longer-range attention; and offloading to CPU memory trades bandwidth for capacity.
