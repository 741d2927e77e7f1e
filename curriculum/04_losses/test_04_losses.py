"""Public graded tests of Module 04 (Losses). Run with: pytest --module 04_losses

Inputs are made here with NumPy, your losses run in your notebook's kernel, and the expected
values are NumPy formulas computed here (in float64, on the float32 values a Tensor stores).
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("04_losses")

STRICT = 'with np.errstate(over="raise", invalid="raise", divide="raise"):\n    out = {call}\nout'


def f32(a):
    """The values a Tensor stores: float32 (the oracle then computes in float64)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def cross_entropy(z, y):
    return -log_softmax(z)[np.arange(len(y)), y].mean()


def bce(p, y, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.points(2)
def test_log_softmax_matches_numpy(student, rng):
    x = rng.standard_normal((5, 7)) * 3
    got = student.value("log_softmax(Tensor(x)).data", x=x)
    assert_array(got, log_softmax(f32(x)), rtol=1e-5, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_log_softmax_huge_logits_stay_finite_and_exact(student, rng):
    x = rng.standard_normal((4, 6)) * 1e4  # naive log(softmax) gives -inf and nan here
    got = student.value(STRICT.format(call="log_softmax(Tensor(x)).data"), x=x)
    assert_array(got, log_softmax(f32(x)), rtol=1e-5, atol=1e-3, dtype=np.float32)


@pytest.mark.points(2)
def test_mse_matches_numpy(student, rng):
    pred, target = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    got = student.value("MSELoss()(Tensor(pred), Tensor(target)).data", pred=pred, target=target)
    assert_array(got, np.mean((f32(pred) - f32(target)) ** 2), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_mse_refuses_mismatched_shapes(student, rng):
    pred, target = rng.standard_normal((5, 1)), rng.standard_normal(5)
    with pytest.raises(StudentError) as err:
        student.value("MSELoss()(Tensor(pred), Tensor(target))", pred=pred, target=target)
    assert err.value.is_a("ValueError"), f"expected a ValueError, got {err.value.type_name}"


@pytest.mark.points(3)
def test_cross_entropy_matches_numpy(student, rng):
    z, y = rng.standard_normal((8, 5)) * 2, rng.integers(0, 5, 8)
    got = student.value("CrossEntropyLoss()(Tensor(z), y).data", z=z, y=y)
    assert_array(got, cross_entropy(f32(z), y), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_cross_entropy_stable_for_huge_logits(student, rng):
    z, y = rng.standard_normal((6, 4)) * 1e4, rng.integers(0, 4, 6)
    got = student.value(STRICT.format(call="CrossEntropyLoss()(Tensor(z), y).data"), z=z, y=y)
    assert_array(got, cross_entropy(f32(z), y), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_bce_matches_numpy(student, rng):
    p, y = rng.uniform(0.02, 0.98, (4, 5)), (rng.random((4, 5)) < 0.5).astype(np.float64)
    got = student.value("BinaryCrossEntropyLoss()(Tensor(p), Tensor(y)).data", p=p, y=y)
    assert_array(got, bce(f32(p), y), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_bce_saturated_probabilities_are_clipped(student):
    p, y = np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    got = student.value(STRICT.format(call="BinaryCrossEntropyLoss()(Tensor(p), Tensor(y)).data"), p=p, y=y)
    # 1 - 1e-7 is not exact in float32, hence the loose tolerance: finite and about -log(eps) matter
    assert_array(got, bce(p, y), rtol=2e-2, dtype=np.float32)
