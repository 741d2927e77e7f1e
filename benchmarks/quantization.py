"""Int8 against float32 on the digits MLP: weight bytes, accuracy and inference latency.

    python benchmarks/quantization.py [--epochs 20] [--repeats 50]
    /tmp/torchenv/bin/python benchmarks/quantization.py     # adds PyTorch's side-by-side

Trains the MLP of modules 15 and 16 (64-256-128-10, ReLU, Adam, batches of 32, seeded) on 75%
of the bundled digits with tinytorch, then, in one run, measures on the other 450 digits:

- float32 (tinytorch), int8 dynamic and int8 static (min/max calibration on 500 training
  images), per-channel symmetric int8 weights (tinytorch.perf.quantization.quantize_model);
- bytes of the weight matrices alone and of everything stored (biases, scales, zero points);
- test accuracy and the agreement of the int8 predictions with the float32 ones;
- latency under no_grad, median of --repeats runs after warm-up (tinytorch.perf.profiling's
  measure_latency), for batch 1 and the whole test set (450 rows).

If PyTorch is importable (it is never a dependency of the project; use a separate venv), the
same trained weights are loaded into torch.nn.Linear layers and quantized with
torch.ao.quantization.quantize_dynamic (fbgemm/x86 int8 kernels), and measured the same way:
the speed-up real int8 kernels give, which NumPy (no int8 GEMM) cannot.

Ratios are what to compare (int8 / float32, in the same run); absolute times move with the
machine's load, so each latency is also measured in CPU time of this process (time.process_time),
the steadier figure on a shared machine. BLAS (and torch) are pinned to one thread. No test
asserts on these numbers.

Measured 2026-11-26 (Linux, 2 cores, shared and loaded; NumPy 2.4, torch 2.13.0+cpu in a
separate venv), one run; latency ratios int8 / float32, wall (CPU):

    model                    stored bytes   x fewer   accuracy   batch 1        batch 450
    tinytorch float32           203,304      1.00     96.67%     1              1
    tinytorch int8 dynamic       53,584      3.79     96.67%     4.7x (4.5x)    2.0x (1.6x)
    tinytorch int8 static        53,608      3.79     96.67%     2.3x (2.2x)    2.1x (1.5x)
    torch float32               203,304      1.00     96.67%     1              1
    torch int8 dynamic           52,044      3.91     96.89%     3.1x (3.2x)    0.50x (0.71x)

Weight matrices alone: 201,728 -> 52,008 bytes (3.88x, int8 plus one float32 scale per row).
tinytorch's int8 keeps every prediction of the float model (100% agreement) but is slower: NumPy
has no int8 GEMM, so quantizing the input, the float BLAS product of the integers and the
rescale are extra passes. PyTorch's fbgemm int8 kernels make batch 450 faster than float32;
at batch 1 the per-call cost of quantizing the input dominates there too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from targets import report  # noqa: E402  (benchmarks/targets.py)
from tinytorch.core.activations import ReLU  # noqa: E402
from tinytorch.core.autograd import no_grad  # noqa: E402
from tinytorch.core.layers import Linear, Sequential  # noqa: E402
from tinytorch.core.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.tensor import Tensor  # noqa: E402
from tinytorch.datasets import load_digits, train_test_split  # noqa: E402
from tinytorch.perf.profiling import measure_latency, named_layers  # noqa: E402
from tinytorch.perf.quantization import QuantizedLinear, model_nbytes, quantize_model  # noqa: E402

try:
    import torch
except ImportError:  # the project never depends on PyTorch
    torch = None


def train_mlp(x_train, y_train, epochs, seed=0):
    model = Sequential(Linear(64, 256, rng=seed), ReLU(), Linear(256, 128, rng=seed + 1), ReLU(),
                       Linear(128, 10, rng=seed + 2))
    optimizer, loss_fn, shuffle = Adam(model.parameters(), lr=1e-3), CrossEntropyLoss(), np.random.default_rng(seed)
    for _ in range(epochs):
        order = shuffle.permutation(len(x_train))
        for start in range(0, len(x_train), 32):
            rows = order[start:start + 32]
            loss = loss_fn(model(Tensor(x_train[rows])), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def weight_matrix_bytes(model):
    total = 0
    for _, layer in named_layers(model):
        if isinstance(layer, QuantizedLinear):
            total += layer.weight_q.nbytes + layer.weight_scale.nbytes
        elif isinstance(layer, Linear):
            total += layer.weight.data.nbytes
    return total


def median_ms(fn, repeats, clock=None):
    return measure_latency(fn, warmup=5, repeats=repeats, clock=clock)["median"] * 1e3


def timings(fn_one, fn_full, repeats):
    """Wall-clock and CPU-time medians (ms) of batch 1 and the full batch: on a shared, loaded
    machine the process's CPU time is the steadier figure."""
    return {"batch 1 ms": median_ms(fn_one, repeats), "batch 450 ms": median_ms(fn_full, repeats),
            "batch 1 cpu ms": median_ms(fn_one, repeats, time.process_time),
            "batch 450 cpu ms": median_ms(fn_full, repeats, time.process_time)}


