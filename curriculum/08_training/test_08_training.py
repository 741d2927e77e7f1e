"""Public graded tests of Module 08 (Training). Run with: pytest --module 08_training

Inputs are made here with NumPy. Your notebook trains with them and returns plain data (losses,
weight arrays, learning rates, the printed progress); the expected values come from NumPy
oracles in this file: softmax regression with hand-written gradients, PyTorch's formulas for
clipping and for the cosine schedule.
"""

import math

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("08_training")


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


# --- clip_grad_norm_ and the schedule ---------------------------------------------------------

CLIP = (
    "params = [Parameter(np.zeros(np.shape(g) if g is not None else 2)) for g in grads]\n"
    "for p, g in zip(params, grads):\n"
    "    p.grad = None if g is None else np.array(g, dtype=np.float32)\n"
    "arrays = [p.grad for p in params]\n"
    "total = clip_grad_norm_(params, max_norm, norm_type)\n"
    "(total, [p.grad for p in params], [p.grad is a for p, a in zip(params, arrays)])"
)


@pytest.mark.points(2)
def test_clip_grad_norm_scales_in_place_and_returns_the_norm(student, rng):
    grads = [rng.standard_normal((3, 4)), None, rng.standard_normal(5), rng.standard_normal((2, 1, 2))]
    grads = [None if g is None else np.asarray(g, np.float32) for g in grads]
    norm2 = clip_oracle(grads, 1.0, 2.0)[0]
    for max_norm, norm_type in [(norm2 / 3, 2.0), (norm2 * 2, 2.0), (0.5, math.inf), (1.0, 1.0)]:
        total, clipped, same = student.value(CLIP, grads=grads, max_norm=max_norm, norm_type=norm_type)
        want_total, want = clip_oracle(grads, max_norm, norm_type)
        assert type(total) is float, f"clip_grad_norm_ returns the total norm as a float, got {type(total).__name__}"
        assert abs(total - want_total) <= 1e-5 * want_total, f"norm_type={norm_type}: total {total}, expected {want_total}"
        for g, w in zip(clipped, want):
            if w is None:
                assert g is None, "a parameter without gradient keeps None"
            else:
                assert_array(g, w, dtype=np.float32, rtol=1e-5, atol=1e-6)
        assert same == [True] * len(grads), "clip the gradient arrays in place (p.grad stays the same array)"
    assert student.value("clip_grad_norm_([Parameter(np.ones(3))], 1.0)") == 0.0


@pytest.mark.points(1)
def test_cosine_lr_with_and_without_warmup(student, rng):
    base, eta, T, warm = float(rng.uniform(0.01, 1.0)), float(rng.uniform(0, 0.01)), int(rng.integers(5, 20)), 3
    got = student.value("[cosine_lr(t, base, T, eta, warm) for t in range(T + warm + 3)] + "
                        "[cosine_lr(t, base, T) for t in range(T + 1)]", base=base, T=T, eta=eta, warm=warm)
    want = [cosine_oracle(t, base, T, eta, warm) for t in range(T + warm + 3)] + \
        [cosine_oracle(t, base, T) for t in range(T + 1)]
    assert np.allclose(got, want, rtol=1e-12, atol=1e-15), f"got {got}\nexpected {want}"


@pytest.mark.points(1)
def test_scheduler_sets_the_optimizer_lr_every_step(student, rng):
    base, T, warm = float(rng.uniform(1e-3, 0.1)), int(rng.integers(4, 10)), int(rng.integers(0, 4))
    lrs, last = student.value(
        "opt = Adam([Parameter(np.ones(2))], lr=base)\n"
        "sched = CosineAnnealingLR(opt, T_max=T, warmup_steps=warm)\n"
        "lrs = [opt.lr]\n"
        "for _ in range(T + warm):\n"
        "    sched.step()\n"
        "    lrs.append(opt.lr)\n"
        "(lrs, sched.get_last_lr())",
        base=base, T=T, warm=warm,
    )
    want = [cosine_oracle(t, base, T, 0.0, warm) for t in range(T + warm + 1)]
    assert np.allclose(lrs, want, rtol=1e-12, atol=1e-15), f"lr after each step: {lrs}\nexpected {want}"
    assert np.allclose(last, [want[-1]], atol=1e-15)


# --- the Trainer --------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_train_epoch_is_sgd_on_every_batch(student, rng):
    X, y, W, b = problem(rng)
    run_train(student, X, y, W, b, lr=0.2, epochs=3, bs=8)


@pytest.mark.points(2)
def test_train_epoch_accumulates_clips_and_schedules(student, rng):
    X, y, W, b = problem(rng, n=45)
    # 45 examples in batches of 4: 12 batches, groups of 5, 5 and 2 micro-batches.
    run_train(student, X, y, W, b, lr=0.5, epochs=2, bs=4, k=5, clip=0.3, momentum=0.9, tmax=8, warmup=1)


