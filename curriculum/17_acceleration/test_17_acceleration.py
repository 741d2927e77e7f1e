"""Public graded tests of module 17 (Acceleration).

Every fast kernel is checked against an oracle computed here, in pytest: NumPy for values
(np.matmul, the GELU formula in float64), element-by-element loops for im2col, col2im and the
convolution, byte counts from the traffic model, and the known readings of a fake clock for the
measured ceilings. No test depends on how fast the grading machine is.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("17_acceleration")

FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"

BIAS_GELU_PROGRAM = [
    ("h", ("x", "bias")), ("c", ("h",)), ("c", ("c", "h")), ("c", ("c",)), ("c", ("h", "c")),
    ("c", ("c",)), ("c", ("c",)), ("c", ("c",)), ("c", ("c", "h")), ("y", ("c",)),
]


def gelu_oracle(x):
    x64 = np.asarray(x, dtype=np.float64)
    return 0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)))


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def im2col_oracle(x, kernel_size, stride, padding):
    """cols[n, (c*kh + i)*kw + j, y*ow + x] = xpad[n, c, y*sh + i, x*sw + j], element by element."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    n_img, channels, height, width = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    cols = np.zeros((n_img, channels * kh * kw, oh * ow), dtype=x.dtype)
    for n in range(n_img):
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    for y in range(oh):
                        for x_ in range(ow):
                            cols[n, (c * kh + i) * kw + j, y * ow + x_] = xpad[n, c, y * sh + i, x_ * sw + j]
    return cols


