"""Public graded tests of Module 02 (Activations). Run with: pytest --module 02_activations

Inputs are made here with NumPy, your classes run in your notebook's kernel, and the expected
values are NumPy formulas computed here (in float64, on the float32 inputs your Tensor stores).
"""

import math

import numpy as np
import pytest
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("02_activations")

# Every forward must raise nothing on these: an overflow inside np.exp becomes an error.
STRICT = 'with np.errstate(over="raise", invalid="raise", divide="raise"):\n    out = {call}\nout'


def f32(a):
    """The values a Tensor stores: float32 (the oracle then computes in float64)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x), overflow-free in float64


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.points(2)
def test_relu_matches_numpy(student, rng):
    x = rng.standard_normal((4, 7)) * 3
    got = student.value("ReLU()(Tensor(x)).data", x=x)
    assert_array(got, np.maximum(f32(x), 0), rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(1)
def test_relu_scalar_and_vector(student):
    assert_array(student.value("ReLU()(Tensor(-3.5)).data"), np.array(0.0), dtype=np.float32)
    v = np.array([-1.0, 0.0, 2.5])
    assert_array(student.value("ReLU().forward(Tensor(v)).data", v=v), np.array([0.0, 0.0, 2.5]), dtype=np.float32)


@pytest.mark.points(2)
def test_sigmoid_matches_numpy(student, rng):
    x = rng.standard_normal((5, 6)) * 4
    got = student.value("Sigmoid()(Tensor(x)).data", x=x)
    assert_array(got, sigmoid(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_sigmoid_extremes_are_exact_and_warning_free(student):
    x = np.array([-1e30, -1e4, -200.0, -90.0, 0.0, 90.0, 200.0, 1e4, 1e30])
    got = student.value(STRICT.format(call="Sigmoid()(Tensor(x)).data"), x=x)
    assert_array(got, sigmoid(f32(x)), rtol=1e-5, atol=1e-12, dtype=np.float32)
    assert got[0] == 0.0 and got[1] == 0.0 and got[-1] == 1.0 and got[4] == 0.5


@pytest.mark.points(1)
def test_tanh_matches_numpy(student, rng):
    x = rng.standard_normal((3, 2, 4)) * 3
    got = student.value("Tanh()(Tensor(x)).data", x=x)
    assert_array(got, np.tanh(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_gelu_is_the_tanh_approximation(student, rng):
    x = np.concatenate([rng.standard_normal(20) * 2, [0.0, -6.0, 6.0]])
    got = student.value("GELU()(Tensor(x)).data", x=x)
    assert_array(got, gelu_tanh(f32(x)), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(2)
def test_softmax_rows_are_distributions(student, rng):
    x = rng.standard_normal((6, 5)) * 2
    got = student.value("Softmax()(Tensor(x)).data", x=x)
    assert_array(got, softmax(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.points(2)
def test_softmax_is_stable_for_huge_logits(student, rng):
    x = rng.standard_normal((4, 8)) * 1e4
    x[0] = 5000.0  # a row of equal huge logits: uniform
    got = student.value(STRICT.format(call="Softmax()(Tensor(x)).data"), x=x)
    assert_array(got, softmax(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(1)
def test_softmax_along_dim_0(student, rng):
    x = rng.standard_normal((3, 4))
    got = student.value("Softmax(dim=0)(Tensor(x)).data", x=x)
    assert_array(got, softmax(f32(x), axis=0), rtol=1e-5, atol=1e-7, dtype=np.float32)
