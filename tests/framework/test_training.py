"""The exported training utilities (tinytorch/core/training.py) against NumPy oracles.

clip_grad_norm_ and the cosine schedule against PyTorch's formulas; Trainer.train_epoch against
softmax regression with hand-written gradients (accumulation, clipping, momentum, schedule) and
against central differences in float64; checkpoints for exact round trips, atomic writes and
validation; fit's history and progress lines.
"""

import io
import math
import os

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.dataloader import DataLoader, TensorDataset, default_collate
from tinytorch.core.layers import Linear, Parameter, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (CosineAnnealingLR, Trainer, atomic_savez, clip_grad_norm_, cosine_lr,
                                     iterate_batches)


def clip_oracle(grads, max_norm, norm_type):
    present = [np.asarray(g, np.float64) for g in grads if g is not None]
    if norm_type == math.inf:
        total = max(float(np.abs(g).max()) for g in present)
    else:
        total = float(sum(np.sum(np.abs(g) ** norm_type) for g in present) ** (1.0 / norm_type))
    scale = min(1.0, max_norm / (total + 1e-6))
    return total, [None if g is None else np.asarray(g, np.float64) * scale for g in grads]


def softmax_regression_oracle(X, y, W, b, lr, epochs, batch_size, k=1, clip=None, momentum=0.0, schedule=None,
                              shuffle_seed=None):
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


def cosine_reference(t, base, T, eta=0.0, warmup=0):
    """PyTorch's SequentialLR([LinearLR(start_factor=1/(W+1), total_iters=W), CosineAnnealingLR(T, eta)], [W])."""
    if t < warmup:
        start = 1.0 / (warmup + 1)
        return base * (start + (1 - start) * t / warmup)
    return eta + (base - eta) * (1 + math.cos(math.pi * (t - warmup) / T)) / 2


# --- clip_grad_norm_ ----------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("ratio", [0.1, 0.9, 1.5])
def test_clip_matches_pytorch_formula(norm_type, ratio):
    rng = np.random.default_rng(int(ratio * 10) + int(min(norm_type, 9)))
    shapes = [(3, 4), (5,), (2, 1, 3), (1,)]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads[2] = None
    params = [Parameter(np.zeros(s)) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.copy()
    held = [p.grad for p in params]
    max_norm = clip_oracle(grads, 1.0, norm_type)[0] * ratio
    total = clip_grad_norm_(params, max_norm, norm_type)
    want_total, want = clip_oracle(grads, max_norm, norm_type)
    assert type(total) is float and total == pytest.approx(want_total, rel=1e-6)
    for p, h, w in zip(params, held, want):
        assert p.grad is h
        if w is not None:
            np.testing.assert_allclose(p.grad, w, rtol=1e-6, atol=1e-7)
    if ratio < 1:
        assert clip_oracle([p.grad for p in params], 1.0, norm_type)[0] == pytest.approx(max_norm, rel=1e-5)


def test_clip_accepts_tensor_grads_a_single_tensor_and_no_grads():
    p = Parameter(np.zeros(2))
    p.grad = Tensor(np.array([3.0, 4.0]))
    assert clip_grad_norm_(p, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8], rtol=1e-5)
    q = Parameter(np.zeros(3))
    assert clip_grad_norm_([q], 1.0) == 0.0 and q.grad is None
    assert clip_grad_norm_(iter([q, p]), 10.0) == pytest.approx(1.0, rel=1e-5), "a generator is fine"


# --- the schedule -------------------------------------------------------------------------------

@pytest.mark.parametrize("warmup", [0, 1, 5])
def test_cosine_lr_is_pytorchs_sequence(warmup):
    base, eta, T = 0.3, 0.01, 12
    got = [cosine_lr(t, base, T, eta, warmup) for t in range(warmup + 2 * T + 1)]
    want = [cosine_reference(t, base, T, eta, warmup) for t in range(warmup + 2 * T + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert got[warmup] == pytest.approx(base) and got[warmup + T] == pytest.approx(eta)
    assert got[warmup + 2 * T] == pytest.approx(base), "periodic past T_max, like PyTorch's closed form"
    assert min(got) > 0 or eta == 0


def test_scheduler_protocol_and_state_dict():
    opt = Adam([Parameter(np.ones(2))], lr=0.02)
    sched = CosineAnnealingLR(opt, T_max=7, eta_min=0.001, warmup_steps=2)
    assert opt.lr == pytest.approx(0.02 / 3) and sched.last_epoch == 0
    for t in range(1, 6):
        sched.step()
        assert sched.get_last_lr() == [opt.lr] and opt.lr == pytest.approx(cosine_reference(t, 0.02, 7, 0.001, 2))
    other_opt = Adam([Parameter(np.ones(2))], lr=5.0)
    other = CosineAnnealingLR(other_opt, T_max=1)
    other.load_state_dict(sched.state_dict())
    assert other_opt.lr == opt.lr and other.last_epoch == 5
    with pytest.raises(ValueError):
        CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError):
        CosineAnnealingLR(opt, T_max=3, warmup_steps=-1)


# --- the training loop --------------------------------------------------------------------------

def _problem(seed, n=47, d=5, c=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n),
            (0.3 * rng.standard_normal((c, d))).astype(np.float32), (0.1 * rng.standard_normal(c)).astype(np.float32))


