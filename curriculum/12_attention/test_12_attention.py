"""Public graded tests of module 12 (Attention). Oracles are NumPy formulas computed here."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("12_attention")

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


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
    """Reference multi-head self-attention with the given {name: array} parameters."""
    b, n, e = x.shape
    x = x.astype(np.float64)

    def proj(name, a):
        out = a @ params[name + ".weight"].astype(np.float64).T
        return out + params[name + ".bias"] if name + ".bias" in params else out

    def split(a):
        return a.reshape(b, n, heads, e // heads).transpose(0, 2, 1, 3)

    out, w = attention(split(proj("q_proj", x)), split(proj("k_proj", x)), split(proj("v_proj", x)), mask)
    return proj("out_proj", out.transpose(0, 2, 1, 3).reshape(b, n, e)), w


def random_params(rng, e, bias=True):
    params = {}
    for name in PROJECTIONS:
        params[name + ".weight"] = (rng.standard_normal((e, e)) / np.sqrt(e)).astype(np.float32)
        if bias:
            params[name + ".bias"] = rng.standard_normal(e).astype(np.float32)
    return params


def f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def keep_mask(rng, shape):
    """A random boolean mask in which every row (last axis) keeps at least one key."""
    m = rng.random(shape) < 0.5
    m[..., rng.integers(shape[-1])] = True
    return m


SDPA = "out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v){extra})\n(out.data, w.data)"


@pytest.mark.points(2)
def test_attention_matches_numpy(student, rng):
    nq, nk, d, dv = (int(n) for n in rng.integers(2, 9, size=4))
    q, k, v = f32(rng, (nq, d)), f32(rng, (nk, d)), f32(rng, (nk, dv))
    out, w = student.value(SDPA.format(extra=""), q=q, k=k, v=v)
    ref_out, ref_w = attention(q, k, v)
    assert_array(w, ref_w, rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(out, ref_out, rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_attention_batched_over_batch_and_heads(student, rng):
    b, h, n, d = (int(x) for x in rng.integers(2, 6, size=4))
    q, k, v = f32(rng, (b, h, n, d)), f32(rng, (b, h, n, d)), f32(rng, (b, h, n, d))
    out, w = student.value(SDPA.format(extra=""), q=q, k=k, v=v)
    ref_out, ref_w = attention(q, k, v)
    assert_array(w, ref_w, rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(out, ref_out, rtol=1e-4, atol=1e-5, dtype=np.float32)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.points(2)
def test_attention_mask_blocks_and_broadcasts(student, rng):
    b, n, d = 3, int(rng.integers(3, 8)), 4
    q, k, v = f32(rng, (b, n, d)), f32(rng, (b, n, d)), f32(rng, (b, n, d))
    mask = keep_mask(rng, (n, n))  # one (n, n) mask for the whole batch
    out, w = student.value(SDPA.format(extra=", mask=mask"), q=q, k=k, v=v, mask=mask)
    ref_out, ref_w = attention(q, k, v, mask)
    assert_array(w, ref_w, rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert np.all(w[:, ~mask] == 0), "blocked (query, key) pairs must get weight exactly 0"
    assert_array(out, ref_out, rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_fully_masked_row_gets_uniform_weights(student, rng):
    n = int(rng.integers(3, 7))
    q, k, v = f32(rng, (n, 4)), f32(rng, (n, 4)), f32(rng, (n, 4))
    mask = keep_mask(rng, (n, n))
    mask[1] = False
    out, w = student.value(SDPA.format(extra=", mask=mask"), q=q, k=k, v=v, mask=mask)
    assert np.isfinite(w).all() and np.isfinite(out).all(), "a fully masked row must not produce NaN"
    assert_array(w[1], np.full(n, 1 / n), dtype=np.float32)
    assert_array(out[1], v.astype(np.float64).mean(axis=0), rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_attention_huge_scores_are_stable(student, rng):
    # Integer q, k with d_k = 4: every score is an exact float32 number, up to about 2e4,
    # far beyond exp's overflow at 88.7.
    nq, nk = (int(n) for n in rng.integers(2, 8, size=2))
    q = rng.integers(-100, 101, size=(nq, 4)).astype(np.float32)
    k = rng.integers(-100, 101, size=(nk, 4)).astype(np.float32)
    v = f32(rng, (nk, 3))
    out, w = student.value(
        'with np.errstate(over="raise", invalid="raise"):\n'
        "    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))\n(out.data, w.data)",
        q=q, k=k, v=v,
    )
    ref_out, ref_w = attention(q, k, v)
    assert_array(w, ref_w, rtol=1e-4, atol=1e-6, dtype=np.float32)
    assert_array(out, ref_out, rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_causal_mask(student, rng):
    n = int(rng.integers(2, 12))
    got = student.value("causal_mask(n).data", n=n)
    assert_array(got, np.tril(np.ones((n, n), dtype=bool)), rtol=0, atol=0, dtype=bool)


@pytest.mark.points(1)
def test_mha_parameters_and_head_check(student):
    names, shapes, head_dim = student.value(
        "m = MultiHeadAttention(12, 3)\n"
        "([n for n, _ in m.named_parameters()], [p.shape for p in m.parameters()], m.head_dim)"
    )
    assert names == [f"{p}.{w}" for p in PROJECTIONS for w in ("weight", "bias")]
    assert shapes == [(12, 12), (12,)] * 4 and head_dim == 4
    with pytest.raises(StudentError) as err:
        student.value("MultiHeadAttention(10, 3)")
    assert err.value.is_a("ValueError"), "10 is not divisible by 3 heads: expected a ValueError"


@pytest.mark.points(3)
def test_mha_matches_numpy(student, rng):
    heads, head_dim = (int(n) for n in rng.integers(1, 5, size=2))
    b, n, e = int(rng.integers(1, 4)), int(rng.integers(2, 7)), heads * head_dim
    params, x = random_params(rng, e), f32(rng, (b, n, e))
    got = student.value(
        "m = MultiHeadAttention(e, h)\nm.load_state_dict(params)\nm(Tensor(x)).data",
        e=e, h=heads, params=params, x=x,
    )
    assert_array(got, mha(params, x, heads)[0], rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_mha_causal_weights_and_output(student, rng):
    heads, head_dim, b, n = 2, 3, 2, int(rng.integers(3, 7))
    e = heads * head_dim
    params, x = random_params(rng, e), f32(rng, (b, n, e))
    out, w = student.value(
        "m = MultiHeadAttention(e, h)\nm.load_state_dict(params)\n"
        "out, w = m(Tensor(x), mask=causal_mask(x.shape[1]), need_weights=True)\n(out.data, w.data)",
        e=e, h=heads, params=params, x=x,
    )
    ref_out, ref_w = mha(params, x, heads, np.tril(np.ones((n, n), dtype=bool)))
    assert_array(w, ref_w, rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(out, ref_out, rtol=1e-4, atol=1e-5, dtype=np.float32)
