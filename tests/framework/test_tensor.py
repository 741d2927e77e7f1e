"""tinytorch.core.tensor against NumPy, on random shapes with broadcasting and edge cases."""

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor

rng = np.random.default_rng(0)


def random_pair(ndim):
    shape = tuple(int(d) for d in rng.integers(1, 5, size=ndim))
    other = tuple(1 if rng.random() < 0.4 else d for d in shape)[int(rng.integers(0, ndim + 1)):]
    return rng.standard_normal(shape).astype(np.float32), rng.uniform(0.5, 2, other).astype(np.float32)


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_binary_ops_broadcast_like_numpy(ndim, op):
    for _ in range(5):
        a, b = random_pair(ndim)
        got = eval(f"Tensor(a) {op} Tensor(b)")
        want = eval(f"a {op} b")
        assert got.dtype == np.float32 and got.shape == np.shape(want)
        np.testing.assert_allclose(got.data, want, rtol=1e-6)
        np.testing.assert_allclose(eval(f"2.5 {op} Tensor(b)").data, eval(f"2.5 {op} b"), rtol=1e-6)


def test_construction_and_memory():
    t = Tensor([[1, 2], [3, 4]])
    assert t.dtype == np.float32 and t.shape == (2, 2) and t.size == 4 and t.ndim == 2
    assert t.memory_footprint() == 16
    assert Tensor(5).ndim == 0 and Tensor([]).shape == (0,)
    assert Tensor(np.arange(3), dtype=np.int64).dtype == np.int64
    assert Tensor(t).data is t.data  # same dtype: shared, not copied


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)), ((1, 1), (1, 1))])
def test_matmul_like_numpy(shapes):
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((3,), (4,)), ((), (3,))])
def test_matmul_mismatch_names_both_shapes(shapes):
    a, b = (np.ones(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match=r"\(.*\)"):
        Tensor(a) @ Tensor(b)


def test_views_reductions_indexing():
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_array_equal(t.reshape(-1, 4).data, a.reshape(-1, 4))
    np.testing.assert_array_equal(t.reshape((4, 6)).data, a.reshape(4, 6))
    with pytest.raises(ValueError):
        t.reshape(5, -1)
    np.testing.assert_array_equal(t.transpose().data, a.swapaxes(-2, -1))
    np.testing.assert_array_equal(t.transpose(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(Tensor([1.0, 2.0]).T.data, [1.0, 2.0])
    for axis in (None, 0, 1, 2, (0, 2)):
        for keepdims in (False, True):
            np.testing.assert_allclose(t.sum(axis, keepdims).data, a.sum(axis, keepdims=keepdims), rtol=1e-5)
            np.testing.assert_allclose(t.mean(axis, keepdims).data, a.mean(axis, keepdims=keepdims), rtol=1e-5)
            np.testing.assert_array_equal(t.max(axis, keepdims).data, a.max(axis, keepdims=keepdims))
    np.testing.assert_array_equal(t[1, :, 2:].data, a[1, :, 2:])
    np.testing.assert_array_equal(t[Tensor(a > 0, dtype=bool)].data, a[a > 0])
