"""The exported acceleration kernels (tinytorch/perf/acceleration.py) against oracles: NumPy for
values, element-by-element loops for im2col and the convolution, central differences (float64)
for col2im as the gradient of im2col and for the input gradient of the convolution, the traffic
model for fusion_traffic, and a fake clock's readings for the measured ceilings. No assertion
depends on how fast this machine is."""

import itertools
import math

import numpy as np
import pytest

from tinytorch.perf.acceleration import (
    BIAS_GELU_PROGRAM,
    GELU_C,
    bias_gelu_unfused,
    col2im,
    conv2d_im2col,
    format_roofline,
    fused_bias_gelu,
    fusion_traffic,
    gelu,
    im2col,
    matmul_broadcast,
    matmul_tiled,
    measure_bandwidth,
    measure_peak_flops,
    roofline,
)
from tinytorch.perf.profiling import peak_memory

PROGRAM = [("h", ("x", "bias")), ("c", ("h",)), ("c", ("c", "h")), ("c", ("c",)), ("c", ("h", "c")),
           ("c", ("c",)), ("c", ("c",)), ("c", ("c",)), ("c", ("c", "h")), ("y", ("c",))]
assert BIAS_GELU_PROGRAM == PROGRAM


def gelu_reference(x):
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def pair(v):
    return tuple(int(u) for u in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_loop(x, weight, bias, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n_out, _, kh, kw = weight.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
    out = np.zeros((x.shape[0], n_out, oh, ow))
    for n, o, y, z in itertools.product(range(x.shape[0]), range(n_out), range(oh), range(ow)):
        out[n, o, y, z] = np.sum(xpad[n, :, y * sh:y * sh + kh, z * sw:z * sw + kw] * weight[o])
        out[n, o, y, z] += 0.0 if bias is None else bias[o]
    return out


def im2col_loop(x, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    n_img, channels, height, width = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    cols = np.zeros((n_img, channels * kh * kw, oh * ow), dtype=x.dtype)
    for c, i, j, y, z in itertools.product(range(channels), range(kh), range(kw), range(oh), range(ow)):
        cols[:, (c * kh + i) * kw + j, y * ow + z] = xpad[:, c, y * sh + i, z * sw + j]
    return cols


def central_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + eps
        up = f(x)
        x[index] = old - eps
        down = f(x)
        x[index] = old
        grad[index] = (up - down) / (2 * eps)
    return grad


GEOMETRIES = [  # (input shape, kernel, stride, padding)
    ((2, 3, 7, 6), 3, 1, 0),
    ((1, 2, 5, 5), 3, 2, 1),
    ((2, 1, 6, 4), (3, 2), (2, 1), (1, 0)),
    ((1, 4, 3, 3), 1, 1, 0),         # 1x1 kernel: im2col is a reshape
    ((1, 2, 7, 7), 2, 3, 0),         # stride larger than the kernel: pixels never used
    ((1, 1, 2, 2), 3, 1, 2),         # padding larger than the input
    ((3, 2, 4, 9), (1, 4), 1, (0, 2)),
]


def test_gelu_matches_formula_dtype_and_shape():
    rng = np.random.default_rng(0)
    for shape in [(), (7,), (3, 4), (2, 3, 5)]:
        for dtype in (np.float32, np.float64):
            x = (4 * rng.standard_normal(shape)).astype(dtype)
            got = gelu(x)
            assert got.shape == x.shape and got.dtype == dtype
            np.testing.assert_allclose(got, gelu_reference(x), rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
    assert GELU_C == math.sqrt(2 / math.pi)
    np.testing.assert_allclose(gelu(np.array([-40.0, 0.0, 40.0])), [0.0, 0.0, 40.0], atol=1e-12)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 4, 5), (17, 1, 9), (8, 33, 2)])
def test_matmul_broadcast_matches_numpy(m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(matmul_broadcast(a, b), a @ b, rtol=1e-12, atol=1e-12)
    assert matmul_broadcast(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32


def test_matmul_broadcast_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        matmul_broadcast(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError):
        matmul_broadcast(np.ones(3), np.ones((3, 2)))


def test_fusion_traffic_of_bias_gelu_and_random_programs():
    rows, width = 300, 70
    got = fusion_traffic(PROGRAM, {"x": rows * width, "bias": width}, rows * width, 4)
    assert got == {"unfused": (23 * rows * width + width) * 4, "fused": (2 * rows * width + width) * 4,
                   "avoided": 21 * rows * width * 4}
    assert all(type(v) is int for v in got.values())
    # a single kernel: nothing to fuse
    one = fusion_traffic([("y", ("x", "x"))], {"x": 10}, 10, 8)
    assert one == {"unfused": 160, "fused": 160, "avoided": 0}
    # an external input that is never read is not traffic; a re-used output name is an intermediate
    two = fusion_traffic([("t", ("a",)), ("t", ("t", "a"))], {"a": 5, "unused": 10**6}, 5, 2)
    assert two == {"unfused": (5 + 5 + 5 + 5 + 5) * 2, "fused": (5 + 5) * 2, "avoided": 15 * 2}
    with pytest.raises(ValueError):
        fusion_traffic([], {}, 1, 4)


@pytest.mark.parametrize("rows,width,block", [(1, 1, 1), (10, 3, 3), (64, 17, 64), (5, 8, 100), (0, 4, 2)])
def test_fused_bias_gelu_matches_unfused(rows, width, block):
    rng = np.random.default_rng(rows + width + block)
    for dtype in (np.float32, np.float64):
        x = (3 * rng.standard_normal((rows, width))).astype(dtype)
        bias = rng.standard_normal(width).astype(dtype)
        got = fused_bias_gelu(x, bias, block_rows=block)
        assert got.shape == x.shape and got.dtype == dtype
        np.testing.assert_allclose(got, gelu_reference(x.astype(np.float64) + bias),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
        out = np.full_like(x, np.nan)
        assert fused_bias_gelu(x, bias, out=out, block_rows=block) is out
        np.testing.assert_array_equal(out, got)


def test_fused_bias_gelu_rejects_bad_arguments():
    with pytest.raises(ValueError):
        fused_bias_gelu(np.ones((3, 4)), np.ones(5))
    with pytest.raises(ValueError):
        fused_bias_gelu(np.ones(4), np.ones(4))
    with pytest.raises(ValueError):
        fused_bias_gelu(np.ones((3, 4)), np.ones(4), block_rows=0)


def test_fused_bias_gelu_peak_memory_is_two_blocks():
    rng = np.random.default_rng(1)
    x, bias = rng.standard_normal((4096, 64)).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    out = np.empty_like(x)
    fused = peak_memory(lambda: fused_bias_gelu(x, bias, out=out, block_rows=16))
    unfused = peak_memory(lambda: bias_gelu_unfused(x, bias))
    np.testing.assert_allclose(bias_gelu_unfused(x, bias), fused_bias_gelu(x, bias), rtol=1e-5, atol=1e-6)
    assert fused <= 2 * 16 * 64 * 4 + 32 * 1024, fused
    assert unfused >= 2 * x.nbytes, "the unfused chain holds several full-size temporaries"


@pytest.mark.parametrize("m,k,n,tile", [(1, 1, 1, 1), (7, 5, 3, 2), (33, 17, 20, 8), (16, 16, 16, 16),
                                        (10, 12, 14, 100), (0, 3, 4, 2), (40, 30, 50, 7)])
def test_matmul_tiled_matches_numpy_and_counts_blocks(m, k, n, tile):
    rng = np.random.default_rng(m + k + n + tile)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    calls = []

    def kernel(p, q):
        calls.append((p.shape, q.shape))
        return p @ q

    np.testing.assert_allclose(matmul_tiled(a, b, tile=tile, kernel=kernel), a @ b, rtol=1e-12, atol=1e-12)
    assert len(calls) == math.ceil(m / tile) * math.ceil(n / tile) * math.ceil(k / tile)
    assert all(max(p + q) <= tile for p, q in calls)
    np.testing.assert_allclose(matmul_tiled(a, b, tile=tile, kernel=matmul_broadcast), a @ b, rtol=1e-12, atol=1e-12)
    assert matmul_tiled(a.astype(np.float32), b.astype(np.float32), tile=tile).dtype == np.float32


def test_matmul_tiled_rejects_bad_arguments():
    with pytest.raises(ValueError):
        matmul_tiled(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError):
        matmul_tiled(np.ones((2, 3)), np.ones((3, 2)), tile=0)


@pytest.mark.parametrize("shape,kernel,stride,padding", GEOMETRIES)
def test_im2col_matches_the_loop(shape, kernel, stride, padding):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    got = im2col(x, kernel, stride, padding)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, im2col_loop(x, kernel, stride, padding))


@pytest.mark.parametrize("shape,kernel,stride,padding", GEOMETRIES)
def test_col2im_is_the_gradient_of_im2col(shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(shape) + 1)
    x = rng.standard_normal(shape)
    y = rng.standard_normal(im2col(x, kernel, stride, padding).shape)
    # d/dx <im2col(x), y> = col2im(y), checked by central differences in float64
    numeric = central_difference(lambda v: float(np.sum(im2col(v, kernel, stride, padding) * y)), x.copy())
    np.testing.assert_allclose(col2im(y, shape, kernel, stride, padding), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape,kernel,stride,padding", GEOMETRIES)
def test_conv2d_im2col_matches_the_loop_and_its_input_gradient(shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(shape) + 2)
    kh, kw = pair(kernel)
    x = rng.standard_normal(shape)
    weight, bias = rng.standard_normal((3, shape[1], kh, kw)), rng.standard_normal(3)
    out = conv2d_im2col(x, weight, bias, stride, padding)
    np.testing.assert_allclose(out, conv_loop(x, weight, bias, stride, padding), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d_im2col(x, weight, None, stride, padding),
                               conv_loop(x, weight, None, stride, padding), rtol=1e-10, atol=1e-10)
    # backward through im2col: dL/dx = col2im(W^T @ dL/dout), against central differences
    g = rng.standard_normal(out.shape)
    grad = col2im(weight.reshape(3, -1).T @ g.reshape(g.shape[0], 3, -1), shape, (kh, kw), stride, padding)
    numeric = central_difference(lambda v: float(np.sum(conv2d_im2col(v, weight, bias, stride, padding) * g)), x.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_conv_and_im2col_errors():
    with pytest.raises(ValueError):
        im2col(np.ones((3, 4, 4)), 3)
    with pytest.raises(ValueError):
        im2col(np.ones((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError):
        col2im(np.ones((1, 9, 5)), (1, 1, 4, 4), 3)
    with pytest.raises(ValueError):
        conv2d_im2col(np.ones((1, 2, 4, 4)), np.ones((1, 3, 3, 3)))


class Readings:
    def __init__(self, values):
        self.values, self.reads = list(values), 0

    def __call__(self):
        self.reads += 1
        return self.values[self.reads - 1]


def test_measured_ceilings_with_a_fake_clock():
    clock = Readings([0.0, 0.5, 1.0, 1.1, 2.0, 2.3])          # runs of 0.5, 0.1, 0.3 s
    assert measure_peak_flops(n=10, warmup=2, repeats=3, clock=clock) == pytest.approx(2000 / 0.1)
    assert clock.reads == 6, "two clock reads per timed run, none in the warm-up"
    clock = Readings([5.0, 7.0, 7.0, 8.0])                    # runs of 2 and 1 s
    assert measure_bandwidth(nbytes=300, warmup=0, repeats=2, clock=clock) == 600.0
    for bad in (lambda: measure_peak_flops(n=0), lambda: measure_bandwidth(nbytes=0)):
        with pytest.raises(ValueError):
            bad()


def test_measured_ceilings_are_plausible():
    assert 1e6 < measure_peak_flops(n=64, warmup=1, repeats=3) < 1e14
    assert 1e7 < measure_bandwidth(nbytes=2**20, warmup=1, repeats=3) < 1e13


def test_roofline_rows_and_table():
    kernels = [{"name": "add", "flops": 1e6, "bytes": 1.2e7, "seconds": 0.01},
               {"name": "matmul", "flops": 2e9, "bytes": 1.2e7, "seconds": 0.5},
               {"name": "ridge", "flops": 1e4, "bytes": 1e3, "seconds": 1.0}]
    rows = roofline(kernels, peak_flops=1e10, bandwidth=1e9)
    assert [r["bound"] for r in rows] == ["memory", "compute", "compute"]   # at the ridge: compute
    assert rows[0]["attainable"] == pytest.approx(1e9 / 12) and rows[1]["attainable"] == 1e10
    assert rows[0]["achieved"] == pytest.approx(1e8) and rows[1]["fraction"] == pytest.approx(0.4)
    assert kernels[0] == {"name": "add", "flops": 1e6, "bytes": 1.2e7, "seconds": 0.01}, "inputs not modified"
    table = format_roofline(rows, 1e10, 1e9)
    assert "ridge point 10.0 FLOP/byte" in table and len(table.splitlines()) == 2 + len(kernels)
    with pytest.raises(ValueError):
        roofline(kernels, 1e10, 0.0)
