"""The exported attention (tinytorch/core/attention.py) against NumPy oracles."""

import importlib.util
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from tinytorch.core.attention import MASK_FILL, MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


@pytest.fixture(autouse=True)
def strict_floats():
    """Any floating-point overflow or invalid operation, or any warning, fails the test."""
    with np.errstate(over="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def ref_attention(q, k, v, mask=None):
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -1e9)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    return w @ v, w


def ref_mha(params, x, heads, mask=None):
    """Head by head, with explicit column slices (independent of reshape/transpose)."""
    b, n, e = x.shape
    hd = e // heads

    def proj(name, a):
        out = a.astype(np.float64) @ params[name + ".weight"].astype(np.float64).T
        return out + params[name + ".bias"] if name + ".bias" in params else out

    q, k, v = proj("q_proj", x), proj("k_proj", x), proj("v_proj", x)
    outs, ws = [], []
    for h in range(heads):
        c = slice(h * hd, (h + 1) * hd)
        m = None if mask is None else np.broadcast_to(mask, (b, heads, n, n))[:, h]
        o, w = ref_attention(q[..., c], k[..., c], v[..., c], m)
        outs.append(o)
        ws.append(w)
    return proj("out_proj", np.concatenate(outs, axis=-1)), np.stack(ws, axis=1)


def random_params(rng, e, bias=True):
    params = {}
    for name in PROJECTIONS:
        params[name + ".weight"] = (rng.standard_normal((e, e)) / np.sqrt(e)).astype(np.float32)
        if bias:
            params[name + ".bias"] = rng.standard_normal(e).astype(np.float32)
    return params


def close(got, expected, atol=1e-5):
    assert isinstance(got, Tensor) and got.dtype == np.float32 and got.shape == np.shape(expected)
    np.testing.assert_allclose(got.data, expected, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("lead", [(), (3,), (2, 4)])
@pytest.mark.parametrize("nq,nk,d,dv", [(1, 1, 1, 1), (5, 7, 8, 3), (16, 16, 64, 64)])
def test_sdpa_matches_numpy(lead, nq, nk, d, dv):
    rng = np.random.default_rng(nq * 100 + nk + len(lead))
    q, k = rng.standard_normal(lead + (nq, d)), rng.standard_normal(lead + (nk, d))
    v = rng.standard_normal(lead + (nk, dv))
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    ref_out, ref_w = ref_attention(*(a.astype(np.float32) for a in (q, k, v)))
    close(w, ref_w)
    close(out, ref_out)
    np.testing.assert_allclose(w.data.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mask_shape", [(6, 9), (2, 1, 6, 9), (2, 3, 6, 9), (1, 9)])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_sdpa_masks_broadcast_and_block_exactly(mask_shape, as_tensor):
    rng = np.random.default_rng(len(mask_shape))
    q, k, v = rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 9, 4)), rng.standard_normal((2, 3, 9, 5))
    mask = rng.random(mask_shape) < 0.5
    mask[..., 0] = True
    m = Tensor(mask, dtype=bool) if as_tensor else mask
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=m)
    ref_out, ref_w = ref_attention(*(a.astype(np.float32) for a in (q, k, v)), mask)
    close(w, ref_w)
    close(out, ref_out)
    assert np.all(w.data[~np.broadcast_to(mask, w.shape)] == 0.0)


def test_sdpa_float_mask_means_nonzero_keeps():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((4, 4)) for _ in range(3))
    mask = np.tril(np.ones((4, 4)))
    _, w_float = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=Tensor(mask))
    _, w_bool = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask.astype(bool))
    np.testing.assert_array_equal(w_float.data, w_bool.data)


def test_fully_masked_rows_are_uniform_not_nan():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 6, 4)), rng.standard_normal((3, 6, 2))
    mask = np.ones((5, 6), dtype=bool)
    mask[2] = False
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask)
    np.testing.assert_allclose(w.data[:, 2], 1 / 6, rtol=1e-6)
    np.testing.assert_allclose(out.data[:, 2], v.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert MASK_FILL == -1e9


@pytest.mark.parametrize("scale", [1e2, 1e4, 1e6])
def test_huge_scores_stay_finite_and_exact(scale):
    # Integer inputs, d_k = 16: scores are exact float32 numbers (the oracle sees the same ones).
    rng = np.random.default_rng(int(scale))
    q = np.round(rng.standard_normal((2, 5, 16)) * np.sqrt(scale)).astype(np.float32)
    k = np.round(rng.standard_normal((2, 7, 16)) * np.sqrt(scale) / 10).astype(np.float32)
    v = rng.standard_normal((2, 7, 3)).astype(np.float32)
    out, w = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=causal_mask(7)[:5])
    ref_out, ref_w = ref_attention(q, k, v, np.tril(np.ones((7, 7), dtype=bool))[:5])
    assert np.isfinite(w.data).all()
    close(w, ref_w, atol=1e-6)
    close(out, ref_out)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_causal_mask(n):
    m = causal_mask(n)
    assert isinstance(m, Tensor) and m.dtype == np.bool_ and m.shape == (n, n)
    np.testing.assert_array_equal(m.data, np.tril(np.ones((n, n), dtype=bool)))


