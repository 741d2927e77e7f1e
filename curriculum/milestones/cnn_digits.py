"""Milestone: a convolutional network reads handwritten digits, 97%+ on held-out images.

The UCI digits bundled with TinyTorch (1,797 grey-scale 8x8 images), 80% for training and 20%
held out, kept as images (N, 1, 8, 8) instead of flattened rows. A small CNN built from module
09's layers,

    Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)      16 x 4 x 4
    Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)     32 x 2 x 2
    Flatten -> Linear(128, 10)

(6,090 parameters, a twentieth of the digits MLP's), trained with Adam, a cosine schedule and
module 08's Trainer. Every gradient of the convolutions flows through the im2col Conv2dFn and the
pooling Functions. The target, measured by the script: 97% held-out accuracy in under 3 minutes
of training on a 2-core machine.

Run: python curriculum/milestones/cnn_digits.py
"""

import time

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.training import CosineAnnealingLR, Trainer
from tinytorch.datasets import load_digits, train_test_split

TITLE = "CNN digits: 97%+ held-out accuracy with convolutions, in under 3 minutes"
# Modules 02 and 04 provide ReLU and CrossEntropyLoss, whose forward code autograd (06) replaces
# by its Functions: a broken ReLU or loss shows up as a broken 06.
REQUIRES = ["01_tensor", "03_layers", "05_dataloader", "06_autograd", "07_optimizers", "08_training", "09_spatial"]
SABOTAGE = {
    "01_tensor": "Implement Tensor.__init__",
    "03_layers": "Implement Linear.forward",
    "05_dataloader": "Implement DataLoader.batch_indices",
    "06_autograd": "Implement Function.apply",
    "07_optimizers": "Implement Adam.step",
    "08_training": "Implement Trainer.train_epoch",
    "09_spatial": "Implement Conv2dFn.backward",
}
BATCH_SIZE, LR = 32, 5e-3
FULL_EPOCHS, QUICK_EPOCHS = 20, 3
TARGET, QUICK_TARGET, TIME_LIMIT = 0.97, 0.90, 180.0


def build_model(rng):
    return Sequential(
        Conv2d(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(), Linear(32 * 2 * 2, 10, rng=rng),
    )


def run(quick=False, seed=0):
    images, labels = load_digits(flatten=False)
    images = images[:, None, :, :]                        # (N, 1, 8, 8): NCHW with one channel
    X_train, X_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, seed=seed)
    epochs = QUICK_EPOCHS if quick else FULL_EPOCHS
    g = np.random.default_rng(seed)
    model = build_model(g)
    optimizer = Adam(model.parameters(), lr=LR)
    train = DataLoader(TensorDataset(X_train, y_train), batch_size=BATCH_SIZE, shuffle=True, seed=g)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(train), warmup_steps=len(train) // 2)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), scheduler=scheduler, max_grad_norm=5.0, rng=g)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = trainer.fit(train, epochs, verbose=not quick)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    test = trainer.evaluate(DataLoader(TensorDataset(X_test, y_test), batch_size=len(X_test)))
    return {
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "train_accuracy": trainer.evaluate(DataLoader(TensorDataset(X_train, y_train), batch_size=512))["accuracy"],
        "final_train_loss": history["train_loss"][-1], "epochs": epochs, "steps": trainer.global_step,
        "train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "seconds_per_epoch": seconds / epochs,
        "parameters": int(sum(p.size for p in model.parameters())),
        "train_examples": len(X_train), "test_examples": len(X_test),
    }


def check(result, quick=False):
    """The full run: 97% held-out in under 3 minutes of (wall-clock) training. The quick run of the
    test suite (3 epochs, about a second of CPU) checks accuracy only, 90%: no timed assertions in tests."""
    target = QUICK_TARGET if quick else TARGET
    problems = []
    if not result["test_accuracy"] >= target:
        problems.append(f"held-out accuracy {result['test_accuracy']:.1%} is below {target:.0%}")
    if not quick and not result["train_seconds"] < TIME_LIMIT:
        problems.append(f"training took {result['train_seconds']:.1f} s, more than {TIME_LIMIT:.0f} s "
                        f"({result['train_cpu_seconds']:.1f} s of CPU time: is the machine busy?)")
    return problems


if __name__ == "__main__":
    result = run()
    print(TITLE)
    print(f"  {result['parameters']:,} parameters, {result['train_examples']} training / {result['test_examples']} "
          f"held-out images, {result['epochs']} epochs ({result['steps']} Adam steps)")
    print(f"  training {result['train_seconds']:.2f} s wall, {result['train_cpu_seconds']:.2f} s CPU "
          f"({result['seconds_per_epoch']:.2f} s per epoch), "
          f"train accuracy {result['train_accuracy']:.1%}, held-out accuracy {result['test_accuracy']:.1%}")
    problems = check(result)
    print("  achieved" if not problems else "  NOT achieved: " + "; ".join(problems))
    raise SystemExit(1 if problems else 0)
