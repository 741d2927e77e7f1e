"""Conv2d forward + backward: TinyTorch's im2col convolution against PyTorch, in one run.

    python benchmarks/conv2d.py                     # TinyTorch only (PyTorch is not a dependency)
    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/conv2d.py   # with PyTorch beside it

The layer: batch 32, 3 -> 16 channels, 32 x 32 images, 3 x 3 kernel, padding 1, float32,
gradients to the input, the weight and the bias (as in training a first layer whose input also
needs a gradient). Prints, measured in the same process:

1. the median time of forward + backward (and of forward alone) of `tinytorch.core.spatial.Conv2d`
   and of `torch.nn.Conv2d` when torch is importable, and their ratio;
2. the explicit-loop reference `conv2d_loops` (forward only: it has no backward), timed on a
   reduced batch and scaled linearly to batch 32 (its cost is exactly linear in the batch: one
   Python iteration per output number), labelled as such;
3. the alternatives for the weight-gradient contraction (batched matmul + sum, tensordot,
   einsum) on the same arrays, the measurement behind the choice made in Conv2dFn.backward.

Both libraries are pinned to one thread (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)):
two BLAS threads are unreliable on the shared 2-core machines. Times are the CPU time of the
calling thread (time.thread_time), which other processes on a busy machine do not inflate; with
one thread each library does all of a step's work in that thread (checked for PyTorch: its process
time equals its thread time). Wall-clock medians are printed too. Rounds of the two libraries are
interleaved so that cache and frequency effects hit both alike; the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import os
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

from tinytorch.core.spatial import Conv2d, conv2d_loops, im2col  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

BATCH, C_IN, C_OUT, SIZE, KERNEL, PADDING = 32, 3, 16, 32, 3, 1


def timed(fn) -> float:
    """CPU time of the calling thread (both libraries run single-threaded in it): unlike wall-clock
    time it does not count the time other processes hold the core, so the ratio survives a busy
    machine. Wall-clock medians are printed beside it."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tinytorch_step(conv, x, upstream):
    def step():
        x.grad = None
        conv.zero_grad()
        conv(x).backward(upstream)
    return step


def tinytorch_weight_step(conv, x_np, upstream):
    """A first layer: the image needs no gradient, so backward skips col2im."""
    def step():
        conv.zero_grad()
        conv(Tensor(x_np)).backward(upstream)
    return step


def tinytorch_forward(conv, x):
    def step():
        conv(Tensor(x.data))   # an input without requires_grad: no graph is recorded
    return step


