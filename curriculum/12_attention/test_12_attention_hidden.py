"""Hidden graded tests of Module 12 (Attention): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass.
"""

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("12_attention"), pytest.mark.hidden]

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
TOL = dict(rtol=1e-4, atol=1e-5, dtype=np.float32)


def softmax(s):
    """Stable softmax over the last axis, in float64."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(q, k, v, mask=None):
    """Reference scaled dot-product attention (float64); mask True = keep, blocked -> -1e9."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -1e9)
    w = softmax(s)
    return w @ v, w


def mha(params, x, heads, mask=None):
    """Reference multi-head self-attention, written head by head (a loop, unlike the student's reshape)."""
    b, n, e = x.shape
    hd = e // heads
    x = x.astype(np.float64)

    def proj(name, a):
        out = a @ params[name + ".weight"].astype(np.float64).T
        return out + params[name + ".bias"] if name + ".bias" in params else out

    q, k, v = proj("q_proj", x), proj("k_proj", x), proj("v_proj", x)
    outs, weights = [], []
    for h in range(heads):
        cols = slice(h * hd, (h + 1) * hd)
        o, w = attention(q[..., cols], k[..., cols], v[..., cols], None if mask is None else np.broadcast_to(mask, (b, heads, n, n))[:, h])
        outs.append(o)
        weights.append(w)
    return proj("out_proj", np.concatenate(outs, axis=-1)), np.stack(weights, axis=1)


def random_params(rng, e, bias=True):
    params = {}
    for name in PROJECTIONS:
        params[name + ".weight"] = (rng.standard_normal((e, e)) / np.sqrt(e)).astype(np.float32)
        if bias:
            params[name + ".bias"] = rng.standard_normal(e).astype(np.float32)
    return params


def f32(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def keep_mask(rng, shape):
    m = rng.random(shape) < rng.uniform(0.2, 0.8)
    m[..., rng.integers(shape[-1])] = True
    return m


SDPA = "out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v){extra})\n(out.data, w.data)"


@pytest.mark.points(2)
def test_attention_random_batched_shapes(student, rng):
    for _ in range(3):
        lead = tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(0, 3)))
        nq, nk, d, dv = (int(n) for n in rng.integers(1, 9, size=4))
        q, k, v = f32(rng, lead + (nq, d)), f32(rng, lead + (nk, d)), f32(rng, lead + (nk, dv), scale=3.0)
        out, w = student.value(SDPA.format(extra=""), q=q, k=k, v=v)
        ref_out, ref_w = attention(q, k, v)
        assert_array(w, ref_w, **TOL)
        assert_array(out, ref_out, **TOL)


@pytest.mark.points(2)
def test_attention_random_masks_as_tensor_and_array(student, rng):
    b, h, nq, nk = 2, int(rng.integers(1, 4)), int(rng.integers(2, 7)), int(rng.integers(2, 7))
    q, k, v = f32(rng, (b, h, nq, 5)), f32(rng, (b, h, nk, 5)), f32(rng, (b, h, nk, 3))
    mask = keep_mask(rng, (b, 1, nq, nk))  # per sequence, shared by the heads
    ref_out, ref_w = attention(q, k, v, mask)
    for code in ("mask", "Tensor(mask, dtype=bool)"):
        out, w = student.value(SDPA.format(extra=f", mask={code}"), q=q, k=k, v=v, mask=mask)
        assert_array(w, ref_w, **TOL)
        assert np.all(w[~np.broadcast_to(mask, w.shape)] == 0)
        assert_array(out, ref_out, **TOL)


