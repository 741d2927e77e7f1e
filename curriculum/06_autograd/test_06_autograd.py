"""Public graded tests of Module 06 (Autograd). Run with: pytest --module 06_autograd

Inputs are made here with NumPy. Your notebook builds Tensors from them, runs backward and
returns the `.grad` arrays; the expected gradients are central differences of NumPy formulas,
computed here in float64 on the float32 values your Tensors store.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array, assert_exact, numeric_grads

pytestmark = pytest.mark.module("06_autograd")

# The student's code: leaves from `arrays`, one expression of them, backward with `upstream`.
GRADS = (
    "ts = [Tensor(a, requires_grad=True) for a in arrays]\n"
    "out = {expr}\n"
    "out.backward(upstream)\n"
    "[t.grad for t in ts]"
)


def f32(a):
    """The values a Tensor stores: float32 (the oracle then computes in float64)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def check_grads(student, expr, f, arrays, rng, rtol=1e-4, atol=1e-5):
    """Run `expr` on Tensors of `arrays` in the kernel, backward with a random upstream gradient,
    and compare every input's .grad with central differences of the NumPy formula `f`."""
    arrays = [f32(a) for a in arrays]
    upstream = np.asarray(rng.standard_normal(np.shape(f(*arrays))))
    got = student.value(GRADS.format(expr=expr), arrays=arrays, upstream=upstream)
    assert type(got) is list and len(got) == len(arrays), f"expected one .grad per input, got {got!r:.200}"
    for i, (g, want) in enumerate(zip(got, numeric_grads(f, arrays, upstream))):
        try:
            assert_array(g, want, rtol=rtol, atol=atol, dtype=np.float32)
        except AssertionError as err:
            raise AssertionError(f"{expr}: gradient of input {i} (shape {arrays[i].shape}): {err}") from None


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.points(1)
def test_apply_records_the_graph(student, rng):
    a = rng.standard_normal((2, 3))
    got = student.value(
        "x, c = Tensor(a, requires_grad=True), Tensor(a)\n"
        "y = x * 2.0\n"
        "[type(y.grad_fn).__name__, y.requires_grad, y.grad_fn.inputs[0] is x,\n"
        " [bool(n) for n in y.grad_fn.needs_input_grad], (c * 2.0).grad_fn is None, (c * 2.0).requires_grad,\n"
        " str(y.data.dtype), y.data]",
        a=a,
    )
    assert type(got) is list and len(got) == 8
    assert_exact(got[:7], ["Mul", True, True, [True, False], True, False, "float32"])
    assert_array(got[7], f32(a) * 2, dtype=np.float32)


@pytest.mark.points(2)
def test_add_and_sub_reduce_broadcast_gradients(student, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    check_grads(student, "ts[0] + ts[1]", lambda x, y: x + y, [a, b], rng)
    check_grads(student, "ts[0] - ts[1]", lambda x, y: x - y, [a, b], rng)
    c, d = rng.standard_normal((2, 1, 3)), rng.standard_normal((4, 1))
    check_grads(student, "ts[1] - ts[0] + 2.0", lambda x, y: y - x + 2.0, [c, d], rng)
    check_grads(student, "1.5 - ts[0]", lambda x: 1.5 - x, [c], rng)


@pytest.mark.points(2)
def test_mul_and_div(student, rng):
    a, b = rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, (3, 1)) * rng.choice([-1, 1], (3, 1))
    check_grads(student, "ts[0] * ts[1]", lambda x, y: x * y, [a, b], rng)
    check_grads(student, "ts[0] / ts[1]", lambda x, y: x / y, [a, b], rng)
    check_grads(student, "3.0 / ts[0] * 0.5", lambda y: 3.0 / y * 0.5, [b], rng)


