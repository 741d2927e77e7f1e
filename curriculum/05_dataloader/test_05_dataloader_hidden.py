"""Hidden graded tests of module 05 (DataLoader): sizes and seeds drawn at grading time."""

import math

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("05_dataloader"), pytest.mark.hidden]


def seed_of(rng):
    return int(rng.integers(2**31))


@pytest.mark.points(2)
def test_tensor_dataset_of_three_tensors_keeps_dtypes(student, rng):
    n = int(rng.integers(3, 12))
    images = rng.standard_normal((n, 2, 3)).astype(np.float32)
    labels = rng.integers(0, 9, size=n).astype(np.int32)
    weights = rng.standard_normal(n)                           # float64 on purpose
    i = int(rng.integers(0, n))
    length, fields = student.value(
        "ds = TensorDataset(images, labels, weights)\n"
        "(len(ds), [t.data for t in ds[i]])",
        images=images, labels=labels, weights=weights, i=i,
    )
    assert length == n and type(fields) is list and len(fields) == 3
    assert_array(fields[0], images[i], dtype=np.float32)
    assert_array(fields[1], labels[i], dtype=np.int32)
    assert_array(fields[2], weights[i], dtype=np.float64)


@pytest.mark.points(1)
def test_tensor_dataset_index_out_of_range(student, rng):
    n = int(rng.integers(2, 9))
    with pytest.raises(StudentError) as err:
        student.value("TensorDataset(np.zeros((n, 2)))[n]", n=n)
    assert err.value.is_a("IndexError")
    with pytest.raises(StudentError) as err:
        student.value("TensorDataset()")
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_default_collate_of_arrays_numbers_and_lists(student, rng):
    rows = rng.standard_normal((5, 4)).astype(np.float32)
    ints = [int(v) for v in rng.integers(0, 100, size=5)]
    from_arrays, from_ints, pair = student.value(
        "(default_collate([r for r in rows]).data, default_collate(ints).data,\n"
        " [t.data for t in default_collate([[rows[k], ints[k]] for k in range(5)])])",
        rows=rows, ints=ints,
    )
    assert_array(from_arrays, rows, dtype=np.float32)
    assert_array(from_ints, np.array(ints), dtype=np.int64)
    assert type(pair) is list and len(pair) == 2
    assert_array(pair[0], rows, dtype=np.float32)
    assert_array(pair[1], np.array(ints), dtype=np.int64)


@pytest.mark.points(2)
def test_len_matches_iteration_for_random_sizes(student, rng):
    cases = [(int(rng.integers(1, 80)), int(rng.integers(1, 12)), bool(rng.integers(0, 2))) for _ in range(6)]
    got = student.value(
        "out = []\n"
        "for n, b, drop in cases:\n"
        "    loader = DataLoader(TensorDataset(np.arange(n)), batch_size=b, drop_last=drop, shuffle=True, seed=0)\n"
        "    out.append((len(loader), [len(batch[0].data) for batch in loader]))\n"
        "out",
        cases=cases,
    )
    for (n, b, drop), (length, sizes) in zip(cases, got):
        full, rest = divmod(n, b)
        expected = [b] * full + ([] if drop or rest == 0 else [rest])
        assert sizes == expected, f"n={n}, batch_size={b}, drop_last={drop}"
        assert length == (n // b if drop else math.ceil(n / b))


@pytest.mark.points(2)
def test_shuffled_epochs_with_drop_last_cover_distinct_examples(student, rng):
    n, b = int(rng.integers(30, 60)), int(rng.integers(4, 9))
    epochs = student.value(
        "loader = DataLoader(TensorDataset(np.arange(n)), batch_size=b, shuffle=True, drop_last=True, seed=seed)\n"
        "[np.concatenate([batch[0].data for batch in loader]) for _ in range(3)]",
        n=n, b=b, seed=seed_of(rng),
    )
    for order in epochs:
        assert len(order) == (n // b) * b and len(set(order.tolist())) == len(order)
        assert set(order.tolist()) <= set(range(n))
    assert len({tuple(o.tolist()) for o in epochs}) == 3, "three epochs, three different orders"


@pytest.mark.points(1)
def test_seed_may_be_a_generator(student, rng):
    seed = seed_of(rng)
    from_int, from_generator = student.value(
        "def orders(s):\n"
        "    loader = DataLoader(TensorDataset(np.arange(17)), batch_size=4, shuffle=True, seed=s)\n"
        "    return [b[0].data.tolist() for _ in range(2) for b in loader]\n"
        "(orders(seed), orders(np.random.default_rng(seed)))",
        seed=seed,
    )
    assert from_int == from_generator


@pytest.mark.points(1)
def test_batch_indices_partition_one_epoch(student, rng):
    n, b = int(rng.integers(10, 40)), int(rng.integers(2, 6))
    batches = student.value(
        "loader = DataLoader(TensorDataset(np.zeros(n)), batch_size=b, shuffle=True, seed=seed)\n"
        "[np.asarray(i).tolist() for i in loader.batch_indices()]",
        n=n, b=b, seed=seed_of(rng),
    )
    assert [len(x) for x in batches] == [len(range(n)[s:s + b]) for s in range(0, n, b)]
    assert sorted(i for x in batches for i in x) == list(range(n))


@pytest.mark.points(1)
def test_a_custom_dataset_with_integer_labels(student, rng):
    n = int(rng.integers(5, 15))
    table = rng.standard_normal((n, 3)).astype(np.float32)
    epoch = student.value(
        "class Squares(Dataset):\n"
        "    def __len__(self):\n"
        "        return len(table)\n"
        "    def __getitem__(self, i):\n"
        "        return Tensor(table[i]), i * i\n"
        "[(x.data, y.data) for x, y in DataLoader(Squares(), batch_size=4)]",
        table=table,
    )
    for k, (xb, yb) in enumerate(epoch):
        rows = np.arange(k * 4, min(n, k * 4 + 4))
        assert_array(xb, table[rows], dtype=np.float32)
        assert_array(yb, rows * rows, dtype=np.int64)


@pytest.mark.points(2)
def test_digits_through_a_shuffled_loader(student, rng):
    batch_size = int(rng.integers(50, 300))
    shapes, label_counts, pixel_sum = student.value(
        "from tinytorch.datasets import load_digits\n"
        "images, labels = load_digits()\n"
        "loader = DataLoader(TensorDataset(images, labels), batch_size=bs, shuffle=True, seed=seed)\n"
        "batches = [(x.data, y.data) for x, y in loader]\n"
        "([x.shape for x, _ in batches], np.bincount(np.concatenate([y for _, y in batches])),\n"
        " float(sum(x.astype(np.float64).sum() for x, _ in batches)))",
        bs=batch_size, seed=seed_of(rng),
    )
    from tinytorch.datasets import load_digits

    images, labels = load_digits()
    n = len(labels)
    assert shapes == [(batch_size, 64)] * (n // batch_size) + ([(n % batch_size, 64)] if n % batch_size else [])
    assert_array(label_counts, np.bincount(labels), dtype=np.int64)
    assert abs(pixel_sum - images.astype(np.float64).sum()) < 1e-3
