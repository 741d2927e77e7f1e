"""Public graded tests of module 03 (Layers). Oracles are NumPy formulas computed here."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("03_layers")

# A nested model defined in the student's kernel: a Module with a parameter of its own and two
# children, inside a Sequential with a non-Module callable.
NESTED = """
class Block(Module):
    def __init__(self):
        super().__init__()
        self.gain = Parameter(np.ones(4))
        self.fc1 = Linear(3, 4, rng=0)
        self.drop = Dropout(0.5, rng=0)
        self.fc2 = Linear(4, 2, rng=1)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x) * self.gain))

model = Sequential(Block(), lambda t: t, Linear(2, 5, rng=2))
"""


def seed_of(rng):
    return int(rng.integers(2**31))


@pytest.mark.points(2)
def test_linear_init_shapes_dtype_and_bound(student, rng):
    fan_in, fan_out = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    weight, bias = student.value(
        "layer = Linear(i, o, rng=seed)\n(layer.weight.data, layer.bias.data)",
        i=fan_in, o=fan_out, seed=seed_of(rng),
    )
    assert type(weight) is np.ndarray and weight.shape == (fan_out, fan_in) and weight.dtype == np.float32
    assert type(bias) is np.ndarray and bias.shape == (fan_out,) and bias.dtype == np.float32
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(weight).max() <= bound + 1e-7 and np.abs(bias).max() <= bound + 1e-7
    # Uniform on [-k, k]: standard deviation k / sqrt(3), mean 0 (loose, 400+ samples).
    assert abs(weight.std() - bound / np.sqrt(3)) < 0.15 * bound and abs(weight.mean()) < 0.15 * bound


@pytest.mark.points(2)
def test_linear_forward_matches_numpy(student, rng):
    batch, fan_in, fan_out = (int(n) for n in rng.integers(1, 9, size=3))
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    b = rng.standard_normal(fan_out).astype(np.float32)
    x = rng.standard_normal((batch, fan_in)).astype(np.float32)
    got = student.value(
        "layer = Linear(w.shape[1], w.shape[0])\n"
        "layer.load_state_dict({'weight': w, 'bias': b})\n"
        "layer(Tensor(x)).data",
        w=w, b=b, x=x,
    )
    assert_array(got, x @ w.T + b, dtype=np.float32)


@pytest.mark.points(1)
def test_linear_without_bias(student, rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    names, bias, got = student.value(
        "layer = Linear(4, 3, bias=False)\n"
        "layer.load_state_dict({'weight': w})\n"
        "([n for n, _ in layer.named_parameters()], layer.bias, layer(Tensor(x)).data)",
        w=w, x=x,
    )
    assert names == ["weight"] and bias is None
    assert_array(got, x @ w.T, dtype=np.float32)


@pytest.mark.points(2)
def test_named_parameters_of_a_nested_model(student):
    names, count = student.value(
        NESTED + "([n for n, _ in model.named_parameters()], sum(p.size for p in model.parameters()))"
    )
    assert names == ["0.gain", "0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias", "2.weight", "2.bias"]
    assert count == 4 + (3 * 4 + 4) + (4 * 2 + 2) + (2 * 5 + 5)


@pytest.mark.points(1)
def test_train_and_eval_reach_every_descendant(student):
    after_eval, after_train, returns_self = student.value(
        NESTED
        + "def modes():\n"
        "    return [model.training, model[0].training, model[0].fc1.training, model[0].drop.training]\n"
        "ev = model.eval() is model\n"
        "after_eval = modes()\n"
        "tr = model.train() is model\n"
        "(after_eval, modes(), ev and tr)"
    )
    assert after_eval == [False, False, False, False]
    assert after_train == [True, True, True, True]
    assert returns_self is True


@pytest.mark.points(2)
def test_state_dict_round_trip(student, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    keys, copies, same_output = student.value(
        NESTED
        + "state = model.state_dict()\n"
        "keys = list(state)\n"
        "state['0.gain'][:] = 5.0\n"
        "copies = bool(np.all(model[0].gain.data == 1.0))\n"
        "other = Sequential(Block(), lambda t: t, Linear(2, 5, rng=99))\n"
        "other.load_state_dict(model.state_dict())\n"
        "model.eval(); other.eval()\n"
        "(keys, copies, bool(np.allclose(other(Tensor(x)).data, model(Tensor(x)).data)))",
        x=x,
    )
    assert keys == ["0.gain", "0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias", "2.weight", "2.bias"]
    assert copies is True, "state_dict() must return copies of the parameter values"
    assert same_output is True, "loading a state_dict must reproduce the model's outputs"


@pytest.mark.points(1)
def test_load_state_dict_rejects_bad_keys_and_shapes(student):
    with pytest.raises(StudentError) as err:
        student.value("Linear(3, 2).load_state_dict({'weight': np.zeros((2, 3))})")
    assert err.value.is_a("KeyError"), "a missing key must raise KeyError"
    with pytest.raises(StudentError) as err:
        student.value("Linear(3, 2).load_state_dict({'weight': np.zeros((3, 2)), 'bias': np.zeros(2)})")
    assert err.value.is_a("ValueError"), "a shape mismatch must raise ValueError"


@pytest.mark.points(2)
def test_dropout_train_and_eval(student, rng):
    p = float(rng.uniform(0.2, 0.6))
    x = rng.uniform(1.0, 2.0, size=(100, 100)).astype(np.float32)
    train_out, eval_out = student.value(
        "drop = Dropout(p, rng=0)\n(drop(Tensor(x)).data, drop.eval()(Tensor(x)).data)", p=p, x=x
    )
    assert_array(eval_out, x, dtype=np.float32)
    assert type(train_out) is np.ndarray and train_out.shape == x.shape and train_out.dtype == np.float32
    dropped = train_out == 0
    assert abs(dropped.mean() - p) < 0.03, f"expected a fraction {p:.2f} of zeros, got {dropped.mean():.3f}"
    np.testing.assert_allclose(train_out[~dropped], x[~dropped] / (1 - p), rtol=1e-5)


@pytest.mark.points(1)
def test_dropout_validates_p(student):
    for bad in (-0.1, 1.5):
        with pytest.raises(StudentError) as err:
            student.value("Dropout(p)", p=bad)
        assert err.value.is_a("ValueError"), f"Dropout({bad}) must raise ValueError"


@pytest.mark.points(2)
def test_sequential_mlp_matches_numpy(student, rng):
    w1, b1 = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    w2, b2 = rng.standard_normal((2, 6)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    got = student.value(
        "mlp = Sequential(Linear(4, 6), lambda t: Tensor(np.maximum(t.data, 0)), Linear(6, 2))\n"
        "mlp.load_state_dict({'0.weight': w1, '0.bias': b1, '2.weight': w2, '2.bias': b2})\n"
        "mlp(Tensor(x)).data",
        w1=w1, b1=b1, w2=w2, b2=b2, x=x,
    )
    assert_array(got, np.maximum(x @ w1.T + b1, 0) @ w2.T + b2, dtype=np.float32, rtol=1e-4, atol=1e-5)
