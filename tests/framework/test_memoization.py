"""tinytorch.perf.memoization: the KV cache against NumPy concatenation (random interleaved
updates, views, overflow, reset, bytes against the formula), cached attention against Module 12's
causal attention, the cached GPT's logits against the uncached forward (float32 and float64, random
configurations, prefills in chunks, batches), and generate_cached against GPT.generate token for
token (greedy, temperature, top-k, batches, 1-d prompts, past the context window)."""

import warnings

import numpy as np
import pytest

from tinytorch.core.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.autograd import is_grad_enabled, no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformers import GPT
from tinytorch.perf import memoization
from tinytorch.perf.memoization import (
    KVCache, cached_attention, cached_self_attention, forward_cached, generate_cached, kv_cache_bytes,
)

rng = np.random.default_rng(18)


@pytest.fixture(autouse=True)
def strict_floats():
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_gpt(dtype=np.float32, max_len=None, seed=None):
    heads = int(rng.integers(1, 4))
    model = GPT(int(rng.integers(10, 50)), max_len or int(rng.integers(12, 30)), heads * int(rng.integers(2, 6)),
                heads, int(rng.integers(1, 4)), rng=seed if seed is not None else int(rng.integers(1000)))
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


def uncached_logits(model, tokens):
    with no_grad():
        return model(tokens).data


# --- the cache ----------------------------------------------------------------------------------
@pytest.mark.parametrize("trial", range(6))
def test_nbytes_equals_the_formula(trial):
    layers, batch, heads, max_len, head_dim = (int(v) for v in rng.integers(1, 9, size=5))
    dtype = [np.float16, np.float32, np.float64][trial % 3]
    cache = KVCache(layers, batch, heads, max_len, head_dim, dtype=dtype)
    expected = 2 * layers * batch * heads * max_len * head_dim * np.dtype(dtype).itemsize
    assert cache.nbytes == kv_cache_bytes(layers, heads, head_dim, max_len, batch_size=batch, dtype=dtype) == expected
    assert type(cache.nbytes) is int and type(kv_cache_bytes(1, 1, 1, 1)) is int
    assert all(a.shape == (batch, heads, max_len, head_dim) and a.dtype == dtype for a in cache.keys + cache.values)


@pytest.mark.parametrize("trial", range(6))
def test_interleaved_updates_match_concatenation(trial):
    layers, batch, heads, head_dim = (int(v) for v in rng.integers(1, 4, size=4))
    max_len = int(rng.integers(6, 20))
    cache = KVCache(layers, batch, heads, max_len, head_dim)
    written = [[] for _ in range(layers)]
    for _ in range(20):
        layer, n = int(rng.integers(layers)), int(rng.integers(1, 4))
        k, v = (rng.standard_normal((batch, heads, n, head_dim)).astype(np.float32) for _ in range(2))
        if cache.lengths[layer] + n > max_len:
            with pytest.raises(ValueError, match="full"):
                cache.update(k, v, layer)
            continue
        keys, values = cache.update(k, v, layer)
        written[layer].append((k, v))
        assert np.shares_memory(keys, cache.keys[layer]) and np.shares_memory(values, cache.values[layer])
        np.testing.assert_array_equal(keys, np.concatenate([a for a, _ in written[layer]], axis=2))
        np.testing.assert_array_equal(values, np.concatenate([b for _, b in written[layer]], axis=2))
    assert cache.lengths == [sum(k.shape[2] for k, _ in w) for w in written]
    assert cache.seq_len == cache.lengths[0]


def test_refused_updates_change_nothing_and_reset_starts_over():
    cache = KVCache(2, 1, 2, 5, 3)
    k = rng.standard_normal((1, 2, 4, 3)).astype(np.float32)
    cache.update(k, k, 0)
    before = cache.keys[0].copy()
    for bad_k, bad_v in [(k, k), (k[:, :1], k[:, :1]), (k[..., :2], k[..., :2]), (k[0], k[0]), (k[:, :, :1], k[:, :, :2])]:
        with pytest.raises(ValueError):
            cache.update(bad_k, bad_v, 0)
    assert cache.lengths == [4, 0]
    np.testing.assert_array_equal(cache.keys[0], before)
    cache.reset()
    assert cache.lengths == [0, 0] and cache.seq_len == 0 and cache.nbytes == kv_cache_bytes(2, 2, 3, 5)
    new = rng.standard_normal((1, 2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(cache.update(new, new, 0)[0], new)     # the whole capacity again
    for sizes in [(0, 1, 1, 1, 1), (1, 1, 1, 0, 1), (1, 1, 1, 1, 0), (1, 0, 1, 1, 1)]:
        with pytest.raises(ValueError):
            KVCache(*sizes)


def test_for_model_follows_the_model():
    model = random_gpt(np.float64)
    attn = model.blocks.layers[0].attn
    cache = KVCache.for_model(model, batch_size=3)
    assert (cache.num_layers, cache.batch_size, cache.num_heads, cache.max_len, cache.head_dim) == \
        (len(model.blocks.layers), 3, attn.num_heads, model.max_len, attn.head_dim)
    assert cache.dtype == np.float64 and KVCache.for_model(model, max_len=7).max_len == 7


# --- attention over the cache -------------------------------------------------------------------
@pytest.mark.parametrize("trial", range(8))
def test_cached_attention_is_the_last_rows_of_causal_attention(trial):
    lead = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    t, d = int(rng.integers(1, 12)), int(rng.integers(1, 8))
    q, k, v = (rng.standard_normal(lead + (t, d)) for _ in range(3))
    full, _ = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)), mask=causal_mask(t))
    for n in sorted({1, t, int(rng.integers(1, t + 1))}):
        got = cached_attention(q[..., -n:, :], k, v)
        assert got.shape == lead + (n, d) and got.dtype == np.float64
        np.testing.assert_allclose(got, full.data[..., -n:, :], rtol=1e-12, atol=1e-12)


