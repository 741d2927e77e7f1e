"""The exported compression code (tinytorch/perf/compression.py) against NumPy oracles: masks
from argsort of magnitudes and norms, measured sparsity, the function of a model before and
after drop_neurons, the truncated SVD and the Eckart-Young error, and the distillation loss
against its definition with gradients checked by central differences (float64)."""

import copy

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.perf.compression import (
    DistillationKL,
    apply_masks,
    distillation_loss,
    drop_neurons,
    global_unstructured,
    l1_unstructured,
    linear_layers,
    ln_structured,
    low_rank,
    magnitude_mask,
    prune_count,
    sparsity,
    structured_mask,
)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def log_softmax(a):
    shifted = a - a.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_prune_count_follows_pytorch():
    assert prune_count(0.5, 10) == 5 and prune_count(0.25, 10) == 2 and prune_count(3, 10) == 3
    assert prune_count(0.0, 7) == 0 and prune_count(1.0, 7) == 7
    for bad in (1.5, -0.1, 11, -1):
        with pytest.raises(ValueError):
            prune_count(bad, 10)


def test_sparsity_counts(rng):
    a = rng.standard_normal((20, 30)) * (rng.random((20, 30)) < 0.3)
    assert sparsity(a) == pytest.approx(np.mean(a == 0))
    assert sparsity(Tensor(a)) == pytest.approx(np.mean(a.astype(np.float32) == 0))
    assert sparsity(np.zeros(0)) == 0.0 and sparsity(np.zeros(4)) == 1.0
    model = Sequential(Linear(10, 10), ReLU(), Linear(10, 5))
    model[2].weight.data[:] = 0
    assert sparsity(model) == pytest.approx(50 / 150)
    assert sparsity(Sequential(ReLU())) == 0.0


@pytest.mark.parametrize("shape", [(17,), (6, 9), (3, 4, 5)])
@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 0.9, 1.0, 4])
def test_magnitude_mask_against_argsort(rng, shape, amount):
    w = rng.standard_normal(shape)
    mask = magnitude_mask(w, amount)
    k = prune_count(amount, w.size)
    assert mask.dtype == bool and mask.shape == shape and int((~mask).sum()) == k
    if 0 < k < w.size:
        assert np.abs(w[~mask]).max() <= np.abs(w[mask]).min(), "every pruned weight is smaller than every kept one"


def test_magnitude_mask_ties_go_to_the_lower_index():
    assert magnitude_mask(np.array([1.0, -1.0, 1.0, 2.0]), 2).tolist() == [False, False, True, True]


def test_l1_unstructured_repeated_and_masked_training(rng):
    layer = Linear(20, 10, rng=1)
    l1_unstructured(layer, 0.4)
    assert sparsity(layer.weight) == 0.4
    l1_unstructured(layer, 0.7)
    assert sparsity(layer.weight) == 0.7 and (~layer.weight_mask).sum() == 140
    model = Sequential(layer)
    optimizer = SGD(model.parameters(), lr=0.1)
    x, y = Tensor(rng.standard_normal((8, 20))), rng.standard_normal((8, 10))
    loss = ((model(x) - Tensor(y)) * (model(x) - Tensor(y))).mean()
    loss.backward()
    optimizer.step()
    assert sparsity(layer.weight) < 0.7, "the optimizer revives pruned weights"
    apply_masks(model)
    assert sparsity(layer.weight) == 0.7 and np.all(layer.weight.data[~layer.weight_mask] == 0)


def test_global_unstructured_single_threshold(rng):
    layers = [Linear(8, 16, rng=1), Linear(16, 4, rng=2), Linear(4, 3, rng=3)]
    layers[1].weight.data *= 5
    before = [layer.weight.data.copy() for layer in layers]
    masks = global_unstructured(layers, 0.6)
    total = sum(w.size for w in before)
    assert sum(int((~m).sum()) for m in masks) == round(0.6 * total)
    threshold = max(np.abs(w[~m]).max() for w, m in zip(before, masks) if (~m).any())
    assert all(np.abs(w[m]).min() >= threshold for w, m in zip(before, masks) if m.any())
    for layer, w, m in zip(layers, before, masks):
        np.testing.assert_array_equal(layer.weight.data, w * m)
        assert layer.weight_mask is m or np.array_equal(layer.weight_mask, m)
    assert sparsity(layers[1].weight) < sparsity(layers[0].weight), "the scaled-up layer keeps more"


