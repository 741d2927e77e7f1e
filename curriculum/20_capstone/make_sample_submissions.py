"""Write a sample class of Torch Olympics submissions (module 20_capstone).

    python curriculum/20_capstone/make_sample_submissions.py [FOLDER]   (default: examples/olympics/submissions)
    python -m tinytorch.olympics examples/olympics/submissions          (the leaderboard)

Seven students, each a folder with submission.yaml and model.npz, trained here with the
framework itself (autograd, Adam, cross entropy) on the digits' train split; the scorer
measures them on the held-out test split. What each one is there to show:

    ada  a linear model (64 -> 10), float32                 fastest, smallest, budget
    ben  one hidden layer of 32, float32                     fastest, budget
    cai  one hidden layer of 128, float32                    fastest, budget
    dee  a linear model stored as int8 with per-row scales   smallest
    eve  one hidden layer of 256: over the memory budget     fastest, budget
    fay  an invalid submission (schema errors)               fastest
    gus  a tiny model trained briefly: below the 95% bar     fastest, smallest, budget

Everything is seeded, so the same arrays come out on every run with the same NumPy and BLAS.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.layers import Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.olympics import IN_FEATURES, N_CLASSES, load_train_split  # noqa: E402

DEFAULT = ROOT / "examples" / "olympics" / "submissions"


def train_mlp(widths, epochs=20, seed=0, lr=1e-2, batch=64):
    """A digits MLP with the given hidden widths, trained on the train split: (specs, state_dict)."""
    x_train, y_train = load_train_split()
    specs, fan_in = [], IN_FEATURES
    for width in list(widths) + [N_CLASSES]:
        specs += [{"type": "Linear", "in_features": fan_in, "out_features": width}, {"type": "ReLU"}]
        fan_in = width
    specs.pop()  # no activation after the last Linear: the scorer takes the argmax of the logits
    model = Sequential(*[Linear(s["in_features"], s["out_features"], rng=seed + i) if s["type"] == "Linear"
                         else ReLU() for i, s in enumerate(specs)])
    optimizer, loss_fn, order_rng = Adam(model.parameters(), lr=lr), CrossEntropyLoss(), np.random.default_rng(seed)
    for _ in range(epochs):
        order = order_rng.permutation(len(x_train))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            optimizer.zero_grad()
            loss_fn(model(Tensor(x_train[rows])), y_train[rows]).backward()
            optimizer.step()
    return specs, model.state_dict()


def to_int8(specs, arrays):
    """Store every Linear weight as int8 with one float32 scale per output row (symmetric,
    scale = max |w| of the row / 127); biases stay float32."""
    out = {}
    for name, a in arrays.items():
        if name.endswith(".weight"):
            scale = np.maximum(np.abs(a).max(axis=1), 1e-12) / 127.0
            out[name] = np.clip(np.round(a / scale[:, None]), -127, 127).astype(np.int8)
            out[name[: -len("weight")] + "weight_scale"] = scale.astype(np.float32)
        else:
            out[name] = a
    return [{**s, "dtype": "int8"} if s["type"] == "Linear" else s for s in specs], out


def write(root, student, events, specs, arrays, description, **overrides):
    folder = root / student
    folder.mkdir(parents=True)
    meta = {"student": student, "events": events, "description": description,
            "model": {"weights": "model.npz", "layers": specs}, **overrides}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, default_flow_style=None))
    np.savez(folder / "model.npz", **arrays)


def make(root=DEFAULT):
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    linear = train_mlp([], seed=0)
    write(root, "ada", ["fastest", "smallest", "budget"], *linear,
          "A linear model (64 -> 10): one matrix product, nothing to wait for.")
    write(root, "ben", ["fastest", "budget"], *train_mlp([32], seed=1),
          "One hidden layer of 32 ReLU units, Adam, 20 epochs.")
    write(root, "cai", ["fastest", "budget"], *train_mlp([128], seed=2),
          "One hidden layer of 128 ReLU units for the best accuracy within the budget.")
    write(root, "dee", ["smallest"], *to_int8(*train_mlp([], seed=3)),
          "A linear model stored as int8 with a float32 scale per row: a quarter of the bytes.")
    write(root, "eve", ["fastest", "budget"], *train_mlp([256], seed=4),
          "256 hidden units: accurate, but its activations on the test split exceed the memory budget.")
    specs, arrays = train_mlp([16], seed=5)
    bad_specs = [dict(specs[0], in_features=63), *specs[1:]]
    write(root, "fay", ["fastest", "fastests"], bad_specs, arrays,
          "An invalid submission: a typo in an event name and a first layer of the wrong width.")
    write(root, "gus", ["fastest", "smallest", "budget"], *train_mlp([4], epochs=2, seed=6),
          "Four hidden units trained for one epoch: small and fast, but not accurate enough.")
    return root


if __name__ == "__main__":
    folder = make(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"wrote {len(list(folder.iterdir()))} submissions to {folder} ({size:,} bytes)")
