"""Public graded tests of module 16 (Compression).

Oracles are computed here in NumPy: masks from argsort of magnitudes and norms, the truncated
SVD from np.linalg.svd, the distillation loss from its definition (PyTorch's kl_div with
reduction='batchmean', times T^2) and its gradient in closed form.
"""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, assert_exact

pytestmark = pytest.mark.module("16_compression")


def mask_oracle(w, k):
    mask = np.ones(w.size, dtype=bool)
    mask[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = False
    return mask.reshape(w.shape)


def log_softmax(a):
    shifted = a - a.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def kd_oracle(s, t, temperature):
    log_ps, log_pt = log_softmax(s / temperature), log_softmax(t / temperature)
    p_s, p_t = np.exp(log_ps), np.exp(log_pt)
    rows = (p_t * (log_pt - log_ps)).sum(axis=1)
    n = s.shape[0]
    loss = temperature**2 * rows.mean()
    grad_s = temperature / n * (p_s - p_t)
    grad_t = temperature / n * p_t * ((log_pt - log_ps) - rows[:, None])
    return loss, grad_s, grad_t


@pytest.mark.points(2)
def test_sparsity_of_arrays_tensors_and_models(student, rng):
    a = rng.standard_normal((5, 8)) * (rng.random((5, 8)) < 0.6)
    zeros_first = int(rng.integers(1, 12))
    got = student.value(
        "m = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))\n"
        "m[0].weight.data.reshape(-1)[:k] = 0\n"
        "m[0].bias.data[:] = 0\n"
        "(sparsity(a), sparsity(Tensor(a)), sparsity(m), sparsity(np.zeros(0)))",
        a=a, k=zeros_first,
    )
    expected = float(np.mean(a == 0))
    assert type(got[0]) is float and got[0] == pytest.approx(expected)
    assert got[1] == pytest.approx(expected)
    assert got[2] == pytest.approx(zeros_first / 20), "a model's sparsity counts its Linear weights only"
    assert_exact(got[3], 0.0)


@pytest.mark.points(2)
def test_magnitude_mask_prunes_the_smallest(student, rng):
    w = rng.standard_normal((int(rng.integers(3, 9)), int(rng.integers(3, 9)))).astype(np.float32)
    amount = float(rng.uniform(0.1, 0.9))
    count = int(rng.integers(0, w.size))
    by_fraction, by_count, layer_zeros, layer_mask = student.value(
        "layer = Linear(w.shape[1], w.shape[0])\n"
        "layer.weight.data[...] = w\n"
        "l1_unstructured(layer, amount)\n"
        "(magnitude_mask(w, amount), magnitude_mask(w, count), layer.weight.data, layer.weight_mask)",
        w=w, amount=amount, count=count,
    )
    assert_array(by_fraction, mask_oracle(w, int(round(amount * w.size))), dtype=bool)
    assert_array(by_count, mask_oracle(w, count), dtype=bool)
    assert_array(layer_mask, by_fraction, dtype=bool)
    assert_array(layer_zeros, w * by_fraction, dtype=np.float32)


@pytest.mark.points(2)
def test_global_unstructured_uses_one_threshold(student, rng):
    w1 = rng.standard_normal((6, 5)).astype(np.float32)
    w2 = (rng.standard_normal((3, 6)) * rng.uniform(0.1, 3)).astype(np.float32)
    amount = float(rng.uniform(0.2, 0.8))
    masks, after1, after2, stored = student.value(
        "a, b = Linear(5, 6), Linear(6, 3)\n"
        "a.weight.data[...] = w1\n"
        "b.weight.data[...] = w2\n"
        "masks = global_unstructured([a, b], amount)\n"
        "(masks, a.weight.data, b.weight.data, [a.weight_mask, b.weight_mask])",
        w1=w1, w2=w2, amount=amount,
    )
    flat = np.concatenate([np.abs(w1).ravel(), np.abs(w2).ravel()])
    mask = mask_oracle(flat, int(round(amount * flat.size)))
    want1, want2 = mask[:30].reshape(6, 5), mask[30:].reshape(3, 6)
    assert_array(masks[0], want1, dtype=bool)
    assert_array(masks[1], want2, dtype=bool)
    assert_array(stored[0], want1, dtype=bool)
    assert_array(after1, w1 * want1, dtype=np.float32)
    assert_array(after2, w2 * want2, dtype=np.float32)


@pytest.mark.points(2)
def test_structured_mask_rows_and_columns(student, rng):
    w = rng.standard_normal((int(rng.integers(4, 10)), int(rng.integers(4, 10)))).astype(np.float32)
    amount = float(rng.uniform(0.2, 0.8))
    rows, cols_l1 = student.value("(structured_mask(w, amount), structured_mask(w, amount, n=1, dim=1))",
                                  w=w, amount=amount)
    keep_rows = np.ones(w.shape[0], bool)
    keep_rows[np.argsort(np.linalg.norm(w, axis=1), kind="stable")[:int(round(amount * w.shape[0]))]] = False
    keep_cols = np.ones(w.shape[1], bool)
    keep_cols[np.argsort(np.abs(w).sum(axis=0), kind="stable")[:int(round(amount * w.shape[1]))]] = False
    assert_array(rows, np.broadcast_to(keep_rows[:, None], w.shape), dtype=bool)
    assert_array(cols_l1, np.broadcast_to(keep_cols[None, :], w.shape), dtype=bool)


@pytest.mark.points(2)
def test_drop_neurons_keeps_the_function(student, rng):
    a, h, b = (int(v) for v in rng.integers(3, 9, size=3))
    keep = rng.random(h) < 0.6
    keep[0] = True
    x = rng.standard_normal((5, a)).astype(np.float32)
    shapes, w1, b1, w2, b2, y_masked, y_slim = student.value(
        "first, second = Linear(a, h, rng=1), Linear(h, b, rng=2)\n"
        "first.weight.data[~keep] = 0\n"
        "first.bias.data[~keep] = 0\n"
        "slim1, slim2 = drop_neurons(first, second, keep)\n"
        "([slim1.weight.shape, slim2.weight.shape], first.weight.data, first.bias.data, second.weight.data,\n"
        " second.bias.data, second(ReLU()(first(Tensor(x)))).data, slim2(ReLU()(slim1(Tensor(x)))).data)",
        a=a, h=h, b=b, keep=keep, x=x,
    )
    kept = int(keep.sum())
    assert shapes == [(kept, a), (b, kept)]
    hidden = np.maximum(x @ w1[keep].T + b1[keep], 0)
    assert_array(y_slim, hidden @ w2[:, keep].T + b2, dtype=np.float32, rtol=1e-5, atol=1e-5)
    assert_array(y_slim, y_masked, rtol=1e-5, atol=1e-5)


@pytest.mark.points(2)
def test_low_rank_is_the_truncated_svd(student, rng):
    fan_in, fan_out = int(rng.integers(4, 16)), int(rng.integers(4, 16))
    rank = int(rng.integers(1, min(fan_in, fan_out) + 1))
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    down, up, up_bias, bias, down_bias = student.value(
        "layer = Linear(w.shape[1], w.shape[0])\n"
        "layer.weight.data[...] = w\n"
        "thin = low_rank(layer, r)\n"
        "(thin[0].weight.data, thin[1].weight.data, thin[1].bias.data, layer.bias.data, thin[0].bias)",
        w=w, r=rank,
    )
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    assert down.shape == (rank, fan_in) and up.shape == (fan_out, rank) and down.dtype == np.float32
    assert_array(up @ down, (u[:, :rank] * s[:rank]) @ vt[:rank], rtol=1e-4, atol=1e-4)
    assert_array(np.linalg.norm(down, axis=1), np.sqrt(s[:rank]), rtol=1e-4), "sqrt(S) in each factor"
    assert_array(up_bias, bias)
    assert down_bias is None


@pytest.mark.points(2)
def test_distillation_kl_forward(student, rng):
    n, c = int(rng.integers(2, 8)), int(rng.integers(2, 7))
    s, t = rng.standard_normal((n, c)) * 2, rng.standard_normal((n, c)) * 3
    temperature = float(rng.uniform(1, 5))
    got = student.value("DistillationKL.apply(Tensor(s, dtype=np.float64), Tensor(t, dtype=np.float64), "
                        "temperature=T).data", s=s, t=t, T=temperature)
    assert float(got) == pytest.approx(float(kd_oracle(s, t, temperature)[0]), rel=1e-9)


@pytest.mark.points(2)
def test_distillation_kl_gradients(student, rng):
    n, c = int(rng.integers(2, 8)), int(rng.integers(2, 7))
    s, t = rng.standard_normal((n, c)) * 2, rng.standard_normal((n, c)) * 3
    temperature, upstream = float(rng.uniform(1, 5)), float(rng.uniform(0.5, 2))
    grad_s, grad_t, only_s = student.value(
        "zs = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "zt = Tensor(t, dtype=np.float64, requires_grad=True)\n"
        "DistillationKL.apply(zs, zt, temperature=T).backward(np.array(g))\n"
        "alone = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "DistillationKL.apply(alone, Tensor(t, dtype=np.float64), temperature=T).backward()\n"
        "(zs.grad, zt.grad, alone.grad)",
        s=s, t=t, T=temperature, g=upstream,
    )
    _, want_s, want_t = kd_oracle(s, t, temperature)
    assert_array(grad_s, upstream * want_s, dtype=np.float64, rtol=1e-7, atol=1e-12)
    assert_array(grad_t, upstream * want_t, dtype=np.float64, rtol=1e-7, atol=1e-12)
    assert_array(only_s, want_s, dtype=np.float64, rtol=1e-7, atol=1e-12)


@pytest.mark.points(2)
def test_distillation_loss_mixes_soft_and_hard(student, rng):
    n, c = int(rng.integers(2, 8)), int(rng.integers(2, 7))
    s, t = rng.standard_normal((n, c)), rng.standard_normal((n, c)) * 3
    y = rng.integers(0, c, size=n)
    temperature, alpha = float(rng.uniform(1, 5)), float(rng.uniform(0.1, 0.9))
    value, grad = student.value(
        "zs = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "loss = distillation_loss(zs, Tensor(t, dtype=np.float64), y, temperature=T, alpha=alpha)\n"
        "loss.backward()\n"
        "(float(loss.data), zs.grad)",
        s=s, t=t, y=y, T=temperature, alpha=alpha,
    )
    soft, soft_grad, _ = kd_oracle(s, t, temperature)
    log_p = log_softmax(s)
    hard = -log_p[np.arange(n), y].mean()
    hard_grad = (np.exp(log_p) - np.eye(c)[y]) / n
    assert value == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-6)
    assert_array(grad, alpha * soft_grad + (1 - alpha) * hard_grad, rtol=1e-6, atol=1e-9)
