"""One training epoch of the digits MLP: TinyTorch against a hand-written NumPy MLP and PyTorch.

    python benchmarks/mlp_epoch.py                                  # TinyTorch and the NumPy floor
    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/mlp_epoch.py   # with PyTorch beside them
    python benchmarks/mlp_epoch.py --profile                        # plus cProfile of TinyTorch's epoch

The workload is the milestone curriculum/milestones/digits_mlp.py: the bundled digits (1,437
training images after the 80/20 split), a 64 -> 128 -> ReLU -> 10 MLP, cross-entropy, Adam
(lr 2e-3), batch 32, shuffled: 45 optimizer steps per epoch. Every implementation starts from
the same weights and sees the same batches in the same order, and the script checks that their
first-epoch losses agree (the same computation, not just the same shapes). Timed per epoch:

- `tinytorch Trainer`: `Trainer.train_epoch` over a `DataLoader` (module 08, what the milestone runs);
- `tinytorch loop`: the bare five-line loop over the same precomputed batches (no Trainer, no loader);
- `numpy floor`: forward, hand-written backward and Adam in float32 NumPy, in place: the
  arithmetic any NumPy framework must do, with no graph, no Tensor objects, no dispatch;
- `pytorch`: `torch.nn` + `torch.optim.Adam` on CPU, when torch is importable.

All are pinned to one thread (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)); rounds of the
implementations are interleaved so that load from other processes hits all alike, and the
medians of wall time and of process CPU time per epoch, and their ratios, are reported.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from targets import report  # noqa: E402  (benchmarks/targets.py)

from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.dataloader import DataLoader, TensorDataset  # noqa: E402
from tinytorch.core.layers import Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.core.training import Trainer  # noqa: E402
from tinytorch.datasets import load_digits, train_test_split  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

BATCH, HIDDEN, LR, BETAS, EPS = 32, 128, 2e-3, (0.9, 0.999), 1e-8


def data():
    images, labels = load_digits()
    X_train, _, y_train, _ = train_test_split(images, labels, test_size=0.2, seed=0)
    return X_train, y_train


def initial_weights(seed=0):
    g = np.random.default_rng(seed)
    model = Sequential(Linear(64, HIDDEN, rng=g), ReLU(), Linear(HIDDEN, 10, rng=g))
    return [p.data.copy() for p in model.parameters()]     # W1 (128, 64), b1, W2 (10, 128), b2


def epoch_batches(n, seed):
    """The index arrays of one shuffled epoch: what DataLoader(shuffle=True, seed=seed) draws."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[s:s + BATCH] for s in range(0, n, BATCH)]


# --- TinyTorch -------------------------------------------------------------------------------

class TinyTorchTrainer:
    name = "tinytorch Trainer"

    def __init__(self, weights, X, y, seed):
        self.model = Sequential(Linear(64, HIDDEN), ReLU(), Linear(HIDDEN, 10))
        for p, w in zip(self.model.parameters(), weights):
            p.data[...] = w
        self.trainer = Trainer(self.model, Adam(self.model.parameters(), lr=LR, betas=BETAS, eps=EPS),
                               CrossEntropyLoss(), rng=seed)
        self.loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True, seed=self.trainer.rng)

    def epoch(self):
        return self.trainer.train_epoch(self.loader)


class TinyTorchLoop:
    name = "tinytorch loop"

    def __init__(self, weights, X, y, seed):
        self.model = Sequential(Linear(64, HIDDEN), ReLU(), Linear(HIDDEN, 10))
        for p, w in zip(self.model.parameters(), weights):
            p.data[...] = w
        self.optimizer = Adam(self.model.parameters(), lr=LR, betas=BETAS, eps=EPS)
        self.loss_fn, self.X, self.y = CrossEntropyLoss(), X, y
        self.rng = np.random.default_rng(seed)

    def epoch(self):
        total = 0.0
        for idx in epoch_batches(len(self.X), self.rng):
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(Tensor(self.X[idx])), self.y[idx])
            loss.backward()
            self.optimizer.step()
            total += float(loss.data) * len(idx)
        return total / len(self.X)


# --- the NumPy floor ---------------------------------------------------------------------------

class NumpyMLP:
    """Forward, backward and Adam written out in float32 NumPy, updating in place."""

    name = "numpy floor"

    def __init__(self, weights, X, y, seed):
        self.params = [w.copy() for w in weights]
        self.m = [np.zeros_like(w) for w in weights]
        self.v = [np.zeros_like(w) for w in weights]
        self.t, self.X, self.y = 0, X, y
        self.rng = np.random.default_rng(seed)

    def step(self, x, y):
        W1, b1, W2, b2 = self.params
        n = len(y)
        h = x @ W1.T
        h += b1
        np.maximum(h, 0, out=h)                       # ReLU in place: h is also what backward needs
        z = h @ W2.T
        z += b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s).mean() - z[np.arange(n), y].mean())
        e /= s                                        # softmax
        e[np.arange(n), y] -= 1
        e *= np.float32(1.0 / n)                      # dL/dz
        dh = e @ W2
        dh *= h > 0
        grads = [dh.T @ x, dh.sum(axis=0), e.T @ h, e.sum(axis=0)]
        self.t += 1
        beta1, beta2 = BETAS
        step_size = LR / (1 - beta1 ** self.t)
        root_bc2 = np.sqrt(1 - beta2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v)
            denom /= root_bc2
            denom += EPS
            p -= step_size * m / denom
        return loss

    def epoch(self):
        total = 0.0
        for idx in epoch_batches(len(self.X), self.rng):
            total += self.step(self.X[idx], self.y[idx]) * len(idx)
        return total / len(self.X)


