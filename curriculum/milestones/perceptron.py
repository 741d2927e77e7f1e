"""Milestone: Rosenblatt's perceptron (1957) learns a linearly separable 2-D problem.

After modules 01-04 a student's framework can run a forward pass: `Linear` (03) on `Tensor`s
(01), a `Sigmoid` (02) to read the output as a probability, a loss (04) to score it. No
gradients yet, and none needed: the perceptron learning rule is older than backpropagation.
For each misclassified example (x, y), move the weights towards it,

    w <- w + lr * (y - prediction) * x,     b <- b + lr * (y - prediction),

and stop after an epoch without a mistake. The perceptron convergence theorem (Novikoff, 1962)
promises that this happens after at most (R / margin)^2 updates when the classes are separable
with a margin, which they are here by construction: two clouds on either side of the line
x1 + x2 = 0, with a gap around it.

Run: python curriculum/milestones/perceptron.py
"""

import time

import numpy as np

from tinytorch.core.activations import Sigmoid
from tinytorch.core.layers import Linear
from tinytorch.core.losses import BinaryCrossEntropyLoss
from tinytorch.core.tensor import Tensor

TITLE = "1957 Perceptron: a linear classifier learns a separable 2-D problem"
REQUIRES = ["01_tensor", "02_activations", "03_layers", "04_losses"]
SABOTAGE = {
    "01_tensor": "Implement Tensor.matmul",
    "02_activations": "Implement Sigmoid.forward",
    "03_layers": "Implement Linear.forward",
    "04_losses": "Implement BinaryCrossEntropyLoss.forward",
}


def separable_data(n, seed, margin=0.1):
    """Two Gaussian clouds around (-0.7, -0.7) and (0.7, 0.7), label 1 above x1 + x2 = 0; points
    closer than `margin` to that line are dropped, so the classes are separable with a margin."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 2 * n)
    X = rng.standard_normal((2 * n, 2)) + np.where(y[:, None] == 1, 0.7, -0.7)
    keep = (X.sum(axis=1) * np.where(y == 1, 1, -1)) / np.sqrt(2) > margin
    return X[keep][:n].astype(np.float32), y[keep][:n].astype(np.float32)


def predict(model, X):
    """Probabilities of class 1 for the rows of X: Sigmoid(Linear(x)), a forward pass of 01-03."""
    return Sigmoid()(model(Tensor(X))).data[:, 0]


def run(quick=False, seed=0):
    n = 100 if quick else 400
    X, y = separable_data(n, seed)
    X_test, y_test = separable_data(n, seed + 1000)
    model = Linear(2, 1)
    model.weight.data[...] = 0.0                           # Rosenblatt's start: all weights zero
    model.bias.data[...] = 0.0
    bce = BinaryCrossEntropyLoss()
    initial_loss = float(bce(Tensor(predict(model, X)), Tensor(y)).data)
    rng = np.random.default_rng(seed)
    lr, updates, epochs, converged = 0.1, 0, 0, False
    start = time.perf_counter()
    while epochs < 100 and not converged:
        epochs += 1
        mistakes = 0
        for i in rng.permutation(len(X)):                 # online, one example at a time
            guess = 1.0 if predict(model, X[i:i + 1])[0] >= 0.5 else 0.0
            if guess != y[i]:
                error = y[i] - guess                       # +1 or -1: which way to move
                model.weight.data += lr * error * X[i:i + 1]
                model.bias.data += lr * error
                mistakes += 1
        updates += mistakes
        converged = mistakes == 0
    seconds = time.perf_counter() - start
    # BCE is not what the perceptron rule minimises, but it must have dropped from the random start.
    final_loss = float(bce(Tensor(predict(model, X)), Tensor(y)).data)
    return {
        "train_accuracy": float(np.mean((predict(model, X) >= 0.5) == y)),
        "test_accuracy": float(np.mean((predict(model, X_test) >= 0.5) == y_test)),
        "converged": converged, "epochs": epochs, "updates": updates,
        "initial_bce": initial_loss, "final_bce": final_loss, "train_seconds": seconds, "examples": len(X),
    }


def check(result, quick=False):
    problems = []
    if not result["converged"]:
        problems.append(f"the perceptron did not converge within {result['epochs']} epochs")
    if result["train_accuracy"] < 1.0:
        problems.append(f"training accuracy is {result['train_accuracy']:.1%}, not 100%")
    if result["test_accuracy"] < 0.95:
        problems.append(f"held-out accuracy is {result['test_accuracy']:.1%}, below 95%")
    if not result["final_bce"] < result["initial_bce"]:
        problems.append(f"the BCE loss did not drop ({result['initial_bce']:.3f} -> {result['final_bce']:.3f})")
    return problems


if __name__ == "__main__":
    result = run()
    print(TITLE)
    print(f"  {result['examples']} examples, converged after {result['epochs']} epochs and {result['updates']} updates "
          f"in {result['train_seconds']:.2f} s")
    print(f"  training accuracy {result['train_accuracy']:.1%}, held-out accuracy {result['test_accuracy']:.1%}, "
          f"BCE {result['initial_bce']:.3f} -> {result['final_bce']:.3f}")
    problems = check(result)
    print("  achieved" if not problems else "  NOT achieved: " + "; ".join(problems))
    raise SystemExit(1 if problems else 0)
