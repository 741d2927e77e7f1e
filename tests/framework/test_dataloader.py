"""The exported data pipeline (tinytorch/core/dataloader.py) and the bundled datasets."""

import hashlib
import math

import numpy as np
import pytest

from tinytorch.core.dataloader import DataLoader, Dataset, TensorDataset, default_collate
from tinytorch.core.tensor import Tensor
from tinytorch.datasets import load_digits, make_blobs, make_regression, make_xor, train_test_split
from tinytorch.datasets.digits import DIGITS_FILE


def epoch_of(loader):
    return np.concatenate([batch[0].data for batch in loader])


# --- TensorDataset and collate --------------------------------------------------------------

def test_tensor_dataset_rows_and_dtypes():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([3, 1, 4, 1])
    ds = TensorDataset(Tensor(X), y)
    assert len(ds) == 4 and isinstance(ds, Dataset)
    x2, y2 = ds[2]
    np.testing.assert_array_equal(x2.data, X[2])
    assert y2.dtype == np.int64 and int(y2.data) == 4
    with pytest.raises(IndexError):
        ds[4]


@pytest.mark.parametrize("bad", [(), (np.zeros(3), np.zeros(4)), (np.float32(1.0),)])
def test_tensor_dataset_rejects_bad_inputs(bad):
    with pytest.raises(ValueError):
        TensorDataset(*bad)


def test_default_collate_nested_and_plain():
    rows = np.random.default_rng(0).standard_normal((3, 2, 2)).astype(np.float32)
    xb, yb = default_collate([(Tensor(r), k) for k, r in enumerate(rows)])
    np.testing.assert_array_equal(xb.data, rows)
    assert xb.dtype == np.float32 and yb.dtype == np.int64 and yb.data.tolist() == [0, 1, 2]
    stacked = default_collate([np.ones(2, dtype=np.float64)] * 2)
    assert stacked.dtype == np.float64 and stacked.shape == (2, 2)


# --- DataLoader -----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 7, 12, 13])
@pytest.mark.parametrize("batch_size", [1, 4, 20])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_and_len(n, batch_size, drop_last):
    loader = DataLoader(TensorDataset(np.arange(n)), batch_size=batch_size, drop_last=drop_last)
    batches = [b[0].data.tolist() for b in loader]
    expected = [list(range(n))[s:s + batch_size] for s in range(0, n, batch_size)]
    if drop_last:
        expected = [b for b in expected if len(b) == batch_size]
    assert batches == expected
    assert len(loader) == len(expected) == (n // batch_size if drop_last else math.ceil(n / batch_size))


def test_shuffle_is_a_new_permutation_per_epoch_and_reproducible():
    loader = DataLoader(TensorDataset(np.arange(50)), batch_size=8, shuffle=True, seed=3)
    epochs = [epoch_of(loader) for _ in range(3)]
    assert all(sorted(e.tolist()) == list(range(50)) for e in epochs)
    assert len({tuple(e.tolist()) for e in epochs}) == 3
    # The oracle: the same permutations drawn from NumPy's generator directly.
    oracle = np.random.default_rng(3)
    for e in epochs:
        np.testing.assert_array_equal(e, oracle.permutation(50))
    replay = DataLoader(TensorDataset(np.arange(50)), batch_size=8, shuffle=True, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(epoch_of(replay), epochs[0])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_batch_size_is_validated(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(np.arange(3)), batch_size=bad)


def test_custom_collate_and_dataset():
    class Pairs(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return i, -i

    loader = DataLoader(Pairs(), batch_size=2, collate_fn=list)
    assert list(loader) == [[(0, 0), (1, -1)], [(2, -2), (3, -3)], [(4, -4)]]


# --- datasets -------------------------------------------------------------------------------

def test_digits_file_is_the_documented_one():
    with np.load(DIGITS_FILE) as data:
        images, labels = data["images"], data["labels"]
    assert images.dtype == labels.dtype == np.uint8 and images.shape == (1797, 8, 8)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def test_load_digits_formats():
    images, labels = load_digits()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert 0.0 == images.min() and images.max() == 1.0
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    square, _ = load_digits(flatten=False)
    raw, _ = load_digits(raw=True, flatten=False)
    assert square.shape == (1797, 8, 8) and raw.dtype == np.uint8 and raw.max() == 16
    np.testing.assert_array_equal(square.reshape(1797, 64), images)
    np.testing.assert_allclose(raw / 16.0, square)


def test_train_test_split_is_deterministic_and_disjoint():
    ids = np.arange(100)
    train, test, train_again, test_again = train_test_split(ids, ids * 2, test_size=0.25, seed=7)
    assert len(test) == 25 and len(train) == 75
    assert sorted(np.concatenate([train, test]).tolist()) == ids.tolist()
    np.testing.assert_array_equal(train_again, train * 2)   # the same rows for every array
    np.testing.assert_array_equal(train_test_split(ids, test_size=0.25, seed=7)[0], train)
    assert not np.array_equal(train_test_split(ids, test_size=0.25, seed=8)[0], train)
    assert len(train_test_split(ids, test_size=10)[1]) == 10
    with pytest.raises(ValueError):
        train_test_split(ids, ids[:5])
    with pytest.raises(ValueError):
        train_test_split(ids, test_size=1.5)


def test_synthetic_datasets_are_seeded_and_typed():
    X, y = make_blobs(90, centers=3, n_features=4, seed=1)
    assert X.shape == (90, 4) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [30, 30, 30]
    np.testing.assert_array_equal(make_blobs(90, centers=3, n_features=4, seed=1)[0], X)
    X, y = make_xor(500, seed=2)
    assert X.shape == (500, 2) and set(y.tolist()) == {0, 1}
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(np.int64))   # noise=0: exact labels
    X, y, w, b = make_regression(200, n_features=3, noise=0.0, seed=3)
    np.testing.assert_allclose(X @ w + b, y, rtol=1e-4, atol=1e-4)
