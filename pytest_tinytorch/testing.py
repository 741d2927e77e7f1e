"""Assertions for graded tests: exact types first, then values, with messages that show both."""

from __future__ import annotations

import numpy as np

np_printopts = dict(precision=5, threshold=20, edgeitems=3, linewidth=100)


def _show(array) -> str:
    with np.printoptions(**np_printopts):
        return np.array2string(np.asarray(array))


def assert_array(got, expected, *, rtol=1e-5, atol=1e-6, dtype=None):
    """`got` must be a NumPy array of `expected`'s shape (and `dtype` if given), close in value."""
    expected = np.asarray(expected)
    if type(got) is not np.ndarray:
        raise AssertionError(f"expected a NumPy array of shape {expected.shape}, got a {type(got).__name__}: {got!r:.200}")
    if got.shape != expected.shape:
        raise AssertionError(f"expected shape {expected.shape}, got shape {got.shape}")
    if dtype is not None and got.dtype != np.dtype(dtype):
        raise AssertionError(f"expected dtype {np.dtype(dtype)}, got {got.dtype}")
    if not np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        worst = np.unravel_index(np.argmax(np.abs(got.astype(float) - expected)), got.shape) if got.size else ()
        raise AssertionError(
            f"values differ (rtol={rtol}, atol={atol}); largest difference at index {tuple(int(i) for i in worst)}\n"
            f"expected:\n{_show(expected)}\nreceived:\n{_show(got)}"
        )


def assert_exact(got, expected):
    """`got` must equal `expected` and have exactly its type (no bool for int, no list for tuple)."""
    if type(got) is not type(expected):
        raise AssertionError(f"expected a {type(expected).__name__} ({expected!r}), got a {type(got).__name__} ({got!r:.200})")
    if got != expected:
        raise AssertionError(f"expected {expected!r}, got {got!r:.200}")


def numeric_grads(f, arrays, upstream, h=1e-6):
    """The oracle of every gradient test: central differences of sum(f(*arrays) * upstream)
    with respect to each array, in float64, computed here in pytest (never in the kernel).
    `f` is a NumPy forward pass; the arrays are copied, never changed."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            old = a[index]
            a[index] = old + h
            plus = np.sum(f(*arrays) * upstream)
            a[index] = old - h
            minus = np.sum(f(*arrays) * upstream)
            a[index] = old
            grad[index] = (plus - minus) / (2 * h)
        grads.append(grad)
    return grads
