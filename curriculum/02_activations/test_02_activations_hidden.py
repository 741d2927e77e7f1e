"""Hidden graded tests of Module 02 (Activations): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass.
"""

import math

import numpy as np
import pytest
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("02_activations"), pytest.mark.hidden]

STRICT = 'with np.errstate(over="raise", invalid="raise", divide="raise"):\n    out = {call}\nout'
ELEMENTWISE = ["ReLU", "Sigmoid", "Tanh", "GELU"]


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def random_shape(rng, max_ndim=3):
    """A random shape of 0 to max_ndim dimensions (0-d scalars included)."""
    return tuple(int(d) for d in rng.integers(1, 6, size=rng.integers(0, max_ndim + 1)))


def wide(rng, shape):
    """Values spread over many magnitudes, both signs: 1e-3 ... 1e6."""
    return np.asarray(rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(-3, 6, size=shape))


@pytest.mark.points(2)
def test_relu_random_shapes_and_magnitudes(student, rng):
    for _ in range(3):
        x = wide(rng, random_shape(rng))
        got = student.value("ReLU()(Tensor(x)).data", x=x)
        assert_array(got, np.asarray(np.maximum(f32(x), 0)), rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(3)
def test_sigmoid_wide_range_without_warnings(student, rng):
    x = wide(rng, (6, 9))
    x.flat[:4] = [-3e38, 3e38, -88.5, 88.5]  # float32's largest values and exp's overflow edge
    got = student.value(STRICT.format(call="Sigmoid()(Tensor(x)).data"), x=x)
    assert_array(got, sigmoid(f32(x)), rtol=1e-5, atol=1e-12, dtype=np.float32)
    assert got.min() >= 0.0 and got.max() <= 1.0


@pytest.mark.points(1)
def test_sigmoid_scalar(student, rng):
    v = float(rng.normal() * 3)
    got = student.value("Sigmoid()(Tensor(v)).data", v=v)
    assert_array(got, np.array(sigmoid(f32(v))), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_tanh_wide_range(student, rng):
    x = wide(rng, random_shape(rng, 2) + (3,))
    got = student.value(STRICT.format(call="Tanh()(Tensor(x)).data"), x=x)
    assert_array(got, np.tanh(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_gelu_random_and_saturated(student, rng):
    x = np.concatenate([rng.standard_normal(30) * 3, rng.uniform(8, 1000, 4), -rng.uniform(8, 1000, 4)])
    got = student.value("GELU()(Tensor(x)).data", x=x)
    assert_array(got, gelu_tanh(f32(x)), rtol=1e-5, atol=1e-6, dtype=np.float32)


@pytest.mark.points(1)
def test_gelu_differs_from_relu_near_zero(student, rng):
    x = -rng.uniform(0.2, 2.0, 5)  # GELU lets small negatives through a little: not ReLU's 0
    got = student.value("GELU()(Tensor(x)).data", x=x)
    assert_array(got, gelu_tanh(f32(x)), rtol=1e-5, atol=1e-6, dtype=np.float32)
    assert (got < 0).all()


@pytest.mark.points(2)
def test_softmax_3d_along_each_dim(student, rng):
    x = rng.standard_normal(tuple(int(d) for d in rng.integers(2, 6, 3))) * rng.uniform(1, 50)
    for dim in (0, 1, -1):
        got = student.value("Softmax(dim=dim)(Tensor(x)).data", x=x, dim=dim)
        assert_array(got, softmax(f32(x), axis=dim), rtol=1e-5, atol=1e-7, dtype=np.float32)


@pytest.mark.points(2)
def test_softmax_masked_and_huge(student, rng):
    x = rng.standard_normal((5, 7)) * 3e4
    mask = rng.random((5, 7)) < 0.4
    mask[:, rng.integers(0, 7)] = False  # every row keeps one finite entry
    x[mask] = -np.inf  # an attention mask: those entries must get probability exactly 0
    got = student.value(STRICT.format(call="Softmax()(Tensor(x)).data"), x=x)
    assert_array(got, softmax(f32(x)), rtol=1e-5, atol=1e-7, dtype=np.float32)
    assert (got[mask] == 0).all()


@pytest.mark.points(1)
def test_softmax_is_shift_invariant(student, rng):
    x = rng.standard_normal((3, 6))
    c = float(rng.uniform(-500, 500))
    got = student.value("Softmax()(Tensor(x + c)).data", x=x, c=c)
    assert_array(got, softmax(f32(x + c)), rtol=1e-4, atol=1e-6, dtype=np.float32)


@pytest.mark.points(1)
def test_forward_does_not_modify_its_input(student, rng):
    x = (rng.standard_normal((4, 5)) * 10).astype(np.float32)
    got = student.value(
        "t = Tensor(x)\n"
        "for act in [ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()]:\n"
        "    act(t)\n"
        "t.data",
        x=x,
    )
    assert_array(got, x, rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(1)
def test_every_activation_returns_a_float32_tensor(student, rng):
    x = rng.standard_normal((2, 3))
    got = student.value(
        "found = []\n"
        "for act in [ReLU, Sigmoid, Tanh, GELU, Softmax]:\n"
        "    y = act()(Tensor(x))\n"
        "    found.append(f'{type(y).__name__} {y.data.dtype} {y.shape}')\n"
        "found",
        x=x,
    )
    assert got == ["Tensor float32 (2, 3)"] * 5