def _linear(W, b):
    model = Linear(W.shape[1], W.shape[0])
    model.weight.data[...] = W
    model.bias.data[...] = b
    return model


@pytest.mark.parametrize("bs,k,clip,momentum,tmax,warmup,shuffle", [
    (8, 1, None, 0.0, 0, 0, None), (5, 3, None, 0.9, 0, 0, 4), (4, 4, 0.2, 0.0, 10, 2, None),
    (47, 1, 0.05, 0.5, 3, 0, 7), (1, 7, 0.3, 0.0, 0, 0, 1), (6, 2, None, 0.0, 25, 5, 3)])
def test_train_epoch_matches_numpy_oracle(bs, k, clip, momentum, tmax, warmup, shuffle):
    X, y, W, b = _problem(bs * 7 + k)
    model = _linear(W, b)
    opt = SGD(model.parameters(), lr=0.3, momentum=momentum)
    sched = CosineAnnealingLR(opt, T_max=tmax, warmup_steps=warmup) if tmax else None
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, max_grad_norm=clip, accumulation_steps=k)
    loader = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=shuffle is not None, seed=shuffle)
    losses = [trainer.train_epoch(loader) for _ in range(3)]
    schedule = (lambda t: cosine_reference(t, 0.3, tmax, 0.0, warmup)) if tmax else None
    want_losses, want_W, want_b, steps = softmax_regression_oracle(X, y, W, b, 0.3, 3, bs, k, clip, momentum,
                                                                   schedule, shuffle)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.weight.data, want_W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.bias.data, want_b, rtol=1e-4, atol=1e-5)
    assert trainer.epoch == 3 and trainer.global_step == steps
    assert all(type(v) is float for v in losses)


def test_accumulation_equals_the_large_batch():
    X, y, W, b = _problem(3, n=64)
    weights = []
    for bs, k in [(32, 1), (8, 4), (4, 8), (16, 2)]:
        model = _linear(W, b)
        trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss(), accumulation_steps=k)
        loader = DataLoader(TensorDataset(X, y), batch_size=bs)
        for _ in range(2):
            trainer.train_epoch(loader)
        assert trainer.global_step == 4
        weights.append(model.weight.data.copy())
    for w in weights[1:]:
        np.testing.assert_allclose(w, weights[0], rtol=1e-5, atol=1e-6)