def torch_steps(weight, bias, x_np, upstream_np):
    torch.set_num_threads(1)
    conv = torch.nn.Conv2d(C_IN, C_OUT, KERNEL, padding=PADDING)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        conv.bias.copy_(torch.from_numpy(bias))
    x = torch.from_numpy(x_np.copy()).requires_grad_(True)
    upstream = torch.from_numpy(upstream_np)

    def step():
        x.grad = None
        conv.zero_grad(set_to_none=True)
        conv(x).backward(upstream)

    def forward():
        with torch.no_grad():
            conv(x)

    x_plain = torch.from_numpy(x_np.copy())

    def weight_step():
        conv.zero_grad(set_to_none=True)
        conv(x_plain).backward(upstream)

    return conv, x, step, forward, weight_step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per library (default 30)")
    parser.add_argument("--loop-batch", type=int, default=2, help="batch for the explicit-loop version (default 2)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, C_IN, SIZE, SIZE)).astype(np.float32)
    upstream = rng.standard_normal((BATCH, C_OUT, SIZE, SIZE)).astype(np.float32)
    conv = Conv2d(C_IN, C_OUT, KERNEL, padding=PADDING, rng=0)
    x = Tensor(x_np, requires_grad=True)
    tt_step, tt_forward = tinytorch_step(conv, x, upstream), tinytorch_forward(conv, x)
    tt_weight = tinytorch_weight_step(conv, x_np, upstream)

    print(f"Conv2d({C_IN}, {C_OUT}, kernel_size={KERNEL}, padding={PADDING}) on ({BATCH}, {C_IN}, {SIZE}, {SIZE}) "
          f"float32, one thread; NumPy {np.__version__}" + (f", PyTorch {torch.__version__}" if torch else ""))
    timings = {k: [] for k in ("tinytorch", "tinytorch fwd", "tinytorch w", "torch", "torch fwd", "torch w")}
    if torch is not None:
        t_conv, t_x, t_step, t_forward, t_weight = torch_steps(conv.weight.data, conv.bias.data, x_np, upstream)
        # Same weights, same input: the two must agree before their times mean anything.
        tt_step()
        t_step()
        assert np.allclose(conv(Tensor(x_np)).data, t_conv(t_x).detach().numpy(), atol=1e-4)
        assert np.allclose(x.grad, t_x.grad.numpy(), atol=1e-3)
        assert np.allclose(conv.weight.grad, t_conv.weight.grad.numpy(), rtol=1e-4, atol=1e-2)
    for _ in range(3):  # warm-up: allocator, BLAS buffers, torch's kernel selection
        tt_step()
        if torch is not None:
            t_step()
    walls = {"tinytorch": [], "torch": []}
    for _ in range(args.rounds):
        walls["tinytorch"].append(wall(tt_step))
        if torch is not None:
            walls["torch"].append(wall(t_step))
        timings["tinytorch"].append(timed(tt_step))
        timings["tinytorch fwd"].append(timed(tt_forward))
        timings["tinytorch w"].append(timed(tt_weight))
        if torch is not None:
            timings["torch"].append(timed(t_step))
            timings["torch fwd"].append(timed(t_forward))
            timings["torch w"].append(timed(t_weight))
    med = {k: statistics.median(v) * 1e3 for k, v in timings.items() if v}
    best = {k: min(v) * 1e3 for k, v in timings.items() if v}

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; thread CPU time, median (best) "
          f"of {args.rounds} interleaved rounds")
    columns = [("", "forward+backward"), (" w", "fwd+bwd, no input grad"), (" fwd", "forward")]
    print(f"\n{'':30}" + "".join(f"{title:>25}" for _, title in columns))
    for label, key in [("TinyTorch im2col (Conv2dFn)", "tinytorch"), ("PyTorch nn.Conv2d", "torch")]:
        if timings[key]:
            print(f"{label:30}" + "".join(f"{med[key + c]:>12.2f} ({best[key + c]:6.2f}) ms" for c, _ in columns))
    if torch is not None:
        print(f"{'ratio TinyTorch / PyTorch':30}" + "".join(
            f"{med['tinytorch' + c] / med['torch' + c]:>14.2f}x ({best['tinytorch' + c] / best['torch' + c]:5.2f}x)"
            for c, _ in columns))
        print(f"{'(wall clock, median)':30}{statistics.median(walls['tinytorch']) * 1e3:>12.2f} ms vs "
              f"{statistics.median(walls['torch']) * 1e3:.2f} ms: "
              f"{statistics.median(walls['tinytorch']) / statistics.median(walls['torch']):.2f}x")
    else:
        print("(PyTorch not importable here: run with PYTHONPATH=. /tmp/torchenv/bin/python "
              "benchmarks/conv2d.py for the ratio)")

    small = x_np[: args.loop_batch]
    loop_s = min(timed(lambda: conv2d_loops(small, conv.weight.data, conv.bias.data, padding=PADDING)) for _ in range(2))  # CPU time
    loop_scaled = loop_s * BATCH / args.loop_batch * 1e3
    print(f"\nexplicit loops (conv2d_loops, forward only), measured at batch {args.loop_batch}: {loop_s * 1e3:.0f} ms; "
          f"scaled linearly to batch {BATCH}: {loop_scaled:.0f} ms")
    print(f"   = {loop_scaled / med['tinytorch fwd']:.0f}x the im2col forward"
          + (f", {loop_scaled / med['torch fwd']:.0f}x PyTorch's forward" if torch is not None else ""))

    # The weight gradient: sum over batch and positions of g (N, O, L) times cols (N, K, L).
    cols = im2col(x_np, KERNEL, 1, PADDING)
    g = upstream.reshape(BATCH, C_OUT, -1)
    choices = {
        "matmul(g, cols^T).sum(0)  [used]": lambda: np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0),
        "tensordot(g, cols, ([0,2],[0,2]))": lambda: np.tensordot(g, cols, axes=([0, 2], [0, 2])),
        "einsum('nol,nkl->ok', optimize)": lambda: np.einsum("nol,nkl->ok", g, cols, optimize=True),
        "einsum('nol,nkl->ok')": lambda: np.einsum("nol,nkl->ok", g, cols),
    }
    reference = choices["tensordot(g, cols, ([0,2],[0,2]))"]()
    print("\nweight-gradient contraction, thread CPU time, median of 20:")
    for name, fn in choices.items():
        assert np.allclose(fn(), reference, rtol=1e-3, atol=1e-2)
        print(f"   {name:36} {statistics.median(timed(fn) for _ in range(20)) * 1e3:6.2f} ms")

    # The target: forward + backward within 3x of PyTorch (medians of thread CPU time).
    name, goal = "Conv2d forward+backward vs PyTorch", "within 3x of PyTorch"
    if torch is None:
        report(name, f"TinyTorch {med['tinytorch']:.2f} ms, PyTorch not importable", goal, None)
    else:
        ratio = med["tinytorch"] / med["torch"]
        report(name, f"{ratio:.2f}x PyTorch ({med['tinytorch']:.2f} vs {med['torch']:.2f} ms CPU)", goal, ratio <= 3)


if __name__ == "__main__":
    main()