def test_cached_attention_keeps_float32_and_large_scores_finite():
    q = rng.standard_normal((2, 1, 4)).astype(np.float32) * 30
    k = rng.standard_normal((2, 6, 4)).astype(np.float32) * 30
    v = rng.standard_normal((2, 6, 4)).astype(np.float32)
    got = cached_attention(q, k, v)
    assert got.dtype == np.float32 and np.isfinite(got).all()


@pytest.mark.parametrize("trial", range(4))
def test_cached_self_attention_matches_multi_head_attention(trial):
    heads = int(rng.integers(1, 4))
    embed, batch, t = heads * int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(2, 10))
    attn = MultiHeadAttention(embed, heads, rng=trial)
    for p in attn.parameters():
        p.data = p.data.astype(np.float64)
    x = rng.standard_normal((batch, t, embed))
    with no_grad():
        expected = attn(Tensor(x, dtype=np.float64), mask=causal_mask(t)).data
    cache = KVCache(1, batch, heads, t, embed // heads, dtype=np.float64)
    first = int(rng.integers(1, t))
    outs = [cached_self_attention(attn, Tensor(x[:, :first], dtype=np.float64), cache, 0).data]
    outs += [cached_self_attention(attn, Tensor(x[:, i:i + 1], dtype=np.float64), cache, 0).data for i in range(first, t)]
    np.testing.assert_allclose(np.concatenate(outs, axis=1), expected, rtol=1e-10, atol=1e-12)
    assert cache.lengths == [t]


# --- the cached GPT -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-10)])
@pytest.mark.parametrize("trial", range(4))
def test_forward_cached_matches_the_uncached_forward(dtype, tol, trial):
    model = random_gpt(dtype)
    batch, total = int(rng.integers(1, 4)), int(rng.integers(2, model.max_len + 1))
    tokens = rng.integers(0, model.vocab_size, size=(batch, total))
    cuts = sorted(set(int(c) for c in rng.integers(1, total, size=int(rng.integers(0, 4)))))
    edges = [0] + cuts + [total]
    cache = KVCache.for_model(model, batch_size=batch)
    outs = [forward_cached(model, tokens[:, a:z], cache) for a, z in zip(edges, edges[1:])]
    got = np.concatenate([o.data for o in outs], axis=1)
    assert got.dtype == dtype and cache.lengths == [total] * len(model.blocks.layers)
    np.testing.assert_allclose(got, uncached_logits(model, tokens), rtol=tol, atol=tol)


def test_forward_cached_records_no_graph_and_restores_grad_mode():
    model = random_gpt()
    cache = KVCache.for_model(model)
    out = forward_cached(model, rng.integers(0, model.vocab_size, size=(1, 4)), cache)
    assert out.grad_fn is None and not out.requires_grad and is_grad_enabled()
    with pytest.raises(ValueError, match="max_len"):
        forward_cached(model, rng.integers(0, model.vocab_size, size=(1, model.max_len - 3)), cache)


@pytest.mark.parametrize("trial", range(6))
def test_generate_cached_gives_generates_tokens(trial):
    model = random_gpt(max_len=int(rng.integers(16, 30)))
    shape = int(rng.integers(1, 6)) if trial % 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 6)))
    prompt = rng.integers(0, model.vocab_size, size=shape)
    new = int(rng.integers(1, model.max_len - 6))
    for sampling in [dict(temperature=0), dict(temperature=float(rng.uniform(0.5, 1.5)), seed=trial),
                     dict(temperature=1.0, top_k=int(rng.integers(1, model.vocab_size + 3)), seed=trial + 100)]:
        got = generate_cached(model, prompt, new, **sampling)
        want = model.generate(prompt, new, **sampling)
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=str(sampling))


@pytest.mark.parametrize("prompt_len,new", [(3, 20), (9, 5), (12, 4), (1, 1), (4, 0)])
def test_generate_cached_past_the_context_window(prompt_len, new):
    model = random_gpt(max_len=8, seed=prompt_len)
    prompt = rng.integers(0, model.vocab_size, size=(2, prompt_len))
    for sampling in [dict(temperature=0), dict(temperature=0.9, top_k=4, seed=new)]:
        np.testing.assert_array_equal(generate_cached(model, prompt, new, **sampling),
                                      model.generate(prompt, new, **sampling))


def test_generate_cached_prefills_once_then_one_position_per_token(monkeypatch):
    model = random_gpt(max_len=30)
    calls, inner = [], memoization.forward_cached

    def spy(model, tokens, cache):
        calls.append((np.shape(tokens), cache.seq_len, cache.max_len))
        return inner(model, tokens, cache)

    monkeypatch.setattr(memoization, "forward_cached", spy)
    generate_cached(model, rng.integers(0, model.vocab_size, size=(2, 5)), 9, temperature=0)
    assert calls == [((2, 5), 0, 14)] + [((2, 1), 5 + i, 14) for i in range(8)]