@pytest.mark.parametrize("dim, n", [(0, 2), (1, 2), (0, 1), (-1, 1), (1, np.inf)])
def test_structured_mask_against_norms(rng, dim, n):
    w = rng.standard_normal((6, 7, 3)) if dim == -1 else rng.standard_normal((9, 11))
    mask = structured_mask(w, 0.4, n=n, dim=dim)
    axis = dim % w.ndim
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    norms = np.linalg.norm(moved, ord=n, axis=1)
    keep = np.ones(w.shape[axis], bool)
    keep[np.argsort(norms, kind="stable")[:prune_count(0.4, w.shape[axis])]] = False
    shape = [1] * w.ndim
    shape[axis] = -1
    np.testing.assert_array_equal(mask, np.broadcast_to(keep.reshape(shape), w.shape))
    assert mask.flags.writeable


def test_ln_structured_zeroes_rows_and_biases(rng):
    layer = ln_structured(Linear(5, 10, rng=4), 0.3)
    pruned = ~layer.bias_mask
    assert pruned.sum() == 3
    assert np.all(layer.weight.data[pruned] == 0) and np.all(layer.bias.data[pruned] == 0)
    columns = ln_structured(Linear(5, 10, rng=4), 0.4, dim=1)
    assert np.all(columns.weight.data[:, ~columns.weight_mask[0]] == 0) and not hasattr(columns, "bias_mask")


def test_drop_neurons_preserves_the_pruned_model(rng):
    model = Sequential(Linear(12, 20, rng=1), ReLU(), Linear(20, 16, rng=2), ReLU(), Linear(16, 3, rng=3))
    ln_structured(model[0], 0.5)
    ln_structured(model[2], 0.25)
    x = Tensor(rng.standard_normal((9, 12)))
    a0, b0 = drop_neurons(model[0], model[2], model[0].bias_mask)
    a1, b1 = drop_neurons(b0, model[4], model[2].bias_mask)
    slim = Sequential(a0, ReLU(), a1, ReLU(), b1)
    assert [layer.weight.shape for layer in linear_layers(slim)] == [(10, 12), (12, 10), (3, 12)]
    np.testing.assert_allclose(slim(x).data, model(x).data, rtol=1e-5, atol=1e-6)
    keep = np.flatnonzero(model[0].bias_mask)
    c0, d0 = drop_neurons(model[0], model[2], keep)
    np.testing.assert_array_equal(c0.weight.data, a0.weight.data)
    np.testing.assert_array_equal(d0.weight.data, b0.weight.data)
    assert a0.weight.data.base is None or a0.weight.data.base is not model[0].weight.data, "copies, not views"