@pytest.mark.points(2)
def test_evaluate_restores_mode_and_builds_no_graph(student, rng):
    X, y, W, b = problem(rng, n=37)
    metrics, modes, grads = student.value(
        "model = Sequential(Linear(X.shape[1], W.shape[0]))\n"
        "model[0].weight.data[...] = W\n"
        "model[0].bias.data[...] = b\n"
        "trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())\n"
        "seen = []\n"
        "forward = model[0].forward\n"
        "model[0].forward = lambda x: (seen.append(model[0].training), forward(x))[1]\n"
        "m = trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=10))\n"
        "model.eval()\n"
        "trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=10))\n"
        "(m, [seen[0], model.training], [p.grad is None for p in model.parameters()])",
        X=X, y=y, W=W, b=b,
    )
    z = X.astype(np.float64) @ W.T.astype(np.float64) + b
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert type(metrics) is dict and sorted(metrics) == ["accuracy", "loss"]
    assert abs(metrics["loss"] - (-logp[np.arange(len(y)), y].mean())) < 1e-5
    assert abs(metrics["accuracy"] - float((z.argmax(axis=1) == y).mean())) < 1e-12
    assert modes == [False, False], "evaluate runs in eval mode and restores the mode the model was in"
    assert grads == [True, True], "evaluate must not leave gradients behind (no_grad)"


# --- checkpoints, reproducibility, fit ---------------------------------------------------------

MAKE = (
    "def make(init_seed):\n"
    "    model = Sequential(Linear(X.shape[1], 12, rng=init_seed), ReLU(), Linear(12, int(y.max()) + 1, rng=init_seed + 1))\n"
    "    opt = Adam(model.parameters(), lr=lr)\n"
    "    sched = CosineAnnealingLR(opt, T_max=tmax, warmup_steps=2)\n"
    "    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, max_grad_norm=1.0, rng=run_seed)\n"
    "    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, seed=trainer.rng)\n"
    "    return trainer, loader\n"
)
PREAMBLE = "from tinytorch.core.activations import ReLU\nimport io\n" + MAKE


@pytest.mark.points(3)
def test_checkpoint_resumes_exactly(student, rng):
    X, y, _, _ = problem(rng, n=50)
    got = student.value(
        PREAMBLE +
        "t1, l1 = make(0)\n"
        "for _ in range(2):\n"
        "    t1.train_epoch(l1)\n"
        "folder = tempfile.mkdtemp(dir='.')\n"
        "path = os.path.join(folder, 'run.npz')\n"
        "returned = t1.save_checkpoint(path)\n"
        "saved_params = [p.data.copy() for p in t1.model.parameters()]\n"
        "saved_moments = [t1.optimizer.state[i]['exp_avg_sq'].copy() for i in range(4)]\n"
        "expected = [t1.train_epoch(l1) for _ in range(3)]\n"
        "t2, l2 = make(40)\n"
        "meta = t2.load_checkpoint(path)\n"
        "loaded = ([p.data.copy() for p in t2.model.parameters()], [t2.optimizer.state[i]['exp_avg_sq'].copy() for i in range(4)],\n"
        "          [t2.optimizer.state[i]['step'] for i in range(4)], t2.epoch, t2.global_step, t2.optimizer.lr,\n"
        "          type(t2.optimizer.betas).__name__, t2.scheduler.last_epoch)\n"
        "resumed = [t2.train_epoch(l2) for _ in range(3)]\n"
        "with np.load(path, allow_pickle=False) as data:\n"
        "    keys = sorted(data.files)\n"
        "(returned == path, expected, resumed, saved_params, saved_moments, loaded, sorted(os.listdir(folder)), keys,\n"
        " type(meta).__name__, t1.global_step == t2.global_step)",
        X=X, y=y, lr=0.01, tmax=30, run_seed=int(rng.integers(1000)),
    )
    same_path, expected, resumed, params, moments, loaded, files, keys, meta_type, same_steps = got
    assert same_path is True, "save_checkpoint returns the path"
    assert files == ["run.npz"], f"the folder must hold only the checkpoint (no temporary file): {files}"
    assert "meta" in keys and sum(k.startswith("model/") for k in keys) == 4 and \
        sum(k.startswith("optimizer/") for k in keys) == 8, f"the layout of section 5, got keys {keys}"
    assert meta_type == "dict", "load_checkpoint returns the meta dict"
    for got_p, want_p in zip(loaded[0], params):
        assert_array(got_p, want_p, dtype=np.float32, rtol=0, atol=0)
    for got_m, want_m in zip(loaded[1], moments):
        assert_array(got_m, want_m, dtype=np.float32, rtol=0, atol=0)
    steps_per_epoch = math.ceil(len(X) / 8)
    assert loaded[2] == [2 * steps_per_epoch] * 4, "Adam's step counts are restored"
    assert loaded[3] == 2 and loaded[4] == 2 * steps_per_epoch, "epoch and global_step are restored"
    assert abs(loaded[5] - cosine_oracle(2 * steps_per_epoch, 0.01, 30, 0.0, 2)) < 1e-12, "the schedule is restored"
    assert loaded[6] == "tuple" and loaded[7] == 2 * steps_per_epoch
    assert resumed == expected, f"the resumed run must repeat the uninterrupted one exactly:\n{resumed}\n{expected}"
    assert same_steps is True


