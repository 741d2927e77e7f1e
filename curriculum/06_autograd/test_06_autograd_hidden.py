"""Hidden graded tests of Module 06 (Autograd): instructors only, never released.

Inputs (shapes, axes, values) come from `rng`, seeded by the grader at grading time, so a
hard-coded answer cannot pass. Expected gradients are central differences computed here.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact, numeric_grads

pytestmark = [pytest.mark.module("06_autograd"), pytest.mark.hidden]

GRADS = (
    "ts = [Tensor(a, requires_grad=True) for a in arrays]\n"
    "out = {expr}\n"
    "out.backward(upstream)\n"
    "[t.grad for t in ts]"
)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def check_grads(student, expr, f, arrays, rng, rtol=1e-4, atol=1e-5, **extra):
    arrays = [f32(a) for a in arrays]
    upstream = np.asarray(rng.standard_normal(np.shape(f(*arrays))))
    got = student.value(GRADS.format(expr=expr), arrays=arrays, upstream=upstream, **extra)
    assert type(got) is list and len(got) == len(arrays), f"expected one .grad per input, got {got!r:.200}"
    for i, (g, want) in enumerate(zip(got, numeric_grads(f, arrays, upstream))):
        try:
            assert_array(g, want, rtol=rtol, atol=atol, dtype=np.float32)
        except AssertionError as err:
            # hidden: say which case failed, never the expected values
            raise AssertionError(f"{expr}: the gradient of input {i} (shape {arrays[i].shape}) is wrong") from None


def random_shape(rng, max_ndim=3):
    return tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, max_ndim + 1)))


def broadcast_partner(rng, shape):
    """A shape that broadcasts against `shape`: some dims set to 1, some leading dims dropped."""
    other = tuple(1 if rng.random() < 0.4 else d for d in shape)
    return other[int(rng.integers(0, len(shape) + 1)):]


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def nonzero(rng, shape, low=0.5, high=2.0):
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.points(3)
def test_binary_ops_on_random_broadcast_shapes(student, rng):
    ops = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": lambda x, y: x / y}
    for _ in range(3):
        shape = random_shape(rng)
        a, b = rng.standard_normal(shape), nonzero(rng, broadcast_partner(rng, shape))
        if rng.random() < 0.5:
            a, b = b, nonzero(rng, shape)  # the smaller operand on the left
        for op, f in ops.items():
            check_grads(student, f"ts[0] {op} ts[1]", f, [a, b], rng)
    c = float(rng.uniform(0.5, 3))
    v = nonzero(rng, random_shape(rng))
    check_grads(student, f"{c} - ts[0] * {c} + {c} / ts[0]", lambda x: c - x * c + c / x, [v], rng)
    check_grads(student, "-(ts[0] + ts[0])", lambda x: -(x + x), [v], rng)


@pytest.mark.points(2)
def test_matmul_batched_and_vectors(student, rng):
    m, k, n, batch = (int(d) for d in rng.integers(1, 5, 4))
    cases = [((batch, m, k), (k, n)), ((m, k), (batch, k, n)), ((batch, 1, m, k), (2, k, n)),
             ((k,), (k,)), ((k,), (batch, k, n)), ((batch, m, k), (k,))]
    for sa, sb in cases:
        check_grads(student, "ts[0] @ ts[1]", lambda x, y: x @ y, [rng.standard_normal(sa), rng.standard_normal(sb)], rng)
    w = rng.standard_normal((n, k))
    check_grads(student, "ts[0] @ ts[1].T", lambda x, y: x @ y.T, [rng.standard_normal((m, k)), w], rng)


@pytest.mark.points(2)
def test_reductions_over_random_axes(student, rng):
    shape = tuple(int(d) for d in rng.integers(2, 5, 3))
    a = rng.permutation(int(np.prod(shape))).reshape(shape) + rng.uniform(0, 0.5, shape)
    for axis in (None, int(rng.integers(-3, 3)), (0, 2), (-1, 1)):
        keep = bool(rng.random() < 0.5)
        for name, f in (("sum", np.sum), ("mean", np.mean), ("max", np.max)):
            check_grads(student, f"ts[0].{name}(axis={axis!r}, keepdims={keep})",
                        lambda x: f(x, axis=axis, keepdims=keep), [a], rng)
    tied = np.full(4, float(rng.uniform(-2, 2)))
    got = student.value("t = Tensor(a, requires_grad=True)\nt.max().backward()\nt.grad", a=tied)
    assert_array(got, np.full(4, 0.25), dtype=np.float32)  # a 4-way tie shares the gradient


@pytest.mark.points(1)
def test_views_and_indexing(student, rng):
    shape = tuple(int(d) for d in rng.integers(2, 5, 3))
    a = rng.standard_normal(shape)
    check_grads(student, "ts[0].reshape(-1)", lambda x: x.reshape(-1), [a], rng)
    check_grads(student, f"ts[0].reshape(({shape[0] * shape[1]}, {shape[2]})).T",
                lambda x: x.reshape(shape[0] * shape[1], shape[2]).T, [a], rng)
    check_grads(student, "ts[0].transpose(0, 1)", lambda x: x.swapaxes(0, 1), [a], rng)
    idx = rng.integers(0, shape[0], 5)
    check_grads(student, f"ts[0][{idx.tolist()}]", lambda x: x[idx], [a], rng)
    mask = rng.random(shape) < 0.5
    mask.flat[0] = True
    check_grads(student, "ts[0][Tensor(mask, dtype=bool)]", lambda x: x[mask], [a], rng, mask=mask)
    check_grads(student, "ts[0][1, ..., -1]", lambda x: x[1, ..., -1], [a], rng)


@pytest.mark.points(2)
def test_activations_on_random_shapes(student, rng):
    for shape in (random_shape(rng, 3), (), (int(rng.integers(1, 6)),)):
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3)
        x = np.where(np.abs(x) < 0.05, 0.1, x)
        check_grads(student, "activations.ReLU()(ts[0])", lambda v: np.maximum(v, 0), [x], rng)
        check_grads(student, "activations.Sigmoid()(ts[0])", lambda v: 1 / (1 + np.exp(-v)), [x], rng)
        check_grads(student, "activations.Tanh()(ts[0])", np.tanh, [x], rng)
        check_grads(student, "activations.GELU()(ts[0])", gelu, [x], rng)
    s = rng.standard_normal(tuple(int(d) for d in rng.integers(2, 5, 3)))
    dim = int(rng.integers(-3, 3))
    check_grads(student, f"activations.Softmax(dim={dim})(ts[0])", lambda v: np.exp(log_softmax(v, dim)), [s], rng)
    check_grads(student, f"activations.Softmax()(ts[0]) * ts[0]", lambda v: np.exp(log_softmax(v)) * v, [s], rng)


@pytest.mark.points(2)
def test_losses_on_random_inputs(student, rng):
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    z, y = rng.standard_normal((n, c)) * rng.uniform(0.5, 5), rng.integers(0, c, n)
    dim = int(rng.integers(-2, 2))
    check_grads(student, f"losses.log_softmax(ts[0], dim={dim})", lambda v: log_softmax(v, dim), [z], rng)
    check_grads(student, "losses.CrossEntropyLoss()(ts[0], y) * 1.0",
                lambda v: -log_softmax(v)[np.arange(n), y].mean(), [z], rng, y=y)
    shape = random_shape(rng)
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    check_grads(student, "losses.MSELoss()(ts[0], ts[1])", lambda u, v: np.mean((u - v) ** 2), [p, t], rng)
    check_grads(student, "losses.MSELoss()(ts[0], target)", lambda u: np.mean((u - f32(t)) ** 2), [p], rng,
                target=f32(t))
    q, r = rng.uniform(0.02, 0.98, shape), rng.uniform(0, 1, shape)
    check_grads(student, "losses.BinaryCrossEntropyLoss()(ts[0], ts[1])",
                lambda u, v: -np.mean(v * np.log(u) + (1 - v) * np.log(1 - u)), [q, r], rng)


@pytest.mark.points(1)
def test_deep_chain_without_recursion_error(student, rng):
    scale, depth = float(rng.uniform(0.9999, 1.0001)), int(rng.integers(5000, 6000))
    x = rng.standard_normal(3)
    got = student.value(
        "x = Tensor(a, requires_grad=True)\n"
        "h = x\n"
        "for _ in range(depth):\n"
        "    h = h * scale + 0.001\n"
        "h.sum().backward()\n"
        "x.grad",
        a=x, scale=scale, depth=depth,
    )
    assert_array(got, np.full(3, float(np.float32(scale)) ** depth), rtol=3e-3, dtype=np.float32)


@pytest.mark.points(1)
def test_backward_refuses_what_pytorch_refuses(student, rng):
    a = rng.standard_normal(int(rng.integers(2, 6)))
    with pytest.raises(StudentError) as err:
        student.value("(Tensor(a, requires_grad=True) * 2.0).backward()", a=a)
    assert err.value.is_a("RuntimeError"), f"backward() of a non-scalar: expected RuntimeError, got {err.value.type_name}"
    with pytest.raises(StudentError) as err:
        student.value("(Tensor(a) * 2.0).sum().backward()", a=a)
    assert err.value.is_a("RuntimeError"), f"backward() without requires_grad: expected RuntimeError, got {err.value.type_name}"
    got = student.value("x = Tensor(a, requires_grad=True)\n(x * 3.0).sum().backward()\nx.grad", a=a)
    assert_array(got, np.full(a.shape, 3.0), dtype=np.float32)  # a one-element result needs no gradient argument


@pytest.mark.points(1)
def test_gradients_accumulate_until_zero_grad(student, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    got = student.value(
        "x = Tensor(a, requires_grad=True)\n"
        "g = [Tensor(b) * x, x * 2.0]\n"
        "g[0].sum().backward()\n"
        "first = x.grad.copy()\n"
        "g[1].sum().backward()\n"
        "second = x.grad.copy()\n"
        "x.zero_grad()\n"
        "cleared = x.grad is None\n"
        "(x + x).sum().backward()\n"
        "[first, second, cleared, x.grad]",
        a=a, b=b,
    )
    assert type(got) is list and len(got) == 4
    assert_array(got[0], f32(b), dtype=np.float32)
    assert_array(got[1], f32(b) + 2, dtype=np.float32)
    assert got[2] is True, "zero_grad() must set .grad to None"
    assert_array(got[3], np.full((2, 3), 2.0), dtype=np.float32)


@pytest.mark.points(1)
def test_linear_and_cross_entropy_train_from_module_03(student, rng):
    n, d, c = (int(v) for v in rng.integers(2, 7, 3))
    x, y, seed = rng.standard_normal((n, d)), rng.integers(0, c, n), int(rng.integers(0, 2**31))
    got = student.value(
        "from tinytorch.core.layers import Linear\n"
        "layer = Linear(d, c, rng=seed)\n"
        "loss = losses.CrossEntropyLoss()(layer(Tensor(x)), y)\n"
        "loss.backward()\n"
        "grads = [layer.weight.data, layer.bias.data, layer.weight.grad, layer.bias.grad]\n"
        "layer.zero_grad()\n"
        "with no_grad():\n"
        "    evaluated = layer(Tensor(x))\n"
        "grads + [layer.weight.grad is None, evaluated.grad_fn is None]",
        x=x, y=y, d=d, c=c, seed=seed,
    )
    w, b = got[0].astype(np.float64), got[1].astype(np.float64)
    z = f32(x) @ w.T + b
    p = np.exp(log_softmax(z))
    dz = (p - np.eye(c)[y]) / n
    assert_array(got[2], dz.T @ f32(x), rtol=1e-4, atol=1e-6, dtype=np.float32)
    assert_array(got[3], dz.sum(axis=0), rtol=1e-4, atol=1e-6, dtype=np.float32)
    assert_exact(got[4:], [True, True])
