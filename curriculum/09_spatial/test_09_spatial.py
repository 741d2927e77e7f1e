"""Public graded tests of Module 09 (Spatial). Run with: pytest --module 09_spatial

Inputs are made here with NumPy. The oracles are computed here too, in float64 and written
differently from the lesson: convolution as a sum over kernel offsets, im2col/col2im and pooling
with loops over output positions, gradients by central differences.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact, numeric_grads

pytestmark = pytest.mark.module("09_spatial")

TOL = dict(rtol=1e-4, atol=1e-4, dtype=np.float32)


# --- oracles ----------------------------------------------------------------------------------

def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def ref_conv(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """y[n, o, i, j] = b[o] + sum_{c, u, v} x_pad[n, c, i s + u, j s + v] w[o, c, u, v], float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, o, oh, ow))
    for u in range(kh):
        for v in range(kw):
            patch = xp[:, :, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, u, v])
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


def ref_unfold(x, k, s, p):
    """torch.nn.functional.unfold, one output position at a time."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((n, c * kh * kw, oh * ow))
    for i in range(oh):
        for j in range(ow):
            cols[:, :, i * ow + j] = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
    return cols


def ref_fold(cols, shape, k, s, p):
    """torch.nn.functional.fold, one output position at a time."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += cols[:, :, i * ow + j].reshape(n, c, kh, kw)
    return out[:, :, ph:ph + h, pw:pw + w]


