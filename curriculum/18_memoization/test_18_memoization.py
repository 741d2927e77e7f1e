"""Public graded tests of module 18 (Memoization: KV caching).

Oracles are computed here in NumPy (float64): the cache's contents by concatenating what was
written, attention with a causal mask, a whole GPT on weights drawn here and loaded into the
student's kernel (load_state_dict), and Module 13's sampling rule. Token sequences are compared
only where no decision is within 1e-4 of a tie (the oracle redraws the prompt and seed until
then), so float32 rounding can never flip a token.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("18_memoization")

C = np.sqrt(2 / np.pi)
MARGIN = 1e-4
LOGITS = dict(rtol=1e-4, atol=1e-4, dtype=np.float32)
# Builds the GPT of Module 13 in the kernel and loads the weights drawn here.
MODEL = "model = GPT(V, M, D, H, N)\nmodel.load_state_dict(state)\n"


# --- NumPy oracles ------------------------------------------------------------------------------
def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(q, k, v, mask=None):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -1e9)
    return softmax(s) @ v


def layer_norm(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def linear(p, name, x):
    out = x @ p[name + ".weight"].astype(np.float64).T
    return out + p[name + ".bias"] if name + ".bias" in p else out


def split(a, heads):
    b, n, e = a.shape
    return a.reshape(b, n, heads, e // heads).transpose(0, 2, 1, 3)


def mha(p, prefix, x, heads):
    """Causal multi-head self-attention of x (b, n, e) with the weights p[prefix + 'q_proj.weight'] ..."""
    b, n, e = x.shape
    q, k, v = (split(linear(p, f"{prefix}{w}_proj", x), heads) for w in "qkv")
    out = attention(q, k, v, np.tril(np.ones((n, n), bool)))
    return linear(p, f"{prefix}out_proj", out.transpose(0, 2, 1, 3).reshape(b, n, e))


def gpt(p, tokens, heads, layers):
    x = p["token_embedding.weight"].astype(np.float64)[tokens] + p["position_embedding.weight"][: tokens.shape[1]]
    for i in range(layers):
        ln = lambda name, a: layer_norm(a, p[f"blocks.{i}.{name}.weight"], p[f"blocks.{i}.{name}.bias"])  # noqa: E731
        x = x + mha(p, f"blocks.{i}.attn.", ln("ln1", x), heads)
        h = linear(p, f"blocks.{i}.mlp.fc1", ln("ln2", x))
        x = x + linear(p, f"blocks.{i}.mlp.fc2", 0.5 * h * (1 + np.tanh(C * (h + 0.044715 * h * h * h))))
    return linear(p, "lm_head", layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]))


def gpt_weights(rng, vocab, max_len, dim, layers):
    """A float32 state_dict for GPT(vocab, max_len, dim, heads, layers), every value random."""
    r = lambda *shape: (rng.standard_normal(shape) * (0.5 if len(shape) == 2 else 0.2)).astype(np.float32)  # noqa: E731
    p = {"token_embedding.weight": r(vocab, dim), "position_embedding.weight": r(max_len, dim)}
    for i in range(layers):
        b = f"blocks.{i}."
        p[b + "ln1.weight"], p[b + "ln1.bias"] = 1 + r(dim), r(dim)
        for w in ("q", "k", "v", "out"):
            p[f"{b}attn.{w}_proj.weight"], p[f"{b}attn.{w}_proj.bias"] = r(dim, dim) / np.sqrt(dim) * 2, r(dim)
        p[b + "ln2.weight"], p[b + "ln2.bias"] = 1 + r(dim), r(dim)
        p[b + "mlp.fc1.weight"], p[b + "mlp.fc1.bias"] = r(4 * dim, dim) / np.sqrt(dim) * 2, r(4 * dim)
        p[b + "mlp.fc2.weight"], p[b + "mlp.fc2.bias"] = r(dim, 4 * dim) / np.sqrt(dim), r(dim)
    p["ln_f.weight"], p["ln_f.bias"] = 1 + r(dim), r(dim)
    p["lm_head.weight"] = r(vocab, dim) * 2
    return p


def oracle_generate(p, prompt, new, heads, layers, max_len, temperature=1.0, top_k=None, seed=None):
    """Module 13's generate in NumPy float64; also whether every decision is clear of ties by MARGIN."""
    tokens = np.array(prompt, dtype=np.int64).reshape(-1, np.shape(prompt)[-1])
    generator, clear = np.random.default_rng(seed), True
    for _ in range(new):
        logits = gpt(p, tokens[:, -max_len:], heads, layers)[:, -1, :]
        ranked = np.sort(logits, axis=-1)
        if temperature == 0:
            clear &= bool((ranked[:, -1] - ranked[:, -2] > MARGIN).all())
            next_ids = logits.argmax(axis=-1)
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.shape[-1]:
                clear &= bool((ranked[:, -top_k] - ranked[:, -top_k - 1] > MARGIN * temperature).all())
                logits = np.where(logits < ranked[:, -top_k, None] / temperature, -np.inf, logits)
            cumulative = np.cumsum(softmax(logits), axis=-1)
            draws = generator.random((len(tokens), 1))
            clear &= bool((np.abs(cumulative - draws).min(axis=-1) > MARGIN).all())
            next_ids = np.minimum((cumulative < draws).sum(axis=-1), logits.shape[-1] - 1)
        tokens = np.concatenate([tokens, next_ids[:, None]], axis=1)
    return (tokens[0] if np.ndim(prompt) == 1 else tokens), clear


