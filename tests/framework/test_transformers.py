"""tinytorch.core.transformers: LayerNorm against NumPy and central differences (float64, random
shapes, one or two normalised dimensions, broadcasting over any batch), gradients of a whole
TransformerBlock and of a tiny GPT's loss against central differences, causality, parameter
counts, and generation (greedy, top-k, seeds, context window)."""

import warnings

import numpy as np
import pytest

from tinytorch.core.attention import causal_mask
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Module
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformers import (
    GPT, FeedForward, FeedForwardFn, LayerNorm, LayerNormFn, TransformerBlock, count_parameters,
    sample_next_token,
)

rng = np.random.default_rng(13)


def to_float64(module: Module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def np_layer_norm(x, w, b, axes, eps=1e-5):
    return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps) * w + b


@pytest.fixture(autouse=True)
def strict_floats():
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("trial", range(8))
def test_layer_norm_fn_random_shapes(trial):
    trailing = 1 + trial % 2
    shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(trailing, 5))))
    x = rng.standard_normal(shape) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)
    w, b = rng.standard_normal(shape[-trailing:]), rng.standard_normal(shape[-trailing:])
    axes = tuple(range(-trailing, 0))
    y = LayerNormFn.apply(Tensor(x, dtype=np.float64), Tensor(w, dtype=np.float64), Tensor(b, dtype=np.float64))
    np.testing.assert_allclose(y.data, np_layer_norm(x, w, b, axes), rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda a, c, d: LayerNormFn.apply(a, c, d), x, w, b, rtol=1e-5, atol=1e-7)


def test_layer_norm_edge_cases():
    # a constant vector: variance 0, eps keeps it finite, the output is the bias
    ln = LayerNorm(4)
    ln.bias.data[:] = [1, 2, 3, 4]
    np.testing.assert_allclose(ln(Tensor(np.full((2, 4), 7.0))).data, [[1, 2, 3, 4]] * 2)
    # a single normalised element; the module keeps float32 and needs_input_grad is respected
    assert LayerNorm(1)(Tensor(np.ones((3, 1)))).data.tolist() == [[0.0]] * 3
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32))            # no grad for x
    y = LayerNorm(3)(x)
    assert y.dtype == np.float32 and y.grad_fn.needs_input_grad == (False, True, True)
    gx, gw, gb = y.grad_fn.backward(np.ones((2, 3), np.float32))
    assert gx is None and gw.shape == gb.shape == (3,)
    with pytest.raises(ValueError, match="trailing"):
        LayerNorm((2, 3))(Tensor(np.zeros((4, 3))))
    assert LayerNorm(5, eps=1e-3).eps == 1e-3 and [n for n, _ in LayerNorm(5).named_parameters()] == ["weight", "bias"]


