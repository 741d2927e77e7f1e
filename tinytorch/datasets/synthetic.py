"""Seeded synthetic datasets: small, instant, and with a known answer (for tests and examples).

Every generator returns NumPy arrays, features float32 and class labels int64, and is
deterministic given `seed` (anything np.random.default_rng accepts).
"""

import numpy as np


def make_blobs(n_samples=100, centers=3, n_features=2, cluster_std=1.0, seed=0):
    """Gaussian clusters: returns (X, y), X (n_samples, n_features) float32, y int64 in [0, centers).

    Centres are drawn uniformly in [-10, 10]^n_features; samples are spread evenly over the
    clusters (the first n_samples % centers clusters get one more) and shuffled.
    """
    rng = np.random.default_rng(seed)
    middle = rng.uniform(-10.0, 10.0, size=(centers, n_features))
    y = np.arange(n_samples) % centers
    rng.shuffle(y)
    X = middle[y] + cluster_std * rng.standard_normal((n_samples, n_features))
    return X.astype(np.float32), y.astype(np.int64)


def make_xor(n_samples=200, noise=0.0, seed=0):
    """The XOR problem, which no linear model can solve: returns (X, y).

    X is uniform in [-1, 1]^2 (plus Gaussian noise of std `noise`), float32; the label is 1
    when the two coordinates (before noise) have the same sign, else 0 (int64).
    """
    rng = np.random.default_rng(seed)
    clean = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (clean[:, 0] * clean[:, 1] > 0).astype(np.int64)
    X = clean + noise * rng.standard_normal(clean.shape)
    return X.astype(np.float32), y


def make_regression(n_samples=100, n_features=3, noise=0.1, seed=0):
    """A linear regression problem with a known answer: returns (X, y, weight, bias).

    y = X @ weight + bias + noise * N(0, 1); X standard normal. X and y float32 (y has shape
    (n_samples,)), weight (n_features,) and bias (a float) are the true parameters.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    weight = rng.standard_normal(n_features)
    bias = float(rng.standard_normal())
    y = X @ weight + bias + noise * rng.standard_normal(n_samples)
    return X.astype(np.float32), y.astype(np.float32), weight.astype(np.float32), bias