@pytest.mark.parametrize("shape", [(30, 40), (40, 30), (8, 8)])
def test_low_rank_eckart_young(rng, shape):
    layer = Linear(shape[1], shape[0], rng=5)
    s = np.linalg.svd(layer.weight.data.astype(np.float64), compute_uv=False)
    for rank in (1, min(shape) // 2, min(shape)):
        thin = low_rank(layer, rank)
        down, up = thin[0], thin[1]
        assert down.bias is None and down.weight.shape == (rank, shape[1]) and up.weight.shape == (shape[0], rank)
        assert down.weight.dtype == np.float32
        error = np.linalg.norm(up.weight.data.astype(np.float64) @ down.weight.data - layer.weight.data)
        assert error == pytest.approx(np.sqrt((s[rank:] ** 2).sum()), abs=1e-4)
        np.testing.assert_allclose(np.linalg.norm(down.weight.data, axis=1), np.sqrt(s[:rank]), rtol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(up.weight.data, axis=0), np.sqrt(s[:rank]), rtol=1e-4)
        np.testing.assert_array_equal(up.bias.data, layer.bias.data)
    x = Tensor(rng.standard_normal((5, shape[1])))
    np.testing.assert_allclose(low_rank(layer, min(shape))(x).data, layer(x).data, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        low_rank(layer, 0)
    with pytest.raises(ValueError):
        low_rank(layer, min(shape) + 1)


@pytest.mark.parametrize("temperature", [1.0, 2.5, 8.0])
@pytest.mark.parametrize("shape", [(1, 2), (4, 3), (7, 10)])
def test_distillation_kl_matches_definition(rng, temperature, shape):
    s, t = rng.standard_normal(shape) * 3, rng.standard_normal(shape) * 3
    p_s = np.exp(log_softmax(s / temperature))
    p_t = np.exp(log_softmax(t / temperature))
    want = temperature**2 * (p_t * np.log(p_t / p_s)).sum() / shape[0]
    got = DistillationKL.apply(Tensor(s, dtype=np.float64), Tensor(t, dtype=np.float64), temperature=temperature)
    assert got.shape == () and got.dtype == np.float64
    assert float(got.data) == pytest.approx(want, rel=1e-10)
    assert float(got.data) >= 0


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_distillation_kl_gradcheck_both_inputs(rng, temperature):
    s, t = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)) * 2
    assert gradcheck(lambda a, b: DistillationKL.apply(a, b, temperature=temperature), s, t)


def test_distillation_loss_gradcheck_and_value(rng):
    s, t, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, size=6)
    teacher = Tensor(t, dtype=np.float64)
    assert gradcheck(lambda a: distillation_loss(a, teacher, y, temperature=3.0, alpha=0.3), s)
    value = float(distillation_loss(Tensor(s, dtype=np.float64), t, y, temperature=3.0, alpha=0.3).data)
    soft = float(DistillationKL.apply(Tensor(s, dtype=np.float64), teacher, temperature=3.0).data)
    hard = -log_softmax(s)[np.arange(6), y].mean()
    assert value == pytest.approx(0.3 * soft + 0.7 * hard, rel=1e-10)


def test_distillation_extreme_logits_stay_finite(rng):
    s, t = rng.standard_normal((3, 4)) * 1e4, rng.standard_normal((3, 4)) * 1e4
    student = Tensor(s, dtype=np.float64, requires_grad=True)
    loss = DistillationKL.apply(student, Tensor(t, dtype=np.float64), temperature=2.0)
    loss.backward()
    assert np.isfinite(loss.data) and np.all(np.isfinite(student.grad))
    with pytest.raises(ValueError):
        DistillationKL.apply(Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 3))))


def test_distillation_trains_a_student_towards_its_teacher(rng):
    teacher = Sequential(Linear(6, 16, rng=1), ReLU(), Linear(16, 3, rng=2))
    student = Sequential(Linear(6, 4, rng=3), ReLU(), Linear(4, 3, rng=4))
    x = rng.standard_normal((64, 6)).astype(np.float32)
    with no_grad():
        soft = teacher(Tensor(x)).data * 5   # a confident teacher
    labels = soft.argmax(axis=1)
    optimizer = SGD(student.parameters(), lr=0.2)

    def loss_value():
        with no_grad():
            return float(DistillationKL.apply(student(Tensor(x)), Tensor(soft), temperature=2.0).data)

    start = loss_value()
    for _ in range(100):
        loss = distillation_loss(student(Tensor(x)), soft, labels, temperature=2.0, alpha=0.9)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss_value() < 0.5 * start


def test_pruning_a_copy_leaves_the_original(rng):
    model = Sequential(Linear(4, 4, rng=1), ReLU(), Linear(4, 2, rng=2))
    pruned = copy.deepcopy(model)
    global_unstructured(linear_layers(pruned), 0.5)
    assert sparsity(model) == 0.0 and sparsity(pruned) == 0.5
