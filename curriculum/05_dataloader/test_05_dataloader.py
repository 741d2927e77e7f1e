"""Public graded tests of module 05 (DataLoader). Oracles are NumPy slices computed here."""

import math

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = pytest.mark.module("05_dataloader")

# One epoch as plain data: the list of (X batch, y batch) arrays.
EPOCH = "[(xb.data, yb.data) for xb, yb in loader]"


def seed_of(rng):
    return int(rng.integers(2**31))


@pytest.mark.points(2)
def test_tensor_dataset_len_and_getitem(student, rng):
    n, f = int(rng.integers(5, 20)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, f)).astype(np.float32)
    y = rng.integers(0, 10, size=n)                           # int64 labels
    i = int(rng.integers(0, n))
    length, (xi, yi), (x_last, y_last) = student.value(
        "ds = TensorDataset(Tensor(X), y)\n"
        "a, b = ds[i]\n"
        "c, d = ds[-1]\n"
        "(len(ds), (a.data, b.data), (c.data, d.data))",
        X=X, y=y, i=i,
    )
    assert length == n
    assert_array(xi, X[i], dtype=np.float32)
    assert_array(yi, y[i], dtype=np.int64)
    assert_array(x_last, X[-1], dtype=np.float32)
    assert_array(y_last, y[-1], dtype=np.int64)


@pytest.mark.points(1)
def test_tensor_dataset_rejects_different_lengths(student):
    with pytest.raises(StudentError) as err:
        student.value("TensorDataset(np.zeros((5, 2)), np.zeros(4))")
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_default_collate_stacks_each_field(student, rng):
    X = rng.standard_normal((4, 3, 2)).astype(np.float32)
    y = rng.integers(0, 5, size=4)
    xb, yb = student.value(
        "batch = default_collate([(Tensor(X[k]), Tensor(y[k], dtype=np.int64)) for k in range(4)])\n"
        "(batch[0].data, batch[1].data)",
        X=X, y=y,
    )
    assert_array(xb, X, dtype=np.float32)
    assert_array(yb, y, dtype=np.int64)


@pytest.mark.points(2)
def test_sequential_batches_in_order(student, rng):
    n, batch_size = int(rng.integers(10, 30)), int(rng.integers(2, 7))
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    epoch = student.value(
        "loader = DataLoader(TensorDataset(X, y), batch_size=bs)\n" + EPOCH, X=X, y=y, bs=batch_size
    )
    starts = range(0, n, batch_size)
    assert type(epoch) is list and len(epoch) == len(starts)
    for (xb, yb), start in zip(epoch, starts):
        assert_array(xb, X[start:start + batch_size], dtype=np.float32)
        assert_array(yb, y[start:start + batch_size], dtype=np.int64)


@pytest.mark.points(2)
def test_len_with_and_without_drop_last(student, rng):
    cases = [(int(rng.integers(1, 50)), int(rng.integers(1, 9))) for _ in range(5)] + [(12, 4), (13, 4)]
    got = student.value(
        "[(len(DataLoader(TensorDataset(np.zeros(n)), batch_size=b)),\n"
        "  len(DataLoader(TensorDataset(np.zeros(n)), batch_size=b, drop_last=True))) for n, b in cases]",
        cases=cases,
    )
    assert got == [(math.ceil(n / b), n // b) for n, b in cases]


@pytest.mark.points(1)
def test_drop_last_drops_only_the_partial_batch(student):
    sizes = student.value(
        "loader = DataLoader(TensorDataset(np.arange(11)), batch_size=4, drop_last=True)\n"
        "[len(b[0].data) for b in loader]"
    )
    assert sizes == [4, 4]


@pytest.mark.points(2)
def test_shuffle_visits_every_example_once_in_a_new_order_each_epoch(student, rng):
    n = int(rng.integers(20, 40))
    first, second = student.value(
        "loader = DataLoader(TensorDataset(np.arange(n)), batch_size=3, shuffle=True, seed=seed)\n"
        "def epoch():\n"
        "    return np.concatenate([b[0].data for b in loader])\n"
        "(epoch(), epoch())",
        n=n, seed=seed_of(rng),
    )
    for order in (first, second):
        assert type(order) is np.ndarray and sorted(order.tolist()) == list(range(n))
    assert first.tolist() != list(range(n)), "shuffle=True must change the order"
    assert first.tolist() != second.tolist(), "each epoch must draw a new permutation"


@pytest.mark.points(2)
def test_same_seed_gives_the_same_epochs(student, rng):
    seed = seed_of(rng)
    a, b, other = student.value(
        "def two_epochs(s):\n"
        "    loader = DataLoader(TensorDataset(np.arange(25)), batch_size=5, shuffle=True, seed=s)\n"
        "    return [b[0].data.tolist() for _ in range(2) for b in loader]\n"
        "(two_epochs(seed), two_epochs(seed), two_epochs(seed + 1))",
        seed=seed,
    )
    assert a == b, "the same seed must give the same sequence of epochs"
    assert a != other, "another seed must give another order"