@pytest.mark.points(2)
def test_matmul(student, rng):
    for sa, sb in [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        check_grads(student, "ts[0] @ ts[1]", lambda x, y: x @ y, [a, b], rng)


@pytest.mark.points(1)
def test_reshape_transpose_getitem(student, rng):
    a = rng.standard_normal((2, 3, 4))
    check_grads(student, "ts[0].reshape(4, -1)", lambda x: x.reshape(4, -1), [a], rng)
    check_grads(student, "ts[0].transpose(0, 2)", lambda x: x.swapaxes(0, 2), [a], rng)
    check_grads(student, "ts[0][:, [0, 2, 0], 1:]", lambda x: x[:, [0, 2, 0], 1:], [a], rng)


@pytest.mark.points(2)
def test_sum_mean_max(student, rng):
    a = rng.permutation(24).reshape(2, 3, 4) + rng.uniform(0, 0.5, (2, 3, 4))  # distinct values: one max
    check_grads(student, "ts[0].sum(axis=0)", lambda x: x.sum(axis=0), [a], rng)
    check_grads(student, "ts[0].mean(axis=1, keepdims=True)", lambda x: x.mean(axis=1, keepdims=True), [a], rng)
    check_grads(student, "ts[0].max(axis=-1)", lambda x: x.max(axis=-1), [a], rng)
    check_grads(student, "ts[0].sum() + ts[0].max()", lambda x: x.sum() + x.max(), [a], rng)


@pytest.mark.points(2)
def test_activations(student, rng):
    x = rng.standard_normal((3, 5)) * 2
    x[np.abs(x) < 0.05] += 0.1  # ReLU's kink at 0 has no derivative
    check_grads(student, "activations.ReLU()(ts[0])", lambda v: np.maximum(v, 0), [x], rng)
    check_grads(student, "activations.Sigmoid()(ts[0])", lambda v: 1 / (1 + np.exp(-v)), [x], rng)
    check_grads(student, "activations.Tanh()(ts[0])", np.tanh, [x], rng)
    check_grads(student, "activations.GELU()(ts[0])", gelu, [x], rng)
    check_grads(student, "activations.Softmax()(ts[0])", lambda v: np.exp(log_softmax(v)), [x], rng)


@pytest.mark.points(2)
def test_losses(student, rng):
    z, y = rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, 6)
    check_grads(student, "losses.log_softmax(ts[0])", log_softmax, [z], rng)
    got = student.value(GRADS.format(expr="losses.CrossEntropyLoss()(ts[0], y)"),
                        arrays=[f32(z)], upstream=np.asarray(1.0), y=y)
    want = numeric_grads(lambda v: -log_softmax(v)[np.arange(6), y].mean(), [f32(z)], 1.0)[0]
    assert_array(got[0], want, rtol=1e-4, atol=1e-5, dtype=np.float32)
    p, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    check_grads(student, "losses.MSELoss()(ts[0], ts[1])", lambda u, v: np.mean((u - v) ** 2), [p, t], rng)
    q, r = rng.uniform(0.05, 0.95, (4,)), (rng.random(4) < 0.5).astype(float)
    check_grads(student, "losses.BinaryCrossEntropyLoss()(ts[0], ts[1])",
                lambda u, v: -np.mean(v * np.log(u) + (1 - v) * np.log(1 - u)), [q, r], rng)


@pytest.mark.points(1)
def test_reused_tensor_and_diamond(student, rng):
    a = rng.standard_normal(5)
    check_grads(student, "ts[0] * ts[0] + ts[0]", lambda x: x * x + x, [a], rng)
    check_grads(student, "(ts[0] + 1.0) * (ts[0] * 2.0)", lambda x: (x + 1) * (x * 2), [a], rng)
    check_grads(student, "ts[0] * (ts[0] * 3.0 - 1.0)", lambda x: x * (x * 3 - 1), [a], rng)


@pytest.mark.points(1)
def test_no_grad(student, rng):
    a = rng.standard_normal(3)
    got = student.value(
        "x = Tensor(a, requires_grad=True)\n"
        "with no_grad():\n"
        "    y = x * 2.0\n"
        "    with no_grad():\n"
        "        pass\n"
        "    z = x * 2.0\n"
        "try:\n"
        "    with no_grad():\n"
        "        raise KeyError('inside')\n"
        "except KeyError:\n"
        "    pass\n"
        "w = x * 2.0\n"
        "[y.grad_fn is None, y.requires_grad, z.grad_fn is None, w.grad_fn is not None, w.requires_grad]",
        a=a,
    )
    assert_exact(got, [True, False, True, True, True])
