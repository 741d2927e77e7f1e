"""The exported activations (tinytorch/core/activations.py) against NumPy oracles."""

import math
import warnings

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor

SHAPES = [(), (1,), (7,), (3, 4), (2, 3, 5)]


def oracle(name, x, dim=-1):
    """float64 reference values of each activation, computed on the float32 inputs."""
    x = x.astype(np.float64)
    if name == "ReLU":
        return np.maximum(x, 0)
    if name == "Sigmoid":
        return np.exp(-np.logaddexp(0.0, -x))
    if name == "Tanh":
        return np.tanh(x)
    if name == "GELU":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


ACTIVATIONS = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "GELU": GELU, "Softmax": Softmax}


@pytest.fixture(autouse=True)
def strict_floats():
    """Any floating-point overflow or invalid operation, or any warning, fails the test."""
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_oracle(name, shape):
    if name == "Softmax" and shape == ():
        pytest.skip("softmax needs an axis")
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 3).astype(np.float32)
    y = ACTIVATIONS[name]()(Tensor(x))
    assert isinstance(y, Tensor) and y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.data, oracle(name, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_call_is_forward_and_input_untouched(name):
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    keep = x.copy()
    act = ACTIVATIONS[name]()
    np.testing.assert_array_equal(act(Tensor(x)).data, act.forward(Tensor(x)).data)
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "GELU"])
def test_extreme_inputs(name):
    big = np.finfo(np.float32).max
    x = np.array([-big, -1e30, -1e4, -100.0, -88.8, 0.0, 88.8, 100.0, 1e4], dtype=np.float32)
    if name == "GELU":
        x = x[2:]  # x*x*x overflows float32 beyond about 1e12: GELU is tested up to 1e4
    y = ACTIVATIONS[name]()(Tensor(x)).data
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, oracle(name, x), rtol=1e-5, atol=1e-30)


def test_sigmoid_exact_limits_and_symmetry():
    x = np.array([-1e4, -50.0, -3.0, 0.0, 3.0, 50.0, 1e4], dtype=np.float32)
    y = Sigmoid()(Tensor(x)).data
    assert y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    np.testing.assert_allclose(y[::-1], 1 - y, atol=1e-7)


def test_softmax_stable_masked_and_along_dims():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 4, 5)) * 1e4).astype(np.float32)
    for dim in (0, 1, 2, -1):
        y = Softmax(dim=dim)(Tensor(x)).data
        np.testing.assert_allclose(y, oracle("Softmax", x, dim), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(y.sum(axis=dim), 1.0, rtol=1e-5)
    masked = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=np.float32)
    y = Softmax()(Tensor(masked)).data
    assert y[0, 1] == 0.0 and y[1].tolist() == [0.0, 1.0, 0.0]


def test_gelu_close_to_exact_erf_gelu():
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    np.testing.assert_allclose(GELU()(Tensor(x)).data, exact, atol=1e-3)
