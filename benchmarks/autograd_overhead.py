"""Per-operation overhead of autograd on small tensors: TinyTorch against a minimal tape and PyTorch.

    python benchmarks/autograd_overhead.py [--ops 20000]
    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/autograd_overhead.py   # with PyTorch beside it

On 4x4 float32 tensors the arithmetic is nothing; what is measured is the bookkeeping of an
engine: making a node, wrapping the result, walking the graph backward. One "op" is one of
add, mul, matmul, relu in a chain, forward plus its share of the backward. Three engines run
the same chain in one process, interleaved, and the figures are medians of 7 rounds:

- TinyTorch (`tinytorch.core.autograd`, the reference solution of module 06);
- a minimal tape: closures on a list, no classes, no checks (the floor of a Python engine);
- PyTorch on the CPU, when importable (never a dependency of TinyTorch).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import report  # noqa: E402  (benchmarks/targets.py)
from tinytorch.core import autograd  # noqa: E402,F401  (installs the differentiable ops)
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402

OPS_PER_STEP = 4 * 8  # the chain below: 8 rounds of add, mul, matmul, relu


def tinytorch_step(a, w, relu=ReLU()):
    x = Tensor(a, requires_grad=True)
    wt = Tensor(w, requires_grad=True)
    y = x
    for _ in range(8):
        y = relu((y + x) * 0.5 @ wt)
    y.sum().backward()
    return x.grad


def tape_step(a, w):
    """The same chain on a bare tape: each op appends its backward closure."""
    tape = []
    grads = {}

    def acc(key, g):
        grads[key] = grads[key] + g if key in grads else g

    y, yk = a, "x"
    for i in range(8):
        s = y + a
        tape.append(lambda g, yk=yk: (acc(yk, g), acc("x", g)))
        sk = f"s{i}"
        m = s * 0.5
        tape.append(lambda g, sk=sk: acc(sk, g * 0.5))
        mk = f"m{i}"
        p = m @ w
        tape.append(lambda g, m=m, mk=mk: (acc(mk, g @ w.T), acc("w", m.T @ g)))
        pk = f"p{i}"
        y = np.maximum(p, 0)
        tape.append(lambda g, p=p, pk=pk: acc(pk, g * (p > 0)))
        yk = f"y{i}"
        # keys consumed by the closures above, in order of the backward walk
        tape[-4:] = [(sk, tape[-4]), (mk, tape[-3]), (pk, tape[-2]), (yk, tape[-1])]
    grads[yk] = np.ones_like(y)
    for key, back in reversed(tape):
        back(grads.pop(key))
    return grads["x"]


def torch_step(torch, a, w):
    x = torch.from_numpy(a).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    y = x
    for _ in range(8):
        y = torch.relu((y + x) * 0.5 @ wt)
    y.sum().backward()
    return x.grad.numpy()


def per_op_us(step, steps):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / (steps * OPS_PER_STEP) * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20000, help="operations per engine per round")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4)).astype(np.float32)
    w = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    engines = {"TinyTorch": lambda: tinytorch_step(a, w), "minimal tape": lambda: tape_step(a, w)}
    reference = tinytorch_step(a, w)
    assert np.allclose(tape_step(a, w), reference, rtol=1e-4, atol=1e-5), "the tape computes another gradient"
    try:
        import torch
        torch.set_num_threads(1)
        engines["PyTorch " + torch.__version__] = lambda: torch_step(torch, a, w)
        assert np.allclose(torch_step(torch, a, w), reference, rtol=1e-4, atol=1e-5)
    except ImportError:
        pass
    steps = max(1, args.ops // OPS_PER_STEP)
    for step in engines.values():   # warm-up
        per_op_us(step, max(1, steps // 10))
    rounds = {name: [] for name in engines}
    for _ in range(7):
        for name, step in engines.items():
            rounds[name].append(per_op_us(step, steps))
    median = {name: statistics.median(times) for name, times in rounds.items()}
    base = median["TinyTorch"]
    print(f"autograd overhead per op (4x4 float32, forward + backward, median of 7 rounds of {steps * OPS_PER_STEP} ops)")
    print(f"{'engine':<22} {'us/op':>8} {'TinyTorch / engine':>20}")
    for name, us in median.items():
        print(f"{name:<22} {us:8.2f} {base / us:20.2f}")
    if "minimal tape" not in median or len(median) < 3:
        print("(PyTorch not importable here: run with PyTorch installed to see it beside TinyTorch)")

    # The target: autograd's per-op overhead no more than PyTorch's.
    name, goal = "autograd overhead per op vs PyTorch (4x4, fwd+bwd)", "no more than PyTorch's time per op"
    torch_name = next((engine for engine in median if engine.startswith("PyTorch")), None)
    if torch_name is None:
        report(name, f"TinyTorch {base:.2f} us/op, PyTorch not importable", goal, None)
    else:
        ratio = base / median[torch_name]
        report(name, f"{ratio:.2f}x PyTorch ({base:.2f} vs {median[torch_name]:.2f} us/op)", goal, ratio <= 1)


if __name__ == "__main__":
    main()