def clear_case(rng, p, shape, vocab, new, heads, layers, max_len, **sampling):
    """A prompt of `shape` and a seed whose oracle generation has no decision near a tie."""
    for _ in range(50):
        prompt, seed = rng.integers(0, vocab, size=shape), int(rng.integers(2**31))
        expected, clear = oracle_generate(p, prompt, new, heads, layers, max_len, seed=seed, **sampling)
        if clear:
            return prompt, seed, expected
    raise RuntimeError("no clear case found")  # pragma: no cover  (probability far below 1e-30)


# --- the cache ----------------------------------------------------------------------------------
@pytest.mark.points(1)
def test_kv_cache_bytes_formula(student, rng):
    sizes = [int(v) for v in rng.integers(1, 40, size=5)]
    got = student.value(
        "[kv_cache_bytes(l, h, d, m, batch_size=b, dtype=t) for t in (np.float32, np.float16, np.float64)]"
        " + [kv_cache_bytes(l, h, d, m)]",
        l=sizes[0], h=sizes[1], d=sizes[2], m=sizes[3], b=sizes[4],
    )
    l, h, d, m, b = sizes
    assert_exact(got, [2 * l * b * h * d * m * size for size in (4, 2, 8)] + [2 * l * h * d * m * 4])


@pytest.mark.points(2)
def test_kvcache_preallocates_every_layer(student):
    shapes, dtypes, lengths, seq_len, attrs = student.value(
        "c = KVCache(3, 2, 4, 7, 5)\n"
        "([a.shape for a in c.keys + c.values], [str(a.dtype) for a in c.keys + c.values], c.lengths, c.seq_len,\n"
        " (c.num_layers, c.batch_size, c.num_heads, c.max_len, c.head_dim, str(c.dtype)))"
    )
    assert_exact(shapes, [(2, 4, 7, 5)] * 6)
    assert_exact(dtypes, ["float32"] * 6)
    assert_exact(lengths, [0, 0, 0])
    assert_exact(seq_len, 0)
    assert_exact(attrs, (3, 2, 4, 7, 5, "float32"))
    assert student.value("str(KVCache(1, 1, 1, 3, 2, dtype=np.float16).keys[0].dtype)") == "float16"
    with pytest.raises(StudentError) as err:
        student.value("KVCache(2, 1, 0, 8, 4)")
    assert err.value.is_a("ValueError"), "a cache with 0 heads: expected a ValueError"


@pytest.mark.points(3)
def test_update_writes_in_place_and_returns_views(student, rng):
    b, h, d, m = 2, 3, 4, 12
    chunks = [int(n) for n in (5, 1, 1, 3)]
    keys = [rng.standard_normal((b, h, n, d)).astype(np.float32) for n in chunks]
    values = [rng.standard_normal((b, h, n, d)).astype(np.float32) for n in chunks]
    got_k, got_v, shared, lengths, untouched = student.value(
        "c = KVCache(2, b, h, m, d)\n"
        "for k, v in zip(keys, values):\n"
        "    rk, rv = c.update(k, v, 1)\n"
        "(rk, rv, bool(np.shares_memory(rk, c.keys[1]) and np.shares_memory(rv, c.values[1])), c.lengths,\n"
        " float(np.abs(c.keys[0]).max()))",
        keys=keys, values=values, b=b, h=h, d=d, m=m,
    )
    assert_array(got_k, np.concatenate(keys, axis=2), dtype=np.float32)
    assert_array(got_v, np.concatenate(values, axis=2), dtype=np.float32)
    assert shared is True, "update must return views of the cache's arrays (slices), not copies"
    assert_exact(lengths, [0, sum(chunks)])
    assert untouched == 0.0, "writing layer 1 must leave layer 0 alone"


