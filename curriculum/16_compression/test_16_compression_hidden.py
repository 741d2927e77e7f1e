"""Hidden graded tests of module 16 (Compression): weights, amounts, shapes, temperatures drawn
at grading time, plus edge cases (amount 0 and 1, counts, repeated pruning, 3-d tensors,
index lists, layers without bias, extreme logits). Oracles: NumPy argsort/norms/SVD and the
closed-form distillation loss and gradient."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("16_compression"), pytest.mark.hidden]


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
    return (temperature**2 * rows.mean(), temperature / n * (p_s - p_t),
            temperature / n * p_t * ((log_pt - log_ps) - rows[:, None]))


@pytest.mark.points(2)
def test_sparsity_and_masks_at_the_edges(student, rng):
    w = rng.standard_normal((2, 3, int(rng.integers(2, 6)))).astype(np.float32)
    first, second = float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.5, 0.9))
    none, every, three_d, zeros_after, model_sparsity = student.value(
        "layer = Linear(6, 5, rng=seed)\n"
        "l1_unstructured(layer, first)\n"
        "l1_unstructured(layer, second)\n"
        "m = Sequential(layer, ReLU(), Linear(5, 2, bias=False, rng=seed))\n"
        "(magnitude_mask(w, 0.0), magnitude_mask(w, 1.0), magnitude_mask(w, 0.5), sparsity(layer.weight), sparsity(m))",
        w=w, first=first, second=second, seed=int(rng.integers(1000)),
    )
    assert none.dtype == bool and none.all() and not every.any()
    assert_array(three_d, mask_oracle(w, int(round(0.5 * w.size))), dtype=bool)
    assert zeros_after == pytest.approx(round(second * 30) / 30), "repeated pruning: `amount` of all weights"
    assert model_sparsity == pytest.approx(round(second * 30) / 40)
    with pytest.raises(StudentError):
        student.value("magnitude_mask(np.ones(4), 1.5)")


@pytest.mark.points(2)
def test_global_pruning_of_three_layers_with_a_count(student, rng):
    shapes = [(int(rng.integers(2, 6)), int(rng.integers(2, 6))) for _ in range(3)]
    ws = [(rng.standard_normal(s) * rng.uniform(0.1, 3)).astype(np.float32) for s in shapes]
    total = sum(w.size for w in ws)
    count = int(rng.integers(1, total))
    masks = student.value(
        "layers = []\n"
        "for w in ws:\n"
        "    layer = Linear(w.shape[1], w.shape[0])\n"
        "    layer.weight.data[...] = w\n"
        "    layers.append(layer)\n"
        "global_unstructured(layers, count)",
        ws=ws, count=count,
    )
    flat = mask_oracle(np.concatenate([np.abs(w).ravel() for w in ws]), count)
    start = 0
    for got, w in zip(masks, ws):
        assert_array(got, flat[start:start + w.size].reshape(w.shape), dtype=bool)
        start += w.size


@pytest.mark.points(2)
def test_structured_pruning_3d_and_ln_structured(student, rng):
    w = rng.standard_normal((3, int(rng.integers(3, 7)), 4)).astype(np.float32)
    amount = float(rng.uniform(0.2, 0.7))
    mask, layer_w, layer_b, bias_mask = student.value(
        "layer = Linear(5, 8, rng=seed)\n"
        "ln_structured(layer, a)\n"
        "(structured_mask(w, a, n=2, dim=1), layer.weight.data, layer.bias.data, layer.bias_mask)",
        w=w, a=amount, seed=int(rng.integers(1000)),
    )
    norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(0, 2)))
    keep = np.ones(w.shape[1], bool)
    keep[np.argsort(norms, kind="stable")[:int(round(amount * w.shape[1]))]] = False
    assert_array(mask, np.broadcast_to(keep[None, :, None], w.shape), dtype=bool)
    pruned_rows = ~bias_mask
    assert pruned_rows.sum() == int(round(amount * 8))
    assert np.all(layer_w[pruned_rows] == 0) and np.all(layer_b[pruned_rows] == 0)
    assert np.all(np.abs(layer_w[~pruned_rows]).sum(axis=1) > 0)


@pytest.mark.points(2)
def test_drop_neurons_with_indices_and_without_bias(student, rng):
    a, h, b = (int(v) for v in rng.integers(3, 9, size=3))
    index = np.sort(rng.choice(h, size=int(rng.integers(1, h)), replace=False))
    w1, w2, s1, s2, biases = student.value(
        "first, second = Linear(a, h, bias=False, rng=1), Linear(h, b, bias=False, rng=2)\n"
        "slim1, slim2 = drop_neurons(first, second, index)\n"
        "(first.weight.data, second.weight.data, slim1.weight.data, slim2.weight.data, [slim1.bias, slim2.bias])",
        a=a, h=h, b=b, index=index,
    )
    assert_array(s1, w1[index], dtype=np.float32, rtol=0, atol=0)
    assert_array(s2, w2[:, index], dtype=np.float32, rtol=0, atol=0)
    assert biases == [None, None]


@pytest.mark.points(2)
def test_low_rank_error_and_invalid_rank(student, rng):
    fan_in, fan_out = int(rng.integers(5, 20)), int(rng.integers(5, 20))
    rank = int(rng.integers(1, min(fan_in, fan_out)))
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    x = rng.standard_normal((4, fan_in)).astype(np.float32)
    y, bias_none = student.value(
        "layer = Linear(w.shape[1], w.shape[0], bias=False)\n"
        "layer.weight.data[...] = w\n"
        "thin = low_rank(layer, r)\n"
        "(thin(Tensor(x)).data, thin[1].bias is None)",
        w=w, r=rank, x=x,
    )
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    assert_array(y, x @ ((u[:, :rank] * s[:rank]) @ vt[:rank]).T, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert bias_none is True
    for bad in (0, min(fan_in, fan_out) + 1):
        with pytest.raises(StudentError) as err:
            student.value("low_rank(Linear(i, o), r)", i=fan_in, o=fan_out, r=bad)
        assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_distillation_kl_stable_for_extreme_logits(student, rng):
    n, c = int(rng.integers(2, 6)), int(rng.integers(3, 7))
    s = rng.standard_normal((n, c)) * 500
    t = rng.standard_normal((n, c)) * 800
    temperature = float(rng.uniform(1, 3))
    loss, grad = student.value(
        "zs = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "out = DistillationKL.apply(zs, Tensor(t, dtype=np.float64), temperature=T)\n"
        "out.backward()\n"
        "(float(out.data), zs.grad)",
        s=s, t=t, T=temperature,
    )
    want_loss, want_grad, _ = kd_oracle(s, t, temperature)
    assert np.isfinite(loss) and loss == pytest.approx(float(want_loss), rel=1e-9)
    assert_array(grad, want_grad, dtype=np.float64, rtol=1e-7, atol=1e-12)
    same = student.value("float(DistillationKL.apply(Tensor(t), Tensor(t), temperature=T).data)", t=t, T=temperature)
    assert abs(same) < 1e-4, "a student equal to its teacher has zero loss"


@pytest.mark.points(2)
def test_distillation_backward_weights_the_upstream_gradient(student, rng):
    n, c = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    s, t = rng.standard_normal((n, c)), rng.standard_normal((n, c)) * 2
    temperature, alpha, scale = float(rng.uniform(1, 6)), float(rng.uniform(0, 1)), float(rng.uniform(-2, 2))
    y = rng.integers(0, c, size=n)
    grad_s, grad_t, grad_mix = student.value(
        "zs = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "zt = Tensor(t, dtype=np.float64, requires_grad=True)\n"
        "(DistillationKL.apply(zs, zt, temperature=T) * k).backward()\n"
        "mixed = Tensor(s, dtype=np.float64, requires_grad=True)\n"
        "distillation_loss(mixed, t, y, temperature=T, alpha=alpha).backward()\n"
        "(zs.grad, zt.grad, mixed.grad)",
        s=s, t=t, T=temperature, k=scale, y=y, alpha=alpha,
    )
    _, want_s, want_t = kd_oracle(s, t, temperature)
    assert_array(grad_s, scale * want_s, rtol=1e-7, atol=1e-12)
    assert_array(grad_t, scale * want_t, rtol=1e-7, atol=1e-12)
    hard = (np.exp(log_softmax(s)) - np.eye(c)[y]) / n
    assert_array(grad_mix, alpha * want_s + (1 - alpha) * hard, rtol=1e-6, atol=1e-9)
