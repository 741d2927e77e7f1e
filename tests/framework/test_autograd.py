"""tinytorch.core.autograd: every primitive's gradient against central differences (float64),
on random shapes with broadcasting and 0-d/1-d edge cases; the engine on reused tensors,
diamonds and deep chains; no_grad, zero_grad, the dispatch table, and Linear + CrossEntropyLoss."""

import math
import warnings

import numpy as np
import pytest

from tinytorch.core import autograd
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import (
    Add, Function, MatMul, Mul, gradcheck, is_grad_enabled, no_grad, numerical_grad, topological_order, unbroadcast,
)
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core import losses
from tinytorch.core.tensor import Tensor

rng = np.random.default_rng(6)


def random_shape(max_ndim=3):
    return tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, max_ndim + 1)))


def broadcast_partner(shape):
    other = tuple(1 if rng.random() < 0.4 else d for d in shape)
    return other[int(rng.integers(0, len(shape) + 1)):]


def nonzero(shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.fixture(autouse=True)
def strict_floats():
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- every primitive against central differences --------------------------------------------

@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@pytest.mark.parametrize("trial", range(6))
def test_binary_ops_broadcast(op, trial):
    shape = random_shape()
    a, b = nonzero(shape), nonzero(broadcast_partner(shape))
    if trial % 2:
        a, b = b, a
    assert gradcheck(eval(f"lambda x, y: x {op} y"), a, b)
    assert gradcheck(eval(f"lambda x: 1.5 {op} x"), b)
    assert gradcheck(eval(f"lambda x: x {op} 1.5"), a)


def test_neg_and_reuse():
    a = nonzero((3, 2))
    assert gradcheck(lambda x: -x * x + x, a)
    assert gradcheck(lambda x: x * (x * 3.0 - 1.0) / (x + 5.0), a)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)),
                                   ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1)), ((4,), (2, 4, 3))])
def test_matmul(sa, sb):
    assert gradcheck(lambda x, y: x @ y, rng.standard_normal(sa), rng.standard_normal(sb))


def test_matmul_skips_unneeded_gradients():
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    x = Tensor(rng.standard_normal((4, 3)))
    y = x @ w
    assert y.grad_fn.needs_input_grad == (False, True)
    grad_x, grad_w = y.grad_fn.backward(np.ones((4, 2), np.float32))
    assert grad_x is None and grad_w.shape == (3, 2)


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions(name, axis, keepdims):
    a = rng.permutation(24).reshape(2, 3, 4) + rng.uniform(0, 0.5, (2, 3, 4))
    assert gradcheck(lambda x: getattr(x, name)(axis, keepdims), a)


def test_reductions_of_0d_and_1d():
    for a in (np.array(1.5), rng.standard_normal(5)):
        for name in ("sum", "mean", "max"):
            assert gradcheck(lambda x: getattr(x, name)(), a)


def test_max_ties_share_the_gradient():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0.5, 0, 0.5]])


def test_views_and_indexing():
    a = rng.standard_normal((2, 3, 4))
    assert gradcheck(lambda x: x.reshape(4, -1), a)
    assert gradcheck(lambda x: x.reshape((24,)), a)
    assert gradcheck(lambda x: x.transpose(), a)
    assert gradcheck(lambda x: x.transpose(0, 2).T, a)
    assert gradcheck(lambda x: x.T, rng.standard_normal(3))
    assert gradcheck(lambda x: x[1], a)
    assert gradcheck(lambda x: x[:, [0, 2, 0], 1:], a)          # a repeated index accumulates
    assert gradcheck(lambda x: x[..., -1] * x[0, 0, 0], a)
    mask = rng.random((2, 3, 4)) < 0.5
    assert gradcheck(lambda x: x[Tensor(mask, dtype=bool)], a)


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 5)])
@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh, GELU])
def test_activations(cls, shape):
    x = rng.standard_normal(shape) * 3
    x = np.where(np.abs(x) < 0.05, 0.2, x)
    assert gradcheck(lambda t: cls()(t), x)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim):
    x = rng.standard_normal((3, 4)) * 2
    assert gradcheck(lambda t: Softmax(dim=dim)(t), x)
    assert gradcheck(lambda t: losses.log_softmax(t, dim=dim), x)