@pytest.mark.points(1)
def test_update_refuses_what_does_not_fit(student, rng):
    k = rng.standard_normal((1, 2, 4, 3)).astype(np.float32)
    with pytest.raises(StudentError) as err:
        student.value("c = KVCache(1, 1, 2, 6, 3)\nc.update(k, k, 0)\nc.update(k, k, 0)", k=k)
    assert err.value.is_a("ValueError"), "4 + 4 positions in a cache of max_len 6: expected a ValueError"
    lengths = student.value(
        "c = KVCache(1, 1, 2, 6, 3)\nc.update(k, k, 0)\n"
        "try:\n    c.update(k, k, 0)\nexcept ValueError:\n    pass\nc.lengths", k=k)
    assert_exact(lengths, [4])
    with pytest.raises(StudentError) as err:
        student.value("KVCache(1, 1, 2, 6, 3).update(k[:, :1], k[:, :1], 0)", k=k)
    assert err.value.is_a("ValueError"), "a key with 1 head for a cache of 2 heads: expected a ValueError"


@pytest.mark.points(1)
def test_reset_starts_over(student, rng):
    k1, k2 = (rng.standard_normal((1, 2, n, 3)).astype(np.float32) for n in (5, 2))
    lengths, keys = student.value(
        "c = KVCache(2, 1, 2, 6, 3)\nc.update(k1, k1, 0)\nc.update(k1, k1, 1)\nc.reset()\n"
        "lengths = list(c.lengths)\nkeys, _ = c.update(k2, k2, 0)\n(lengths, keys)",
        k1=k1, k2=k2,
    )
    assert_exact(lengths, [0, 0])
    assert_array(keys, k2, dtype=np.float32)


@pytest.mark.points(1)
def test_nbytes_is_measured_from_the_arrays(student):
    got = student.value("[KVCache(3, 2, 4, 10, 8).nbytes, KVCache(2, 1, 3, 5, 4, dtype=np.float64).nbytes]")
    assert_exact(got, [2 * 3 * 2 * 4 * 10 * 8 * 4, 2 * 2 * 1 * 3 * 5 * 4 * 8])


