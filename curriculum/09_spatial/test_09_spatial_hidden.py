"""Hidden graded tests of Module 09 (Spatial): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass:
random batch sizes, channels, image sizes, non-square kernels, strides and paddings.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, numeric_grads

pytestmark = [pytest.mark.module("09_spatial"), pytest.mark.hidden]

TOL = dict(rtol=1e-4, atol=1e-4, dtype=np.float32)


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def ref_conv(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """Direct definition, one output position at a time (float64)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.empty((n, o, oh, ow))
    flat_w = w.reshape(o, -1)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1) @ flat_w.T
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


def ref_unfold(x, k, s, p):
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


def f32(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def geometry(rng, max_kernel=4, max_stride=3, max_padding=2):
    """Random kernel (kh, kw), stride, padding and an image (h, w) that the kernel fits."""
    k = tuple(int(v) for v in rng.integers(1, max_kernel + 1, size=2))
    s = tuple(int(v) for v in rng.integers(1, max_stride + 1, size=2))
    p = tuple(int(rng.integers(0, min(max_padding, kk - 1) + 1)) for kk in k)   # padding < kernel, as PyTorch's pools
    hw = tuple(int(kk + rng.integers(0, 6)) for kk in k)
    return k, s, p, hw


@pytest.mark.points(1)
def test_conv_output_size_random(student, rng):
    cases = []
    for _ in range(8):
        k, s, p = int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        cases.append((int(k - 2 * p + rng.integers(0, 30)), k, s, p))
    got = student.value("[conv_output_size(*a) for a in cases]", cases=cases)
    assert got == [out_size(*a) for a in cases], f"cases (size, kernel, stride, padding): {cases}"
    with pytest.raises(StudentError) as err:
        student.value("conv_output_size(n, n + 3, 1, 1)", n=int(rng.integers(1, 20)))
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_conv2d_loops_random(student, rng):
    for _ in range(2):
        k, s, p, (h, w) = geometry(rng)
        n, cin, cout = (int(v) for v in rng.integers(1, 4, size=3))
        x, wt, b = f32(rng, (n, cin, h, w)), f32(rng, (cout, cin) + k), f32(rng, cout)
        got = student.value("conv2d_loops(x, w, b, stride=s, padding=p)", x=x, w=wt, b=b, s=s, p=p)
        assert_array(got, ref_conv(x, wt, b, s, p), **TOL)


@pytest.mark.points(2)
def test_im2col_random(student, rng):
    for _ in range(3):
        k, s, p, (h, w) = geometry(rng)
        x = f32(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w))
        got = student.value("im2col(x, k, s, p)", x=x, k=k, s=s, p=p)
        assert_array(got, ref_unfold(x, k, s, p), rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(2)
def test_col2im_random_and_adjoint(student, rng):
    for _ in range(3):
        k, s, p, (h, w) = geometry(rng)
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        cols = f32(rng, (n, c * k[0] * k[1], out_size(h, k[0], s[0], p[0]) * out_size(w, k[1], s[1], p[1])))
        got = student.value("col2im(cols, shape, k, s, p)", cols=cols, shape=(n, c, h, w), k=k, s=s, p=p)
        assert_array(got, ref_fold(cols, (n, c, h, w), k, s, p), **TOL)


@pytest.mark.points(2)
def test_conv2d_forward_random(student, rng):
    for _ in range(3):
        k, s, p, (h, w) = geometry(rng)
        n, cin, cout = (int(v) for v in rng.integers(1, 5, size=3))
        x, wt, b = f32(rng, (n, cin, h, w)), f32(rng, (cout, cin) + k), f32(rng, cout, scale=3.0)
        got, dtype = student.value("y = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=s, padding=p)\n(y.data, str(y.dtype))",
                                   x=x, w=wt, b=b, s=s, p=p)
        assert dtype == "float32"
        assert_array(got, ref_conv(x, wt, b, s, p), **TOL)


@pytest.mark.points(3)
def test_conv2d_gradients_random(student, rng):
    for _ in range(2):
        k, s, p, (h, w) = geometry(rng, max_kernel=3, max_stride=2)
        n, cin, cout = (int(v) for v in rng.integers(1, 4, size=3))
        x, wt, b = f32(rng, (n, cin, h, w)), f32(rng, (cout, cin) + k), f32(rng, cout)
        upstream = rng.standard_normal(ref_conv(x, wt, b, s, p).shape)
        gx, gw, gb = student.value(
            "xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)\n"
            "conv2d(xt, wt, bt, stride=s, padding=p).backward(upstream)\n"
            "[xt.grad, wt.grad, bt.grad]",
            x=x, w=wt, b=b, s=s, p=p, upstream=upstream,
        )
        want = numeric_grads(lambda x, w, b: ref_conv(x, w, b, s, p), [x, wt, b], upstream)
        for name, got, expected in zip(("input", "weight", "bias"), (gx, gw, gb), want):
            try:
                assert_array(got, expected, **TOL)
            except AssertionError as err:
                raise AssertionError(f"kernel {k}, stride {s}, padding {p}: gradient of the {name}: {err}") from None


@pytest.mark.points(1)
def test_conv2d_gradient_only_where_needed(student, rng):
    x, w = f32(rng, (2, 2, 5, 5)), f32(rng, (3, 2, 3, 3))
    got = student.value(
        "wt = Tensor(w, requires_grad=True)\nxt = Tensor(x)\n"
        "conv2d(xt, wt, None, padding=1).sum().backward()\n"
        "(xt.grad is None, wt.grad)", x=x, w=w,
    )
    assert got[0] is True, "the input did not require a gradient: it must not get one"
    want = numeric_grads(lambda w: ref_conv(x, w, None, (1, 1), (1, 1)), [w], np.ones((2, 3, 5, 5)))[0]
    assert_array(got[1], want, rtol=1e-4, atol=1e-3, dtype=np.float32)


@pytest.mark.points(2)
def test_conv2d_layer_random(student, rng):
    k, s, p, (h, w) = geometry(rng)
    cin, cout, seed = int(rng.integers(1, 4)), int(rng.integers(6, 12)), int(rng.integers(2**31))
    wt, b, x = f32(rng, (cout, cin) + k), f32(rng, cout), f32(rng, (2, cin, h, w))
    init, same, out = student.value(
        "m = Conv2d(cin, cout, k, stride=s, padding=p, rng=seed)\n"
        "init = m.weight.data.copy()\n"
        "same = bool(np.array_equal(Conv2d(cin, cout, k, stride=s, padding=p, rng=seed).weight.data, init))\n"
        "m.load_state_dict({'weight': w, 'bias': b})\n"
        "(init, same, m(Tensor(x)).data)",
        cin=cin, cout=cout, k=k, s=s, p=p, seed=seed, w=wt, b=b, x=x,
    )
    bound = 1 / np.sqrt(cin * k[0] * k[1])
    assert init.shape == (cout, cin) + k and init.dtype == np.float32 and same is True
    assert np.abs(init).max() <= bound + 1e-7
    assert_array(out, ref_conv(x, wt, b, s, p), **TOL)


@pytest.mark.points(2)
def test_max_pool_random(student, rng):
    for _ in range(2):
        k = tuple(int(v) for v in rng.integers(1, 4, size=2))
        s = tuple(int(v) for v in rng.integers(1, 4, size=2))
        x = f32(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 3)), k[0] + int(rng.integers(0, 4)), k[1] + int(rng.integers(0, 4))))
        upstream = rng.standard_normal(ref_pool(x, k, s, np.max).shape)
        out, grad = student.value(
            "xt = Tensor(x, requires_grad=True)\ny = max_pool2d(xt, k, stride=s)\ny.backward(upstream)\n(y.data, xt.grad)",
            x=x, k=k, s=s, upstream=upstream,
        )
        assert_array(out, ref_pool(x, k, s, np.max), **TOL)
        assert_array(grad, numeric_grads(lambda x: ref_pool(x, k, s, np.max), [x], upstream)[0], **TOL)