def col2im_oracle(cols, shape, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    n_img, channels, height, width = shape
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    xpad = np.zeros((n_img, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for n in range(n_img):
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    for y in range(oh):
                        for x_ in range(ow):
                            xpad[n, c, y * sh + i, x_ * sw + j] += cols[n, (c * kh + i) * kw + j, y * ow + x_]
    return xpad[:, :, ph:ph + height, pw:pw + width]


def conv_oracle(x, weight, bias, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n_img, _, height, width = x.shape
    n_out, _, kh, kw = weight.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.zeros((n_img, n_out, oh, ow))
    for n in range(n_img):
        for o in range(n_out):
            for y in range(oh):
                for x_ in range(ow):
                    patch = xpad[n, :, y * sh:y * sh + kh, x_ * sw:x_ * sw + kw]
                    out[n, o, y, x_] = np.sum(patch * weight[o]) + (0.0 if bias is None else bias[o])
    return out


@pytest.mark.points(2)
def test_gelu_matches_the_formula_and_keeps_dtype(student, rng):
    x32 = (3 * rng.standard_normal((4, 3, 5))).astype(np.float32)
    x64 = 3 * rng.standard_normal(11)
    got32, got64 = student.value("(gelu(x32), gelu(x64))", x32=x32, x64=x64)
    assert_array(got32, gelu_oracle(x32), dtype=np.float32, rtol=1e-5, atol=1e-6)
    assert_array(got64, gelu_oracle(x64), dtype=np.float64, rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_matmul_broadcast_matches_numpy(student, rng):
    m, k, n = (int(v) for v in rng.integers(1, 12, size=3))
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    assert_array(student.value("matmul_broadcast(a, b)", a=a, b=b), a @ b, dtype=np.float64, rtol=1e-10, atol=1e-10)
    with pytest.raises(StudentError) as err:
        student.value("matmul_broadcast(a, b)", a=a, b=rng.standard_normal((k + 1, n)))
    assert err.value.is_a("ValueError"), f"inner dimensions {k} and {k + 1} differ: raise ValueError"


@pytest.mark.points(2)
def test_fusion_traffic_of_bias_gelu(student, rng):
    rows, width = int(rng.integers(1, 500)), int(rng.integers(1, 300))
    got = student.value("fusion_traffic(program, {'x': r * d, 'bias': d}, r * d, 4)",
                        program=BIAS_GELU_PROGRAM, r=rows, d=width)
    numel = rows * width
    expected = {"unfused": (23 * numel + width) * 4, "fused": (2 * numel + width) * 4}
    expected["avoided"] = expected["unfused"] - expected["fused"]
    assert type(got) is dict and set(got) == set(expected), f"expected the keys {sorted(expected)}, got {got!r}"
    for key, value in expected.items():
        assert_exact(got[key], value)


@pytest.mark.points(2)
def test_fused_bias_gelu_values_and_out(student, rng):
    rows, width, block = int(rng.integers(5, 90)), int(rng.integers(1, 40)), int(rng.integers(1, 16))
    x = (2 * rng.standard_normal((rows, width))).astype(np.float32)
    bias = rng.standard_normal(width).astype(np.float32)
    got, same = student.value(
        "buffer = np.zeros_like(x)\n"
        "result = fused_bias_gelu(x, bias, out=buffer, block_rows=block)\n"
        "(fused_bias_gelu(x, bias, block_rows=block), result is buffer)",
        x=x, bias=bias, block=block,
    )
    assert_array(got, gelu_oracle(x.astype(np.float64) + bias), dtype=np.float32, rtol=1e-5, atol=1e-6)
    assert same is True, "with out= given, fused_bias_gelu writes into out and returns that same array"


@pytest.mark.points(1)
def test_fused_bias_gelu_allocates_only_blocks(student, rng):
    rows, width, block = 2048, 64, int(rng.integers(8, 33))
    x = rng.standard_normal((rows, width)).astype(np.float32)
    bias = rng.standard_normal(width).astype(np.float32)
    peak, full = student.value(
        "from tinytorch.perf.profiling import peak_memory\n"
        "out = np.empty_like(x)\n"
        "fused_bias_gelu(x, bias, out=out, block_rows=block)\n"
        "(peak_memory(lambda: fused_bias_gelu(x, bias, out=out, block_rows=block)), x.nbytes)",
        x=x, bias=bias, block=block,
    )
    allowed = 3 * block * width * 4 + 64 * 1024
    assert peak <= allowed, (f"fused_bias_gelu on a {rows}x{width} float32 array ({full:,} bytes) with out= given "
                             f"allocated {peak:,} bytes at its peak; two scratch blocks of {block} rows need "
                             f"{2 * block * width * 4:,}: allocate them once, outside the loop, and work in place (out=)")


@pytest.mark.points(2)
def test_matmul_tiled_matches_numpy_and_calls_one_kernel_per_block(student, rng):
    m, k, n = (int(v) for v in rng.integers(5, 40, size=3))
    tile = int(rng.integers(2, 9))
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    got, shapes = student.value(
        "calls = []\n"
        "def kernel(p, q):\n"
        "    calls.append(p.shape + q.shape)\n"
        "    return p @ q\n"
        "(matmul_tiled(a, b, tile=t, kernel=kernel), calls)",
        a=a, b=b, t=tile,
    )
    assert_array(got, a @ b, dtype=np.float64, rtol=1e-10, atol=1e-10)
    blocks = math.ceil(m / tile) * math.ceil(n / tile) * math.ceil(k / tile)
    assert len(shapes) == blocks, f"({m}, {k}) @ ({k}, {n}) with tile {tile}: {blocks} block products, got {len(shapes)}"
    assert all(max(shape) <= tile for shape in shapes), f"a block larger than the tile: {max(shapes, key=max)}"


@pytest.mark.points(2)
def test_im2col_follows_the_unfold_layout(student, rng):
    x = rng.standard_normal((2, 3, 7, 6))
    got = student.value("im2col(x, (3, 2), stride=(2, 1), padding=1)", x=x)
    assert_array(got, im2col_oracle(x, (3, 2), (2, 1), 1), dtype=np.float64, rtol=0, atol=0)


@pytest.mark.points(2)
def test_col2im_adds_overlapping_patches(student, rng):
    shape, kernel, stride, padding = (2, 2, 6, 5), 3, 1, 1
    cols = rng.standard_normal((2, 2 * 9, 6 * 5))
    got = student.value("col2im(cols, shape, kernel, stride=stride, padding=padding)",
                        cols=cols, shape=shape, kernel=kernel, stride=stride, padding=padding)
    assert_array(got, col2im_oracle(cols, shape, kernel, stride, padding), dtype=np.float64, rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_conv2d_im2col_matches_the_loop(student, rng):
    x = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    got = student.value("conv2d_im2col(x, weight, bias, stride=2, padding=1)", x=x, weight=weight, bias=bias)
    assert_array(got, conv_oracle(x, weight, bias, 2, 1), dtype=np.float32, rtol=1e-4, atol=1e-4)


@pytest.mark.points(1)
def test_measure_peak_flops_with_a_fake_clock(student, rng):
    n, repeats = int(rng.integers(2, 20)), int(rng.integers(3, 7))
    ts = [float(t) for t in np.cumsum(rng.uniform(0.001, 1.0, size=2 * repeats))]
    got = student.value(FAKE_CLOCK + "measure_peak_flops(n=n, warmup=1, repeats=r, clock=clock)", ts=ts, n=n, r=repeats)
    fastest = min(ts[2 * i + 1] - ts[2 * i] for i in range(repeats))
    assert type(got) is float, f"measure_peak_flops returns a float (FLOP/s), got {type(got).__name__}"
    assert got == pytest.approx(2 * n**3 / fastest, rel=1e-12), "2 * n**3 / the fastest of the timed runs"


@pytest.mark.points(1)
def test_measure_bandwidth_with_a_fake_clock(student, rng):
    nbytes, repeats = int(rng.integers(1000, 100_000)), int(rng.integers(3, 7))
    ts = [float(t) for t in np.cumsum(rng.uniform(0.001, 1.0, size=2 * repeats))]
    got = student.value(FAKE_CLOCK + "measure_bandwidth(nbytes=nb, warmup=2, repeats=r, clock=clock)",
                        ts=ts, nb=nbytes, r=repeats)
    fastest = min(ts[2 * i + 1] - ts[2 * i] for i in range(repeats))
    assert type(got) is float, f"measure_bandwidth returns a float (bytes/s), got {type(got).__name__}"
    assert got == pytest.approx(2 * nbytes / fastest, rel=1e-12), "2 * nbytes (read + write) / the fastest run"


@pytest.mark.points(2)
def test_roofline_table(student, rng):
    peak, bandwidth = float(rng.uniform(1e10, 1e11)), float(rng.uniform(1e9, 2e10))
    kernels = [
        {"name": "add", "flops": 1_000_000, "bytes": 12_000_000, "seconds": float(rng.uniform(1e-3, 1e-2))},
        {"name": "matmul", "flops": 2 * 512**3, "bytes": 3 * 512 * 512 * 4, "seconds": float(rng.uniform(1e-2, 1e-1))},
    ]
    rows = student.value("roofline(kernels, peak, bandwidth)", kernels=kernels, peak=peak, bandwidth=bandwidth)
    assert type(rows) is list and len(rows) == 2
    for row, kernel in zip(rows, kernels):
        intensity = kernel["flops"] / kernel["bytes"]
        attainable = min(peak, intensity * bandwidth)
        achieved = kernel["flops"] / kernel["seconds"]
        assert row["name"] == kernel["name"]
        for key, value in (("intensity", intensity), ("achieved", achieved), ("attainable", attainable),
                           ("fraction", achieved / attainable)):
            assert type(row[key]) is float and row[key] == pytest.approx(value, rel=1e-12), \
                f"{kernel['name']}: {key} expected {value}, got {row[key]!r}"
    assert [row["bound"] for row in rows] == ["memory", "compute"]