# --- attention over the cache -------------------------------------------------------------------
@pytest.mark.points(2)
def test_cached_attention_of_one_new_query(student, rng):
    q = rng.standard_normal((2, 3, 1, 4)).astype(np.float32)
    k, v = (rng.standard_normal((2, 3, 9, 4)).astype(np.float32) for _ in range(2))
    got = student.value("cached_attention(q, k, v)", q=q, k=k, v=v)
    assert_array(got, attention(q.astype(np.float64), k, v), rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_cached_attention_of_a_prefill_is_causal(student, rng):
    t, n = 10, 4
    q = rng.standard_normal((2, 2, t, 5)).astype(np.float32)
    k, v = (rng.standard_normal((2, 2, t, 5)).astype(np.float32) for _ in range(2))
    full = attention(q.astype(np.float64), k, v, np.tril(np.ones((t, t), bool)))
    got_last, got_all = student.value("(cached_attention(q[:, :, -n:], k, v), cached_attention(q, k, v))",
                                      q=q, k=k, v=v, n=n)
    assert_array(got_last, full[:, :, -n:], rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(got_all, full, rtol=1e-4, atol=1e-5, dtype=np.float32)


# --- the model with a cache ---------------------------------------------------------------------
@pytest.mark.points(2)
def test_cached_self_attention_matches_causal_attention(student, rng):
    b, t, e, heads = 2, 7, 8, 2
    p = {f"{w}_proj.{kind}": (rng.standard_normal((e, e) if kind == "weight" else e) * 0.4).astype(np.float32)
         for w in ("q", "k", "v", "out") for kind in ("weight", "bias")}
    x = rng.standard_normal((b, t, e)).astype(np.float32)
    out, cached_keys, lengths = student.value(
        "attn = MultiHeadAttention(e, heads)\nattn.load_state_dict(p)\ncache = KVCache(2, b, heads, 10, e // heads)\n"
        "outs = [cached_self_attention(attn, Tensor(x[:, :4]), cache, 1).data]\n"
        "outs += [cached_self_attention(attn, Tensor(x[:, i:i + 1]), cache, 1).data for i in range(4, t)]\n"
        "(np.concatenate(outs, axis=1), cache.keys[1][:, :, :t].copy(), cache.lengths)",
        p=p, x=x, e=e, heads=heads, b=b, t=t,
    )
    x64 = x.astype(np.float64)
    assert_array(out, mha(p, "", x64, heads), rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(cached_keys, split(linear(p, "k_proj", x64), heads), rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_exact(lengths, [0, t])


@pytest.mark.points(3)
def test_forward_cached_gives_the_uncached_logits(student, rng):
    V, M, D, H, N = 23, 16, 8, 2, 2
    p = gpt_weights(rng, V, M, D, N)
    tokens = rng.integers(0, V, size=(2, 11))
    logits, lengths, graph = student.value(
        MODEL +
        "cache = KVCache.for_model(model, batch_size=2)\n"
        "outs = [forward_cached(model, tokens[:, :6], cache)]\n"
        "outs += [forward_cached(model, tokens[:, i:i + 1], cache) for i in range(6, 11)]\n"
        "(np.concatenate([o.data for o in outs], axis=1), cache.lengths,\n"
        " [o.requires_grad or o.grad_fn is not None for o in outs])",
        state=p, tokens=tokens, V=V, M=M, D=D, H=H, N=N,
    )
    assert_array(logits, gpt(p, tokens, H, N), **LOGITS)
    assert_exact(lengths, [11, 11])
    assert not any(graph), "forward_cached is inference only: its logits must carry no autograd graph"


@pytest.mark.points(3)
def test_generate_cached_greedy_and_sampled_tokens(student, rng):
    V, M, D, H, N = 29, 24, 8, 2, 2
    p = gpt_weights(rng, V, M, D, N)
    cases = [dict(temperature=0), dict(temperature=0.8), dict(temperature=1.2, top_k=5)]
    prompts, seeds, expected = [], [], []
    for sampling in cases:
        prompt, seed, tokens = clear_case(rng, p, 5, V, 10, H, N, M, **sampling)
        prompts.append(prompt), seeds.append(seed), expected.append(tokens)
    got = student.value(
        MODEL + "[generate_cached(model, prompt, 10, seed=seed, **kw) for prompt, seed, kw in zip(prompts, seeds, cases)]",
        state=p, prompts=prompts, seeds=seeds, cases=cases, V=V, M=M, D=D, H=H, N=N,
    )
    assert type(got) is list and len(got) == 3
    for tokens, want, sampling in zip(got, expected, cases):
        assert_array(tokens, want, rtol=0, atol=0, dtype=np.int64)


@pytest.mark.points(1)
def test_generate_cached_prefills_once_then_feeds_one_token(student, rng):
    V, M, D, H, N = 17, 20, 8, 2, 1
    p = gpt_weights(rng, V, M, D, N)
    prompt = rng.integers(0, V, size=(2, 6))
    calls, shape = student.value(
        MODEL +
        "calls, g = [], generate_cached.__globals__\n"
        "inner = g['forward_cached']\n"
        "def spy(model, tokens, cache):\n"
        "    calls.append(tuple(np.shape(tokens)))\n"
        "    return inner(model, tokens, cache)\n"
        "g['forward_cached'] = spy\n"
        "try:\n"
        "    out = generate_cached(model, prompt, 8, temperature=0)\n"
        "finally:\n"
        "    g['forward_cached'] = inner\n"
        "(calls, out.shape)",
        state=p, prompt=prompt, V=V, M=M, D=D, H=H, N=N,
    )
    assert_exact(shape, (2, 14))
    assert calls and calls[0] == (2, 6), f"the prompt must be prefilled in one call; calls: {calls}"
    assert all(c == (2, 1) for c in calls[1:]) and len(calls) in (8, 9), \
        f"then one call per new token, each with that token alone; calls to forward_cached: {calls}"
