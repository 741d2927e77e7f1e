"""Hidden graded tests of Module 08 (Training): instructors only, never released.

Sizes, hyperparameters, seeds and data come from `rng`, seeded by the grader at grading time, so
a hard-coded answer cannot pass. Expected values come from the NumPy oracles below.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = [pytest.mark.module("08_training"), pytest.mark.hidden]


# --- oracles ----------------------------------------------------------------------------------

def clip_oracle(grads, max_norm, norm_type):
    """PyTorch's clip_grad_norm_ on float64 copies: (total norm, clipped gradients)."""
    present = [np.asarray(g, np.float64) for g in grads if g is not None]
    if not present:
        return 0.0, grads
    if norm_type == math.inf:
        total = max(float(np.abs(g).max()) for g in present)
    else:
        total = float(sum(np.sum(np.abs(g) ** norm_type) for g in present) ** (1.0 / norm_type))
    coef = max_norm / (total + 1e-6)
    scale = coef if coef < 1 else 1.0
    return total, [None if g is None else np.asarray(g, np.float64) * scale for g in grads]


def cosine_oracle(t, base_lr, T_max, eta_min=0.0, warmup=0):
    if t < warmup:
        return base_lr * (t + 1) / (warmup + 1)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * (t - warmup) / T_max)) / 2


def softmax_regression_oracle(X, y, W, b, lr, epochs, batch_size, k=1, clip=None, momentum=0.0,
                              schedule=None, shuffle_seed=None):
    """SGD on softmax regression (logits = X W^T + b, mean cross-entropy), float64, with gradient
    accumulation over k batches (each loss divided by its group's size), global-norm clipping
    before each step and an optional schedule(step) -> lr. Returns (epoch losses, W, b, steps)."""
    X, W, b = X.astype(np.float64), W.astype(np.float64), b.astype(np.float64)
    n, step, losses, bufs = len(X), 0, [], [None, None]
    order_rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
    lr_now = schedule(0) if schedule else lr
    for _ in range(epochs):
        order = np.arange(n) if order_rng is None else order_rng.permutation(n)
        batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
        total, acc = 0.0, [np.zeros_like(W), np.zeros_like(b)]
        for i, idx in enumerate(batches):
            start = i - i % k
            group = min(k, len(batches) - start)
            z = X[idx] @ W.T + b
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            total += -logp[np.arange(len(idx)), y[idx]].sum()
            d = np.exp(logp)
            d[np.arange(len(idx)), y[idx]] -= 1
            d /= len(idx) * group
            acc[0] += d.T @ X[idx]
            acc[1] += d.sum(axis=0)
            if i - start == group - 1:
                if clip is not None:
                    norm = math.sqrt(float((acc[0] ** 2).sum() + (acc[1] ** 2).sum()))
                    if clip / (norm + 1e-6) < 1:
                        acc = [g * (clip / (norm + 1e-6)) for g in acc]
                for j, g in enumerate(acc):
                    if momentum:
                        bufs[j] = g.copy() if bufs[j] is None else momentum * bufs[j] + g
                        g = bufs[j]
                    if j == 0:
                        W = W - lr_now * g
                    else:
                        b = b - lr_now * g
                step += 1
                lr_now = schedule(step) if schedule else lr
                acc = [np.zeros_like(W), np.zeros_like(b)]
        losses.append(total / n)
    return losses, W, b, step


def problem(rng, n=None, d=None, c=None):
    n = int(rng.integers(30, 60)) if n is None else n
    d = int(rng.integers(3, 7)) if d is None else d
    c = int(rng.integers(2, 5)) if c is None else c
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, c, n).astype(np.int64)
    W = (0.3 * rng.standard_normal((c, d))).astype(np.float32)
    b = (0.1 * rng.standard_normal(c)).astype(np.float32)
    return X, y, W, b


TRAIN = (
    "model = Linear(X.shape[1], W.shape[0])\n"
    "model.weight.data[...] = W\n"
    "model.bias.data[...] = b\n"
    "opt = SGD(model.parameters(), lr=lr, momentum=momentum)\n"
    "sched = CosineAnnealingLR(opt, T_max=tmax, warmup_steps=warmup) if tmax else None\n"
    "trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, max_grad_norm=clip, accumulation_steps=k)\n"
    "loader = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=shuffle_seed is not None, seed=shuffle_seed)\n"
    "losses = [trainer.train_epoch(loader) for _ in range(epochs)]\n"
    "(losses, model.weight.data, model.bias.data, trainer.epoch, trainer.global_step)"
)


