"""Small datasets that ship with TinyTorch, loaded offline with NumPy only.

- `load_digits()`: the UCI handwritten digits (1,797 8x8 images, 10 classes), bundled as
  digits.npz (45 KB); see README.md for its source and licence.
- `train_test_split(...)`: a deterministic, seeded split of one or more arrays.
- `make_blobs`, `make_xor`, `make_regression`: seeded synthetic data for tests and examples.
"""

from tinytorch.datasets.digits import load_digits, train_test_split
from tinytorch.datasets.synthetic import make_blobs, make_regression, make_xor

__all__ = ["load_digits", "train_test_split", "make_blobs", "make_xor", "make_regression"]
