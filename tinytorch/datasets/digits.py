"""The UCI "Optical Recognition of Handwritten Digits" test set, bundled as digits.npz.

1,797 grey-scale images of 8x8 pixels, each pixel an integer count 0..16, labelled 0..9
(about 180 per class). Source, licence and how the file was made: README.md in this folder.
"""

from pathlib import Path

import numpy as np

DIGITS_FILE = Path(__file__).with_name("digits.npz")
N_SAMPLES, IMAGE_SHAPE, N_CLASSES = 1797, (8, 8), 10


def load_digits(flatten=True, raw=False):
    """Load the bundled digits: returns (images, labels).

    images: float32 in [0, 1] (pixel count / 16), shape (1797, 64) when `flatten` (one row
        per image, ready for Linear(64, ...)) or (1797, 8, 8) otherwise. With `raw=True`, the
        stored uint8 counts 0..16 instead (4x less memory than float32).
    labels: int64 class indices 0..9, shape (1797,).

    The order is the file's (sklearn.datasets.load_digits's): shuffle or split before training.
    """
    with np.load(DIGITS_FILE) as data:
        pixels, labels = data["images"], data["labels"]
    if pixels.shape != (N_SAMPLES, *IMAGE_SHAPE) or labels.shape != (N_SAMPLES,):
        raise ValueError(f"{DIGITS_FILE} is damaged: images {pixels.shape}, labels {labels.shape}")
    images = pixels if raw else pixels.astype(np.float32) / np.float32(16.0)
    if flatten:
        images = images.reshape(N_SAMPLES, -1)
    return images, labels.astype(np.int64)


def train_test_split(*arrays, test_size=0.2, seed=0):
    """Split arrays of equal length into train and test parts, the same rows for each array.

    test_size: a fraction in (0, 1) (the test part has ceil(test_size * n) rows) or a number
        of rows. seed: anything np.random.default_rng accepts; the same seed gives the same split.
    Returns [a_train, a_test, b_train, b_test, ...], like sklearn.model_selection.train_test_split.
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays of different lengths: {[len(a) for a in arrays]}")
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        n_test = int(np.ceil(test_size * n))
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} leaves {n_test} of {n} rows for testing; need 0 < test < {n}")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return [part for a in arrays for part in (np.asarray(a)[train], np.asarray(a)[test])]