@pytest.mark.points(2)
def test_avg_pool_random(student, rng):
    for _ in range(2):
        k = tuple(int(v) for v in rng.integers(1, 4, size=2))
        s = tuple(int(v) for v in rng.integers(1, 4, size=2))
        x = f32(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 3)), k[0] + int(rng.integers(0, 4)), k[1] + int(rng.integers(0, 4))))
        upstream = rng.standard_normal(ref_pool(x, k, s, np.mean).shape)
        out, grad = student.value(
            "xt = Tensor(x, requires_grad=True)\ny = AvgPool2d(k, stride=s)(xt)\ny.backward(upstream)\n(y.data, xt.grad)",
            x=x, k=k, s=s, upstream=upstream,
        )
        assert_array(out, ref_pool(x, k, s, np.mean), **TOL)
        assert_array(grad, numeric_grads(lambda x: ref_pool(x, k, s, np.mean), [x], upstream)[0], **TOL)


@pytest.mark.points(1)
def test_flatten_random(student, rng):
    shape = tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(2, 5))))
    start = int(rng.integers(0, len(shape)))
    end = int(rng.integers(start, len(shape))) - len(shape)   # negative end_dim
    x = f32(rng, shape)
    got = student.value("flatten(Tensor(x), a, b).data", x=x, a=start, b=end)
    want = x.reshape(shape[:start] + (-1,) + shape[len(shape) + end + 1:])
    assert_array(got, want, rtol=0, atol=0, dtype=np.float32)


