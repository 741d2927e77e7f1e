"""tinytorch.core.embeddings: the lookup against NumPy, its scatter-add gradient against central
differences (float64) on random shapes with repeated ids, the layers, and the sinusoidal formula."""

import numpy as np
import pytest

from tinytorch.core.autograd import gradcheck
from tinytorch.core.embeddings import Embedding, EmbeddingFn, PositionalEmbedding, sinusoidal_positional_encoding
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

rng = np.random.default_rng(11)


@pytest.mark.parametrize("trial", range(6))
def test_lookup_and_gradcheck_random_shapes(trial):
    v, d = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    shape = tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(0, 4)))   # includes 0-d ids
    ids = rng.integers(0, v, size=shape)
    w = rng.standard_normal((v, d))
    out = EmbeddingFn.apply(Tensor(w, dtype=np.float64), indices=ids)
    assert out.shape == shape + (d,) and np.array_equal(out.data, w[ids])
    assert gradcheck(lambda t: EmbeddingFn.apply(t, indices=ids), w)


def test_repeated_ids_accumulate_and_unused_rows_are_zero():
    ids = np.array([3, 3, 3, 0, 3])
    w = Tensor(rng.standard_normal((5, 2)), dtype=np.float64, requires_grad=True)
    EmbeddingFn.apply(w, indices=ids).backward(np.ones((5, 2)))
    assert w.grad.tolist() == [[1, 1], [0, 0], [0, 0], [4, 4], [0, 0]]


def test_embedding_module():
    emb = Embedding(20, 6, rng=3)
    assert isinstance(emb, Module) and [n for n, _ in emb.named_parameters()] == ["weight"]
    assert emb.weight.dtype == np.float32 and emb.weight.requires_grad
    assert np.array_equal(Embedding(20, 6, rng=3).weight.data, emb.weight.data)
    ids = rng.integers(0, 20, size=(4, 7))
    assert np.array_equal(emb(ids).data, emb.weight.data[ids])
    assert np.array_equal(emb(ids.tolist()).data, emb(Tensor(ids)).data)
    assert np.array_equal(emb(ids.astype(np.uint8)).data, emb.weight.data[ids])
    with pytest.raises(IndexError):
        emb([20])
    with pytest.raises(IndexError):
        emb(np.array([-1]))
    with pytest.raises(TypeError):
        emb(np.array([0.5]))
    with pytest.raises(ValueError):
        Embedding(0, 3)
    assert emb(np.zeros((0,), np.int64)).shape == (0, 6)


def test_embedding_grad_through_a_model_and_into_optimizer_shape():
    emb = Embedding(10, 3, rng=0)
    ids = rng.integers(0, 10, size=(2, 6))
    y = emb(ids)
    (y * y).sum().backward()
    expected = np.zeros((10, 3))
    np.add.at(expected, ids.reshape(-1), 2 * emb.weight.data[ids].reshape(-1, 3))
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-6)
    assert emb.weight.grad.dtype == np.float32


@pytest.mark.parametrize("max_len,dim", [(1, 1), (10, 4), (9, 7), (64, 32)])
def test_sinusoidal_matches_formula(max_len, dim):
    pe = sinusoidal_positional_encoding(max_len, dim)
    assert pe.dtype == np.float32 and pe.shape == (max_len, dim)
    for pos in range(max_len):
        for col in range(dim):
            angle = pos / 10000 ** (2 * (col // 2) / dim)
            assert np.isclose(pe.data[pos, col], np.sin(angle) if col % 2 == 0 else np.cos(angle), atol=1e-6)


def test_positional_embedding_gradcheck_and_limits():
    pos = PositionalEmbedding(6, 3, rng=0)
    w = rng.standard_normal((6, 3))
    x = rng.standard_normal((2, 4, 3))

    def f(weight, inputs):  # the real forward, with a float64 table swapped in
        object.__setattr__(pos, "weight", weight)
        return pos(inputs)

    assert gradcheck(f, w, x)
    pos = PositionalEmbedding(6, 3, rng=0)
    xt = Tensor(x.astype(np.float32), requires_grad=True)
    pos(xt).sum().backward()
    assert np.array_equal(pos.weight.grad, np.r_[np.full((4, 3), 2.0), np.zeros((2, 3))])
    assert pos(Tensor(np.zeros((6, 3)))).shape == (6, 3)          # unbatched (T, dim)
    with pytest.raises(ValueError, match="max_len"):
        pos(Tensor(np.zeros((1, 7, 3))))
