# %% [markdown]
# # Module 09: Spatial
#
# A `Linear` layer on an image treats every pixel as an unrelated input: a 32x32 RGB image is
# 3,072 numbers, and one dense layer to 16 feature maps of the same size would need 50 million
# weights, none of which knows that pixel (5, 5) sits next to pixel (5, 6), or that a cat's ear
# is an ear wherever it appears. A **convolution** builds both facts in: each output looks only
# at a small window of its input (*locality*), and the same small set of weights slides over
# every position (*weight sharing*). That is the layer behind every CNN, from LeNet to ResNet,
# and it is still the stem of most vision transformers.
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `conv_output_size(size, kernel_size, stride, padding)` | the output length along one axis | the shape formula of `nn.Conv2d`'s docs |
# | `conv2d_loops(x, weight, bias, stride, padding)` | convolution with explicit loops (the reference, slow) | `F.conv2d`, the way the textbook writes it |
# | `im2col(x, kernel_size, stride, padding)` | every window as a column of one matrix | `torch.nn.functional.unfold` |
# | `col2im(cols, input_shape, kernel_size, stride, padding)` | the columns summed back into an image | `torch.nn.functional.fold` |
# | `Conv2dFn` (forward + backward), `conv2d` | convolution as one matrix product, differentiable | `torch.nn.functional.conv2d` and its autograd formula |
# | `Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True)` | the layer, with PyTorch's weight shape and initialisation | `torch.nn.Conv2d` |
# | `MaxPool2dFn`, `AvgPool2dFn`, `MaxPool2d`, `AvgPool2d` | downsampling by the max / mean of each window | `nn.MaxPool2d`, `nn.AvgPool2d` |
# | `flatten`, `Flatten` | from feature maps to the vector a `Linear` needs | `torch.flatten`, `nn.Flatten` |
#
# **The systems lesson** is that the same arithmetic can cost 1x or 1000x depending on how it
# is laid out. You first write convolution as the textbook (and the instructor's calibration
# example) does, four nested loops over outputs, so its cost, `kernel_height x kernel_width x
# in_channels` multiply-adds per output number, is visible in the code. Then you rewrite it
# as **im2col**: copy every window into a column of one big matrix, and the whole convolution
# becomes *one* matrix product that BLAS runs at full speed. You will measure both, and what
# the faster one costs in memory.
#
# **Conventions (PyTorch's).** Images are **NCHW**: `(batch, channels, height, width)`. A
# convolution's weight has shape **`(out_channels, in_channels, kernel_height, kernel_width)`**
# and its bias `(out_channels,)`. `kernel_size`, `stride` and `padding` are an int (the same for
# height and width) or a pair `(height, width)`. Padding adds zeros on both sides. Like PyTorch
# (and every deep-learning library) we compute a *cross-correlation*: the kernel is not flipped.
#
# **Prerequisites:** `Tensor` (01), `Module`/`Parameter`/`Linear` (03) and the `Function`
# protocol of autograd (06): `forward` on arrays, `save_for_backward`, `backward` returning one
# gradient per input, `needs_input_grad`. Importing `tinytorch.core.autograd` makes every Tensor
# operation differentiable; you add convolution and pooling as new `Function`s.

# %% tags=["export"]
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Module, Parameter