@pytest.mark.points(2)
def test_small_cnn_end_to_end(student, rng):
    """A conv -> relu -> pool -> flatten -> linear network: logits and the first layer's gradient."""
    w1, b1 = f32(rng, (4, 1, 3, 3), 0.5), f32(rng, 4, 0.1)
    w2, b2 = f32(rng, (3, 4 * 3 * 3), 0.3), f32(rng, 3, 0.1)
    x = f32(rng, (3, 1, 6, 6))

    def forward(w1):
        h = np.maximum(ref_conv(x, w1, b1, (1, 1), (1, 1)), 0)
        h = ref_pool(h, (2, 2), (2, 2), np.max).reshape(3, -1)
        return h @ w2.astype(np.float64).T + b2

    logits, grad = student.value(
        "from tinytorch.core.activations import ReLU\nfrom tinytorch.core.layers import Linear\n"
        "conv, lin = Conv2d(1, 4, 3, padding=1), Linear(36, 3)\n"
        "conv.load_state_dict({'weight': w1, 'bias': b1})\nlin.load_state_dict({'weight': w2, 'bias': b2})\n"
        "y = lin(Flatten()(MaxPool2d(2)(ReLU()(conv(Tensor(x))))))\n"
        "y.sum().backward()\n(y.data, conv.weight.grad)",
        w1=w1, b1=b1, w2=w2, b2=b2, x=x,
    )
    assert_array(logits, forward(w1), **TOL)
    assert_array(grad, numeric_grads(forward, [w1], np.ones((3, 3)))[0], rtol=1e-3, atol=1e-3, dtype=np.float32)


@pytest.mark.points(1)
def test_conv2d_and_pooling_have_no_python_loop_over_positions(student):
    """The lesson's rule for the finished layer: work grows with the image, Python calls do not.
    Counts the Python and C function calls of one forward + backward at two image sizes."""
    small, large = student.value(
        "import sys\n"
        "def _calls(size):\n"
        "    count = [0]\n"
        "    def profile(frame, event, arg):\n"
        "        if event in ('call', 'c_call'):\n"
        "            count[0] += 1\n"
        "    x = Tensor(np.ones((2, 3, size, size), np.float32), requires_grad=True)\n"
        "    w = Tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)\n"
        "    sys.setprofile(profile)\n"
        "    try:\n"
        "        y = avg_pool2d(max_pool2d(conv2d(x, w, None, 1, 1), 2), 2)\n"
        "        y.backward(np.ones(y.shape, np.float32))\n"
        "    finally:\n"
        "        sys.setprofile(None)\n"
        "    return count[0]\n"
        "[_calls(8), _calls(32)]"
    )
    assert large < 1.5 * small, (f"{small} function calls for 8 x 8 images but {large} for 32 x 32: a loop over "
                                 f"output positions; use sliding_window_view and one matrix product")
