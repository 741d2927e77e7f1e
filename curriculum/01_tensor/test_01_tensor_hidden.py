"""Hidden graded tests of module 01_tensor: instructors only, inputs drawn at grading time."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = [pytest.mark.module("01_tensor"), pytest.mark.hidden]


def _shape(rng, ndim):
    return tuple(int(d) for d in rng.integers(1, 6, size=ndim))


@pytest.mark.points(1)
def test_memory_footprint_any_dtype(student, rng):
    shape = _shape(rng, int(rng.integers(0, 4)))
    dtype = str(rng.choice(["float32", "float64", "int64", "int8", "float16"]))
    got = student.value("Tensor(np.zeros(shape), dtype=np.dtype(dtype)).memory_footprint()", shape=shape, dtype=dtype)
    assert_exact(got, int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)


@pytest.mark.points(2)
def test_arithmetic_random_broadcasting(student, rng):
    shape = _shape(rng, 3)
    other = tuple(1 if rng.random() < 0.5 else d for d in shape)[int(rng.integers(0, 3)):]
    a, b = rng.standard_normal(shape), rng.uniform(0.5, 2, other)
    got = student.value("x, y = Tensor(a), Tensor(b); ((x + y).data, (x - y).data, (x * y).data, (x / y).data, (-x).data)", a=a, b=b)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    for received, expected in zip(got, (a32 + b32, a32 - b32, a32 * b32, a32 / b32, -a32)):
        assert_array(received, expected, dtype=np.float32)


@pytest.mark.points(2)
def test_reflected_random_scalars(student, rng):
    a = rng.uniform(0.5, 3, _shape(rng, 2))
    s = float(rng.uniform(-5, 5))
    got = student.value("t = Tensor(a); ((s + t).data, (s * t).data, (s - t).data, (s / t).data)", a=a, s=s)
    a32 = a.astype(np.float32)
    for received, expected in zip(got, (s + a32, s * a32, s - a32, s / a32)):
        assert_array(received, expected, dtype=np.float32, rtol=1e-5)


@pytest.mark.points(2)
def test_matmul_random_and_batched(student, rng):
    m, k, n = (int(d) for d in rng.integers(1, 8, size=3))
    batch = int(rng.integers(1, 4))
    a, b = rng.standard_normal((batch, m, k)), rng.standard_normal((k, n))
    v = rng.standard_normal(k)
    got = student.value("((Tensor(a) @ Tensor(b)).data, (Tensor(a[0]) @ Tensor(v)).data)", a=a, b=b, v=v)
    a32, b32, v32 = (x.astype(np.float32) for x in (a, b, v))
    assert_array(got[0], a32 @ b32, dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[1], a32[0] @ v32, dtype=np.float32, rtol=1e-4, atol=1e-5)


@pytest.mark.points(1)
def test_matmul_mismatch_random(student, rng):
    k = int(rng.integers(2, 6))
    a, b = rng.standard_normal((3, k)), rng.standard_normal((k + 1, 2))
    with pytest.raises(StudentError) as err:
        student.value("Tensor(a) @ Tensor(b)", a=a, b=b)
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_reshape_transpose_random(student, rng):
    shape = _shape(rng, 3)
    a = rng.standard_normal(shape)
    got = student.value("t = Tensor(a); (t.reshape(-1, shape[-1]).data, t.reshape(tuple(reversed(shape))).shape, "
                        "t.transpose(0, 2).data, t.transpose().data)", a=a, shape=shape)
    a32 = a.astype(np.float32)
    assert_array(got[0], a32.reshape(-1, shape[-1]), dtype=np.float32)
    assert_exact(got[1], tuple(reversed(shape)))
    assert_array(got[2], np.swapaxes(a32, 0, 2), dtype=np.float32)
    assert_array(got[3], np.swapaxes(a32, -2, -1), dtype=np.float32)


@pytest.mark.points(2)
def test_reductions_random_axes(student, rng):
    a = rng.standard_normal(_shape(rng, 3))
    axis = int(rng.integers(0, 3))
    got = student.value("t = Tensor(a); (t.sum(axis=axis, keepdims=True).data, t.mean().data, t.mean(axis=axis).data, t.max(axis=axis, keepdims=True).data, t.max().data)", a=a, axis=axis)
    a32 = a.astype(np.float32)
    assert_array(got[0], a32.sum(axis=axis, keepdims=True), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[1], a32.mean(), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[2], a32.mean(axis=axis), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[3], a32.max(axis=axis, keepdims=True), dtype=np.float32)
    assert_array(got[4], a32.max(), dtype=np.float32)


@pytest.mark.points(1)
def test_indexing_random(student, rng):
    a = rng.standard_normal(_shape(rng, 2))
    i = int(rng.integers(0, a.shape[0]))
    mask = a > 0
    got = student.value("t = Tensor(a); (t[i].data, t[Tensor(mask, dtype=bool)].data)", a=a, i=i, mask=mask)
    assert_array(got[0], a[i], dtype=np.float32)
    assert_array(got[1], a.astype(np.float32)[mask], dtype=np.float32)
