"""Hidden graded tests of Module 11 (Embeddings): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass.
"""

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("11_embeddings"), pytest.mark.hidden]


def scatter(shape, ids, grad):
    out = np.zeros(shape)
    for i, row in zip(ids.reshape(-1), grad.reshape(-1, shape[1])):
        out[i] += row
    return out


@pytest.mark.points(3)
def test_embedding_fn_random_shapes_and_repeats(student, rng):
    for _ in range(3):
        v, d = int(rng.integers(2, 12)), int(rng.integers(1, 6))
        shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(1, 4)))
        ids = rng.integers(0, max(1, v // 2), size=shape)          # half the rows: many repeats
        w = rng.standard_normal((v, d)).astype(np.float32)
        g = rng.standard_normal(shape + (d,)).astype(np.float32)
        out, grad = student.value(
            "t = Tensor(w, requires_grad=True)\ny = EmbeddingFn.apply(t, indices=ids)\ny.backward(g)\n(y.data, t.grad)",
            w=w, ids=ids, g=g,
        )
        assert_array(out, w[ids], rtol=0, atol=0, dtype=np.float32)
        assert_array(grad, scatter((v, d), ids, g), rtol=1e-5, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_embedding_layer_random(student, rng):
    v, d = int(rng.integers(3, 20)), int(rng.integers(1, 8))
    w = rng.standard_normal((v, d)).astype(np.float32)
    ids = rng.integers(0, v, size=(int(rng.integers(1, 4)), int(rng.integers(1, 7))))
    g = rng.standard_normal(ids.shape + (d,)).astype(np.float32)
    out, grad, out_tensor_ids = student.value(
        "m = Embedding(v, d)\nm.load_state_dict({'weight': w})\ny = m(ids)\ny.backward(g)\n"
        "(y.data, m.weight.grad, m(Tensor(ids)).data)",
        v=v, d=d, w=w, ids=ids, g=g,
    )
    assert_array(out, w[ids], rtol=0, atol=0, dtype=np.float32)
    assert_array(out_tensor_ids, w[ids], rtol=0, atol=0, dtype=np.float32)
    assert_array(grad, scatter((v, d), ids, g), rtol=1e-5, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_embedding_seeded_init(student, rng):
    seed = int(rng.integers(0, 2**31))
    a, b, c = student.value(
        "(Embedding(50, 6, rng=seed).weight.data, Embedding(50, 6, rng=seed).weight.data,"
        " Embedding(50, 6, rng=seed + 1).weight.data)", seed=seed,
    )
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and abs(a.std() - 1) < 0.2


@pytest.mark.points(2)
def test_sinusoidal_random_sizes(student, rng):
    for _ in range(2):
        max_len, dim = int(rng.integers(1, 40)), int(rng.integers(1, 24))
        got = student.value("sinusoidal_positional_encoding(n, d).data", n=max_len, d=dim)
        angles = np.arange(max_len)[:, None] / 10000 ** ((np.arange(dim) // 2 * 2) / dim)
        expected = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
        assert_array(got, expected, rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(2)
def test_positional_embedding_random(student, rng):
    max_len, d = int(rng.integers(4, 12)), int(rng.integers(1, 6))
    b, t = int(rng.integers(1, 4)), int(rng.integers(1, max_len + 1))
    w = rng.standard_normal((max_len, d)).astype(np.float32)
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    g = rng.standard_normal((b, t, d)).astype(np.float32)
    out, grad, xgrad = student.value(
        "p = PositionalEmbedding(max_len, d)\np.load_state_dict({'weight': w})\n"
        "xt = Tensor(x, requires_grad=True)\ny = p(xt)\ny.backward(g)\n(y.data, p.weight.grad, xt.grad)",
        max_len=max_len, d=d, w=w, x=x, g=g,
    )
    assert_array(out, x.astype(np.float64) + w[:t], rtol=1e-6, atol=1e-6, dtype=np.float32)
    expected = np.zeros((max_len, d))
    expected[:t] = g.astype(np.float64).sum(axis=0)
    assert_array(grad, expected, rtol=1e-5, atol=1e-5, dtype=np.float32)
    assert_array(xgrad, g, rtol=0, atol=0, dtype=np.float32)