def _pair(value, name="kernel_size", minimum=1):
    """An int or a pair of ints as (height, width): kernel_size=3 means (3, 3), as in PyTorch."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    pair = tuple(pair) if isinstance(pair, (tuple, list)) else (pair,)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])

# %%
# The checks below build Tensors; the package itself works on the arrays inside them.
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. The output size
#
# A kernel of size `k` slid with step `stride` over an input of length `n` padded with `p`
# zeros on each side fits
#
# $$n_{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1$$
#
# times (the formula in `torch.nn.Conv2d`'s documentation, without dilation). Examples: a 3x3
# kernel with `padding=1, stride=1` keeps the size ("same" padding); `stride=2` halves it; a 2x2
# pooling window with stride 2 halves it. When the kernel is larger than the padded input the
# result would be below 1: raise a `ValueError` saying so (PyTorch raises too).
#
# **Your task:** `conv_output_size(size, kernel_size, stride=1, padding=0)` for one axis, ints.

# %% tags=["export"]
def conv_output_size(size, kernel_size, stride=1, padding=0):
    """Output length along one axis: floor((size + 2 padding - kernel_size) / stride) + 1.

    Raises ValueError when the kernel does not fit in the padded input (the result would be < 1).
    """
    ### BEGIN SOLUTION
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError(f"kernel size {kernel_size} is larger than the padded input "
                         f"(size {size} + 2 x padding {padding})")
    return out
    ### END SOLUTION

# %%
# Check conv_output_size on the cases of the text.
assert conv_output_size(32, 3, 1, 1) == 32 and conv_output_size(32, 3, 2, 1) == 16
assert conv_output_size(8, 2, 2) == 4 and conv_output_size(7, 2, 2) == 3 and conv_output_size(5, 5) == 1
try:
    conv_output_size(4, 7)
    raise AssertionError("a 7-wide kernel on a 4-wide input should raise ValueError")
except ValueError as err:
    print("conv_output_size ok:", err)

# %% [markdown]
# ## 2. Convolution with explicit loops
#
# For one image `b` and one output channel `oc`, output position `(i, j)` is the sum over all
# input channels of the window that starts at `(i * stride_h, j * stride_w)` in the padded
# input, multiplied element-wise by that channel's kernel, plus the channel's bias:
#
# $$y[b, oc, i, j] = \mathrm{bias}[oc] + \sum_{c, u, v} x_{pad}[b, c, i s_h + u, j s_w + v]\; w[oc, c, u, v]$$
#
# Written directly, that is four nested loops over `(b, oc, i, j)` with the window product
# inside, exactly the instructor guide's calibration example. Each output costs
# `in_channels x kernel_h x kernel_w` multiply-adds, so the whole layer costs
# `2 x N x C_out x H_out x W_out x C_in x k_h x k_w` floating-point operations: quadratic in the
# kernel size. Keep it that explicit; it is the readable reference the fast version is tested
# against.
#
# Details that matter:
#
# - pad first, with zeros on both sides of height and width only:
#   `np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))`;
# - the window of output `(i, j)` is `x[b, :, i*sh : i*sh + kh, j*sw : j*sw + kw]`, shape `(C, kh, kw)`;
# - add the bias **once** per output, outside the window sum (adding it inside `np.sum(window *
#   w + bias)` would count it `C x kh x kw` times);
# - raise `ValueError` when `weight.shape[1]` differs from the input's channels;
# - the result is a NumPy array of shape `(N, C_out, H_out, W_out)` in the dtype of
#   `np.result_type(x, weight)`.
#
# This function works on NumPy arrays, not Tensors: it is the forward computation only, the
# reference for what follows.

# %% tags=["export"]
def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """2-d convolution (cross-correlation) with explicit loops over every output: the slow,
    readable reference. NumPy arrays in and out.

    x: (N, C_in, H, W); weight: (C_out, C_in, kh, kw); bias: (C_out,) or None;
    stride, padding: int or (height, width). Returns (N, C_out, H_out, W_out).
    Cost: N * C_out * H_out * W_out Python iterations of C_in * kh * kw multiply-adds each.
    """
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    ### BEGIN SOLUTION
    batch, in_channels, height, width = x.shape
    out_channels, weight_in, kh, kw = weight.shape
    if weight_in != in_channels:
        raise ValueError(f"weight expects {weight_in} input channels, the input has {in_channels}")
    out_h, out_w = conv_output_size(height, kh, sh, ph), conv_output_size(width, kw, sw, pw)
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((batch, out_channels, out_h, out_w), dtype=np.result_type(x, weight))
    for b in range(batch):
        for oc in range(out_channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]   # (C_in, kh, kw)
                    out[b, oc, i, j] = np.sum(window * weight[oc])
            if bias is not None:
                out[b, oc] += bias[oc]
    return out
    ### END SOLUTION

# %%
# Check conv2d_loops on hand-made cases: a 1x1 kernel scales channels, an all-ones 2x2 kernel
# sums windows, padding adds zero borders, stride skips positions.
_x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
assert np.array_equal(conv2d_loops(_x, np.full((1, 1, 1, 1), 2.0, np.float32)), 2 * _x)
_sums = conv2d_loops(_x, np.ones((1, 1, 2, 2), np.float32), bias=np.array([1.0], np.float32))
assert _sums.shape == (1, 1, 3, 3) and _sums[0, 0, 0, 0] == 0 + 1 + 4 + 5 + 1 and _sums.dtype == np.float32
_padded = conv2d_loops(_x, np.ones((1, 1, 3, 3), np.float32), padding=1)
assert _padded.shape == (1, 1, 4, 4) and _padded[0, 0, 0, 0] == 0 + 1 + 4 + 5
assert conv2d_loops(_x, np.ones((1, 1, 2, 2), np.float32), stride=2).tolist() == [[[[10.0, 18.0], [42.0, 50.0]]]]
_two = conv2d_loops(np.ones((2, 3, 5, 6), np.float32), np.ones((4, 3, 2, 3), np.float32), stride=(1, 2))
assert _two.shape == (2, 4, 4, 2) and np.all(_two == 18), "3 channels x 2 x 3 window of ones"
print("conv2d_loops ok:\n", _sums[0, 0])

# %% [markdown]
# ## 3. im2col: convolution as one matrix product
#
# The loops spend almost all their time in the Python interpreter: a few microseconds of
# bookkeeping for every output number, for a handful of multiply-adds. The fix used by Caffe,
# early PyTorch and many accelerators is **im2col** ("image to columns"):
#
# 1. copy every window (of all input channels) into one column: for one image, a matrix of
#    shape `(C_in * kh * kw, H_out * W_out)`, one column per output position;
# 2. reshape the weight to `(C_out, C_in * kh * kw)`, one row per output channel;
# 3. one matrix product, `(C_out, C_in*kh*kw) @ (C_in*kh*kw, H_out*W_out)`, gives every output
#    of every channel at once: `(C_out, H_out*W_out)`, which is already the NCHW layout of the
#    result after a free reshape.
#
# ```
#  input (C, H, W)              columns (C*kh*kw, L)             weight (C_out, C*kh*kw)
#  +---------+                  +--+--+--+--   --+
#  |[##]     |   each window -> |w0|w1|w2|  ...  |      W2 @ cols = (C_out, L) = output
#  |[##]     |   is a column    |  |  |  |       |
#  +---------+                  +--+--+--+--   --+
# ```
#
# **Layout** (exactly `torch.nn.functional.unfold(x, kernel_size, padding=..., stride=...)`):
# `im2col` returns `(N, C * kh * kw, L)` with `L = H_out * W_out`; row `c * kh * kw + u * kw + v`
# holds input channel `c` at kernel offset `(u, v)`; column `i * W_out + j` is output position
# `(i, j)`. That row order is what `weight.reshape(C_out, -1)` produces, so the product lines up.
#
# **No Python loops over positions.** NumPy can *view* all windows without copying:
# `sliding_window_view(x_padded, (kh, kw), axis=(2, 3))` has shape
# `(N, C, H_pad - kh + 1, W_pad - kw + 1, kh, kw)`: element `[n, c, i, j, u, v]` is
# `x_padded[n, c, i + u, j + v]`, built from strides alone (the same memory read many times).
# Slicing `[:, :, ::sh, ::sw]` keeps every `stride`-th window, still a view. Then move the
# kernel axes before the position axes with `transpose(0, 1, 4, 5, 2, 3)` and `reshape` to
# `(N, C*kh*kw, L)`: that reshape of a non-contiguous view is the **one copy** im2col makes,
# and it is `kh * kw` times larger than the input (each pixel appears in up to `kh * kw`
# windows). The analysis measures that price.
#
# **`col2im`** goes the other way, and is what backward needs: given columns shaped like
# `im2col`'s output, add every column entry back to the input pixel it was copied from. A pixel
# that appeared in several windows receives the **sum** of their entries (this is
# `torch.nn.functional.fold`, and it is the *adjoint* of im2col, not its inverse:
# `col2im(im2col(x))` multiplies each pixel by the number of windows that contain it).
# Accumulate into a zero array of the *padded* shape, then cut the padding off. A loop over the
# `kh * kw` kernel offsets is fine here: for offset `(u, v)`, the entries of all windows at that
# offset land on a strided slice of the image,
# `out[:, :, u : u + sh*H_out : sh, v : v + sw*W_out : sw] += cols[:, :, u, v]` (after viewing
# `cols` as `(N, C, kh, kw, H_out, W_out)`): `kh * kw` vectorised additions, never a loop over
# positions.
#
# **Your tasks:** `im2col(x, kernel_size, stride=1, padding=0)` and
# `col2im(cols, input_shape, kernel_size, stride=1, padding=0)`, NumPy arrays in and out,
# `kernel_size`, `stride` and `padding` ints or pairs.

# %% tags=["export"]
def im2col(x, kernel_size, stride=1, padding=0):
    """Every (kh, kw) window of x (N, C, H, W) as a column: returns (N, C*kh*kw, H_out*W_out).

    PyTorch: ``torch.nn.functional.unfold``. Row c*kh*kw + u*kw + v is channel c at kernel
    offset (u, v); column i*W_out + j is output position (i, j). Windows are strided views of
    the zero-padded input; the final reshape is the only copy.
    """
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    ### BEGIN SOLUTION
    batch, channels, height, width = x.shape
    out_h, out_w = conv_output_size(height, kh, sh, ph), conv_output_size(width, kw, sw, pw)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]   # (N, C, H_out, W_out, kh, kw)
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(batch, channels * kh * kw, out_h * out_w)
    ### END SOLUTION


def col2im(cols, input_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add each entry of cols (N, C*kh*kw, H_out*W_out) back to the input
    pixel it came from; returns an array of input_shape (N, C, H, W), padding removed.

    PyTorch: ``torch.nn.functional.fold``. Overlapping windows sum. Loops over the kh*kw kernel
    offsets only: one strided, vectorised addition each.
    """
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    ### BEGIN SOLUTION
    batch, channels, height, width = input_shape
    out_h, out_w = conv_output_size(height, kh, sh, ph), conv_output_size(width, kw, sw, pw)
    cols = cols.reshape(batch, channels, kh, kw, out_h, out_w)
    out = np.zeros((batch, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            out[:, :, u:u + sh * out_h:sh, v:v + sw * out_w:sw] += cols[:, :, u, v]
    return out[:, :, ph:ph + height, pw:pw + width]
    ### END SOLUTION

# %%
# Check im2col and col2im: the layout of the text on a tiny image, shapes with stride and padding,
# convolution as one matrix product against your loops, and the adjoint identity
# <im2col(x), c> = <x, col2im(c)>.
_x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
_cols = im2col(_x, 2)
assert _cols.shape == (1, 4, 4) and _cols[0, :, 0].tolist() == [0, 1, 3, 4] and _cols[0, 0].tolist() == [0, 1, 3, 4]
_rng = np.random.default_rng(0)
_xb = _rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
_wb = _rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
_c = im2col(_xb, (3, 2), stride=(2, 1), padding=(1, 0))
assert _c.shape == (2, 3 * 3 * 2, 4 * 5) and _c.dtype == np.float32
_fast = (_wb.reshape(4, -1) @ _c).reshape(2, 4, 4, 5)
assert np.allclose(_fast, conv2d_loops(_xb, _wb, stride=(2, 1), padding=(1, 0)), atol=1e-5)
_back = col2im(np.ones_like(_c), _xb.shape, (3, 2), stride=(2, 1), padding=(1, 0))
assert _back.shape == _xb.shape and _back.max() == 4, "stride (2, 1): a pixel is in at most 2 x 2 windows"
_r = _rng.standard_normal(_c.shape)
assert np.isclose(np.sum(_c * _r), np.sum(_xb * col2im(_r, _xb.shape, (3, 2), (2, 1), (1, 0))), rtol=1e-5)
print("im2col/col2im ok; windows per pixel:\n", col2im(np.ones((1, 4, 4)), (1, 1, 3, 3), 2)[0, 0])

# %% [markdown]
# ## 4. `Conv2dFn`: forward and backward side by side
#
# Now make it a differentiable operation, one `Function` as in Module 06.
# `Conv2dFn.apply(x, weight, bias, stride=..., padding=...)` (bias may be `None`) calls
# `forward(x, weight, bias, stride, padding)` on the NumPy arrays.
#
# **Forward.** `cols = im2col(x, (kh, kw), stride, padding)`, then **one** matrix product
# `np.matmul(weight.reshape(C_out, -1), cols)`: the `(C_out, C_in*kh*kw)` matrix is broadcast
# against the `N` matrices `(C_in*kh*kw, L)`, giving `(N, C_out, L)`. Add the bias (broadcast
# as `bias[:, None]`) and reshape to `(N, C_out, H_out, W_out)`. Raise `ValueError` when the
# weight's input channels differ from the input's. Save what backward needs:
# the columns (not `x`: backward would have to rebuild them), the weight and the shapes/options.
#
# **Backward.** With `g = grad.reshape(N, C_out, L)` (`dL/dy`), the forward `y = W2 @ cols + b`
# is a matrix product, so its gradients are those of `MatMul` in Module 06:
#
# | input | gradient | shape |
# |---|---|---|
# | `bias` | `g` summed over the batch and the positions | `(C_out,)` |
# | `weight` | `g @ cols^T`, summed over the batch, reshaped to the weight's shape | `(C_out, C_in, kh, kw)` |
# | `x` | `col2im(W2^T @ g)`: the gradient of each column, summed back onto the pixels | `(N, C_in, H, W)` |
#
# The input's gradient is why `col2im` must *sum*: a pixel that sits in several windows
# influenced several outputs, and the chain rule adds their contributions (the same reason
# Module 06's engine accumulates). Compute only the gradients that `self.needs_input_grad`
# asks for (return `None` for the others): an input image never needs one, and skipping
# `col2im` saves a third of the backward pass. Return a tuple `(grad_x, grad_weight, grad_bias)`.
#
# `conv2d(x, weight, bias=None, stride=1, padding=0)` (given) is the functional form, PyTorch's
# `F.conv2d`.

# %% tags=["export"]
class Conv2dFn(Function):
    """y = conv2d(x, weight, bias): im2col, then one matrix product. PyTorch: F.conv2d's autograd.

    Conv2dFn.apply(x, weight, bias, stride=1, padding=0) with x (N, C_in, H, W), weight
    (C_out, C_in, kh, kw), bias (C_out,) or None; returns (N, C_out, H_out, W_out).
    """

    __slots__ = ()

    def forward(self, x, weight, bias=None, stride=1, padding=0):
        """im2col, one np.matmul with the (C_out, C_in*kh*kw) weight, + bias; saves the columns,
        the weight, x's shape, stride and padding. Returns (N, C_out, H_out, W_out)."""
        ### BEGIN SOLUTION
        batch, channels, height, width = x.shape
        out_channels, in_channels, kh, kw = weight.shape
        if channels != in_channels:
            raise ValueError(f"conv2d: the weight expects {in_channels} input channels, the input "
                             f"{x.shape} has {channels}")
        (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        cols = im2col(x, (kh, kw), (sh, sw), (ph, pw))                 # (N, C_in*kh*kw, L)
        out = np.matmul(weight.reshape(out_channels, -1), cols)        # (N, C_out, L): one product
        if bias is not None:
            out += bias[:, None]
        self.save_for_backward(cols, weight, x.shape, (sh, sw), (ph, pw))
        return out.reshape(batch, out_channels, conv_output_size(height, kh, sh, ph),
                           conv_output_size(width, kw, sw, pw))
        ### END SOLUTION

    def backward(self, grad):
        """(grad_x, grad_weight, grad_bias) for grad = dL/dy (N, C_out, H_out, W_out); None where
        self.needs_input_grad is False."""
        ### BEGIN SOLUTION
        cols, weight, x_shape, stride, padding = self.saved
        need_x, need_weight, need_bias = self.needs_input_grad
        out_channels = weight.shape[0]
        g = grad.reshape(grad.shape[0], out_channels, -1)              # (N, C_out, L)
        grad_x = grad_weight = grad_bias = None
        if need_x:
            grad_cols = np.matmul(weight.reshape(out_channels, -1).T, g)   # (N, C_in*kh*kw, L)
            grad_x = col2im(grad_cols, x_shape, weight.shape[2:], stride, padding)
        if need_weight:
            # sum over the batch and the positions: one (C_out, N*L) @ (N*L, C_in*kh*kw) contraction
            grad_weight = np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
        if need_bias:
            grad_bias = g.sum(axis=(0, 2))
        return grad_x, grad_weight, grad_bias
        ### END SOLUTION


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Differentiable 2-d convolution of Tensors: PyTorch's torch.nn.functional.conv2d."""
    return Conv2dFn.apply(x, weight, bias, stride=_pair(stride, "stride", 1), padding=_pair(padding, "padding", 0))

# %%
# Check Conv2dFn: forward against your loops (float32 in, float32 out), backward against central
# differences (autograd's gradcheck, float64), with stride, padding and a non-square kernel.
from tinytorch.core.autograd import gradcheck

_y = conv2d(Tensor(_xb), Tensor(_wb), Tensor(np.arange(4, dtype=np.float32)), stride=(2, 1), padding=(1, 0))
assert isinstance(_y, Tensor) and _y.shape == (2, 4, 4, 5) and _y.dtype == np.float32
_ref = conv2d_loops(_xb, _wb, np.arange(4, dtype=np.float32), stride=(2, 1), padding=(1, 0))
assert np.allclose(_y.data, _ref, atol=1e-5)
_xs, _ws, _bs = _rng.standard_normal((2, 2, 5, 4)), _rng.standard_normal((3, 2, 3, 2)), _rng.standard_normal(3)
assert gradcheck(lambda x, w, b: conv2d(x, w, b, stride=(2, 1), padding=1), _xs, _ws, _bs)
assert gradcheck(lambda x, w: conv2d(x, w), _xs, _ws)
_xt = Tensor(_xb, requires_grad=True)
conv2d(_xt, Tensor(_wb)).sum().backward()
assert _xt.grad.shape == _xb.shape, "gradient reaches the input"
print("Conv2dFn ok: forward matches the loops, gradients match central differences")

# %% [markdown]
# ## 5. The `Conv2d` layer
#
# `Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)` is a
# `Module` (Module 03), so `parameters()`, `state_dict()` and the optimizers of Module 07 work
# on it unchanged.
#
# - Store `in_channels`, `out_channels` and, as pairs `(height, width)` like PyTorch,
#   `kernel_size`, `stride` and `padding` (use the given `_pair(value, name, minimum)`: an int
#   `k` becomes `(k, k)`; it raises `ValueError` on anything else). Raise `ValueError` when a
#   channel count is below 1.
# - `weight`: a `Parameter` of shape `(out_channels, in_channels, kh, kw)`; `bias`: a
#   `Parameter` of shape `(out_channels,)`, or `None` when `bias=False`.
# - **Initialisation, PyTorch's default**: `kaiming_uniform_(a=sqrt(5))`, which works out to
#   uniform on `[-1/sqrt(fan_in), 1/sqrt(fan_in)]` with `fan_in = in_channels * kh * kw` (the
#   number of inputs of one output, the same rule as `Linear` with `in_features` replaced by the
#   window size), for the weight and the bias alike. Draw in float32 from
#   `np.random.default_rng(rng)`, the weight first, then the bias.
# - `forward(x)`: raise `ValueError` naming the shape unless `x` is 4-d `(N, in_channels, H, W)`,
#   then return `conv2d(x, self.weight, self.bias, self.stride, self.padding)`.

# %% tags=["export"]
class Conv2d(Module):
    """A 2-d convolution layer over NCHW images: `torch.nn.Conv2d`.

    Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)

    weight: Parameter (out_channels, in_channels, kh, kw); bias: Parameter (out_channels,) or None.
    Both uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in = in_channels * kh * kw (PyTorch's
    default), float32, weight first, from np.random.default_rng(rng). kernel_size, stride and
    padding are stored as (height, width) pairs.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None):
        super().__init__()
        ### BEGIN SOLUTION
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d needs positive channel counts, got {in_channels} and {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        generator = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(generator.uniform(-bound, bound, size=shape).astype(np.float32))
        if bias:
            self.bias = Parameter(generator.uniform(-bound, bound, size=out_channels).astype(np.float32))
        else:
            self.bias = None
        ### END SOLUTION

    def forward(self, x):
        """The convolution of a Tensor x (N, in_channels, H, W); returns (N, out_channels, H_out, W_out)."""
        ### BEGIN SOLUTION
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d({self.in_channels}, {self.out_channels}) expects input of shape "
                             f"(batch, {self.in_channels}, height, width), got {x.shape}")
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)
        ### END SOLUTION

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")

# %%
# Check Conv2d: parameters, PyTorch's initialisation bound, a forward against the loops, and
# an optimizer step that changes the weights.
from tinytorch.core.optimizers import SGD

_conv = Conv2d(3, 4, (3, 2), padding=1, rng=0)
assert [(n, p.shape) for n, p in _conv.named_parameters()] == [("weight", (4, 3, 3, 2)), ("bias", (4,))]
_bound = 1 / np.sqrt(3 * 3 * 2)
assert _conv.weight.dtype == np.float32 and np.abs(_conv.weight.data).max() <= _bound
assert np.abs(_conv.weight.data).max() > 0.8 * _bound, "uniform on the whole interval"
assert Conv2d(3, 4, 3, bias=False).bias is None and len(Conv2d(3, 4, 3, bias=False).parameters()) == 1
assert np.array_equal(Conv2d(3, 4, (3, 2), rng=0).weight.data, _conv.weight.data), "same seed, same weights"
_out = _conv(Tensor(_xb))
assert np.allclose(_out.data, conv2d_loops(_xb, _conv.weight.data, _conv.bias.data, padding=1), atol=1e-5)
_before = _conv.weight.data.copy()
_opt = SGD(_conv.parameters(), lr=0.1)
(_conv(Tensor(_xb)) * _conv(Tensor(_xb))).mean().backward()
_opt.step()
assert not np.array_equal(_before, _conv.weight.data) and _conv.bias.grad.shape == (4,)
try:
    _conv(Tensor(np.ones((2, 5, 8, 8))))
    raise AssertionError("5 channels into Conv2d(3, 4) should raise ValueError")
except ValueError as err:
    print("shape check ok:", err)
print(_conv)

# %% [markdown]
# ## 6. Pooling
#
# **Max pooling** keeps the largest value of each `kernel_size` window, taken `stride` apart
# (PyTorch's default `stride = kernel_size`: non-overlapping windows). It halves the resolution
# with a 2x2 window, has no parameters, and makes the features slightly insensitive to small
# shifts. **Average pooling** keeps the mean.
#
# Both are im2col plus a reduction, per channel: treat each channel as its own one-channel
# image (`x.reshape(N * C, 1, H, W)`), take `im2col(...)` of shape `(N*C, kh*kw, L)` and reduce
# over axis 1. Backward is the same trick in reverse, with `col2im`:
#
# - **Max**: the gradient of `max(window)` is 1 at the position of the maximum, 0 elsewhere.
#   Save the `argmax` over axis 1 in forward (shape `(N*C, L)`; for ties `argmax` picks the
#   first maximum, as PyTorch's CPU kernel does, so exactly one position gets the gradient).
#   In backward, scatter each output's gradient into a zero `(N*C, kh*kw, L)` array at that
#   index (`np.put_along_axis`), then `col2im` it back to `(N*C, 1, H, W)`: overlapping windows
#   (stride < kernel) add up correctly.
# - **Average**: every window element gets `grad / (kh * kw)`: broadcast it to the columns'
#   shape and `col2im`.
#
# `MaxPool2dFn.apply(x, kernel_size=..., stride=...)` and `AvgPool2dFn.apply(...)` take pairs
# (the functions `max_pool2d`, `avg_pool2d` and the modules `MaxPool2d(kernel_size,
# stride=None)`, `AvgPool2d(kernel_size, stride=None)` are given). No padding, the output size
# is `conv_output_size(H, kh, sh)` (PyTorch's defaults, `padding=0, ceil_mode=False`).

# %% tags=["export"]
def _pool_columns(x, kernel_size, stride):
    """Each channel as its own image: im2col of x (N, C, H, W) -> (N*C, kh*kw, H_out*W_out)."""
    batch, channels, height, width = x.shape
    return im2col(x.reshape(batch * channels, 1, height, width), kernel_size, stride)


class MaxPool2dFn(Function):
    """y = the maximum of each window; the gradient goes to the (first) maximum. PyTorch: F.max_pool2d."""

    __slots__ = ()

    def forward(self, x, kernel_size=2, stride=2):
        """The max of each window, (N, C, H_out, W_out); saves the argmax of each window."""
        ### BEGIN SOLUTION
        (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
        batch, channels, height, width = x.shape
        cols = _pool_columns(x, (kh, kw), (sh, sw))                 # (N*C, kh*kw, L)
        index = cols.argmax(axis=1)                                 # (N*C, L): first maximum
        self.save_for_backward(index, x.shape, (kh, kw), (sh, sw))
        out = np.take_along_axis(cols, index[:, None, :], axis=1)
        return out.reshape(batch, channels, conv_output_size(height, kh, sh), conv_output_size(width, kw, sw))
        ### END SOLUTION

    def backward(self, grad):
        """(grad_x,): each output's gradient at its window's argmax, summed by col2im."""
        ### BEGIN SOLUTION
        index, (batch, channels, height, width), kernel, stride = self.saved
        grad_cols = np.zeros((index.shape[0], kernel[0] * kernel[1], index.shape[1]), dtype=grad.dtype)
        np.put_along_axis(grad_cols, index[:, None, :], grad.reshape(index.shape[0], 1, -1), axis=1)
        grad_x = col2im(grad_cols, (batch * channels, 1, height, width), kernel, stride)
        return (grad_x.reshape(batch, channels, height, width),)
        ### END SOLUTION


class AvgPool2dFn(Function):
    """y = the mean of each window; each window element gets grad / (kh*kw). PyTorch: F.avg_pool2d."""

    __slots__ = ()

    def forward(self, x, kernel_size=2, stride=2):
        """The mean of each window, (N, C, H_out, W_out); saves shapes only."""
        ### BEGIN SOLUTION
        (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
        batch, channels, height, width = x.shape
        self.save_for_backward(x.shape, (kh, kw), (sh, sw))
        out = _pool_columns(x, (kh, kw), (sh, sw)).mean(axis=1)    # (N*C, L)
        return out.reshape(batch, channels, conv_output_size(height, kh, sh), conv_output_size(width, kw, sw))
        ### END SOLUTION

    def backward(self, grad):
        """(grad_x,): grad / (kh * kw) to every element of each window, summed by col2im."""
        ### BEGIN SOLUTION
        (batch, channels, height, width), (kh, kw), stride = self.saved
        share = grad.reshape(batch * channels, 1, -1) / (kh * kw)
        grad_cols = np.broadcast_to(share, (batch * channels, kh * kw, share.shape[-1]))
        grad_x = col2im(grad_cols, (batch * channels, 1, height, width), (kh, kw), stride)
        return (grad_x.reshape(batch, channels, height, width),)
        ### END SOLUTION


def _check_image(x, layer):
    if x.ndim != 4:
        raise ValueError(f"{layer} expects a 4-d input (batch, channels, height, width), got shape {x.shape}")


def max_pool2d(x, kernel_size, stride=None):
    """Differentiable max pooling: PyTorch's F.max_pool2d (stride defaults to kernel_size)."""
    _check_image(x, "max_pool2d")
    stride = kernel_size if stride is None else stride
    return MaxPool2dFn.apply(x, kernel_size=_pair(kernel_size), stride=_pair(stride, "stride", 1))


def avg_pool2d(x, kernel_size, stride=None):
    """Differentiable average pooling: PyTorch's F.avg_pool2d (stride defaults to kernel_size)."""
    _check_image(x, "avg_pool2d")
    stride = kernel_size if stride is None else stride
    return AvgPool2dFn.apply(x, kernel_size=_pair(kernel_size), stride=_pair(stride, "stride", 1))


class MaxPool2d(Module):
    """Max pooling layer: `torch.nn.MaxPool2d(kernel_size, stride=None)` (no parameters)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1)

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Average pooling layer: `torch.nn.AvgPool2d(kernel_size, stride=None)` (no parameters)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1)

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

# %%
# Check pooling: a hand-made example, ties (only the first maximum gets the gradient),
# overlapping windows (gradients add), average pooling's equal shares.
_p = Tensor(np.array([[[[1, 2, 5, 0], [3, 4, 1, 1], [0, 0, 2, 2], [7, 0, 2, 2]]]], np.float32), requires_grad=True)
_m = MaxPool2d(2)(_p)
assert _m.data.tolist() == [[[[4.0, 5.0], [7.0, 2.0]]]] and _m.dtype == np.float32
_m.sum().backward()
assert _p.grad.tolist() == [[[[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]]], _p.grad
_o = Tensor(np.array([[[[1, 9, 1], [1, 1, 1], [1, 1, 1]]]], np.float32), requires_grad=True)
max_pool2d(_o, 2, stride=1).sum().backward()
assert _o.grad[0, 0, 0, 1] == 2, "the 9 is the maximum of two overlapping windows"
_a = Tensor(_xb, requires_grad=True)
_ya = AvgPool2d(2)(_a)
assert _ya.shape == (2, 3, 3, 3) and np.allclose(_ya.data[0, 0, 0, 0], _xb[0, 0, :2, :2].mean())
_ya.sum().backward()
assert np.allclose(_a.grad[:, :, :6, :6], 0.25) and np.all(_a.grad[:, :, 6:, :] == 0), "row 6 is in no window"
assert gradcheck(lambda x: avg_pool2d(x, (2, 3), stride=1), _xs)
print("pooling ok:", MaxPool2d(2), AvgPool2d(3, stride=1))

# %% [markdown]
# ## 7. Flatten: from feature maps to a vector
#
# After the convolutions and pools, a classifier needs one vector per image: `(N, C, H, W)`
# becomes `(N, C*H*W)` for a `Linear`. `flatten(x, start_dim=0, end_dim=-1)` merges the
# dimensions `start_dim..end_dim` (inclusive, negative values count from the end) into one,
# exactly `torch.flatten`; the module `Flatten(start_dim=1, end_dim=-1)` (given) keeps the
# batch dimension, like `nn.Flatten`. Use `Tensor.reshape` (Module 06 made it differentiable,
# so gradients flow back in the original shape). Raise `ValueError` if `start_dim` comes after
# `end_dim`. A 0-d tensor flattens to shape `(1,)`.

# %% tags=["export"]
def flatten(x, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim (inclusive) of the Tensor x into one: torch.flatten."""
    ### BEGIN SOLUTION
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a {x.ndim}-d tensor")
    merged = int(np.prod(x.shape[start:end + 1]))
    return x.reshape(*x.shape[:start], merged, *x.shape[end + 1:])
    ### END SOLUTION


class Flatten(Module):
    """Flatten every dimension from start_dim to end_dim: `torch.nn.Flatten` (keeps the batch)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

# %%
# Check flatten, then a complete small CNN: forward shapes and gradients reaching every parameter.
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss

assert flatten(Tensor(np.ones((2, 3, 4, 5)))).shape == (120,)
assert flatten(Tensor(np.ones((2, 3, 4, 5))), 1).shape == (2, 60) and flatten(Tensor(np.ones((2, 3, 4, 5))), 1, 2).shape == (2, 12, 5)
assert Flatten()(Tensor(np.ones((2, 3, 4, 5)))).shape == (2, 60) and flatten(Tensor(3.0)).shape == (1,)
_cnn = Sequential(Conv2d(1, 8, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                  Conv2d(8, 16, 3, padding=1, rng=1), ReLU(), MaxPool2d(2),
                  Flatten(), Linear(16 * 2 * 2, 10, rng=2))
_images = Tensor(_rng.random((5, 1, 8, 8)).astype(np.float32))
_logits = _cnn(_images)
assert _logits.shape == (5, 10) and _logits.dtype == np.float32
CrossEntropyLoss()(_logits, np.arange(5)).backward()
assert all(p.grad is not None and p.grad.shape == p.shape for p in _cnn.parameters())
print(_cnn)
print("parameters:", sum(p.size for p in _cnn.parameters()))

# %% [markdown]
# ## 8. Systems analysis: loops, im2col, memory
#
# The cell below measures, with your code:
#
# 1. **Loops against im2col** for kernel sizes 1, 3, 5, 7 on a small batch (4 images, 3 -> 8
#    channels, 16 x 16, "same" padding): the time of `conv2d_loops` and of `conv2d` forward, the
#    floating-point operations of each (`2 N C_out H_out W_out C_in kh kw`), and the rates.
# 2. **What im2col costs in memory**: the bytes of the columns against the bytes of the input
#    for each kernel size, and the peak memory of a forward + backward (`tracemalloc`).
# 3. **Where the time goes** in one forward + backward of the benchmark layer (batch 32, 3 -> 16
#    channels, 32 x 32, 3 x 3, padding 1): im2col, the matrix products, col2im.
# 4. **Weight sharing**: the parameters and FLOPs of each layer of a small CNN, measured from
#    its modules and output shapes, against a `Linear` layer producing the same output.
#
# Then it scales the measured bytes per element up to an ImageNet-sized first layer. Times are
# the best of several runs of the process's CPU time (`time.process_time`), which, unlike the
# wall clock, other programs running on the same machine do not inflate.

# %% tags=["analysis"]
import time
import tracemalloc


def _best(fn, repeat=3):
    """The smallest CPU time of this process (all its threads) over `repeat` calls. CPU time, not
    wall-clock time: other programs running on a busy machine do not inflate it."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return max(best, 1e-9)


_rng = np.random.default_rng(0)
_x = _rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
print("1. loops vs im2col, batch 4, 3 -> 8 channels, 16 x 16, 'same' padding (forward only)")
print(f"{'k':>3} {'MFLOP':>7} {'loops ms':>9} {'im2col ms':>10} {'loops MFLOP/s':>14} {'im2col MFLOP/s':>15} {'speed-up':>9}")
for _k in (1, 3, 5, 7):
    _w = _rng.standard_normal((8, 3, _k, _k)).astype(np.float32)
    _flops = 2 * 4 * 8 * 16 * 16 * 3 * _k * _k
    _t_loops = _best(lambda: conv2d_loops(_x, _w, padding=_k // 2), repeat=2)
    _t_fast = _best(lambda: conv2d(Tensor(_x), Tensor(_w), padding=_k // 2), repeat=20)
    print(f"{_k:>3} {_flops / 1e6:>7.2f} {_t_loops * 1e3:>9.1f} {_t_fast * 1e3:>10.3f} "
          f"{_flops / _t_loops / 1e6:>14.1f} {_flops / _t_fast / 1e6:>15.0f} {_t_loops / _t_fast:>8.0f}x")
_outputs = 4 * 8 * 16 * 16
print(f"   loops: {_t_loops / _outputs * 1e6:.1f} us per output number at k = 7 "
      f"({3 * 7 * 7} multiply-adds each)")

print("\n2. im2col memory, batch 32, 3 channels, 32 x 32, float32, 'same' padding")
_xm = _rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
for _k in (1, 3, 5, 7):
    _cols = im2col(_xm, _k, 1, _k // 2)
    _w = Tensor(_rng.standard_normal((16, 3, _k, _k)).astype(np.float32), requires_grad=True)
    tracemalloc.start()
    _y = conv2d(Tensor(_xm, requires_grad=True), _w, padding=_k // 2)
    _y.sum().backward()
    _peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del _y
    print(f"   k = {_k}: input {_xm.nbytes / 2**20:5.2f} MiB, columns {_cols.nbytes / 2**20:6.2f} MiB "
          f"({_cols.nbytes / _xm.nbytes:4.1f}x), output {32 * 16 * 32 * 32 * 4 / 2**20:.2f} MiB, "
          f"peak forward+backward {_peak / 2**20:6.2f} MiB")
_bytes_per_element = _cols.itemsize
# An ImageNet ResNet stem: 7 x 7, stride 2, padding 3, 3 -> 64 channels, 224 x 224, batch 256.
_oh = conv_output_size(224, 7, 2, 3)
_stem_cols = 256 * 3 * 7 * 7 * _oh * _oh * _bytes_per_element
_stem_input = 256 * 3 * 224 * 224 * _bytes_per_element
print(f"   scaled: a ResNet stem (7x7/2, 224x224, batch 256) needs {_stem_cols / 2**30:.2f} GiB of columns "
      f"for a {_stem_input / 2**30:.2f} GiB input; a 3x3 layer, 256 channels, 56x56, batch 256: "
      f"{256 * 256 * 9 * 56 * 56 * _bytes_per_element / 2**30:.2f} GiB")

print("\n3. where one forward + backward goes, batch 32, 3 -> 16, 32 x 32, 3 x 3, padding 1")
_w = _rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
_cols = im2col(_xm, 3, 1, 1)
_g = _rng.standard_normal((32, 16, 32 * 32)).astype(np.float32)
_grad_cols = np.matmul(_w.reshape(16, -1).T, _g)
_parts = {
    "im2col (copy)": lambda: im2col(_xm, 3, 1, 1),
    "forward matmul": lambda: np.matmul(_w.reshape(16, -1), _cols),
    "grad weight matmul": lambda: np.matmul(_g, _cols.transpose(0, 2, 1)).sum(axis=0),
    "grad columns matmul": lambda: np.matmul(_w.reshape(16, -1).T, _g),
    "col2im": lambda: col2im(_grad_cols, _xm.shape, 3, 1, 1),
}
_whole = Tensor(_xm, requires_grad=True)
_wt = Tensor(_w, requires_grad=True)
_t_whole = _best(lambda: conv2d(_whole, _wt, padding=1).backward(_g.reshape(32, 16, 32, 32)), repeat=10)
_t_parts = 0.0
for _name, _fn in _parts.items():
    _t = _best(_fn, repeat=10)
    _t_parts += _t
    print(f"   {_name:>20}: {_t * 1e3:6.2f} ms ({_t / _t_whole:4.0%} of the whole)")
print(f"   {'the rest':>20}: {(_t_whole - _t_parts) * 1e3:6.2f} ms ({1 - _t_parts / _t_whole:4.0%}: bias, padding, "
      f"new arrays, reshapes, the autograd engine and the leaf gradients' copies)")
print(f"   {'whole (Conv2dFn)':>20}: {_t_whole * 1e3:6.2f} ms for {3 * 2 * 32 * 16 * 1024 * 27 / 1e6:.0f} MFLOP "
      f"= {3 * 2 * 32 * 16 * 1024 * 27 / _t_whole / 1e9:.2f} GFLOP/s")
_a, _b = _rng.standard_normal((512, 512)).astype(np.float32), _rng.standard_normal((512, 512)).astype(np.float32)
print(f"   for scale, a 512 x 512 float32 matmul runs at {2 * 512**3 / _best(lambda: _a @ _b, 5) / 1e9:.1f} GFLOP/s")

print("\n4. weight sharing: a small CNN on 8 x 8 digits, batch 1")
_net = Sequential(Conv2d(1, 16, 3, padding=1, rng=0), ReLU(), MaxPool2d(2),
                  Conv2d(16, 32, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(), Linear(128, 10, rng=0))
_h = Tensor(np.zeros((1, 1, 8, 8), np.float32))
for _layer in _net.layers:
    _out = _layer(_h)
    _params = sum(p.size for p in _layer.parameters()) if isinstance(_layer, Module) else 0
    if isinstance(_layer, Conv2d):
        _flops = 2 * _out.size * _layer.in_channels * _layer.kernel_size[0] * _layer.kernel_size[1]
        _dense = _h.size * _out.size + _out.size
        _note = f"a Linear {_h.size} -> {_out.size} would hold {_dense:,} parameters"
    elif isinstance(_layer, Linear):
        _flops, _note = 2 * _layer.in_features * _layer.out_features, ""
    else:
        _flops, _note = 0, ""
    print(f"   {type(_layer).__name__:>9} -> {str(_out.shape):>15}: {_params:>6,} parameters, {_flops:>8,} FLOPs  {_note}")
    _h = _out

# %% [markdown]
# ## Summary
#
# | you built | key idea | PyTorch / production |
# |---|---|---|
# | `conv2d_loops` | four loops, `C_in kh kw` multiply-adds per output | the definition; never used for speed |
# | `im2col` / `col2im` | windows as columns (strided views + one copy) / their adjoint, summing overlaps | `F.unfold` / `F.fold` |
# | `Conv2dFn` | forward one matrix product; backward two, plus col2im | `F.conv2d` (oneDNN/cuDNN kernels: implicit GEMM, Winograd, FFT) |
# | `Conv2d` | `(out, in, kh, kw)` weights, `U(+-1/sqrt(fan_in))` | `nn.Conv2d` |
# | `MaxPool2dFn`, `AvgPool2dFn` | im2col + reduction; gradient to the argmax / shared | `nn.MaxPool2d`, `nn.AvgPool2d` |
# | `flatten`, `Flatten` | a reshape, differentiable | `torch.flatten`, `nn.Flatten` |
#
# Production libraries avoid materialising the columns: *implicit GEMM* (cuDNN, CUTLASS) forms
# the tiles of the column matrix on the fly inside the matrix-product kernel, *Winograd*
# transforms cut the multiplications of 3x3 kernels by about 2.25x, and *FFT* convolution pays
# off for large kernels. On CPUs, PyTorch's oneDNN prefers the `channels_last` (NHWC) layout, in
# which a window's channels are contiguous. The next milestone trains the CNN above on the digits.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: Loops against im2col
#
# Using your analysis table, compare `conv2d_loops` and your im2col `conv2d`: how much faster is
# im2col, how does each one's time grow with the kernel size, and where does the loop version
# spend its time per output number (compare its measured rate with the matrix product's)? Why
# does turning convolution into one matrix product help so much, and which part of your
# forward + backward is not a matrix product (use the breakdown)? Relate the instructor guide's
# remark that explicit loops make the O(kernel_size^2) cost visible to what you actually measured.

# %% [markdown] tags=["answer"] question="q1"
# Both versions do the same `2 N C_out H_out W_out C_in kh kw` floating-point operations: 0.05
# MFLOP at k = 1 and 2.4 MFLOP at k = 7 for the small batch. On my run the loops took 50-70 ms
# of CPU for *every* kernel size, from 1x1 to 7x7, while the im2col version took 0.05 ms at
# k = 1 and about 0.27 ms at k = 7: about 1,000x faster at k = 1 and 200x at k = 7. The loop
# version's time hardly depends on k because it is not spent on arithmetic: it does one Python
# iteration per output number (8,192 of them), and each iteration (slicing a window, allocating
# the product array, calling `np.sum`, storing a scalar) costs a fixed 6-8 us of interpreter and
# NumPy-call overhead, whether the window holds 3 numbers or 147. Its rate therefore grows from
# 1 to 40-50 MFLOP/s only because the same overhead buys more arithmetic, against 0.9 to 9
# GFLOP/s for im2col. The O(k^2) cost the guide's loops "make visible" is real in the FLOP count
# (49x from k = 1 to k = 7) and shows in im2col's times (5x here, with fixed overhead, and closer
# to k^2 for larger layers), but in the Python loops it is buried under per-iteration overhead:
# the loops make the *structure* of the cost visible in the code, not on the clock.
#
# im2col helps because it moves all the work into one call to BLAS, which runs a blocked,
# vectorised (AVX2 FMA) matrix product that keeps tiles in cache and reuses each loaded weight
# across many positions: the interpreter overhead is paid once per layer instead of once per
# output number. In my breakdown of the benchmark layer (5.2-5.6 ms for forward + backward) the
# three matrix products took about half; the other half was not a matrix product: im2col's
# copy (8%), col2im's nine strided additions (about 20%) and the rest (bias, padding, new
# arrays, the autograd engine: 20-28%) only move memory (the columns are 9x the input) and do
# almost no arithmetic. With only 27 rows (3 channels x 3 x 3) and 16 output channels the
# matrices are thin, so even the products are memory-bound: the whole layer ran at 15-16
# GFLOP/s against 70-78 GFLOP/s for a 512 x 512 matmul. A layer with 256 channels would be
# dominated by the products and come much closer to the peak.

# %% [markdown]
# ### q2: The price of im2col, and the backward pass
#
# How large are the columns compared with the input, as a function of the kernel size (cite
# your measurements), and how does that show in the peak memory of forward + backward? Using
# the scaled-up numbers, what breaks for an ImageNet-sized network at batch 256, and what do
# cuDNN/oneDNN do instead (implicit GEMM, Winograd, FFT, direct convolution)? Explain your
# backward: the three gradients, why col2im must sum, what your `Conv2dFn` saves for backward
# and the alternative of saving only the input and recomputing the columns (what each costs).

# %% [markdown] tags=["answer"] question="q2"
# Each pixel appears in up to `kh x kw` windows, so with "same" padding the columns are exactly
# `kh x kw` times the input: 1x, 9x, 25x and 49x for k = 1, 3, 5, 7, from 0.38 MiB to 18.4 MiB
# for a 0.38 MiB batch of 32 small images. The peak memory of forward + backward follows: 2.8,
# 9.3, 21 and 40 MiB, about twice the columns, because the columns are saved for backward and
# backward builds a gradient of the columns of the same size before col2im folds it (the 2 MiB
# output and its gradient are the rest). Scaled with the measured 4 bytes per element, a ResNet
# stem (7x7, stride 2, 224x224, batch 256) needs 1.76 GiB of columns for a 0.14 GiB input, and
# a single 3x3 layer with 256 channels at 56x56 (batch 256) 6.9 GiB: kept for the backward of
# every layer that no longer fits any GPU, and writing then reading them costs more memory
# traffic than the product itself. Production kernels avoid materialising the matrix: implicit
# GEMM (cuDNN, CUTLASS) builds tiles of the columns in shared memory and registers inside the
# matmul kernel; Winograd F(2x2, 3x3) cuts the multiplications of 3x3 convolutions about 2.25x;
# FFT convolution pays off for large kernels; oneDNN's direct convolution reads windows in place
# from a blocked channels_last layout.
#
# Backward: the forward is `y = W2 @ cols + b` per image, so the bias gradient is `g` summed over
# batch and positions, the weight gradient is `g @ cols^T` summed over the batch (my
# `np.matmul(g, cols.transpose(0, 2, 1)).sum(0)`), and the columns' gradient is `W2^T @ g`,
# which `col2im` scatters back onto the pixels. col2im must sum because a pixel copied into
# several windows influenced several outputs: by the chain rule its gradient is the sum of their
# contributions, the same accumulation as a reused tensor in Module 06. Only the gradients in
# `needs_input_grad` are computed, so an input image skips the col2im entirely. My `Conv2dFn`
# saves the columns (9x the input for 3x3) plus the weight and the shapes; the alternative is to
# save only `x` (PyTorch's convolution saves input and weight) and recompute im2col in backward:
# 1/9 of the activation memory for one extra im2col copy, 8% of the step in my breakdown. At
# scale that trade is almost always worth it: the same compute-for-memory trade as activation
# checkpointing.

# %% [markdown]
# ### q3: Weight sharing, FLOPs and the shape of a CNN
#
# Using part 4 of your analysis, compare the parameters and FLOPs of your convolution layers
# with the `Linear` layers that would compute outputs of the same size, and with the final
# `Linear` of the CNN. Where are the parameters of a CNN and where is its compute? What do
# locality and weight sharing assume about images, what do pooling and stride do to the
# resolution, receptive field and cost of the following layers, and what breaks first when the
# images get large (224 x 224 and beyond) or the network deep?

# %% [markdown] tags=["answer"] question="q3"
# The first convolution (1 -> 16 channels, 3x3) has 160 parameters and produces 16 x 8 x 8 =
# 1,024 outputs at 18,432 FLOPs; a `Linear` from the 64 pixels to the same 1,024 outputs would
# hold 66,560 parameters. The second (16 -> 32, 3x3) has 4,640 parameters and costs 147,456
# FLOPs for its 512 outputs, where a dense layer from the 256 pooled numbers to the same 512
# would hold 131,584. The final `Linear(128, 10)` has 1,290 parameters but only 2,560 FLOPs. So a CNN's
# parameters sit in the wide later layers and the classifier, while its compute sits in the
# convolutions at high resolution: each weight is reused at every position (64 times in the
# first layer), so convolutions have a high FLOPs-per-parameter ratio (arithmetic intensity),
# while dense layers use each weight once per example. This is why CNNs are compute-bound and
# fit in small memory, and why early-layer activations, not weights, dominate training memory.
#
# Locality assumes that nearby pixels are related and that features are built from small
# neighbourhoods; weight sharing assumes translation equivariance: an edge detector useful at
# one place is useful everywhere. Pooling (and stride 2) halves the resolution, so every later
# layer has 4x fewer positions: 4x fewer FLOPs and activations per channel, which pays for
# doubling the channels; it also grows the receptive field, so after two 3x3 conv + 2x2 pool
# stages one output sees a 10x10 patch, the whole 8x8 digit. Max pooling adds a little shift
# invariance and routes the gradient to one element per window.
#
# At 224 x 224 and beyond, the activations of the first layers dominate: 64 channels at 112 x
# 112 x batch 256 is 0.8 GB per layer in float32, kept for backward, and with im2col multiplied
# by kh x kw; training then runs out of memory long before the parameters matter (ResNet-50 has
# only 25M). Deep networks also stop training without residual connections and normalisation
# (vanishing gradients), and their latency grows with depth. Production answers: a strided or
# patchified stem to cut resolution early, fused convolution kernels without materialised
# columns, mixed precision, activation checkpointing, and channels_last layouts for memory
# bandwidth.