def measure_tinytorch(models, x_test, y_test, repeats):
    rows = {}
    with no_grad():
        reference = models["float32"](Tensor(x_test)).data.argmax(axis=1)
        for name, model in models.items():
            predictions = model(Tensor(x_test)).data.argmax(axis=1)
            one, full = Tensor(x_test[:1]), Tensor(x_test)
            rows[name] = {
                "weight bytes": weight_matrix_bytes(model), "stored bytes": model_nbytes(model),
                "accuracy": float((predictions == y_test).mean()),
                "agreement": float((predictions == reference).mean()),
                **timings(lambda: model(one), lambda: model(full), repeats),
            }
    return rows


def measure_torch(model, x_test, y_test, repeats):
    """The same weights in torch.nn, float32 and quantize_dynamic int8 (x86/fbgemm kernels)."""
    torch.set_num_threads(1)
    linears = [layer for _, layer in named_layers(model) if isinstance(layer, Linear)]
    modules = []
    for layer in linears:
        dense = torch.nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            dense.weight.copy_(torch.from_numpy(layer.weight.data))
            dense.bias.copy_(torch.from_numpy(layer.bias.data))
        modules += [dense, torch.nn.ReLU()]
    float_model = torch.nn.Sequential(*modules[:-1]).eval()
    with warnings.catch_warnings():   # torch.ao.quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        int8_model = torch.ao.quantization.quantize_dynamic(float_model, {torch.nn.Linear}, dtype=torch.qint8)
    x_all, x_one = torch.from_numpy(x_test), torch.from_numpy(x_test[:1])
    rows = {}
    with torch.inference_mode():
        reference = float_model(x_all).argmax(dim=1).numpy()
        for name, net in (("torch float32", float_model), ("torch int8 dynamic", int8_model)):
            predictions = net(x_all).argmax(dim=1).numpy()
            if name == "torch float32":
                weights = sum(m.weight.numel() * 4 for m in net if isinstance(m, torch.nn.Linear))
                stored = weights + sum(m.bias.numel() * 4 for m in net if isinstance(m, torch.nn.Linear))
            else:
                packed = [m._packed_params._weight_bias() for m in net if hasattr(m, "_packed_params")]
                weights = sum(w.int_repr().numel() + 4 + 8 for w, _ in packed)   # int8 values, one scale, one zero point
                stored = weights + sum(b.numel() * 4 for _, b in packed)
            rows[name] = {
                "weight bytes": weights, "stored bytes": stored,
                "accuracy": float((predictions == y_test).mean()),
                "agreement": float((predictions == reference).mean()),
                **timings(lambda: net(x_one), lambda: net(x_all), repeats),
            }
    return rows


LATENCIES = (("batch 1 ms", "b1 wall"), ("batch 1 cpu ms", "b1 CPU"), ("batch 450 ms", "b450 wall"),
             ("batch 450 cpu ms", "b450 CPU"))


def show(rows, baseline):
    """One row per model; latencies as median ms and (ratio to the baseline), wall and CPU time."""
    base = rows[baseline]
    print(f"{'model':<20} {'weight B':>9} {'stored B':>9} {'x fewer':>7} {'accuracy':>9} {'vs float':>8} {'agree':>7}"
          + "".join(f" {label + ' ms (x)':>17}" for _, label in LATENCIES))
    for name, row in rows.items():
        latency = "".join(f" {row[key]:>9.3f} ({row[key] / base[key]:4.2f})" for key, _ in LATENCIES)
        print(f"{name:<20} {row['weight bytes']:>9,} {row['stored bytes']:>9,} "
              f"{base['stored bytes'] / row['stored bytes']:>7.2f} {100 * row['accuracy']:>8.2f}% "
              f"{100 * (row['accuracy'] - base['accuracy']):>+7.2f}p {100 * row['agreement']:>6.1f}%{latency}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    images, labels = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, seed=0)
    model = train_mlp(x_train, y_train, args.epochs)
    models = {
        "float32": model,
        "int8 dynamic": quantize_model(model),
        "int8 static min/max": quantize_model(model, [x_train[i:i + 100] for i in range(0, 500, 100)]),
    }
    print(f"digits MLP 64-256-128-10, {args.epochs} epochs; {len(x_test)} test digits; "
          f"BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}; latency = median of {args.repeats} runs")
    print("\ntinytorch (NumPy; int8 accumulation through float BLAS, exact)")
    rows = measure_tinytorch(models, x_test, y_test, args.repeats)
    show(rows, "float32")
    if torch is None:
        print("\nPyTorch is not importable here: run with a venv that has torch for the side-by-side.")
    else:
        print(f"\nPyTorch {torch.__version__}, quantized engine {torch.backends.quantized.engine} (the same trained weights)")
        show(measure_torch(model, x_test, y_test, args.repeats), "torch float32")

    # The target, for each of tinytorch's int8 models: about 4x smaller (at least 3.5x
    # fewer bytes stored) and less than 1 point of test accuracy lost against float32.
    base = rows["float32"]
    for variant in ("int8 dynamic", "int8 static min/max"):
        row = rows[variant]
        fewer = base["stored bytes"] / row["stored bytes"]
        lost = 100 * (base["accuracy"] - row["accuracy"])   # points; negative: int8 did better
        report(f"quantization, digits MLP {variant}", f"{fewer:.2f}x fewer bytes, {lost:.2f} points lost",
               ">= 3.5x fewer bytes, < 1 point lost", fewer >= 3.5 and lost < 1)


if __name__ == "__main__":
    main()
