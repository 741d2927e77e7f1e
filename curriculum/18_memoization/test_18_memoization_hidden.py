"""Hidden graded tests of module 18 (Memoization: KV caching): instructors only, never released.

Sizes, weights, prompts, seeds and update sequences come from `rng`, seeded by the grader at
grading time. Oracles are NumPy (float64), as in the public tests; token sequences are compared
only where no decision is within 1e-4 of a tie.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

# The NumPy oracles and model helpers are the public tests' (one definition of each).
from test_18_memoization import LOGITS, MODEL, attention, clear_case, gpt, gpt_weights, linear, mha, split

pytestmark = [pytest.mark.module("18_memoization"), pytest.mark.hidden]


def gpt_config(rng, max_len=None):
    heads = int(rng.integers(1, 4))
    return (int(rng.integers(12, 40)), max_len or int(rng.integers(14, 24)), heads * int(rng.integers(2, 5)),
            heads, int(rng.integers(1, 4)))


@pytest.mark.points(1)
def test_kv_cache_bytes_random(student, rng):
    sizes = [int(v) for v in rng.integers(1, 100, size=5)]
    dtype = str(rng.choice(["float16", "float32", "float64", "int8"]))
    got = student.value("kv_cache_bytes(l, h, d, m, batch_size=b, dtype=np.dtype(t))",
                        l=sizes[0], h=sizes[1], d=sizes[2], m=sizes[3], b=sizes[4], t=dtype)
    assert_exact(got, 2 * int(np.prod(sizes)) * np.dtype(dtype).itemsize)


@pytest.mark.points(3)
def test_kvcache_interleaved_updates_per_layer(student, rng):
    layers, b, h, d = (int(v) for v in rng.integers(1, 4, size=4))
    m = int(rng.integers(8, 16))
    plan, filled = [], [0] * layers
    for _ in range(int(rng.integers(4, 9))):
        layer = int(rng.integers(layers))
        n = int(rng.integers(1, 4))
        if filled[layer] + n <= m:
            plan.append((layer, n))
            filled[layer] += n
    keys = [rng.standard_normal((b, h, n, d)).astype(np.float32) for _, n in plan]
    values = [rng.standard_normal((b, h, n, d)).astype(np.float32) for _, n in plan]
    returned, lengths, seq_len = student.value(
        "c = KVCache(L, b, h, m, d)\nlast = {}\n"
        "for (layer, n), k, v in zip(plan, keys, values):\n"
        "    last[layer] = [a.copy() for a in c.update(k, v, layer)]\n"
        "([last.get(i) for i in range(L)], c.lengths, c.seq_len)",
        L=layers, b=b, h=h, m=m, d=d, plan=plan, keys=keys, values=values,
    )
    assert_exact(lengths, filled)
    assert_exact(seq_len, filled[0])
    for layer in range(layers):
        mine = [i for i, (l, _) in enumerate(plan) if l == layer]
        if not mine:
            assert returned[layer] is None
            continue
        got_k, got_v = returned[layer]
        assert_array(got_k, np.concatenate([keys[i] for i in mine], axis=2), dtype=np.float32)
        assert_array(got_v, np.concatenate([values[i] for i in mine], axis=2), dtype=np.float32)


@pytest.mark.points(1)
def test_update_fills_exactly_to_max_len_then_refuses(student, rng):
    m = int(rng.integers(3, 10))
    full = rng.standard_normal((1, 1, m, 2)).astype(np.float32)
    one = rng.standard_normal((1, 1, 1, 2)).astype(np.float32)
    lengths = student.value("c = KVCache(1, 1, 1, m, 2)\nc.update(full, full, 0)\nc.lengths", m=m, full=full)
    assert_exact(lengths, [m])
    with pytest.raises(StudentError) as err:
        student.value("c = KVCache(1, 1, 1, m, 2)\nc.update(full, full, 0)\nc.update(one, one, 0)",
                      m=m, full=full, one=one)
    assert err.value.is_a("ValueError"), f"a full cache of max_len {m}: one more position must raise ValueError"


@pytest.mark.points(1)
def test_reset_every_layer(student, rng):
    layers = int(rng.integers(2, 5))
    k = rng.standard_normal((1, 2, int(rng.integers(1, 5)), 3)).astype(np.float32)
    new = rng.standard_normal((1, 2, 1, 3)).astype(np.float32)
    lengths, seq_len, got = student.value(
        "c = KVCache(L, 1, 2, 8, 3)\nfor i in range(L):\n    c.update(k, k, i)\nc.reset()\n"
        "(list(c.lengths), c.seq_len, c.update(new, new, L - 1)[1])", L=layers, k=k, new=new)
    assert_exact(lengths, [0] * layers)
    assert_exact(seq_len, 0)
    assert_array(got, new, dtype=np.float32)


@pytest.mark.points(1)
def test_nbytes_random(student, rng):
    sizes = [int(v) for v in rng.integers(1, 9, size=5)]
    dtype = str(rng.choice(["float16", "float32", "float64"]))
    got = student.value("KVCache(*sizes, dtype=np.dtype(t)).nbytes", sizes=sizes, t=dtype)
    assert_exact(got, 2 * int(np.prod(sizes)) * np.dtype(dtype).itemsize)


@pytest.mark.points(2)
def test_cached_attention_random_shapes(student, rng):
    lead = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 3))))
    t, d = int(rng.integers(2, 12)), int(rng.integers(1, 7))
    n = int(rng.integers(1, t + 1))
    q = rng.standard_normal(lead + (t, d)).astype(np.float32)
    k, v = (rng.standard_normal(lead + (t, d)).astype(np.float32) for _ in range(2))
    got_one, got_n = student.value("(cached_attention(q[..., -1:, :], k, v), cached_attention(q[..., -n:, :], k, v))",
                                   q=q, k=k, v=v, n=n)
    full = attention(q.astype(np.float64), k, v, np.tril(np.ones((t, t), bool)))
    assert_array(got_one, full[..., -1:, :], rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(got_n, full[..., -n:, :], rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_cached_self_attention_random(student, rng):
    heads = int(rng.integers(1, 4))
    e, b, t = heads * int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(3, 9))
    first = int(rng.integers(1, t))
    p = {f"{w}_proj.{kind}": (rng.standard_normal((e, e) if kind == "weight" else e) * 0.4).astype(np.float32)
         for w in ("q", "k", "v", "out") for kind in ("weight", "bias")}
    x = rng.standard_normal((b, t, e)).astype(np.float32)
    out, values = student.value(
        "attn = MultiHeadAttention(e, heads)\nattn.load_state_dict(p)\ncache = KVCache(1, b, heads, t, e // heads)\n"
        "outs = [cached_self_attention(attn, Tensor(x[:, :first]), cache, 0).data]\n"
        "outs += [cached_self_attention(attn, Tensor(x[:, i:i + 1]), cache, 0).data for i in range(first, t)]\n"
        "(np.concatenate(outs, axis=1), cache.values[0].copy())",
        p=p, x=x, e=e, heads=heads, b=b, t=t, first=first,
    )
    x64 = x.astype(np.float64)
    assert_array(out, mha(p, "", x64, heads), rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(values, split(linear(p, "v_proj", x64), heads), rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(3)
def test_forward_cached_random_chunks(student, rng):
    V, M, D, H, N = gpt_config(rng)
    p = gpt_weights(rng, V, M, D, N)
    b, total = int(rng.integers(1, 4)), int(rng.integers(4, M + 1))
    cuts = sorted(set(int(c) for c in rng.integers(1, total, size=3)))
    tokens = rng.integers(0, V, size=(b, total))
    logits, lengths = student.value(
        MODEL +
        "cache = KVCache.for_model(model, batch_size=len(tokens))\n"
        "edges = [0] + cuts + [tokens.shape[1]]\n"
        "outs = [forward_cached(model, tokens[:, a:z], cache).data for a, z in zip(edges, edges[1:])]\n"
        "(np.concatenate(outs, axis=1), cache.lengths)",
        state=p, tokens=tokens, cuts=cuts, V=V, M=M, D=D, H=H, N=N,
    )
    assert_array(logits, gpt(p, tokens, H, N), **LOGITS)
    assert_exact(lengths, [total] * N)


@pytest.mark.points(1)
def test_forward_cached_refuses_positions_past_max_len(student, rng):
    V, M, D, H, N = gpt_config(rng)
    p = gpt_weights(rng, V, M, D, N)
    tokens = rng.integers(0, V, size=(1, M))
    with pytest.raises(StudentError) as err:
        student.value(MODEL + "cache = KVCache.for_model(model, max_len=M + 4)\n"
                      "forward_cached(model, tokens, cache)\nforward_cached(model, tokens[:, :1], cache)",
                      state=p, tokens=tokens, V=V, M=M, D=D, H=H, N=N)
    assert err.value.is_a("ValueError"), f"position {M} does not exist in a model of max_len {M}: expected ValueError"


@pytest.mark.points(3)
def test_generate_cached_batched_top_k(student, rng):
    V, M, D, H, N = gpt_config(rng, max_len=24)
    p = gpt_weights(rng, V, M, D, N)
    new = int(rng.integers(5, 12))
    sampling = dict(temperature=float(rng.uniform(0.5, 1.5)), top_k=int(rng.integers(2, V)))
    prompt, seed, expected = clear_case(rng, p, (int(rng.integers(2, 4)), int(rng.integers(2, 8))), V, new, H, N, M,
                                        **sampling)
    got = student.value(MODEL + "generate_cached(model, prompt, new, seed=seed, **kw)",
                        state=p, prompt=prompt, new=new, seed=seed, kw=sampling, V=V, M=M, D=D, H=H, N=N)
    assert_array(got, expected, rtol=0, atol=0, dtype=np.int64)


@pytest.mark.points(2)
def test_generate_cached_past_the_context_window(student, rng):
    V, M, D, H, N = gpt_config(rng, max_len=int(rng.integers(6, 10)))
    p = gpt_weights(rng, V, M, D, N)
    new = M + int(rng.integers(2, 6))
    sampling = [dict(temperature=0), dict(temperature=float(rng.uniform(0.7, 1.3)))][int(rng.integers(2))]
    prompt, seed, expected = clear_case(rng, p, int(rng.integers(2, 6)), V, new, H, N, M, **sampling)
    got = student.value(MODEL + "generate_cached(model, prompt, new, seed=seed, **kw)",
                        state=p, prompt=prompt, new=new, seed=seed, kw=sampling, V=V, M=M, D=D, H=H, N=N)
    assert_array(got, expected, rtol=0, atol=0, dtype=np.int64)