def test_losses():
    z, y = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    assert gradcheck(lambda t: CrossEntropyLoss()(t, y), z)
    assert gradcheck(lambda t: CrossEntropyLoss()(t, Tensor(y)), z)
    p, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert gradcheck(lambda u, v: MSELoss()(u, v), p, t)
    assert gradcheck(lambda u: MSELoss()(u, t), p)
    q, r = rng.uniform(0.05, 0.95, (5,)), rng.uniform(0, 1, (5,))
    assert gradcheck(lambda u, v: BinaryCrossEntropyLoss()(u, v), q, r)


def test_bce_gives_no_gradient_where_clipped():
    p = Tensor([0.0, 1.0, 0.5], requires_grad=True)
    BinaryCrossEntropyLoss()(p, Tensor([1.0, 0.0, 1.0])).backward()
    assert p.grad[0] == 0 and p.grad[1] == 0 and p.grad[2] < 0


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    z, y = rng.standard_normal((5, 3)).astype(np.float32), rng.integers(0, 3, 5)
    t = Tensor(z, requires_grad=True)
    CrossEntropyLoss()(t, y).backward()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(t.grad, (p - np.eye(3)[y]) / 5, rtol=1e-5, atol=1e-7)


# --- the engine -------------------------------------------------------------------------------

def test_unbroadcast():
    g = np.arange(24.0).reshape(2, 3, 4)
    assert unbroadcast(g, (2, 3, 4)) is g
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum((0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum((0, 2))[:, None])
    assert unbroadcast(g, ()).shape == () and unbroadcast(g, (1, 3, 1)).shape == (1, 3, 1)


def test_graph_records_grad_fn_and_inputs():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0 + x
    assert isinstance(y.grad_fn, Add) and isinstance(y.grad_fn.inputs[0].grad_fn, Mul)
    assert y.grad_fn.inputs[1] is x and y.grad_fn.needs_input_grad == (True, True)
    assert isinstance(y.grad_fn, Function) and not hasattr(y.grad_fn, "__dict__"), "nodes use __slots__"
    assert (Tensor([1.0]) * 2.0).grad_fn is None and not (Tensor([1.0]) * 2.0).requires_grad


def test_topological_order_puts_every_tensor_before_its_inputs():
    x = Tensor([1.0], requires_grad=True)
    g = x * 2.0
    z = x + g                     # x is pushed by z and by g: it must still come after g
    order = topological_order(z)
    assert order[0] is z and order.index(g) < order.index(x) and len(order) == 3


def test_diamond_and_reuse_accumulate():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = x + 1.0, x * 2.0
    (a * b).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data + 2)
    w = Tensor(rng.standard_normal((3, 3)), requires_grad=True)   # a weight used by two layers
    h = Tensor(rng.standard_normal((2, 3)))
    (h @ w @ w).sum().backward()
    expected = h.data.T @ np.ones((2, 3)) @ w.data.T + (h.data @ w.data).T @ np.ones((2, 3))
    np.testing.assert_allclose(w.grad, expected, rtol=1e-5)


def test_deep_chain_has_no_recursion_limit():
    x = Tensor([1.0, -2.0], requires_grad=True)
    h = x
    for _ in range(20000):
        h = h * 1.0 + 0.0
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    del h  # freeing a 40000-node graph must not overflow the C stack either