def run_train(student, X, y, W, b, *, lr, epochs, bs, k=1, clip=None, momentum=0.0, tmax=0, warmup=0,
              shuffle_seed=None):
    got = student.value(TRAIN, X=X, y=y, W=W, b=b, lr=lr, epochs=epochs, bs=bs, k=k, clip=clip,
                        momentum=momentum, tmax=tmax, warmup=warmup, shuffle_seed=shuffle_seed)
    schedule = (lambda t: cosine_oracle(t, lr, tmax, 0.0, warmup)) if tmax else None
    expected = softmax_regression_oracle(X, y, W, b, lr, epochs, bs, k, clip, momentum, schedule, shuffle_seed)
    losses, w, bias, epoch, steps = got
    assert type(losses) is list and len(losses) == epochs and all(type(v) is float for v in losses), \
        f"train_epoch returns the mean loss as a Python float, got {losses!r:.200}"
    assert np.allclose(losses, expected[0], rtol=1e-4, atol=1e-5), f"epoch losses {losses}, expected {expected[0]}"
    assert_array(w, expected[1], dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_array(bias, expected[2], dtype=np.float32, rtol=1e-4, atol=1e-5)
    assert_exact(epoch, epochs)
    assert_exact(steps, expected[3])


CLIP = (
    "params = [Parameter(np.zeros(np.shape(g) if g is not None else 2)) for g in grads]\n"
    "for p, g in zip(params, grads):\n"
    "    p.grad = None if g is None else np.array(g, dtype=np.float32)\n"
    "arrays = [p.grad for p in params]\n"
    "total = clip_grad_norm_(params, max_norm, norm_type)\n"
    "(total, [p.grad for p in params], [p.grad is a for p, a in zip(params, arrays)])"
)


MAKE = (
    "def make(init_seed):\n"
    "    model = Sequential(Linear(X.shape[1], 12, rng=init_seed), ReLU(), Linear(12, int(y.max()) + 1, rng=init_seed + 1))\n"
    "    opt = (SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True) if use_sgd else AdamW(model.parameters(), lr=lr))\n"
    "    sched = CosineAnnealingLR(opt, T_max=tmax, warmup_steps=2)\n"
    "    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, max_grad_norm=1.0, rng=run_seed)\n"
    "    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=trainer.rng)\n"
    "    return trainer, loader\n"
)
PREAMBLE = "from tinytorch.core.activations import ReLU\nimport io\n" + MAKE



def u(rng, low, high):
    return float(rng.uniform(low, high))


@pytest.mark.points(2)
def test_clip_random_shapes_and_norms(student, rng):
    grads = [None if rng.random() < 0.25 else (u(rng, 0.1, 3) * rng.standard_normal(
        tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 4)))))).astype(np.float32)
        for _ in range(int(rng.integers(2, 6)))]
    grads[0] = rng.standard_normal(3).astype(np.float32)
    for norm_type in (2.0, 1.0, 3.0, math.inf):
        total_norm = clip_oracle(grads, 1.0, norm_type)[0]
        max_norm = total_norm * u(rng, 0.05, 0.95) if rng.random() < 0.75 else total_norm * u(rng, 1.1, 3)
        total, clipped, same = student.value(CLIP, grads=grads, max_norm=max_norm, norm_type=norm_type)
        want_total, want = clip_oracle(grads, max_norm, norm_type)
        assert type(total) is float and abs(total - want_total) <= 1e-5 * want_total, (norm_type, total, want_total)
        for g, w in zip(clipped, want):
            if w is None:
                assert g is None
            else:
                assert_array(g, w, dtype=np.float32, rtol=1e-5, atol=1e-6)
        assert all(same)


@pytest.mark.points(2)
def test_cosine_schedule_random(student, rng):
    base, eta = u(rng, 1e-4, 1.0), u(rng, 0.0, 1e-4)
    T, warm = int(rng.integers(2, 40)), int(rng.integers(0, 12))
    got = student.value("[cosine_lr(t, base, T, eta, warm) for t in range(T + warm + 5)]", base=base, T=T, eta=eta, warm=warm)
    assert np.allclose(got, [cosine_oracle(t, base, T, eta, warm) for t in range(T + warm + 5)], rtol=1e-12, atol=1e-15)
    lrs, state = student.value(
        "opt = SGD([Parameter(np.ones(2))], lr=base)\n"
        "sched = CosineAnnealingLR(opt, T_max=T, eta_min=eta, warmup_steps=warm)\n"
        "lrs = [opt.lr]\n"
        "for _ in range(n):\n"
        "    sched.step()\n"
        "    lrs.append(opt.lr)\n"
        "(lrs, sched.last_epoch)",
        base=base, T=T, eta=eta, warm=warm, n=T + warm + 2,
    )
    assert np.allclose(lrs, [cosine_oracle(t, base, T, eta, warm) for t in range(T + warm + 3)], rtol=1e-12, atol=1e-15)
    assert state == T + warm + 2