def test_layer_norm_large_offsets_stay_accurate():
    x = rng.standard_normal((4, 16)) + 1e4           # a mean far from 0 (centering before squaring)
    y = LayerNorm(16)(Tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(y, np_layer_norm(x, 1, 0, (-1,)), rtol=1e-6, atol=1e-6)


def test_feedforward_gradcheck():
    ff = to_float64(FeedForward(3, 5, rng=0))
    assert gradcheck(ff, rng.standard_normal((2, 4, 3)))
    assert FeedForward(6).fc1.out_features == 24


@pytest.mark.parametrize("lead", [(), (1,), (4,), (2, 3), (2, 1, 3)])
def test_feedforward_fn_every_input_and_matches_composed(lead):
    d, hidden = int(rng.integers(1, 5)), int(rng.integers(1, 7))
    arrays = [rng.standard_normal(lead + (d,)), rng.standard_normal((hidden, d)), rng.standard_normal(hidden),
              rng.standard_normal((d, hidden)), rng.standard_normal(d)]
    if lead:
        assert gradcheck(lambda *t: FeedForwardFn.apply(*t), *arrays)
    ff = FeedForward(d, hidden, rng=0)
    x = Tensor(arrays[0].astype(np.float32) if lead else rng.standard_normal((1, d)).astype(np.float32))
    np.testing.assert_allclose(ff(x).data, ff.fc2(ff.act(ff.fc1(x))).data, rtol=1e-5, atol=1e-6)
    y = ff(Tensor(x.data))                                  # input needs no gradient: none computed
    assert y.grad_fn.needs_input_grad == (False, True, True, True, True)
    grads = y.grad_fn.backward(np.ones(y.shape, np.float32))
    assert grads[0] is None and [g.shape for g in grads[1:]] == [p.shape for p in ff.parameters()]


@pytest.mark.parametrize("heads,dim,mask", [(1, 2, True), (2, 4, True), (2, 4, False)])
def test_whole_block_gradients_against_central_differences(heads, dim, mask):
    block = to_float64(TransformerBlock(dim, heads, mlp_ratio=2, rng=int(rng.integers(100))))
    for p in block.parameters():                    # non-trivial LayerNorm affine parameters
        p.data += 0.2 * rng.standard_normal(p.shape)
    x = rng.standard_normal((2, 3, dim))
    m = causal_mask(3) if mask else None
    assert gradcheck(lambda t: block(t, mask=m), x, rtol=1e-4, atol=1e-6)
    # and with respect to every parameter: perturb each one through a closure
    params = block.parameters()
    originals = [p.data.copy() for p in params]

    def as_function_of_params(*tensors):
        for p, t in zip(params, tensors):
            object.__setattr__(p, "data", t.data)
        out = block(Tensor(x, dtype=np.float64), mask=m)
        return out

    out = block(Tensor(x, dtype=np.float64), mask=m)
    upstream = rng.standard_normal(out.shape)
    block.zero_grad()
    out.backward(upstream)
    analytic = [p.grad.copy() for p in params]
    for i, (p, original) in enumerate(zip(params, originals)):
        numerical = np.zeros_like(original)
        for idx in np.ndindex(original.shape):
            values = []
            for sign in (1, -1):
                p.data = original.copy()
                p.data[idx] += sign * 1e-6
                with no_grad():
                    values.append(np.sum(block(Tensor(x, dtype=np.float64), mask=m).data * upstream))
            numerical[idx] = (values[0] - values[1]) / 2e-6
        p.data = original
        np.testing.assert_allclose(analytic[i], numerical, rtol=1e-4, atol=1e-6)


def test_gpt_loss_gradients_against_central_differences():
    model = to_float64(GPT(5, 4, 4, 2, 1, rng=3))
    tokens = rng.integers(0, 5, size=(2, 4))
    loss_fn = CrossEntropyLoss()

    def loss():
        return loss_fn(model(tokens[:, :-1]).reshape(-1, 5), tokens[:, 1:].reshape(-1))

    model.zero_grad()
    loss().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 6)]:   # a few entries of each
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            with no_grad():
                plus = float(loss().data)
            p.data[idx] = old - 1e-6
            with no_grad():
                minus = float(loss().data)
            p.data[idx] = old
            assert np.isclose(p.grad[idx], (plus - minus) / 2e-6, rtol=1e-4, atol=1e-7), (name, idx)
    # rows of the position table beyond the sequence and unused token rows get exactly zero
    assert not model.position_embedding.weight.grad[3:].any()
    unused = sorted(set(range(5)) - set(tokens[:, :-1].ravel().tolist()))
    assert not model.token_embedding.weight.grad[unused].any()


def test_gpt_shapes_causality_and_count():
    model = GPT(17, 12, 16, 4, 3, rng=0)
    tokens = rng.integers(0, 17, size=(3, 12))
    logits = model(tokens).data
    assert logits.shape == (3, 12, 17) and logits.dtype == np.float32
    changed = tokens.copy()
    changed[:, 7] = (changed[:, 7] + 1) % 17
    np.testing.assert_allclose(model(changed).data[:, :7], logits[:, :7], atol=1e-5)
    assert not np.allclose(model(changed).data[:, 7:], logits[:, 7:])
    d = 16
    assert count_parameters(model) == 17 * d + 12 * d + 3 * (12 * d * d + 13 * d) + 2 * d + d * 17
    assert count_parameters(model) == sum(v.size for v in model.state_dict().values())
    with pytest.raises(ValueError):
        model(rng.integers(0, 17, size=(1, 13)))            # longer than max_len
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["token_embedding.weight", "position_embedding.weight"] and names[-1] == "lm_head.weight"
    assert "blocks.2.mlp.fc2.bias" in names
    assert np.array_equal(GPT(17, 12, 16, 4, 3, rng=0).state_dict()["blocks.1.attn.k_proj.weight"],
                          model.state_dict()["blocks.1.attn.k_proj.weight"])