def test_mha_structure_and_validation():
    m = MultiHeadAttention(12, 4, rng=0)
    assert isinstance(m, Module) and all(isinstance(getattr(m, p), Linear) for p in PROJECTIONS)
    assert (m.embed_dim, m.num_heads, m.head_dim) == (12, 4, 3)
    assert [n for n, _ in m.named_parameters()] == [f"{p}.{w}" for p in PROJECTIONS for w in ("weight", "bias")]
    assert [p for p in MultiHeadAttention(6, 2, bias=False).state_dict()] == [p + ".weight" for p in PROJECTIONS]
    assert "(q_proj): Linear(in_features=12, out_features=12" in repr(m)
    for e, h in [(10, 3), (8, 0), (0, 1)]:
        with pytest.raises(ValueError):
            MultiHeadAttention(e, h)
    with pytest.raises(ValueError, match=r"\(5, 12\)"):
        m(Tensor(np.zeros((5, 12))))
    with pytest.raises(ValueError):
        m(Tensor(np.zeros((1, 5, 10))))


def test_mha_init_reproducible_and_distinct():
    a, b = MultiHeadAttention(16, 4, rng=3), MultiHeadAttention(16, 4, rng=3)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        assert np.abs(p.data).max() <= 0.25 + 1e-7
    assert not np.array_equal(a.q_proj.weight.data, a.k_proj.weight.data)


@pytest.mark.parametrize("heads,head_dim,b,n", [(1, 4, 1, 1), (2, 3, 2, 5), (4, 8, 3, 11), (8, 2, 1, 6)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_mha_matches_numpy(heads, head_dim, b, n, bias, masked):
    rng = np.random.default_rng(heads * 31 + n)
    e = heads * head_dim
    params = random_params(rng, e, bias)
    x = rng.standard_normal((b, n, e)).astype(np.float32)
    m = MultiHeadAttention(e, heads, bias=bias)
    m.load_state_dict(params)
    mask = causal_mask(n) if masked else None
    out, w = m(Tensor(x), mask=mask, need_weights=True)
    ref_out, ref_w = ref_mha(params, x, heads, None if mask is None else mask.data)
    close(w, ref_w)
    close(out, ref_out)
    close(m(Tensor(x), mask=mask), ref_out)


def test_mha_causal_outputs_ignore_the_future():
    rng = np.random.default_rng(7)
    m = MultiHeadAttention(16, 4, rng=1)
    x = rng.standard_normal((2, 9, 16)).astype(np.float32)
    x2 = x.copy()
    x2[:, 5:] = rng.standard_normal((2, 4, 16))
    y1, y2 = m(Tensor(x), mask=causal_mask(9)).data, m(Tensor(x2), mask=causal_mask(9)).data
    np.testing.assert_allclose(y1[:, :5], y2[:, :5], rtol=1e-6, atol=1e-6)
    assert not np.allclose(y1[:, 5:], y2[:, 5:])


GRADIENTS = textwrap.dedent(
    """
    import numpy as np
    import tinytorch.core.autograd  # noqa: F401  (registers the differentiable operations)
    from tinytorch.core.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
    from tinytorch.core.tensor import Tensor

    rng = np.random.default_rng(0)

    def numeric(f, a, h=1e-3):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h; up = f()
            a[i] = old - h; down = f()
            a[i] = old
            g[i] = (up - down) / (2 * h)
        return g

    # 1. scaled_dot_product_attention: gradients of q, k, v, with a causal mask.
    arrays = [rng.standard_normal((2, 4, 3)) for _ in range(3)]
    weight = rng.standard_normal((2, 4, 3))
    mask = causal_mask(4)

    def loss_value():
        out, _ = scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in arrays), mask=mask)
        return float((out.data * weight).sum())

    tensors = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    out, _ = scaled_dot_product_attention(*tensors, mask=mask)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    for t, a in zip(tensors, arrays):
        np.testing.assert_allclose(t.grad, numeric(loss_value, a), rtol=1e-4, atol=1e-6)

    # 2. MultiHeadAttention: every parameter and the input get a gradient, checked numerically.
    m = MultiHeadAttention(6, 2, rng=0)
    for p in m.parameters():
        p.data = p.data.astype(np.float64)
    x = rng.standard_normal((2, 5, 6))
    upstream = rng.standard_normal((2, 5, 6))

    def mha_value():
        return float((m(Tensor(x, dtype=np.float64), mask=causal_mask(5)).data * upstream).sum())

    xt = Tensor(x, dtype=np.float64, requires_grad=True)
    (m(xt, mask=causal_mask(5)) * Tensor(upstream, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(xt.grad, numeric(mha_value, x), rtol=1e-4, atol=1e-6)
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad, numeric(mha_value, p.data), rtol=1e-4, atol=1e-6, err_msg=name)
    print("gradients ok")
    """
)


def test_gradients_flow_once_autograd_is_imported():
    """Module 06 registers differentiable Tensor ops; attention needs no change to be differentiable.

    Run in a subprocess: importing autograd patches Tensor for the whole process.
    """
    if importlib.util.find_spec("tinytorch.core.autograd") is None:  # not importorskip: no import here
        pytest.skip("tinytorch.core.autograd (module 06) is not exported yet")
    result = subprocess.run([sys.executable, "-c", GRADIENTS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "gradients ok" in result.stdout, result.stderr[-3000:]