def ref_pool(x, k, s, reduce):
    (kh, kw), (sh, sw) = k, s
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, 0), out_size(w, kw, sw, 0)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(np.asarray(x, np.float64)[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


def f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def seed_of(rng):
    return int(rng.integers(2**31))


CONV_GRADS = (
    "xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)\n"
    "bt = Tensor(b, requires_grad=True)\n"
    "out = conv2d(xt, wt, bt, stride=stride, padding=padding)\n"
    "out.backward(upstream)\n"
    "[out.data, xt.grad, wt.grad, bt.grad]"
)


# --- tests ------------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_conv_output_size(student):
    got = student.value("[conv_output_size(*a) for a in cases]",
                        cases=[(32, 3, 1, 1), (32, 3, 2, 1), (7, 2, 2, 0), (5, 5, 1, 0), (10, 4, 3, 2)])
    assert_exact(got, [32, 16, 3, 1, 4])
    with pytest.raises(StudentError) as err:
        student.value("conv_output_size(4, 7, 1, 1)")
    assert err.value.is_a("ValueError"), "a 7-wide kernel does not fit a 4-wide input padded by 1"


@pytest.mark.points(2)
def test_conv2d_loops_matches_numpy(student, rng):
    x, w, b = f32(rng, (2, 3, 6, 7)), f32(rng, (4, 3, 3, 2)), f32(rng, 4)
    got = student.value("conv2d_loops(x, w, b, stride=(2, 1), padding=(1, 0))", x=x, w=w, b=b)
    assert_array(got, ref_conv(x, w, b, (2, 1), (1, 0)), **TOL)
    plain = student.value("conv2d_loops(x, w)", x=x, w=w)
    assert_array(plain, ref_conv(x, w), **TOL)


@pytest.mark.points(2)
def test_im2col_is_unfold(student, rng):
    x = f32(rng, (2, 3, 5, 6))
    got = student.value("im2col(x, (2, 3), stride=(1, 2), padding=1)", x=x)
    assert_array(got, ref_unfold(x, (2, 3), (1, 2), (1, 1)), rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(2)
def test_col2im_is_fold(student, rng):
    shape, k, s, p = (2, 2, 6, 5), (3, 2), (2, 1), (1, 1)
    cols = f32(rng, (2, 2 * 3 * 2, out_size(6, 3, 2, 1) * out_size(5, 2, 1, 1)))
    got = student.value("col2im(cols, shape, k, s, p)", cols=cols, shape=shape, k=k, s=s, p=p)
    assert_array(got, ref_fold(cols, shape, k, s, p), **TOL)


@pytest.mark.points(2)
def test_conv2d_forward_matches_numpy(student, rng):
    x, w, b = f32(rng, (3, 2, 7, 5)), f32(rng, (5, 2, 3, 3)), f32(rng, 5)
    got = student.value("conv2d(Tensor(x), Tensor(w), Tensor(b), stride=2, padding=1).data", x=x, w=w, b=b)
    assert_array(got, ref_conv(x, w, b, (2, 2), (1, 1)), **TOL)


@pytest.mark.points(3)
def test_conv2d_gradients_match_central_differences(student, rng):
    x, w, b = f32(rng, (2, 2, 5, 6)), f32(rng, (3, 2, 2, 3)), f32(rng, 3)
    stride, padding = (1, 2), (1, 0)
    upstream = rng.standard_normal(ref_conv(x, w, b, stride, padding).shape)
    out, gx, gw, gb = student.value(CONV_GRADS, x=x, w=w, b=b, stride=stride, padding=padding, upstream=upstream)
    assert_array(out, ref_conv(x, w, b, stride, padding), **TOL)
    want = numeric_grads(lambda x, w, b: ref_conv(x, w, b, stride, padding), [x, w, b], upstream)
    for name, got, expected in zip(("input", "weight", "bias"), (gx, gw, gb), want):
        try:
            assert_array(got, expected, **TOL)
        except AssertionError as err:
            raise AssertionError(f"gradient of the {name}: {err}") from None


@pytest.mark.points(2)
def test_conv2d_layer_parameters_and_init(student, rng):
    cin, cout, seed = int(rng.integers(2, 5)), int(rng.integers(8, 16)), seed_of(rng)
    names, shapes, weight, bias, pairs, no_bias = student.value(
        "m = Conv2d(cin, cout, (3, 2), stride=2, padding=(1, 0), rng=seed)\n"
        "([n for n, _ in m.named_parameters()], [p.shape for p in m.parameters()], m.weight.data, m.bias.data,\n"
        " [m.kernel_size, m.stride, m.padding], [n for n, _ in Conv2d(cin, cout, 3, bias=False).named_parameters()])",
        cin=cin, cout=cout, seed=seed,
    )
    assert names == ["weight", "bias"] and shapes == [(cout, cin, 3, 2), (cout,)]
    assert pairs == [(3, 2), (2, 2), (1, 0)], "kernel_size, stride, padding are stored as (height, width) pairs"
    assert no_bias == ["weight"], "bias=False: no bias parameter"
    assert weight.dtype == np.float32 and bias.dtype == np.float32
    bound = 1 / np.sqrt(cin * 3 * 2)
    assert np.abs(weight).max() <= bound + 1e-7 and np.abs(bias).max() <= bound + 1e-7, "U(-1/sqrt(fan_in), 1/sqrt(fan_in))"
    assert abs(weight.std() - bound / np.sqrt(3)) < 0.2 * bound and abs(weight.mean()) < 0.2 * bound


@pytest.mark.points(2)
def test_conv2d_layer_forward_and_gradients(student, rng):
    cin, cout = 2, 3
    w, b, x = f32(rng, (cout, cin, 3, 3)), f32(rng, cout), f32(rng, (2, cin, 6, 5))
    out, gw, gb = student.value(
        "m = Conv2d(cin, cout, 3, padding=1)\n"
        "m.load_state_dict({'weight': w, 'bias': b})\n"
        "y = m(Tensor(x))\n"
        "y.backward(np.ones(y.shape, np.float32))\n"
        "[y.data, m.weight.grad, m.bias.grad]",
        cin=cin, cout=cout, w=w, b=b, x=x,
    )
    assert_array(out, ref_conv(x, w, b, (1, 1), (1, 1)), **TOL)
    ones = np.ones(out.shape)
    want_w, want_b = numeric_grads(lambda w, b: ref_conv(x, w, b, (1, 1), (1, 1)), [w, b], ones)
    assert_array(gw, want_w, rtol=1e-4, atol=1e-3, dtype=np.float32)
    assert_array(gb, want_b, rtol=1e-4, atol=1e-3, dtype=np.float32)
    with pytest.raises(StudentError) as err:
        student.value("Conv2d(2, 3, 3)(Tensor(np.ones((1, 4, 5, 5))))")
    assert err.value.is_a("ValueError"), "4 input channels into Conv2d(2, 3, 3) must raise ValueError"


@pytest.mark.points(1)
def test_max_pool_forward(student, rng):
    x = f32(rng, (2, 3, 6, 7))
    got = student.value("MaxPool2d(2)(Tensor(x)).data", x=x)
    assert_array(got, ref_pool(x, (2, 2), (2, 2), np.max), **TOL)


@pytest.mark.points(2)
def test_max_pool_backward(student, rng):
    x = f32(rng, (2, 2, 5, 6))
    upstream = rng.standard_normal(ref_pool(x, (3, 2), (2, 1), np.max).shape)
    got = student.value(
        "xt = Tensor(x, requires_grad=True)\nmax_pool2d(xt, (3, 2), stride=(2, 1)).backward(upstream)\nxt.grad",
        x=x, upstream=upstream,
    )
    want = numeric_grads(lambda x: ref_pool(x, (3, 2), (2, 1), np.max), [x], upstream)[0]
    assert_array(got, want, **TOL)


@pytest.mark.points(1)
def test_max_pool_ties_route_to_the_first_maximum(student):
    x = np.array([[[[1, 3, 3, 0], [3, 2, 0, 0], [5, 5, 0, 0], [5, 5, 0, 0]]]], np.float32)
    got = student.value("xt = Tensor(x, requires_grad=True)\nmax_pool2d(xt, 2).sum().backward()\nxt.grad", x=x)
    want = np.array([[[[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]]], np.float32)
    assert_array(got, want, rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(1)
def test_avg_pool_forward(student, rng):
    x = f32(rng, (2, 3, 7, 6))
    got = student.value("AvgPool2d(3, stride=2)(Tensor(x)).data", x=x)
    assert_array(got, ref_pool(x, (3, 3), (2, 2), np.mean), **TOL)


@pytest.mark.points(1)
def test_avg_pool_backward(student, rng):
    x = f32(rng, (2, 2, 5, 5))
    upstream = rng.standard_normal(ref_pool(x, (2, 3), (1, 2), np.mean).shape)
    got = student.value(
        "xt = Tensor(x, requires_grad=True)\navg_pool2d(xt, (2, 3), stride=(1, 2)).backward(upstream)\nxt.grad",
        x=x, upstream=upstream,
    )
    want = numeric_grads(lambda x: ref_pool(x, (2, 3), (1, 2), np.mean), [x], upstream)[0]
    assert_array(got, want, **TOL)


@pytest.mark.points(2)
def test_flatten_and_its_gradient(student, rng):
    x = f32(rng, (2, 3, 4, 5))
    shapes, grad = student.value(
        "xt = Tensor(x, requires_grad=True)\n"
        "y = Flatten()(xt)\n"
        "(y * Tensor(np.arange(60, dtype=np.float32))).sum().backward()\n"
        "([flatten(xt).shape, y.shape, flatten(xt, 1, 2).shape, flatten(xt, -2).shape], xt.grad)",
        x=x,
    )
    assert shapes == [(120,), (2, 60), (2, 12, 5), (2, 3, 20)]
    assert_array(grad, np.broadcast_to(np.arange(60, dtype=np.float64).reshape(3, 4, 5), x.shape), **TOL)