@pytest.mark.points(3)
def test_train_epoch_random_configurations(student, rng):
    for _ in range(3):
        X, y, W, b = problem(rng)
        bs, k = int(rng.integers(2, 9)), int(rng.integers(1, 5))
        clip = None if rng.random() < 0.3 else u(rng, 0.05, 0.5)
        tmax = 0 if rng.random() < 0.3 else int(rng.integers(3, 30))
        run_train(student, X, y, W, b, lr=u(rng, 0.05, 0.5), epochs=int(rng.integers(1, 4)), bs=bs, k=k, clip=clip,
                  momentum=u(rng, 0.0, 0.9) if rng.random() < 0.5 else 0.0, tmax=tmax,
                  warmup=int(rng.integers(0, 4)) if tmax else 0,
                  shuffle_seed=int(rng.integers(1000)) if rng.random() < 0.7 else None)


@pytest.mark.points(2)
def test_evaluate_random(student, rng):
    X, y, W, b = problem(rng, n=int(rng.integers(20, 80)))
    m, mode = student.value(
        "model = Linear(X.shape[1], W.shape[0])\n"
        "model.weight.data[...] = W\n"
        "model.bias.data[...] = b\n"
        "trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())\n"
        "m = trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=True, seed=3))\n"
        "(m, model.training)",
        X=X, y=y, W=W, b=b, bs=int(rng.integers(3, 17)),
    )
    z = X.astype(np.float64) @ W.T.astype(np.float64) + b
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert abs(m["loss"] - (-logp[np.arange(len(y)), y].mean())) < 1e-5
    assert abs(m["accuracy"] - float((z.argmax(axis=1) == y).mean())) < 1e-12
    assert mode is True
    Xr = rng.standard_normal((15, 3)).astype(np.float32)
    Yr = rng.standard_normal((15, 2)).astype(np.float32)
    Wr = rng.standard_normal((2, 3)).astype(np.float32)
    mr = student.value(
        "model = Linear(3, 2)\n"
        "model.weight.data[...] = Wr\n"
        "model.bias.data[...] = 0\n"
        "Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss()).evaluate(DataLoader(TensorDataset(Xr, Yr), batch_size=4))",
        Xr=Xr, Yr=Yr, Wr=Wr,
    )
    assert mr["accuracy"] is None, "regression outputs have no accuracy"
    # the batches have 4, 4, 4 and 3 rows: the mean over examples weights each batch by its size
    assert abs(mr["loss"] - float(np.mean(((Xr @ Wr.T - Yr) ** 2).mean(axis=1)))) < 1e-5


@pytest.mark.points(3)
def test_checkpoint_random_split_point(student, rng):
    X, y, _, _ = problem(rng, n=int(rng.integers(30, 60)))
    first, later = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    use_sgd = bool(rng.integers(2))
    expected, resumed, files, lr_pair = student.value(
        PREAMBLE +
        "t1, l1 = make(0)\n"
        "for _ in range(first):\n"
        "    t1.train_epoch(l1)\n"
        "folder = tempfile.mkdtemp(dir='.')\n"
        "path = os.path.join(folder, 'ckpt.npz')\n"
        "t1.save_checkpoint(path)\n"
        "t1.save_checkpoint(path)\n"
        "expected = [t1.train_epoch(l1) for _ in range(later)]\n"
        "t2, l2 = make(17)\n"
        "t2.load_checkpoint(path)\n"
        "resumed = [t2.train_epoch(l2) for _ in range(later)]\n"
        "(expected, resumed, sorted(os.listdir(folder)), [t1.optimizer.lr, t2.optimizer.lr])",
        X=X, y=y, lr=u(rng, 1e-3, 0.02), tmax=int(rng.integers(20, 60)), run_seed=int(rng.integers(10 ** 6)),
        first=first, later=later, use_sgd=use_sgd,
    )
    assert files == ["ckpt.npz"]
    assert resumed == expected, f"resumed {resumed}\nuninterrupted {expected}"
    assert lr_pair[0] == lr_pair[1]


@pytest.mark.points(2)
def test_fit_random_length(student, rng):
    X, y, _, _ = problem(rng, n=int(rng.integers(20, 40)))
    epochs = int(rng.integers(21, 120))
    text, hist = student.value(
        PREAMBLE +
        "t, l = make(0)\n"
        "buf = io.StringIO()\n"
        "hist = t.fit(l, epochs, file=buf)\n"
        "(buf.getvalue(), {k: list(v) for k, v in hist.items()})",
        X=X, y=y, lr=0.005, tmax=10 ** 6, run_seed=1, epochs=epochs, use_sgd=False,
    )
    lines = text.splitlines()
    assert 10 <= len(lines) <= 21, f"{epochs} epochs: {len(lines)} lines"
    assert lines[0].startswith(f"epoch 1/{epochs}") and lines[-1].startswith(f"epoch {epochs}/{epochs}")
    assert len(hist["train_loss"]) == epochs and hist["val_loss"] == [] and hist["val_accuracy"] == []