@pytest.mark.points(2)
def test_attention_huge_scores_with_mask(student, rng):
    nq, nk = (int(n) for n in rng.integers(3, 9, size=2))
    scale = float(rng.integers(20, 120))
    q = rng.integers(-scale, scale + 1, size=(2, nq, 16)).astype(np.float32)
    k = rng.integers(-scale, scale + 1, size=(2, nk, 16)).astype(np.float32)
    v = f32(rng, (2, nk, 4))
    mask = keep_mask(rng, (nq, nk))
    out, w = student.value(
        'with np.errstate(over="raise", invalid="raise"):\n'
        "    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask)\n(out.data, w.data)",
        q=q, k=k, v=v, mask=mask,
    )
    ref_out, ref_w = attention(q, k, v, mask)
    assert np.isfinite(w).all() and np.isfinite(out).all()
    assert_array(w, ref_w, rtol=1e-4, atol=1e-6, dtype=np.float32)
    assert_array(out, ref_out, **TOL)


@pytest.mark.points(2)
def test_causal_mask_and_causal_attention(student, rng):
    n = int(rng.integers(2, 20))
    got = student.value("causal_mask(n).data", n=n)
    assert_array(got, np.tril(np.ones((n, n), dtype=bool)), rtol=0, atol=0, dtype=bool)
    q, k, v = f32(rng, (3, n, 4)), f32(rng, (3, n, 4)), f32(rng, (3, n, 2))
    out, w = student.value(SDPA.format(extra=", mask=causal_mask(q.shape[1])"), q=q, k=k, v=v)
    ref_out, ref_w = attention(q, k, v, np.tril(np.ones((n, n), dtype=bool)))
    assert np.all(np.triu(w, 1) == 0), "a query must give weight 0 to every later key"
    assert_array(w, ref_w, **TOL)
    assert_array(out, ref_out, **TOL)


@pytest.mark.points(3)
def test_mha_against_head_by_head_numpy(student, rng):
    heads, head_dim = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    b, n, e = int(rng.integers(1, 4)), int(rng.integers(1, 8)), heads * head_dim
    params, x = random_params(rng, e), f32(rng, (b, n, e))
    mask = keep_mask(rng, (b, 1, n, n))
    out, w, plain = student.value(
        "m = MultiHeadAttention(e, h, rng=0)\nm.load_state_dict(params)\n"
        "out, w = m(Tensor(x), mask=mask, need_weights=True)\n(out.data, w.data, m(Tensor(x)).data)",
        e=e, h=heads, params=params, x=x, mask=mask,
    )
    ref_out, ref_w = mha(params, x, heads, mask)
    assert_array(w, ref_w, **TOL)
    assert_array(out, ref_out, **TOL)
    assert_array(plain, mha(params, x, heads)[0], **TOL)


@pytest.mark.points(2)
def test_mha_without_bias(student, rng):
    heads = int(rng.integers(1, 4))
    e = heads * int(rng.integers(1, 4))
    params, x = random_params(rng, e, bias=False), f32(rng, (2, int(rng.integers(2, 6)), e))
    names, got = student.value(
        "m = MultiHeadAttention(e, h, bias=False)\nm.load_state_dict(params)\n"
        "([n for n, _ in m.named_parameters()], m(Tensor(x)).data)",
        e=e, h=heads, params=params, x=x,
    )
    assert names == [p + ".weight" for p in PROJECTIONS]
    assert_array(got, mha(params, x, heads)[0], **TOL)


@pytest.mark.points(1)
def test_mha_init_reproducible_and_distinct(student, rng):
    seed, e = int(rng.integers(2**31)), 4 * int(rng.integers(2, 6))
    same, distinct, bound_ok = student.value(
        "a, b = MultiHeadAttention(e, 4, rng=seed), MultiHeadAttention(e, 4, rng=seed)\n"
        "ws = [p.data for p in a.parameters()]\n"
        "(all(np.array_equal(p, q.data) for p, q in zip(ws, b.parameters())),\n"
        " not np.array_equal(a.q_proj.weight.data, a.k_proj.weight.data),\n"
        " all(float(np.abs(w).max()) <= 1 / np.sqrt(e) + 1e-7 for w in ws))",
        e=e, seed=seed,
    )
    assert same is True, "two MultiHeadAttention(..., rng=seed) must have identical parameters"
    assert distinct is True, "q_proj and k_proj must get different initial weights"
    assert bound_ok is True, "Linear's initialisation bound 1/sqrt(embed_dim) must hold"