# --- PyTorch -----------------------------------------------------------------------------------

class TorchMLP:
    name = "pytorch"

    def __init__(self, weights, X, y, seed):
        torch.set_num_threads(1)
        self.model = torch.nn.Sequential(torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10))
        with torch.no_grad():
            for p, w in zip(self.model.parameters(), weights):
                p.copy_(torch.from_numpy(w))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR, betas=BETAS, eps=EPS)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.rng = np.random.default_rng(seed)

    def epoch(self):
        total = 0.0
        for idx in epoch_batches(len(self.X), self.rng):
            index = torch.from_numpy(idx)
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(self.X[index]), self.y[index])
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(idx)
        return total / len(self.X)


def profile_tinytorch(weights, X, y, epochs=20, top=22):
    runner = TinyTorchTrainer(weights, X, y, seed=1)
    runner.epoch()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(epochs):
        runner.epoch()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of {epochs} TinyTorch epochs (Trainer.train_epoch), sorted by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved epochs per implementation (default 15)")
    parser.add_argument("--profile", action="store_true", help="also run cProfile on TinyTorch's epoch")
    args = parser.parse_args()

    X, y = data()
    weights = initial_weights()
    kinds = [TinyTorchTrainer, TinyTorchLoop, NumpyMLP] + ([TorchMLP] if torch is not None else [])
    runners = [kind(weights, X, y, seed=1) for kind in kinds]

    # Same start, same batches: the first epoch's mean losses must agree.
    first = {r.name: r.epoch() for r in runners}
    reference = first["numpy floor"]
    for name, loss in first.items():
        assert abs(loss - reference) < 1e-4 * max(1.0, reference), f"{name}: epoch-1 loss {loss} vs numpy {reference}"

    times = {r.name: [] for r in runners}
    cpu = {r.name: [] for r in runners}
    for _ in range(args.rounds):
        for r in runners:
            start, cpu_start = time.perf_counter(), time.process_time()
            r.epoch()
            times[r.name].append(time.perf_counter() - start)
            cpu[r.name].append(time.process_time() - cpu_start)
    median = {name: statistics.median(t) for name, t in times.items()}
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}

    print(f"digits MLP 64-{HIDDEN}-10, Adam, batch {BATCH}, {len(X)} images = {len(epoch_batches(len(X), 0))} steps "
          f"per epoch; one thread; median of {args.rounds} interleaved epochs")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ", torch not importable (PyTorch column skipped)"))
    print(f"first-epoch mean loss: " + ", ".join(f"{n} {v:.5f}" for n, v in first.items()))
    floor = median["numpy floor"]
    floor_cpu = median_cpu["numpy floor"]
    print(f"\n{'implementation':<20} {'ms/epoch':>9} {'us/step':>8} {'x numpy floor':>14}"
          + (f" {'x pytorch':>10}" if torch is not None else "")
          + f" {'CPU ms/epoch':>13} {'CPU x floor':>12}" + (f" {'CPU x pytorch':>14}" if torch is not None else ""))
    steps = len(epoch_batches(len(X), 0))
    for name, t in median.items():
        c = median_cpu[name]
        row = f"{name:<20} {t * 1e3:>9.2f} {t / steps * 1e6:>8.0f} {t / floor:>14.2f}"
        if torch is not None:
            row += f" {t / median['pytorch']:>10.2f}"
        row += f" {c * 1e3:>13.2f} {c / floor_cpu:>12.2f}"
        if torch is not None:
            row += f" {c / median_cpu['pytorch']:>14.2f}"
        print(row)
    print("(wall time is what a user waits for; CPU time, process_time of all threads, moves less with the "
          "machine's load)")
    if args.profile:
        profile_tinytorch(weights, X, y)

    # The target: a TinyTorch Trainer epoch no slower than PyTorch's (judged on wall time,
    # what a user waits for; the CPU-time ratio is shown beside it).
    name, goal = "digits MLP epoch, Trainer vs PyTorch", "no slower than PyTorch"
    tiny = median["tinytorch Trainer"]
    if torch is None:
        report(name, f"Trainer {tiny * 1e3:.1f} ms/epoch, PyTorch not importable", goal, None)
    else:
        ratio = tiny / median["pytorch"]
        cpu_ratio = median_cpu["tinytorch Trainer"] / median_cpu["pytorch"]
        report(name, f"{ratio:.2f}x PyTorch's wall time (CPU {cpu_ratio:.2f}x)", goal, ratio <= 1)


if __name__ == "__main__":
    main()
