"""The exported layers (tinytorch/core/layers.py) against NumPy oracles."""

import re

import numpy as np
import pytest

from tinytorch.core.layers import Dropout, Linear, Module, Parameter, Sequential
from tinytorch.core.tensor import Tensor


class Block(Module):
    def __init__(self):
        super().__init__()
        self.gain = Parameter(np.ones(4))
        self.fc1 = Linear(3, 4, rng=0)
        self.drop = Dropout(0.5, rng=0)
        self.fc2 = Linear(4, 2, rng=1)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x) * self.gain))


def relu(t):
    return Tensor(np.maximum(t.data, 0))


def test_parameter_is_a_tensor_that_requires_grad():
    p = Parameter(np.arange(3))
    assert isinstance(p, Tensor) and p.requires_grad and p.dtype == np.float32
    assert not isinstance(p * 2, Parameter), "results of operations are plain Tensors"


def test_named_parameters_follow_pytorch_order():
    model = Sequential(Block(), relu, Linear(2, 5))
    assert [n for n, _ in model.named_parameters()] == [
        "0.gain", "0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias", "2.weight", "2.bias"]
    assert model.children()[0].fc1 is model[0].fc1


def test_registration_requires_super_init():
    class Forgot(Module):
        def __init__(self):
            self.fc = Linear(2, 2)

    with pytest.raises(AttributeError, match=re.escape("super().__init__()")):
        Forgot()


def test_reassignment_keeps_or_drops_registration():
    layer = Linear(3, 2)
    layer.weight = Parameter(np.zeros((2, 3)))           # a Parameter replacing a Parameter keeps its place
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    holder = Module()
    holder.child = Linear(2, 2)
    holder.child = Parameter(np.ones(1))
    assert [n for n, _ in holder.named_parameters()] == ["child"] and holder.children() == []


def test_tied_weights_are_counted_once():
    a, b = Linear(3, 3), Linear(3, 3)
    b.weight = a.weight
    model = Sequential(a, b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert sum(p.size for p in model.parameters()) == 9 + 3 + 3


def test_train_eval_propagate_and_return_self():
    model = Sequential(Block(), Sequential(Dropout(0.3)))
    assert model.eval() is model
    assert not any(m.training for m in (model, model[0], model[0].drop, model[1], model[1][0]))
    assert model.train() is model and model[1][0].training


@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)])
def test_linear_forward_matches_numpy(shape):
    rng = np.random.default_rng(1)
    layer = Linear(5, 7, rng=2)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(Tensor(x))
    expected = x.astype(np.float64) @ layer.weight.data.T.astype(np.float64) + layer.bias.data
    assert isinstance(y, Tensor) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


def test_linear_initialisation_matches_pytorch_bounds():
    layer = Linear(400, 300, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(400)
    w, b = layer.weight.data, layer.bias.data
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)
    assert np.array_equal(Linear(400, 300, rng=0).weight.data, w)
    assert Linear(400, 300, bias=False).bias is None


def test_linear_rejects_bad_sizes_and_inputs():
    with pytest.raises(ValueError):
        Linear(0, 3)
    with pytest.raises(ValueError, match="expected 4"):
        Linear(4, 3)(Tensor(np.ones((2, 5))))


def test_state_dict_round_trip_and_copies():
    model = Sequential(Block(), relu, Linear(2, 5, rng=3)).eval()
    state = model.state_dict()
    assert list(state) == [n for n, _ in model.named_parameters()]
    assert all(type(v) is np.ndarray for v in state.values())
    state["0.gain"][:] = 9
    assert np.all(model[0].gain.data == 1), "state_dict returns copies"
    other = Sequential(Block(), relu, Linear(2, 5, rng=4)).eval()
    handle = other[2].weight
    other.load_state_dict(model.state_dict())
    assert other[2].weight is handle, "load copies into the existing parameters"
    x = Tensor(np.random.default_rng(5).standard_normal((6, 3)))
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_load_state_dict_errors_are_clear_and_atomic():
    layer = Linear(3, 2, rng=0)
    before = layer.state_dict()
    with pytest.raises(KeyError, match="missing keys \\['bias'\\]"):
        layer.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\]"):
        layer.load_state_dict({**before, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match="'bias'.*\\(3,\\).*\\(2,\\)"):
        layer.load_state_dict({"weight": np.ones((2, 3)), "bias": np.ones(3)})
    np.testing.assert_array_equal(layer.weight.data, before["weight"])  # nothing was written


def test_dropout_inverted_scaling_and_modes():
    x = Tensor(np.full((300, 300), 2.0))
    drop = Dropout(0.3, rng=0)
    out = drop(x).data
    kept = out != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out[kept], 2.0 / 0.7, rtol=1e-6)
    assert not np.array_equal(drop(x).data, out), "a new mask per call"
    np.testing.assert_array_equal(Dropout(0.3, rng=0)(x).data, out)
    assert drop.eval()(x) is x and Dropout(0.0)(x) is x
    assert np.all(Dropout(1.0)(x).data == 0)
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError):
            Dropout(bad)


def test_sequential_mlp_against_numpy():
    rng = np.random.default_rng(7)
    mlp = Sequential(Linear(8, 16, rng=1), relu, Dropout(0.5), Linear(16, 3, rng=2)).eval()
    x = rng.standard_normal((10, 8)).astype(np.float32)
    w0, b0, w3, b3 = (p.data for p in mlp.parameters())
    expected = np.maximum(x @ w0.T + b0, 0) @ w3.T + b3
    np.testing.assert_allclose(mlp(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)
    assert len(mlp) == 4 and mlp[1] is relu
    assert "(3): Linear(in_features=16, out_features=3, bias=True)" in repr(mlp)


def test_zero_grad_clears_gradients():
    layer = Linear(2, 2)
    for p in layer.parameters():
        p.grad = np.ones(p.shape)
    layer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())
