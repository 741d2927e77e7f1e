"""Public graded tests of module 01_tensor: run them with `pytest --module 01_tensor`."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("01_tensor")


@pytest.mark.points(1)
def test_construction_defaults_to_float32(student):
    got = student.value("t = Tensor([[1, 2, 3], [4, 5, 6]]); (t.data, t.shape, t.size, t.ndim, str(t.dtype))")
    data, shape, size, ndim, dtype = got
    assert_array(data, [[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    assert_exact(shape, (2, 3))
    assert_exact(size, 6)
    assert_exact(ndim, 2)
    assert_exact(dtype, "float32")


@pytest.mark.points(1)
def test_memory_footprint(student):
    got = student.value("(Tensor(np.zeros((3, 5))).memory_footprint(), "
                        "Tensor(np.zeros(7), dtype=np.float64).memory_footprint())")
    assert_exact(got, (60, 56))


@pytest.mark.points(2)
def test_add_and_sub_broadcast(student, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    got = student.value("((Tensor(a) + Tensor(b)).data, (Tensor(a) - Tensor(b)).data)", a=a, b=b)
    assert_array(got[0], (a + b).astype(np.float32), dtype=np.float32)
    assert_array(got[1], (a - b).astype(np.float32), dtype=np.float32)


@pytest.mark.points(2)
def test_mul_div_neg(student, rng):
    a, b = rng.standard_normal((2, 3)), rng.uniform(1, 2, (2, 1))
    got = student.value("((Tensor(a) * Tensor(b)).data, (Tensor(a) / Tensor(b)).data, (-Tensor(a)).data)", a=a, b=b)
    assert_array(got[0], a * b, dtype=np.float32)
    assert_array(got[1], a / b, dtype=np.float32)
    assert_array(got[2], -a, dtype=np.float32)


@pytest.mark.points(2)
def test_reflected_operations_with_numbers(student, rng):
    a = rng.uniform(1, 2, (2, 3))
    got = student.value("t = Tensor(a); ((2 + t).data, (3 * t).data, (1 - t).data, (1 / t).data)", a=a)
    for received, expected in zip(got, (2 + a, 3 * a, 1 - a, 1 / a)):
        assert_array(received, expected, dtype=np.float32)


@pytest.mark.points(2)
def test_matmul(student, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    got = student.value("(Tensor(a) @ Tensor(b)).data", a=a, b=b)
    assert_array(got, a @ b, dtype=np.float32, rtol=1e-4, atol=1e-5)


@pytest.mark.points(1)
def test_matmul_shape_mismatch_raises_value_error(student, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    with pytest.raises(StudentError) as err:
        student.value("Tensor(a).matmul(Tensor(b))", a=a, b=b)
    assert err.value.is_a("ValueError"), f"expected a ValueError, got {err.value.type_name}"
    assert "(2, 3)" in err.value.message, "the error message should show the shapes"


@pytest.mark.points(2)
def test_reshape_and_transpose(student):
    got = student.value("t = Tensor(np.arange(12)); (t.reshape(3, -1).data, t.reshape((2, 6)).shape, "
                        "t.reshape(3, 4).transpose().data)")
    assert_array(got[0], np.arange(12).reshape(3, 4), dtype=np.float32)
    assert_exact(got[1], (2, 6))
    assert_array(got[2], np.arange(12).reshape(3, 4).T, dtype=np.float32)


@pytest.mark.points(1)
def test_reshape_wrong_size_raises_value_error(student):
    with pytest.raises(StudentError) as err:
        student.value("Tensor(np.arange(6)).reshape(4, 2)")
    assert err.value.is_a("ValueError"), f"expected a ValueError, got {err.value.type_name}"


@pytest.mark.points(2)
def test_reductions(student, rng):
    a = rng.standard_normal((3, 5))
    got = student.value("t = Tensor(a); (t.sum().data, t.sum(axis=0).data, t.mean(axis=1, keepdims=True).data, t.max(axis=1).data)", a=a)
    a32 = a.astype(np.float32)
    assert_array(got[0], a32.sum(), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[1], a32.sum(axis=0), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[2], a32.mean(axis=1, keepdims=True), dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(got[3], a32.max(axis=1), dtype=np.float32)


@pytest.mark.points(1)
def test_indexing(student, rng):
    a = rng.standard_normal((4, 5))
    got = student.value("t = Tensor(a); (t[1].data, t[:, 1:3].data)", a=a)
    assert_array(got[0], a[1], dtype=np.float32)
    assert_array(got[1], a[:, 1:3], dtype=np.float32)
