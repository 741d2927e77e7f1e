"""Hidden graded tests of module 17 (Acceleration): shapes, strides, programs and clock readings
drawn at grading time; oracles computed here (NumPy, element-by-element loops, the traffic model,
the fake clock's readings)."""

import math

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = [pytest.mark.module("17_acceleration"), pytest.mark.hidden]

FAKE_CLOCK = "readings = iter(ts)\nclock = lambda: next(readings)\n"


def gelu_oracle(x):
    x64 = np.asarray(x, dtype=np.float64)
    return 0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)))


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def out_size(height, width, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1


def im2col_oracle(x, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    n_img, channels, height, width = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = out_size(height, width, kernel_size, stride, padding)
    cols = np.zeros((n_img, channels * kh * kw, oh * ow), dtype=x.dtype)
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for x_ in range(ow):
                        cols[:, (c * kh + i) * kw + j, y * ow + x_] = xpad[:, c, y * sh + i, x_ * sw + j]
    return cols


def col2im_oracle(cols, shape, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    n_img, channels, height, width = shape
    oh, ow = out_size(height, width, kernel_size, stride, padding)
    xpad = np.zeros((n_img, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for x_ in range(ow):
                        xpad[:, c, y * sh + i, x_ * sw + j] += cols[:, (c * kh + i) * kw + j, y * ow + x_]
    return xpad[:, :, ph:ph + height, pw:pw + width]


def conv_oracle(x, weight, bias, stride, padding):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n_out, _, kh, kw = weight.shape
    xpad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = out_size(x.shape[2], x.shape[3], (kh, kw), stride, padding)
    out = np.zeros((x.shape[0], n_out, oh, ow))
    for o in range(n_out):
        for y in range(oh):
            for x_ in range(ow):
                patch = xpad[:, :, y * sh:y * sh + kh, x_ * sw:x_ * sw + kw]
                out[:, o, y, x_] = np.sum(patch * weight[o], axis=(1, 2, 3)) + (0.0 if bias is None else bias[o])
    return out


def random_conv_geometry(rng):
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    height, width = int(rng.integers(kernel[0], 9)), int(rng.integers(kernel[1], 9))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), height, width)
    return shape, kernel, stride, padding


@pytest.mark.points(2)
def test_gelu_random_shapes_and_extremes(student, rng):
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    x = (float(rng.uniform(0.5, 6)) * rng.standard_normal(shape)).astype(np.float32)
    extremes = np.array([-30.0, -5.0, 0.0, 5.0, 30.0], dtype=np.float64)
    got, got_extremes = student.value("(gelu(x), gelu(e))", x=x, e=extremes)
    assert_array(got, gelu_oracle(x), dtype=np.float32, rtol=1e-5, atol=1e-6)
    assert_array(got_extremes, gelu_oracle(extremes), dtype=np.float64, rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_matmul_broadcast_random_and_rejects_bad_shapes(student, rng):
    m, k, n = (int(v) for v in rng.integers(1, 20, size=3))
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    got = student.value("matmul_broadcast(a, b)", a=a, b=b)
    assert_array(got, a.astype(np.float64) @ b, dtype=np.float32, rtol=1e-4, atol=1e-4)
    for bad in (rng.standard_normal((k, n, 2)), rng.standard_normal(k)):
        with pytest.raises(StudentError) as err:
            student.value("matmul_broadcast(a, bad)", a=a, bad=bad)
        assert err.value.is_a("ValueError"), f"matmul_broadcast with shapes {a.shape} and {bad.shape}: ValueError"


@pytest.mark.points(2)
def test_fusion_traffic_of_random_programs(student, rng):
    externals = [f"in{i}" for i in range(int(rng.integers(1, 4)))]
    input_numel = {name: int(rng.integers(1, 1000)) for name in externals}
    program, names = [], list(externals)
    for step in range(int(rng.integers(1, 8))):
        inputs = tuple(str(v) for v in rng.choice(names, size=int(rng.integers(1, 4))))
        output = f"t{step % 3}"
        program.append((output, inputs))
        names.append(output)
    out_numel, itemsize = int(rng.integers(1000, 5000)), int(rng.choice([1, 2, 4, 8]))
    got = student.value("fusion_traffic(p, n, o, s)", p=program, n=input_numel, o=out_numel, s=itemsize)
    produced = {name for name, _ in program}
    size = lambda name: out_numel if name in produced else input_numel[name]
    unfused = sum(sum(size(name) for name in set(inputs)) + out_numel for _, inputs in program)
    used = {name for _, inputs in program for name in inputs if name not in produced}
    fused = sum(input_numel[name] for name in used) + out_numel
    expected = {"unfused": unfused * itemsize, "fused": fused * itemsize, "avoided": (unfused - fused) * itemsize}
    assert type(got) is dict and set(got) == set(expected), got
    for key, value in expected.items():
        assert_exact(got[key], value)
    with pytest.raises(StudentError) as err:
        student.value("fusion_traffic([], {}, 10, 4)")
    assert err.value.is_a("ValueError"), "an empty program raises ValueError"


@pytest.mark.points(2)
def test_fused_bias_gelu_random_blocks(student, rng):
    rows, width = int(rng.integers(1, 70)), int(rng.integers(1, 50))
    block = int(rng.choice([1, int(rng.integers(2, 20)), rows, rows + int(rng.integers(1, 50))]))
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    x = (2 * rng.standard_normal((rows, width))).astype(dtype)
    bias = rng.standard_normal(width).astype(dtype)
    got = student.value("fused_bias_gelu(x, bias, block_rows=block)", x=x, bias=bias, block=block)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert_array(got, gelu_oracle(x.astype(np.float64) + bias), dtype=dtype, rtol=tolerance, atol=tolerance)
    for code in ("fused_bias_gelu(x, bias[:-1] if len(bias) > 1 else np.ones(2, x.dtype))",
                 "fused_bias_gelu(x, bias, block_rows=0)"):
        with pytest.raises(StudentError) as err:
            student.value(code, x=x, bias=bias)
        assert err.value.is_a("ValueError"), f"{code} must raise ValueError"


@pytest.mark.points(1)
def test_fused_bias_gelu_peak_memory_is_independent_of_rows(student, rng):
    width, block = int(rng.integers(32, 128)), int(rng.integers(4, 24))
    rows = int(rng.integers(1000, 3000))
    x = rng.standard_normal((rows, width)).astype(np.float32)
    bias = rng.standard_normal(width).astype(np.float32)
    peak = student.value(
        "from tinytorch.perf.profiling import peak_memory\n"
        "out = np.empty_like(x)\n"
        "peak_memory(lambda: fused_bias_gelu(x, bias, out=out, block_rows=block))",
        x=x, bias=bias, block=block,
    )
    allowed = 3 * block * width * 4 + 64 * 1024
    assert peak <= allowed, (f"{rows}x{width} float32 in blocks of {block} rows: peak {peak:,} bytes, "
                             f"more than scratch blocks need ({allowed:,} allowed)")


@pytest.mark.points(2)
def test_matmul_tiled_random_tiles_dtypes_and_errors(student, rng):
    m, k, n = (int(v) for v in rng.integers(1, 50, size=3))
    tile = int(rng.integers(1, 60))
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    got, count = student.value(
        "calls = [0]\n"
        "def kernel(p, q):\n"
        "    calls[0] += 1\n"
        "    return np.matmul(p, q)\n"
        "(matmul_tiled(a, b, tile=t, kernel=kernel), calls[0])",
        a=a, b=b, t=tile,
    )
    assert_array(got, a.astype(np.float64) @ b, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert count == math.ceil(m / tile) * math.ceil(n / tile) * math.ceil(k / tile), f"{count} kernel calls"
    for code in ("matmul_tiled(a, b, tile=0)", "matmul_tiled(a, a.T[:-1] if a.shape[1] > 1 else np.ones((3, 2)))"):
        with pytest.raises(StudentError) as err:
            student.value(code, a=a, b=b)
        assert err.value.is_a("ValueError"), f"{code} must raise ValueError"


@pytest.mark.points(2)
def test_im2col_random_geometry(student, rng):
    shape, kernel, stride, padding = random_conv_geometry(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    got = student.value("im2col(x, k, stride=s, padding=p)", x=x, k=kernel, s=stride, p=padding)
    assert_array(got, im2col_oracle(x, kernel, stride, padding), dtype=np.float32, rtol=0, atol=0)
    got = student.value("im2col(x, 1)", x=x)  # a 1x1 kernel: every pixel is its own patch
    assert_array(got, x.reshape(shape[0], shape[1], -1), dtype=np.float32, rtol=0, atol=0)
    with pytest.raises(StudentError) as err:
        student.value("im2col(x, (shape[2] + 3, 1))", x=x, shape=shape)
    assert err.value.is_a("ValueError"), "a kernel taller than the padded input raises ValueError"


@pytest.mark.points(2)
def test_col2im_random_geometry_and_adjoint(student, rng):
    shape, kernel, stride, padding = random_conv_geometry(rng)
    oh, ow = out_size(shape[2], shape[3], kernel, stride, padding)
    cols = rng.standard_normal((shape[0], shape[1] * kernel[0] * kernel[1], oh * ow))
    x = rng.standard_normal(shape)
    got, folded_unfolded = student.value(
        "(col2im(cols, shape, k, stride=s, padding=p), col2im(im2col(x, k, s, p), shape, k, s, p))",
        cols=cols, shape=shape, k=kernel, s=stride, p=padding, x=x,
    )
    assert_array(got, col2im_oracle(cols, shape, kernel, stride, padding), dtype=np.float64, rtol=1e-12, atol=1e-12)
    # col2im(im2col(x)) multiplies each pixel by the number of patches that contain it
    coverage = col2im_oracle(im2col_oracle(np.ones(shape), kernel, stride, padding), shape, kernel, stride, padding)
    assert_array(folded_unfolded, x * coverage, dtype=np.float64, rtol=1e-12, atol=1e-12)
    with pytest.raises(StudentError) as err:
        student.value("col2im(cols[:, :-1], shape, k, stride=s, padding=p)", cols=cols, shape=shape, k=kernel,
                      s=stride, p=padding)
    assert err.value.is_a("ValueError"), "cols of the wrong shape raise ValueError"


@pytest.mark.points(2)
def test_conv2d_im2col_random_geometry(student, rng):
    shape, kernel, stride, padding = random_conv_geometry(rng)
    n_out = int(rng.integers(1, 5))
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((n_out, shape[1]) + kernel)
    bias = rng.standard_normal(n_out) if rng.random() < 0.5 else None
    got = student.value("conv2d_im2col(x, w, b, stride=s, padding=p)", x=x, w=weight, b=bias, s=stride, p=padding)
    assert_array(got, conv_oracle(x, weight, bias, stride, padding), dtype=np.float64, rtol=1e-10, atol=1e-10)
    with pytest.raises(StudentError) as err:
        student.value("conv2d_im2col(x, np.ones((2, x.shape[1] + 1, 1, 1)))", x=x)
    assert err.value.is_a("ValueError"), "channels of x and weight differ: ValueError"


@pytest.mark.points(1)
def test_measure_peak_flops_random_clock_and_real_run(student, rng):
    n, warmup, repeats = int(rng.integers(2, 40)), int(rng.integers(0, 3)), int(rng.integers(1, 8))
    ts = [float(t) for t in np.cumsum(rng.uniform(1e-4, 2.0, size=2 * repeats))]
    got, real = student.value(
        FAKE_CLOCK + "(measure_peak_flops(n=n, dtype=np.float64, warmup=w, repeats=r, clock=clock),\n"
        " measure_peak_flops(n=64, warmup=1, repeats=3))",
        ts=ts, n=n, w=warmup, r=repeats,
    )
    fastest = min(ts[2 * i + 1] - ts[2 * i] for i in range(repeats))
    assert got == pytest.approx(2 * n**3 / fastest, rel=1e-12)
    assert type(real) is float and 1e6 < real < 1e14, f"a real 64x64 product measured {real} FLOP/s"
    with pytest.raises(StudentError) as err:
        student.value("measure_peak_flops(n=0)")
    assert err.value.is_a("ValueError")


@pytest.mark.points(1)
def test_measure_bandwidth_random_clock_and_real_run(student, rng):
    nbytes, repeats = int(rng.integers(1, 10**6)), int(rng.integers(1, 8))
    ts = [float(t) for t in np.cumsum(rng.uniform(1e-4, 2.0, size=2 * repeats))]
    got, real = student.value(
        FAKE_CLOCK + "(measure_bandwidth(nbytes=nb, warmup=0, repeats=r, clock=clock),\n"
        " measure_bandwidth(nbytes=2**20, warmup=1, repeats=3))",
        ts=ts, nb=nbytes, r=repeats,
    )
    fastest = min(ts[2 * i + 1] - ts[2 * i] for i in range(repeats))
    assert got == pytest.approx(2 * nbytes / fastest, rel=1e-12)
    assert type(real) is float and 1e7 < real < 1e13, f"copying 1 MiB measured {real} bytes/s"
    with pytest.raises(StudentError) as err:
        student.value("measure_bandwidth(nbytes=0)")
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_roofline_random_kernels(student, rng):
    peak, bandwidth = float(rng.uniform(1e9, 1e12)), float(rng.uniform(1e9, 1e11))
    kernels = [{"name": f"k{i}", "flops": float(rng.uniform(1e3, 1e10)), "bytes": float(rng.uniform(1e3, 1e9)),
                "seconds": float(rng.uniform(1e-6, 1.0))} for i in range(int(rng.integers(1, 7)))]
    kernels.append({"name": "ridge", "flops": peak / bandwidth * 1000.0, "bytes": 1000.0, "seconds": 1.0})
    rows = student.value("roofline(kernels, peak, bandwidth)", kernels=kernels, peak=peak, bandwidth=bandwidth)
    assert type(rows) is list and [row["name"] for row in rows] == [k["name"] for k in kernels]
    for row, kernel in zip(rows, kernels):
        intensity = kernel["flops"] / kernel["bytes"]
        roof = intensity * bandwidth
        attainable = min(peak, roof)
        achieved = kernel["flops"] / kernel["seconds"]
        for key, value in (("flops", kernel["flops"]), ("bytes", kernel["bytes"]), ("seconds", kernel["seconds"]),
                           ("intensity", intensity), ("achieved", achieved), ("attainable", attainable),
                           ("fraction", achieved / attainable)):
            assert row[key] == pytest.approx(value, rel=1e-9), f"{kernel['name']}: {key}"
        if kernel["name"] != "ridge":  # exactly at the ridge, rounding may pick either side
            assert row["bound"] == ("memory" if roof < peak else "compute"), kernel
    with pytest.raises(StudentError) as err:
        student.value("roofline(kernels, 0.0, 1.0)", kernels=kernels)
    assert err.value.is_a("ValueError"), "a peak of 0 raises ValueError"
