"""Hidden graded tests of Module 04 (Losses): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("04_losses"), pytest.mark.hidden]

STRICT = 'with np.errstate(over="raise", invalid="raise", divide="raise"):\n    out = {call}\nout'


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def cross_entropy(z, y):
    return -log_softmax(z)[np.arange(len(y)), y].mean()


def bce(p, y, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def random_shape(rng, max_ndim=3):
    return tuple(int(d) for d in rng.integers(1, 6, size=rng.integers(0, max_ndim + 1)))


@pytest.mark.points(2)
def test_log_softmax_along_each_dim(student, rng):
    x = rng.standard_normal(tuple(int(d) for d in rng.integers(2, 6, 3))) * rng.uniform(1, 100)
    for dim in (0, 1, -1):
        got = student.value("log_softmax(Tensor(x), dim=dim).data", x=x, dim=dim)
        assert_array(got, log_softmax(f32(x), axis=dim), rtol=1e-5, atol=1e-4, dtype=np.float32)


@pytest.mark.points(1)
def test_log_softmax_vector_and_tiny_probabilities(student, rng):
    x = rng.standard_normal(9)
    x[rng.integers(0, 9)] = rng.uniform(300, 3000)  # the others get log-probabilities near -x: not -inf
    got = student.value(STRICT.format(call="log_softmax(Tensor(x)).data"), x=x)
    assert_array(got, log_softmax(f32(x)), rtol=1e-5, atol=1e-3, dtype=np.float32)
    assert np.isfinite(got).all()


@pytest.mark.points(2)
def test_mse_random_shapes_and_array_targets(student, rng):
    for _ in range(3):
        shape = random_shape(rng)
        pred = np.asarray(rng.standard_normal(shape) * rng.uniform(0.1, 100))
        target = np.asarray(rng.standard_normal(shape)).astype(np.float32)
        got = student.value("MSELoss()(Tensor(pred), target).data", pred=pred, target=target)
        assert_array(got, np.asarray(np.mean((f32(pred) - f32(target)) ** 2)), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_cross_entropy_with_tensor_targets(student, rng):
    n, c = (int(v) for v in rng.integers(2, 12, 2))
    z, y = rng.standard_normal((n, c)) * rng.uniform(0.5, 10), rng.integers(0, c, n)
    got = student.value("CrossEntropyLoss()(Tensor(z), Tensor(y)).data", z=z, y=y)
    assert_array(got, cross_entropy(f32(z), y), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(2)
def test_cross_entropy_huge_and_confidently_wrong(student, rng):
    n, c = int(rng.integers(3, 9)), int(rng.integers(2, 30))
    z, y = rng.standard_normal((n, c)) * rng.uniform(1e3, 1e5), rng.integers(0, c, n)
    got = student.value(STRICT.format(call="CrossEntropyLoss()(Tensor(z), y).data"), z=z, y=y)
    assert_array(got, cross_entropy(f32(z), y), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(1)
def test_cross_entropy_uniform_logits_cost_log_c(student, rng):
    n, c = int(rng.integers(1, 9)), int(rng.integers(2, 50))
    z, y = np.full((n, c), rng.uniform(-50, 50)), rng.integers(0, c, n)
    got = student.value("CrossEntropyLoss()(Tensor(z), y).data", z=z, y=y)
    assert_array(got, np.log(c), rtol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_cross_entropy_refuses_bad_targets(student, rng):
    c = int(rng.integers(3, 8))
    z = rng.standard_normal((4, c))
    for y in (np.array([0, 1, -1, 2]), np.array([0, c, 1, 2]), rng.integers(0, c, 3)):
        with pytest.raises(StudentError) as err:
            student.value("CrossEntropyLoss()(Tensor(z), y)", z=z, y=y)
        assert err.value.is_a("ValueError"), f"targets {y.tolist()}: expected a ValueError, got {err.value.type_name}"


@pytest.mark.points(2)
def test_bce_random_shapes(student, rng):
    shape = random_shape(rng, 2) + (int(rng.integers(1, 5)),)
    p, y = rng.uniform(0.001, 0.999, shape), (rng.random(shape) < 0.5).astype(np.float64)
    got = student.value("BinaryCrossEntropyLoss()(Tensor(p), Tensor(y)).data", p=p, y=y)
    assert_array(got, bce(f32(p), y), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(1)
def test_bce_uses_its_eps(student, rng):
    eps = float(rng.choice([1e-3, 1e-2, 0.05]))
    p, y = np.array([0.0, 1.0, rng.uniform(0.2, 0.8)]), np.array([1.0, 0.0, 1.0])
    got = student.value("BinaryCrossEntropyLoss(eps=eps)(Tensor(p), Tensor(y)).data", p=p, y=y, eps=eps)
    assert_array(got, bce(f32(p), y, eps), rtol=1e-4, dtype=np.float32)


@pytest.mark.points(1)
def test_bce_refuses_mismatched_shapes(student, rng):
    p, y = rng.uniform(0.1, 0.9, (4, 1)), np.ones(4)
    with pytest.raises(StudentError) as err:
        student.value("BinaryCrossEntropyLoss()(Tensor(p), Tensor(y))", p=p, y=y)
    assert err.value.is_a("ValueError"), f"expected a ValueError, got {err.value.type_name}"


@pytest.mark.points(1)
def test_losses_return_0d_float32_tensors(student, rng):
    z, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    p = rng.uniform(0.1, 0.9, (3, 4))
    got = student.value(
        "found = []\n"
        "for loss in [MSELoss()(Tensor(p), Tensor(p * 0)), CrossEntropyLoss()(Tensor(z), y),\n"
        "             BinaryCrossEntropyLoss()(Tensor(p), Tensor(p > 0.5))]:\n"
        "    found.append(f'{type(loss).__name__} {loss.data.dtype} {loss.shape}')\n"
        "found",
        z=z, y=y, p=p,
    )
    assert got == ["Tensor float32 ()"] * 3
