"""Public graded tests of module 11 (Embeddings). Oracles are NumPy formulas computed here."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("11_embeddings")


def sinusoidal(max_len, dim):
    """The 2017 formula, column by column (float64)."""
    pe = np.zeros((max_len, dim))
    for col in range(dim):
        angle = np.arange(max_len) / 10000 ** (2 * (col // 2) / dim)
        pe[:, col] = np.sin(angle) if col % 2 == 0 else np.cos(angle)
    return pe


def scatter(shape, ids, grad):
    """The gradient of weight[ids]: every occurrence of an id adds its upstream row."""
    out = np.zeros(shape)
    for i, row in zip(ids.reshape(-1), grad.reshape(-1, shape[1])):
        out[i] += row
    return out


@pytest.mark.points(2)
def test_embedding_fn_gathers_rows(student, rng):
    w = rng.standard_normal((7, 3)).astype(np.float32)
    ids = rng.integers(0, 7, size=(2, 5))
    got = student.value("EmbeddingFn.apply(Tensor(w), indices=ids).data", w=w, ids=ids)
    assert_array(got, w[ids], rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(3)
def test_embedding_fn_backward_accumulates_repeats(student, rng):
    ids = np.array([[1, 4, 1], [1, 0, 4]])           # 1 three times, 4 twice, 2, 3, 5 never
    w = rng.standard_normal((6, 4)).astype(np.float32)
    g = rng.standard_normal((2, 3, 4)).astype(np.float32)
    got = student.value(
        "t = Tensor(w, requires_grad=True)\nEmbeddingFn.apply(t, indices=ids).backward(g)\nt.grad",
        w=w, ids=ids, g=g,
    )
    assert_array(got, scatter(w.shape, ids, g), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(2)
def test_embedding_layer_parameter_and_init(student):
    names, shape, dtype, mean, std = student.value(
        "m = Embedding(300, 40, rng=0)\n"
        "([n for n, _ in m.named_parameters()], m.weight.shape, str(m.weight.dtype),"
        " float(m.weight.data.mean()), float(m.weight.data.std()))"
    )
    assert names == ["weight"] and shape == (300, 40) and dtype == "float32"
    assert abs(mean) < 0.05 and abs(std - 1) < 0.05, "weights are drawn from N(0, 1) like nn.Embedding"


@pytest.mark.points(2)
def test_embedding_layer_forward_and_grad(student, rng):
    v, d = 9, 5
    w = rng.standard_normal((v, d)).astype(np.float32)
    ids = rng.integers(0, v, size=(3, 4))
    out, grad = student.value(
        "m = Embedding(v, d)\nm.load_state_dict({'weight': w})\ny = m(ids)\n(y * y).sum().backward()\n"
        "(y.data, m.weight.grad)",
        v=v, d=d, w=w, ids=ids,
    )
    assert_array(out, w[ids], rtol=0, atol=0, dtype=np.float32)
    assert_array(grad, scatter((v, d), ids, 2 * w[ids].astype(np.float64)), rtol=1e-5, atol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_embedding_rejects_out_of_range_ids(student):
    for bad in ([0, 5], [-1, 2]):
        with pytest.raises(StudentError) as err:
            student.value("Embedding(5, 3)(ids)", ids=np.array(bad))
        assert err.value.is_a("IndexError"), f"ids {bad} in a 5-row table must raise IndexError"


@pytest.mark.points(2)
def test_sinusoidal_encoding(student):
    for max_len, dim in [(12, 8), (6, 5)]:
        got = student.value("sinusoidal_positional_encoding(n, d).data", n=max_len, d=dim)
        assert_array(got, sinusoidal(max_len, dim), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(2)
def test_positional_embedding_adds_and_backprops(student, rng):
    max_len, d, b, t = 7, 3, 2, 5
    w = rng.standard_normal((max_len, d)).astype(np.float32)
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    out, grad, names = student.value(
        "p = PositionalEmbedding(max_len, d)\np.load_state_dict({'weight': w})\ny = p(Tensor(x))\n"
        "y.sum().backward()\n(y.data, p.weight.grad, [n for n, _ in p.named_parameters()])",
        max_len=max_len, d=d, w=w, x=x,
    )
    assert names == ["weight"]
    assert_array(out, x + w[:t], rtol=1e-6, atol=1e-6, dtype=np.float32)
    expected = np.zeros((max_len, d))
    expected[:t] = b
    assert_array(grad, expected, rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(1)
def test_positional_embedding_too_long(student):
    with pytest.raises(StudentError) as err:
        student.value("PositionalEmbedding(4, 2)(Tensor(np.zeros((1, 5, 2))))")
    assert err.value.is_a("ValueError")