@pytest.mark.points(1)
def test_failed_save_keeps_the_previous_checkpoint(student, rng):
    X, y, _, _ = problem(rng, n=30)
    outcome, files, intact = student.value(
        PREAMBLE +
        "t, l = make(0)\n"
        "t.train_epoch(l)\n"
        "folder = tempfile.mkdtemp(dir='.')\n"
        "path = os.path.join(folder, 'run.npz')\n"
        "t.save_checkpoint(path)\n"
        "good = [p.data.copy() for p in t.model.parameters()]\n"
        "t.train_epoch(l)\n"
        "real_savez = np.savez\n"
        "def broken(file, *args, **kwds):\n"
        "    handle = open(file, 'wb') if isinstance(file, str) else file\n"
        "    handle.write(b'PK half a zip')\n"
        "    handle.flush()\n"
        "    raise OSError('No space left on device')\n"
        "np.savez = broken\n"
        "try:\n"
        "    t.save_checkpoint(path)\n"
        "    outcome = 'no error'\n"
        "except OSError as err:\n"
        "    outcome = str(err)\n"
        "finally:\n"
        "    np.savez = real_savez\n"
        "t2, _ = make(9)\n"
        "t2.load_checkpoint(path)\n"
        "(outcome, sorted(os.listdir(folder)), [bool(np.array_equal(p.data, g)) for p, g in zip(t2.model.parameters(), good)])",
        X=X, y=y, lr=0.01, tmax=20, run_seed=0,
    )
    assert outcome == "No space left on device", f"the error must reach the caller, got {outcome!r}"
    assert files == ["run.npz"], f"no temporary file may be left behind: {files}"
    assert intact == [True] * 4, "a failed save must leave the previous checkpoint intact"


@pytest.mark.points(1)
def test_same_seed_same_losses(student, rng):
    X, y, _, _ = problem(rng, n=40)
    a, b, c = student.value(
        PREAMBLE +
        "def losses(seed):\n"
        "    t, l = make(0)\n"
        "    t.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state\n"
        "    return [t.train_epoch(l) for _ in range(3)]\n"
        "(losses(1), losses(1), losses(2))",
        X=X, y=y, lr=0.01, tmax=20, run_seed=0,
    )
    assert a == b, "the same seed must give identical losses"
    assert a != c, "a different seed shuffles differently"


@pytest.mark.points(2)
def test_fit_records_history_and_reports_at_most_about_20_lines(student, rng):
    X, y, _, _ = problem(rng, n=40)
    epochs = int(rng.integers(40, 61))
    text, hist, epoch, quiet, short = student.value(
        PREAMBLE +
        "t, l = make(0)\n"
        "buf = io.StringIO()\n"
        "hist = t.fit(l, epochs, val_loader=DataLoader(TensorDataset(X, y), batch_size=64), file=buf)\n"
        "quiet = io.StringIO()\n"
        "t.fit(l, 1, verbose=False, file=quiet)\n"
        "short = io.StringIO()\n"
        "t.fit(l, 2, file=short)\n"
        "(buf.getvalue(), {k: list(v) for k, v in hist.items()}, t.epoch, quiet.getvalue(), short.getvalue())",
        X=X, y=y, lr=0.01, tmax=10 ** 6, run_seed=0, epochs=epochs,
    )
    lines = text.splitlines()
    assert 10 <= len(lines) <= 21, f"{epochs} epochs: report at most about 20 lines, got {len(lines)}"
    assert lines[0].startswith(f"epoch 1/{epochs}") and lines[-1].startswith(f"epoch {epochs}/{epochs}"), \
        f"first and last lines: {lines[0]!r}, {lines[-1]!r}"
    assert all("train_loss" in line and "val_loss" in line for line in lines)
    assert "\r" not in text and "\x1b" not in text, "plain text: no carriage returns or escape codes"
    assert quiet == "", "verbose=False prints nothing"
    short_lines = short.splitlines()
    assert len(short_lines) == 2 and short_lines[0].startswith(f"epoch {epochs + 2}/{epochs + 3}"), \
        f"a later fit continues the epoch count: {short_lines}"
    assert epoch == epochs + 3 and len(hist["train_loss"]) == epochs + 3 and len(hist["lr"]) == epochs + 3
    assert len(hist["val_loss"]) == len(hist["val_accuracy"]) == epochs
    assert all(0.0 <= a <= 1.0 for a in hist["val_accuracy"]) and hist["train_loss"][-1] < hist["train_loss"][0]
    steps = math.ceil(len(X) / 8)
    want_lr = [cosine_oracle(e * steps, 0.01, 10 ** 6, 0.0, 2) for e in range(epochs + 3)]
    assert np.allclose(hist["lr"], want_lr, rtol=1e-12), "history['lr'] holds the lr at the start of each epoch"
