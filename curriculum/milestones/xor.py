"""Milestone: XOR (Minsky and Papert, 1969 -> Rumelhart, Hinton and Williams, 1986).

Label a point 1 when its two coordinates have the same sign: four clouds at the corners of a
square, opposite corners in the same class. No straight line separates them, so a single linear
layer gets about three of the four clouds right (75%, a little more when a line clips the fourth),
however long it trains; that observation stalled neural-network research for over a decade. One
hidden layer with a non-linearity, trained by backpropagation, solves it.

The script trains both with the same loop (autograd, module 06; Adam, module 07), measures the
best accuracy the linear model ever reaches over several restarts, and the MLP's accuracy on
training and held-out points.

Run: python curriculum/milestones/xor.py
"""

import time

import numpy as np

from tinytorch.core.activations import Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.datasets import make_xor

TITLE = "XOR: one linear layer cannot solve it, a hidden layer can"
# Modules 02 and 04 provide the Tanh and CrossEntropyLoss classes, but once autograd (06) is
# imported their forward code is 06's Functions, so 06 is what a broken loss or activation breaks.
REQUIRES = ["01_tensor", "03_layers", "06_autograd", "07_optimizers"]
SABOTAGE = {
    "01_tensor": "Implement Tensor.__init__",
    "03_layers": "Implement Sequential.forward",
    "06_autograd": "Implement MatMul.backward",
    "07_optimizers": "Implement Adam.step",
}


def xor_data(n, seed):
    """make_xor's points pushed 0.5 away from both axes: four clouds with a margin between them."""
    X, y = make_xor(n_samples=n, seed=seed)
    return (X + 0.5 * np.sign(X)).astype(np.float32), y


def accuracy(model, X, y):
    with no_grad():
        return float(np.mean(model(Tensor(X)).data.argmax(axis=1) == y))


def train(model, X, y, steps, lr):
    """Full-batch training: the five-line loop. Returns the best training accuracy seen."""
    optimizer, loss_fn, best = Adam(model.parameters(), lr=lr), CrossEntropyLoss(), 0.0
    for step in range(steps):
        optimizer.zero_grad()
        loss_fn(model(Tensor(X)), y).backward()
        optimizer.step()
        if step % 10 == 9 or step == steps - 1:
            best = max(best, accuracy(model, X, y))
    return best


def run(quick=False, seed=0):
    n, steps, restarts = (200, 150, 3) if quick else (800, 300, 5)
    X, y = xor_data(n, seed)
    X_test, y_test = xor_data(n, seed + 1000)
    start = time.perf_counter()
    linear_best = max(train(Linear(2, 2, rng=seed + r), X, y, steps, lr=0.05) for r in range(restarts))
    linear_seconds = time.perf_counter() - start
    g = np.random.default_rng(seed)
    mlp = Sequential(Linear(2, 8, rng=g), Tanh(), Linear(8, 2, rng=g))
    start = time.perf_counter()
    train(mlp, X, y, steps, lr=0.05)
    mlp_seconds = time.perf_counter() - start
    return {
        "linear_best_accuracy": linear_best, "linear_restarts": restarts,
        "mlp_train_accuracy": accuracy(mlp, X, y), "mlp_test_accuracy": accuracy(mlp, X_test, y_test),
        "steps": steps, "examples": n, "linear_seconds": linear_seconds, "mlp_seconds": mlp_seconds,
    }


def check(result, quick=False):
    problems = []
    if result["linear_best_accuracy"] >= 1.0:
        problems.append("a single linear layer reached 100% on XOR, which is impossible: the data is wrong")
    if result["mlp_train_accuracy"] < 1.0:
        problems.append(f"the MLP reached only {result['mlp_train_accuracy']:.1%} on the training points")
    if result["mlp_test_accuracy"] < 1.0:
        problems.append(f"the MLP reached only {result['mlp_test_accuracy']:.1%} on held-out points")
    return problems


if __name__ == "__main__":
    result = run()
    print(TITLE)
    print(f"  {result['examples']} points, {result['steps']} full-batch Adam steps per model")
    print(f"  one linear layer : best accuracy {result['linear_best_accuracy']:.1%} over "
          f"{result['linear_restarts']} restarts ({result['linear_seconds']:.2f} s)")
    print(f"  2-8-2 MLP (tanh) : training {result['mlp_train_accuracy']:.1%}, held-out "
          f"{result['mlp_test_accuracy']:.1%} ({result['mlp_seconds']:.2f} s)")
    problems = check(result)
    print("  achieved" if not problems else "  NOT achieved: " + "; ".join(problems))
    raise SystemExit(1 if problems else 0)
