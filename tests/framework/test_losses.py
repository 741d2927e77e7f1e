"""The exported losses (tinytorch/core/losses.py) against NumPy oracles."""

import warnings

import numpy as np
import pytest

from tinytorch.core.losses import (
    BCELoss,
    BinaryCrossEntropyLoss,
    CrossEntropyLoss,
    MSELoss,
    log_softmax,
)
from tinytorch.core.tensor import Tensor


@pytest.fixture(autouse=True)
def strict_floats():
    """Any floating-point overflow, division by zero or invalid operation, or warning, fails."""
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def ref_log_softmax(x, axis=-1):
    x = x.astype(np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_cross_entropy(z, y):
    return -ref_log_softmax(z)[np.arange(len(y)), y].mean()


def ref_bce(p, y, eps=1e-7):
    p = np.clip(p.astype(np.float64), eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def is_scalar_f32_tensor(t):
    return isinstance(t, Tensor) and t.shape == () and t.dtype == np.float32


@pytest.mark.parametrize("shape,dim", [((5,), -1), ((4, 6), -1), ((4, 6), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_log_softmax(shape, dim, scale):
    x = (np.random.default_rng(0).standard_normal(shape) * scale).astype(np.float32)
    y = log_softmax(Tensor(x), dim=dim)
    assert isinstance(y, Tensor) and y.shape == shape and y.dtype == np.float32
    np.testing.assert_allclose(y.data, ref_log_softmax(x, dim), rtol=1e-5, atol=1e-3 if scale > 1 else 1e-5)
    if scale == 1.0:
        np.testing.assert_allclose(np.exp(y.data.astype(np.float64)).sum(axis=dim), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (2, 3, 2)])
def test_mse(shape):
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    for target in (Tensor(t), t):
        loss = MSELoss()(Tensor(p), target)
        assert is_scalar_f32_tensor(loss)
        np.testing.assert_allclose(loss.data, np.mean((p.astype(np.float64) - t) ** 2), rtol=1e-5)


def test_mse_refuses_broadcasting_shapes():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        MSELoss()(Tensor(np.zeros((4, 1))), Tensor(np.zeros(4)))


@pytest.mark.parametrize("scale", [0.1, 3.0, 1e3, 1e5])
def test_cross_entropy(scale):
    rng = np.random.default_rng(2)
    z, y = (rng.standard_normal((16, 10)) * scale).astype(np.float32), rng.integers(0, 10, 16)
    for target in (y, Tensor(y), y.astype(np.int32)):
        loss = CrossEntropyLoss()(Tensor(z), target)
        assert is_scalar_f32_tensor(loss) and np.isfinite(loss.data)
        np.testing.assert_allclose(loss.data, ref_cross_entropy(z, y), rtol=1e-5, atol=1e-6)


def test_cross_entropy_known_values():
    assert np.isclose(CrossEntropyLoss()(Tensor(np.zeros((3, 7))), [0, 6, 2]).data, np.log(7))
    assert CrossEntropyLoss()(Tensor([[1e4, 0.0], [0.0, 1e4]]), [0, 1]).data == 0.0
    assert CrossEntropyLoss()(Tensor([[1e4, 0.0]]), [1]).data == 1e4


@pytest.mark.parametrize("logits,target", [
    (np.zeros((3, 4)), [0, 1, 4]),       # class out of range
    (np.zeros((3, 4)), [0, -1, 2]),      # negative label: NumPy would wrap it silently
    (np.zeros((3, 4)), [0, 1]),          # one target short
    (np.zeros(4), [1]),                  # logits not (N, C)
])
def test_cross_entropy_refuses_bad_input(logits, target):
    with pytest.raises(ValueError):
        CrossEntropyLoss()(Tensor(logits), np.array(target))


def test_bce_matches_and_accepts_arrays():
    rng = np.random.default_rng(3)
    p, y = rng.uniform(0.01, 0.99, (6, 3)).astype(np.float32), (rng.random((6, 3)) < 0.5).astype(np.float32)
    for target in (Tensor(y), y):
        loss = BinaryCrossEntropyLoss()(Tensor(p), target)
        assert is_scalar_f32_tensor(loss)
        np.testing.assert_allclose(loss.data, ref_bce(p, y), rtol=1e-5)
    assert BCELoss is BinaryCrossEntropyLoss


def test_bce_clips_saturated_probabilities():
    p, y = np.array([0.0, 1.0, 1.0, 0.0], np.float32), np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    loss = BinaryCrossEntropyLoss()(Tensor(p), Tensor(y))
    assert np.isfinite(loss.data)
    # Each wrong element costs about -log(eps); float32 rounds 1 - 1e-7 to 1 - 1.19e-7.
    np.testing.assert_allclose(loss.data, ref_bce(p, y), rtol=2e-2)
    loss = BinaryCrossEntropyLoss(eps=0.01)(Tensor(p), Tensor(y))
    np.testing.assert_allclose(loss.data, ref_bce(p, y, eps=0.01), rtol=1e-5)


def test_bce_refuses_mismatched_shapes():
    with pytest.raises(ValueError):
        BinaryCrossEntropyLoss()(Tensor(np.full((3, 1), 0.5)), Tensor(np.ones(3)))