def test_backward_default_gradient_follows_pytorch():
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()
    (x * 2.0)[1:2].backward()                                   # one element: implicit gradient 1
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0])
    with pytest.raises(RuntimeError):
        Tensor([1.0]).backward()
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2.0).backward(np.ones(4))
    x.grad = None
    (x * 2.0).backward(Tensor([1.0, 2.0, 3.0]))                 # a Tensor gradient works too
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_gradients_accumulate_and_leaves_own_them():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()                                    # Add hands the same array to both
    assert a.grad is not b.grad
    (a * 3.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    assert b.grad.tolist() == [1.0, 1.0], "in-place accumulation must not leak into b"
    upstream = np.ones(2, np.float32)
    c = Tensor([1.0, 1.0], requires_grad=True)
    c.backward(upstream)
    c.grad += 1
    assert upstream.tolist() == [1.0, 1.0], "the caller's gradient array is never modified"
    a.zero_grad()
    assert a.grad is None


def test_non_leaf_tensors_keep_no_grad_and_dtypes_follow_leaves():
    x = Tensor(np.ones(3), requires_grad=True)
    h = x * Tensor(np.full(3, 2.0), dtype=np.float64)          # float32 result (first operand's dtype)
    h.sum().backward()
    assert h.grad is None and x.grad.dtype == np.float32 and h.dtype == np.float32
    d = Tensor(np.ones(2), dtype=np.float64, requires_grad=True)
    assert Tanh()(d).dtype == np.float64 and (d @ d).dtype == np.float64


def test_no_grad_nests_and_survives_exceptions():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled() and (x * 2.0).grad_fn is None
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("inside")
    assert is_grad_enabled() and (x * 2.0).grad_fn is not None


def test_numerical_grad_helper():
    a = rng.standard_normal((2, 3))
    np.testing.assert_allclose(numerical_grad(lambda t: t * t, [a], 0, np.ones((2, 3))), 2 * a, rtol=1e-6)
    with pytest.raises(AssertionError):
        gradcheck(lambda t: Tensor(t.data * 2, dtype=np.float64, requires_grad=True) * t, a)


# --- integration with modules 01-05 -----------------------------------------------------------

def test_dispatch_table_covers_the_framework():
    assert Tensor.__add__ is autograd.DISPATCH[(Tensor, "__add__")]
    assert losses.log_softmax is autograd.log_softmax
    for (owner, name), implementation in autograd.DISPATCH.items():
        assert getattr(owner, name) is implementation, (owner, name)


def test_disable_restores_forward_only_code():
    try:
        autograd.disable_autograd()
        x = Tensor([1.0, 2.0], requires_grad=True)
        assert (x * 2).grad_fn is None and not hasattr(Tensor, "backward")
        assert ReLU()(x).grad_fn is None
    finally:
        autograd.enable_autograd()
    assert (x * 2).grad_fn is not None and hasattr(Tensor, "backward")


def test_linear_cross_entropy_fills_weight_and_bias():
    layer = Linear(5, 3, rng=0)
    x, y = Tensor(rng.standard_normal((8, 5))), rng.integers(0, 3, 8)
    CrossEntropyLoss()(layer(x), y).backward()
    z = x.data.astype(np.float64) @ layer.weight.data.T + layer.bias.data
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / 8
    np.testing.assert_allclose(layer.weight.grad, dz.T @ x.data, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, dz.sum(0), rtol=1e-4, atol=1e-6)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_a_small_network_trains():
    model = Sequential(Linear(4, 16, rng=1), ReLU(), Dropout(0.1, rng=0), Linear(16, 3, rng=2))
    x = Tensor(rng.standard_normal((32, 4)))
    y = (x.data @ rng.standard_normal((4, 3))).argmax(axis=1)   # learnable labels
    first = None
    for _ in range(60):
        loss = CrossEntropyLoss()(model(x), y)
        model.zero_grad()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.3 * p.grad
        first = float(loss.data) if first is None else first
    assert float(loss.data) < 0.5 * first


def test_gradcheck_through_a_whole_mlp_in_float64():
    w1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    x = rng.standard_normal((5, 4))
    assert gradcheck(lambda a, b, c: MSELoss()(GELU()(a @ b) @ c, np.zeros((5, 2))), x, w1, w2)
    assert math.isfinite(float(MSELoss()(Tensor(x) @ Tensor(w1), np.zeros((5, 3))).data))