def test_generate():
    model = GPT(9, 6, 8, 2, 2, rng=1)
    prompt = np.array([1, 2, 3])
    greedy = model.generate(prompt, 8, temperature=0)
    assert greedy.shape == (11,) and greedy.dtype == np.int64 and greedy[:3].tolist() == [1, 2, 3]
    seq = list(prompt)
    for _ in range(8):          # sliding window of max_len = 6
        with no_grad():
            seq.append(int(model(np.array([seq[-6:]])).data[0, -1].argmax()))
    assert greedy.tolist() == seq
    assert np.array_equal(model.generate(prompt, 8, top_k=1, seed=0), greedy)
    a = model.generate(np.stack([prompt, prompt]), 20, temperature=2.0, seed=5)
    assert a.shape == (2, 23) and np.array_equal(a, model.generate(np.stack([prompt, prompt]), 20, temperature=2.0, seed=5))
    assert not np.array_equal(a[0], a[1])         # independent draws per row
    assert not np.array_equal(a, model.generate(np.stack([prompt, prompt]), 20, temperature=2.0, seed=6))
    assert ((a >= 0) & (a < 9)).all()
    assert model.generate(prompt, 0).tolist() == [1, 2, 3]
    # sampling follows the softmax: empirical frequencies of the first new token at temperature 1
    with no_grad():
        logits = model(prompt[None]).data[0, -1].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    draws = model.generate(np.tile(prompt, (4000, 1)), 1, seed=0)[:, -1]
    freq = np.bincount(draws, minlength=9) / 4000
    assert np.abs(freq - probs).max() < 0.03


@pytest.mark.parametrize("trial", range(4))
def test_sample_next_token_matches_the_tempered_top_k_softmax(trial):
    """Oracle: softmax(logits / T) restricted to each row's top k, on random shapes; 40,000
    draws per row keep every frequency within 0.015 (over 5 standard deviations)."""
    gen = np.random.default_rng(100 + trial)
    batch, vocab = int(gen.integers(1, 4)), int(gen.integers(2, 12))
    k = None if trial == 0 else int(gen.integers(1, vocab + 1))
    t = float(gen.uniform(0.3, 3.0))
    logits = gen.normal(size=(batch, vocab)) * 2
    n = 40_000
    ids = sample_next_token(np.repeat(logits, n, axis=0), temperature=t, top_k=k,
                            generator=np.random.default_rng(trial))
    assert ids.shape == (batch * n,) and ids.dtype == np.int64
    for row in range(batch):
        keep = np.argsort(logits[row])[-(k or vocab):]
        want = np.zeros(vocab)
        want[keep] = np.exp((logits[row, keep] - logits[row].max()) / t)
        want /= want.sum()
        freq = np.bincount(ids[row * n:(row + 1) * n], minlength=vocab) / n
        np.testing.assert_allclose(freq, want, atol=0.015)


def test_sample_next_token_edge_cases():
    logits = np.array([[0.0, 3.0, 1.0], [5.0, -1.0, 5.5]], dtype=np.float32)
    assert sample_next_token(logits, temperature=0).tolist() == [1, 2]           # greedy: no generator
    assert sample_next_token(logits, top_k=1, generator=np.random.default_rng(0)).tolist() == [1, 2]
    huge = np.array([[1e4, 0.0, -1e4]])                                           # no overflow
    assert sample_next_token(huge, temperature=0.01, generator=np.random.default_rng(0)).tolist() == [0]
    a = sample_next_token(np.zeros((50, 4)), generator=np.random.default_rng(3))
    assert np.array_equal(a, sample_next_token(np.zeros((50, 4)), generator=np.random.default_rng(3)))
    assert 0 <= sample_next_token(np.zeros((1, 4)))[0] < 4                        # a fresh generator when None