def test_one_step_follows_central_differences_in_float64():
    """One SGD step with lr=1 moves each weight by minus its gradient; the gradient of the MLP's
    mean cross-entropy is checked against central differences of a float64 NumPy forward pass."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((9, 4)).astype(np.float32), rng.integers(0, 3, 9)
    model = Sequential(Linear(4, 6, rng=1), ReLU(), Linear(6, 3, rng=2))
    before = [p.data.astype(np.float64) for p in model.parameters()]
    trainer = Trainer(model, SGD(model.parameters(), lr=1.0), CrossEntropyLoss())
    trainer.train_epoch(DataLoader(TensorDataset(X, y), batch_size=9))
    step = [b - p.data for b, p in zip(before, model.parameters())]

    def loss(params):
        W1, b1, W2, b2 = params
        z = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(9), y].mean())

    h = 1e-6
    for i, p in enumerate(before):
        numeric = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            plus, minus = [q.copy() for q in before], [q.copy() for q in before]
            plus[i][index] += h
            minus[i][index] -= h
            numeric[index] = (loss(plus) - loss(minus)) / (2 * h)
        np.testing.assert_allclose(step[i], numeric, rtol=1e-3, atol=1e-5)


def test_evaluate_metrics_mode_and_no_graph():
    X, y, W, b = _problem(5, n=23)
    model = Sequential(_linear(W, b))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
    m = trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=5))
    z = X.astype(np.float64) @ W.T + b
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert m["loss"] == pytest.approx(-logp[np.arange(23), y].mean(), rel=1e-5)
    assert m["accuracy"] == pytest.approx((z.argmax(axis=1) == y).mean())
    assert model.training and all(p.grad is None for p in model.parameters())
    model.eval()
    trainer.evaluate(DataLoader(TensorDataset(X, y), batch_size=5))
    assert not model.training
    reg = Trainer(Linear(5, 2), SGD([Parameter(np.ones(1))], lr=0.1), MSELoss())
    assert reg.evaluate(DataLoader(TensorDataset(X, X[:, :2]), batch_size=4))["accuracy"] is None


def test_trainer_validates_its_settings():
    model = Linear(2, 2)
    with pytest.raises(ValueError):
        Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), accumulation_steps=0)
    with pytest.raises(ValueError):
        Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), max_grad_norm=0.0)


# --- the fast batch path ------------------------------------------------------------------------

@pytest.mark.parametrize("bs,shuffle,drop_last", [(7, True, False), (7, True, True), (50, False, False), (1, True, False)])
def test_iterate_batches_yields_the_loaders_batches(bs, shuffle, drop_last):
    X, y, _, _ = _problem(1, n=30)
    a = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=3)
    b = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=3)
    for _ in range(2):
        fast, slow = list(iterate_batches(a)), list(b)
        assert len(fast) == len(slow) == len(a)
        for (fx, fy), (sx, sy) in zip(fast, slow):
            assert fx.dtype == sx.dtype and fy.dtype == sy.dtype
            np.testing.assert_array_equal(fx.data, sx.data)
            np.testing.assert_array_equal(fy.data, sy.data)


def test_iterate_batches_falls_back_for_other_loaders():
    X, y, _, _ = _problem(1, n=10)
    custom = DataLoader(TensorDataset(X, y), batch_size=4, collate_fn=lambda s: default_collate(s)[::-1])
    assert [t.shape for t in next(iter(iterate_batches(custom)))] == [(4,), (4, 5)]
    batches = [(Tensor(X[:3]), Tensor(y[:3]))]
    assert list(iterate_batches(batches)) == batches


# --- checkpoints --------------------------------------------------------------------------------

def _make(optimizer, init_seed, X, y, scheduler=True, run_seed=5):
    model = Sequential(Linear(X.shape[1], 8, rng=init_seed), ReLU(), Linear(8, 3, rng=init_seed + 1))
    opt = optimizer(model.parameters())
    sched = CosineAnnealingLR(opt, T_max=40, warmup_steps=3) if scheduler else None
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, max_grad_norm=0.5, rng=run_seed)
    return trainer, DataLoader(TensorDataset(X, y), batch_size=6, shuffle=True, seed=trainer.rng)


OPTIMIZERS = {"sgd": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
              "adam": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99)),
              "adamw": lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("scheduler", [True, False])
def test_checkpoint_round_trip_is_exact(tmp_path, name, scheduler):
    X, y, _, _ = _problem(2, n=40)
    t1, l1 = _make(OPTIMIZERS[name], 0, X, y, scheduler)
    for _ in range(2):
        t1.train_epoch(l1)
    t1.history["train_loss"].extend([1.5, 0.25])
    path = tmp_path / "ckpt.npz"
    assert t1.save_checkpoint(path) == path
    saved_opt = t1.optimizer.state_dict()
    saved_model = t1.model.state_dict()
    expected = [t1.train_epoch(l1) for _ in range(2)]

    t2, l2 = _make(OPTIMIZERS[name], 30, X, y, scheduler, run_seed=99)
    meta = t2.load_checkpoint(path)
    assert meta["epoch"] == 2 and t2.epoch == 2 and t2.global_step == 2 * len(l1)
    assert t2.history["train_loss"] == [1.5, 0.25]
    for key, value in saved_model.items():
        np.testing.assert_array_equal(t2.model.state_dict()[key], value)
    loaded_opt = t2.optimizer.state_dict()
    assert loaded_opt["param_groups"] == saved_opt["param_groups"]
    assert sorted(loaded_opt["state"]) == sorted(saved_opt["state"])
    for index, entry in saved_opt["state"].items():
        for key, value in entry.items():
            got = loaded_opt["state"][index][key]
            if isinstance(value, np.ndarray):
                assert got.dtype == value.dtype
                np.testing.assert_array_equal(got, value)
            else:
                assert got == value and type(got) is type(value)
    assert [t2.train_epoch(l2) for _ in range(2)] == expected
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    with np.load(path, allow_pickle=False) as data:   # no object arrays: loads without pickle
        assert all(data[key].dtype != object for key in data.files)


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    X, y, _, _ = _problem(2, n=20)
    trainer, loader = _make(OPTIMIZERS["adam"], 0, X, y)
    trainer.train_epoch(loader)
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    old = path.read_bytes()
    trainer.train_epoch(loader)

    def broken(handle, **arrays):
        handle.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(path)
    monkeypatch.undo()
    assert path.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    trainer.history["train_loss"].append(object())         # not JSON: fails before any write
    with pytest.raises(TypeError):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_atomic_savez_writes_exactly_the_given_path(tmp_path):
    atomic_savez(tmp_path / "plain", {"a": np.arange(3)})
    assert sorted(os.listdir(tmp_path)) == ["plain"]
    with np.load(tmp_path / "plain") as data:
        np.testing.assert_array_equal(data["a"], np.arange(3))


def test_load_rejects_a_mismatched_checkpoint_and_changes_nothing(tmp_path):
    X, y, _, _ = _problem(2, n=20)
    trainer, loader = _make(OPTIMIZERS["adam"], 0, X, y)
    trainer.train_epoch(loader)
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    # Same model shapes but an optimizer over fewer parameters: the optimizer rejects it after the
    # model was loaded, and the model must be put back.
    model = Sequential(Linear(X.shape[1], 8, rng=7), ReLU(), Linear(8, 3, rng=8))
    other = Trainer(model, Adam(model.parameters()[:2], lr=0.01), CrossEntropyLoss(), rng=1)
    before = model.state_dict()
    with pytest.raises(ValueError):
        other.load_checkpoint(path)
    for key, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)
    assert other.epoch == 0 and other.global_step == 0
    wrong = Trainer(Linear(3, 3), SGD(Linear(3, 3).parameters(), lr=0.1), CrossEntropyLoss())
    with pytest.raises(KeyError):
        wrong.load_checkpoint(path)


# --- reproducibility and fit -------------------------------------------------------------------

def test_same_seed_identical_losses_different_seed_different():
    X, y, _, _ = _problem(4, n=40)

    def run(seed):
        trainer, loader = _make(OPTIMIZERS["adam"], 0, X, y, run_seed=seed)
        return [trainer.train_epoch(loader) for _ in range(3)]

    assert run(1) == run(1) != run(2)


@pytest.mark.parametrize("epochs,expected_lines", [(1, 1), (5, 5), (20, 20), (21, 12), (40, 21), (333, 21)])
def test_fit_history_and_bounded_progress(epochs, expected_lines):
    X, y, _, _ = _problem(4, n=12)
    trainer, loader = _make(OPTIMIZERS["sgd"], 0, X, y)
    out = io.StringIO()
    history = trainer.fit(loader, epochs, val_loader=DataLoader(TensorDataset(X, y), batch_size=12), file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == expected_lines <= 21
    assert lines[0].startswith(f"epoch 1/{epochs} ") and lines[-1].startswith(f"epoch {epochs}/{epochs} ")
    assert len(history["train_loss"]) == len(history["val_loss"]) == len(history["val_accuracy"]) == epochs
    assert history["lr"][0] == pytest.approx(0.05 / 4) and trainer.epoch == epochs


def test_fit_saves_a_checkpoint_every_epoch(tmp_path):
    X, y, _, _ = _problem(4, n=12)
    trainer, loader = _make(OPTIMIZERS["adam"], 0, X, y)
    path = tmp_path / "run.npz"
    trainer.fit(loader, 3, checkpoint_path=path, verbose=False)
    other, _ = _make(OPTIMIZERS["adam"], 9, X, y)
    assert other.load_checkpoint(path)["epoch"] == 3 and sorted(os.listdir(tmp_path)) == ["run.npz"]
    with no_grad():
        np.testing.assert_array_equal(other.model(Tensor(X)).data, trainer.model(Tensor(X)).data)


def test_iterate_batches_respects_subclasses():
    class Flipped(TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x * -1.0, y

    X, y, _, _ = _problem(1, n=10)
    (bx, by), = list(iterate_batches(DataLoader(Flipped(X, y), batch_size=10)))
    np.testing.assert_array_equal(bx.data, -X)
