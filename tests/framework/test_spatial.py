"""tinytorch.core.spatial: convolution (explicit loops and im2col) against a NumPy oracle and
against each other, gradients against central differences (float64), im2col/col2im against
loop definitions of unfold/fold, pooling, flatten, and the layers with the optimizers."""

import warnings

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.spatial import (
    AvgPool2d, Conv2d, Conv2dFn, Flatten, MaxPool2d, avg_pool2d, col2im, conv2d, conv2d_loops, conv_output_size,
    flatten, im2col, max_pool2d,
)
from tinytorch.core.tensor import Tensor

rng = np.random.default_rng(9)


@pytest.fixture(autouse=True)
def strict_floats():
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def ref_conv(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """The definition, one output position at a time, float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    (sh, sw), (ph, pw) = stride, padding
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(wd, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.empty((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1) @ w.reshape(o, -1).T
    return out if b is None else out + np.asarray(b, np.float64)[None, :, None, None]


def ref_unfold(x, k, s, p):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return np.stack([xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
                     for i in range(oh) for j in range(ow)], axis=-1)


def ref_pool(x, k, s, reduce):
    (kh, kw), (sh, sw) = k, s
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, 0), out_size(w, kw, sw, 0)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


def random_geometry(max_kernel=4):
    k = tuple(int(v) for v in rng.integers(1, max_kernel + 1, size=2))
    s = tuple(int(v) for v in rng.integers(1, 4, size=2))
    p = tuple(int(rng.integers(0, kk)) for kk in k)
    hw = tuple(int(kk + rng.integers(0, 7)) for kk in k)
    return k, s, p, hw


# --- shapes -------------------------------------------------------------------------------------

def test_conv_output_size_and_errors():
    assert [conv_output_size(*a) for a in [(32, 3, 1, 1), (32, 3, 2, 1), (7, 2, 2, 0), (1, 1, 1, 0), (5, 7, 1, 1)]] \
        == [32, 16, 3, 1, 1]
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(4, 7, 1, 1)
    for bad in (0, -1, (3,), (3, 0), 2.5, "3"):
        with pytest.raises(ValueError):
            Conv2d(1, 1, bad)
    with pytest.raises(ValueError):
        Conv2d(1, 1, 3, stride=0)
    with pytest.raises(ValueError):
        Conv2d(1, 1, 3, padding=-1)


# --- forward: loops, im2col and the oracle agree --------------------------------------------------

@pytest.mark.parametrize("trial", range(12))
def test_loops_im2col_and_oracle_agree(trial):
    k, s, p, (h, w) = random_geometry()
    n, cin, cout = (int(v) for v in rng.integers(1, 4, size=3))
    x, wt, b = rng.standard_normal((n, cin, h, w)), rng.standard_normal((cout, cin) + k), rng.standard_normal(cout)
    want = ref_conv(x, wt, b, s, p)
    np.testing.assert_allclose(conv2d_loops(x, wt, b, stride=s, padding=p), want, rtol=1e-10, atol=1e-10)
    with no_grad():
        got = conv2d(Tensor(x, dtype=np.float64), Tensor(wt, dtype=np.float64), Tensor(b, dtype=np.float64), s, p)
    np.testing.assert_allclose(got.data, want, rtol=1e-10, atol=1e-10)
    # float32 in, float32 out, close to the float64 oracle
    y32 = conv2d(Tensor(x), Tensor(wt), Tensor(b), s, p)
    assert y32.dtype == np.float32 and conv2d_loops(x.astype(np.float32), wt.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(y32.data, want, rtol=1e-4, atol=1e-4)


def test_edge_geometries():
    x = rng.standard_normal((2, 3, 5, 4))
    for w_shape, s, p in [((2, 3, 5, 4), (1, 1), (0, 0)),     # kernel = whole image: one output
                          ((2, 3, 1, 1), (1, 1), (0, 0)),     # 1x1 kernel: a per-pixel Linear
                          ((2, 3, 2, 2), (3, 3), (0, 0)),     # stride > kernel: pixels skipped
                          ((2, 3, 3, 3), (1, 1), (2, 2)),     # padding 2 with a 3x3 kernel
                          ((2, 3, 1, 4), (2, 1), (0, 1))]:    # 1 x 4 kernel, mixed stride/padding
        w = rng.standard_normal(w_shape)
        got = conv2d(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), None, s, p)
        np.testing.assert_allclose(got.data, ref_conv(x, w, None, s, p), rtol=1e-10, atol=1e-10)
    one = conv2d(Tensor(x), Tensor(rng.standard_normal((2, 3, 5, 4))))
    assert one.shape == (2, 2, 1, 1)
    # a non-contiguous input (a transposed view) works the same
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    w = rng.standard_normal((2, 3, 3, 2))
    np.testing.assert_allclose(conv2d(Tensor(xt, dtype=np.float64), Tensor(w, dtype=np.float64), None, 1, 1).data,
                               ref_conv(x, w, None, (1, 1), (1, 1)), rtol=1e-10)


def test_channel_mismatch_raises():
    with pytest.raises(ValueError, match="input channels"):
        conv2d(Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((3, 4, 3, 3))))
    with pytest.raises(ValueError, match="input channels"):
        conv2d_loops(np.ones((1, 2, 5, 5)), np.ones((3, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"\(batch, 2, height, width\)"):
        Conv2d(2, 3, 3)(Tensor(np.ones((2, 5, 5))))


# --- im2col / col2im ------------------------------------------------------------------------------

@pytest.mark.parametrize("trial", range(10))
def test_im2col_is_unfold_and_col2im_its_adjoint(trial):
    k, s, p, (h, w) = random_geometry()
    x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4)), h, w))
    cols = im2col(x, k, s, p)
    np.testing.assert_array_equal(cols, ref_unfold(x, k, s, p))
    r = rng.standard_normal(cols.shape)
    back = col2im(r, x.shape, k, s, p)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * r), np.sum(x * back), rtol=1e-10)   # <Ax, r> = <x, A^T r>


def test_col2im_counts_windows_and_im2col_does_not_copy_more_than_once():
    counts = col2im(np.ones((1, 9, 9)), (1, 1, 5, 5), 3, 1, 0)[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 3, 2, 1], [2, 4, 6, 4, 2], [3, 6, 9, 6, 3], [2, 4, 6, 4, 2], [1, 2, 3, 2, 1]])
    cols = im2col(np.ones((2, 3, 8, 8), np.float32), 3, 1, 1)
    assert cols.dtype == np.float32 and cols.flags.c_contiguous and cols.shape == (2, 27, 64)


# --- gradients ------------------------------------------------------------------------------------

@pytest.mark.parametrize("trial", range(8))
def test_conv2d_gradcheck(trial):
    k, s, p, (h, w) = random_geometry(max_kernel=3)
    n, cin, cout = (int(v) for v in rng.integers(1, 3, size=3)) if trial % 2 else (2, 2, 3)
    x, wt, b = rng.standard_normal((n, cin, h, w)), rng.standard_normal((cout, cin) + k), rng.standard_normal(cout)
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, stride=s, padding=p), x, wt, b)


def test_conv2d_without_bias_and_partial_needs():
    x, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 2, 3))
    assert gradcheck(lambda x, w: conv2d(x, w, None, (2, 1), (1, 0)), x, w)
    xt, wt = Tensor(x), Tensor(w, requires_grad=True)
    y = conv2d(xt, wt, None, 1, 1)
    assert isinstance(y.grad_fn, Conv2dFn) and y.grad_fn.needs_input_grad == (False, True, False)
    y.sum().backward()
    assert xt.grad is None and wt.grad.shape == w.shape
    with no_grad():
        assert conv2d(Tensor(x), Tensor(w, requires_grad=True)).grad_fn is None


def test_conv2d_gradient_accumulates_through_reuse():
    """The same weight in two convolutions: the gradients of both uses add up."""
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((2, 2, 3, 3))
    assert gradcheck(lambda x, w: conv2d(conv2d(x, w, None, 1, 1), w, None, 1, 1) + conv2d(x, w, None, 1, 1), x, w)


def test_pooling_gradcheck_and_oracle():
    for k, s in [((2, 2), (2, 2)), ((3, 2), (1, 2)), ((2, 3), (1, 1)), ((1, 1), (2, 1))]:
        x = rng.standard_normal((2, 3, 7, 6))
        np.testing.assert_allclose(max_pool2d(Tensor(x, dtype=np.float64), k, s).data, ref_pool(x, k, s, np.max))
        np.testing.assert_allclose(avg_pool2d(Tensor(x, dtype=np.float64), k, s).data, ref_pool(x, k, s, np.mean))
        assert gradcheck(lambda x: max_pool2d(x, k, s), x[:1, :2])
        assert gradcheck(lambda x: avg_pool2d(x, k, s), x[:1, :2])


def test_max_pool_ties_go_to_the_first_maximum_like_pytorch():
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    assert x.grad[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_pool_modules_defaults_and_dtype():
    x = Tensor(rng.standard_normal((2, 3, 8, 8)))
    assert MaxPool2d(2)(x).shape == (2, 3, 4, 4) and AvgPool2d(2)(x).shape == (2, 3, 4, 4)
    assert MaxPool2d(3, stride=1)(x).shape == (2, 3, 6, 6) and MaxPool2d(2).stride == (2, 2)
    assert MaxPool2d(2)(x).dtype == np.float32 and AvgPool2d(2)(x).dtype == np.float32
    assert MaxPool2d(2).parameters() == [] and "kernel_size=(2, 2)" in repr(MaxPool2d(2))
    with pytest.raises(ValueError, match="4-d"):
        MaxPool2d(2)(Tensor(np.ones((3, 8, 8))))


# --- flatten --------------------------------------------------------------------------------------

def test_flatten_matches_torch_semantics():
    x = rng.standard_normal((2, 3, 4, 5))
    for start, end in [(0, -1), (1, -1), (1, 2), (-2, -1), (2, 2), (0, 0)]:
        got = flatten(Tensor(x), start, end)
        s, e = start % 4, end % 4
        assert got.shape == x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
        np.testing.assert_allclose(got.data.ravel(), x.ravel().astype(np.float32))
    assert Flatten()(Tensor(x)).shape == (2, 60) and flatten(Tensor(2.0)).shape == (1,)
    with pytest.raises(ValueError):
        flatten(Tensor(x), 2, 1)
    assert gradcheck(lambda t: flatten(t, 1) * flatten(t, 1), x[:1, :2, :2])


# --- layers and training ----------------------------------------------------------------------------

def test_conv2d_layer_init_like_pytorch():
    layer = Conv2d(4, 64, (3, 5), stride=2, padding=(1, 2), rng=0)
    assert [(n, p.shape) for n, p in layer.named_parameters()] == [("weight", (64, 4, 3, 5)), ("bias", (64,))]
    assert layer.kernel_size == (3, 5) and layer.stride == (2, 2) and layer.padding == (1, 2)
    bound = 1 / np.sqrt(4 * 3 * 5)
    w = layer.weight.data
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(layer.bias.data).max() <= bound
    assert np.array_equal(Conv2d(4, 64, (3, 5), rng=0).weight.data, w)
    assert not np.array_equal(Conv2d(4, 64, (3, 5), rng=1).weight.data, w)
    assert Conv2d(4, 64, 3, bias=False).bias is None and len(Conv2d(4, 64, 3, bias=False).parameters()) == 1
    assert isinstance(layer, Module) and "kernel_size=(3, 5)" in repr(layer)
    with pytest.raises(ValueError):
        Conv2d(0, 3, 3)


def test_state_dict_round_trip_and_forward():
    a, b = Conv2d(2, 3, 3, padding=1, rng=0), Conv2d(2, 3, 3, padding=1, rng=1)
    b.load_state_dict(a.state_dict())
    x = Tensor(rng.standard_normal((2, 2, 6, 6)))
    np.testing.assert_array_equal(a(x).data, b(x).data)


@pytest.mark.parametrize("optimizer", [lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.01)])
def test_small_cnn_trains_with_the_optimizers(optimizer):
    """Two classes of 6x6 images (a vertical or a horizontal bar): a CNN must fit them."""
    images = np.zeros((40, 1, 6, 6), np.float32)
    labels = np.arange(40) % 2
    for i, label in enumerate(labels):
        pos = rng.integers(0, 6)
        if label:
            images[i, 0, :, pos] = 1
        else:
            images[i, 0, pos, :] = 1
    images += rng.normal(0, 0.1, images.shape).astype(np.float32)
    model = Sequential(Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 2, rng=0))
    opt = optimizer(model.parameters())
    loss_fn = CrossEntropyLoss()
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(model(Tensor(images)), labels)
        loss.backward()
        opt.step()
        first = float(loss.data) if first is None else first
    accuracy = (model(Tensor(images)).data.argmax(1) == labels).mean()
    assert float(loss.data) < first / 4 and accuracy == 1.0


def test_finished_package_has_no_python_loop_over_positions():
    """Conv2dFn, pooling and im2col scale with the work, not with Python iterations: doubling the
    image area must not multiply the number of Python-level calls (checked with a call counter)."""
    import sys

    def calls_for(size):
        count = 0

        def tracer(frame, event, arg):
            nonlocal count
            if event in ("call", "c_call"):   # Python functions and C functions (np.sum, np.pad, ...)
                count += 1
            return None

        x = Tensor(rng.standard_normal((2, 3, size, size)), requires_grad=True)
        w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
        sys.setprofile(tracer)
        try:
            y = avg_pool2d(max_pool2d(conv2d(x, w, None, 1, 1), 2), 2)
            y.backward(np.ones(y.shape, np.float32))
        finally:
            sys.setprofile(None)
        return count

    assert calls_for(32) == calls_for(8)
