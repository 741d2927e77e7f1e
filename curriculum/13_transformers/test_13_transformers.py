"""Public graded tests of module 13 (Transformers). Oracles are NumPy formulas computed here,
including a whole NumPy GPT run on the student's own parameters (state_dict)."""

import numpy as np
import pytest

from pytest_tinytorch.kernel import StudentError
from pytest_tinytorch.testing import assert_array, numeric_grads

pytestmark = pytest.mark.module("13_transformers")

C = np.sqrt(2 / np.pi)


def layer_norm(x, w, b, axes=(-1,), eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + np.tanh(C * (x + 0.044715 * x ** 3)))


def linear(p, name, x):
    out = x @ p[name + ".weight"].astype(np.float64).T
    return out + p[name + ".bias"] if name + ".bias" in p else out


def attention(p, prefix, x, heads):
    b, n, e = x.shape
    split = lambda a: a.reshape(b, n, heads, e // heads).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = (split(linear(p, f"{prefix}.{w}_proj", x)) for w in "qkv")
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(e // heads)
    s = np.where(np.tril(np.ones((n, n), bool)), s, -1e9)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return linear(p, f"{prefix}.out_proj", (w @ v).transpose(0, 2, 1, 3).reshape(b, n, e))


def block(p, prefix, x, heads):
    ln = lambda name, a: layer_norm(a, p[f"{prefix}.{name}.weight"], p[f"{prefix}.{name}.bias"])  # noqa: E731
    x = x + attention(p, f"{prefix}.attn", ln("ln1", x), heads)
    h = gelu(linear(p, f"{prefix}.mlp.fc1", ln("ln2", x)))
    return x + linear(p, f"{prefix}.mlp.fc2", h)


def gpt(p, tokens, heads, layers):
    x = p["token_embedding.weight"].astype(np.float64)[tokens] + p["position_embedding.weight"][: tokens.shape[1]]
    for i in range(layers):
        x = block(p, f"blocks.{i}", x, heads)
    return linear(p, "lm_head", layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]))


LNFN = ("ts = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b)]\n"
        "y = LayerNormFn.apply(*ts, eps=1e-5)\ny.backward(g)\n(y.data, [t.grad for t in ts])")


@pytest.mark.points(2)
def test_layernorm_fn_forward(student, rng):
    x = rng.standard_normal((3, 4, 6)) * 2 + 1
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    y, _ = student.value(LNFN, x=x, w=w, b=b, g=np.ones_like(x))
    assert_array(y, layer_norm(x, w, b), rtol=1e-7, atol=1e-9, dtype=np.float64)


@pytest.mark.points(3)
def test_layernorm_fn_backward_matches_central_differences(student, rng):
    x = rng.standard_normal((2, 3, 5)) * 2 + 1
    w, b, g = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((2, 3, 5))
    _, grads = student.value(LNFN, x=x, w=w, b=b, g=g)
    expected = numeric_grads(lambda *a: layer_norm(*a), [x.copy(), w.copy(), b.copy()], g)
    for name, got, want in zip(("x", "weight", "bias"), grads, expected):
        assert_array(got, want, rtol=1e-5, atol=1e-7, dtype=np.float64)  # x, weight, bias


@pytest.mark.points(2)
def test_layernorm_module(student, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    names, w, b, y, y2 = student.value(
        "ln = LayerNorm(4)\n(\n [n for n, _ in ln.named_parameters()], ln.weight.data, ln.bias.data, ln(Tensor(x)).data,"
        " LayerNorm((3, 4))(Tensor(x)).data)", x=x,
    )
    assert names == ["weight", "bias"]
    assert_array(w, np.ones(4), dtype=np.float32)
    assert_array(b, np.zeros(4), dtype=np.float32)
    assert_array(y, layer_norm(x.astype(np.float64), 1, 0), rtol=1e-4, atol=1e-5, dtype=np.float32)
    assert_array(y2, layer_norm(x.astype(np.float64), 1, 0, axes=(-2, -1)), rtol=1e-4, atol=1e-5, dtype=np.float32)
    with pytest.raises(StudentError) as err:
        student.value("LayerNorm(5)(Tensor(x))", x=x)
    assert err.value.is_a("ValueError")


@pytest.mark.points(2)
def test_feedforward(student, rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    p, y = student.value("m = FeedForward(4, rng=0)\n(m.state_dict(), m(Tensor(x)).data)", x=x)
    assert sorted(p) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"] and p["fc1.weight"].shape == (16, 4)
    assert_array(y, linear(p, "fc2", gelu(linear(p, "fc1", x.astype(np.float64)))), rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(3)
def test_feedforward_fn_backward_matches_central_differences(student, rng):
    x, g = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 3))
    w1, b1 = rng.standard_normal((5, 3)), rng.standard_normal(5)
    w2, b2 = rng.standard_normal((3, 5)), rng.standard_normal(3)
    y, grads = student.value(
        "ts = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w1, b1, w2, b2)]\n"
        "y = FeedForwardFn.apply(*ts)\ny.backward(g)\n(y.data, [t.grad for t in ts])",
        x=x, w1=w1, b1=b1, w2=w2, b2=b2, g=g,
    )

    def ffn(x, w1, b1, w2, b2):
        return gelu(x @ w1.T + b1) @ w2.T + b2

    arrays = [a.copy() for a in (x, w1, b1, w2, b2)]
    assert_array(y, ffn(*arrays), rtol=1e-7, atol=1e-9, dtype=np.float64)
    for got, want in zip(grads, numeric_grads(ffn, arrays, g)):
        assert_array(got, want, rtol=1e-5, atol=1e-7, dtype=np.float64)


@pytest.mark.points(3)
def test_transformer_block_matches_numpy(student, rng):
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    p, y = student.value(
        "m = TransformerBlock(8, 2, rng=0)\nfor q in m.parameters():\n    q.data += np.float32(0.1) * np.random.default_rng(1).standard_normal(q.shape).astype(np.float32)\n"
        "(m.state_dict(), m(Tensor(x), mask=causal_mask(5)).data)", x=x,
    )
    assert list(p)[:2] == ["ln1.weight", "ln1.bias"] and "mlp.fc1.weight" in p and "attn.q_proj.weight" in p
    p = {f"b.{k}": v for k, v in p.items()}
    assert_array(y, block(p, "b", x.astype(np.float64), 2), rtol=1e-4, atol=1e-4, dtype=np.float32)


@pytest.mark.points(3)
def test_gpt_forward_matches_numpy(student, rng):
    tokens = rng.integers(0, 13, size=(2, 7))
    p, logits = student.value("m = GPT(13, 9, 8, 2, 2, rng=0)\n(m.state_dict(), m(tokens).data)", tokens=tokens)
    assert "lm_head.weight" in p and "lm_head.bias" not in p and "blocks.1.ln2.bias" in p
    assert_array(logits, gpt(p, tokens, 2, 2), rtol=1e-4, atol=1e-4, dtype=np.float32)


@pytest.mark.points(2)
def test_gpt_training_step_reduces_loss(student, rng):
    tokens = rng.integers(0, 7, size=(4, 8))
    losses, grads_missing = student.value(
        "from tinytorch.core.losses import CrossEntropyLoss\nfrom tinytorch.core.optimizers import Adam\n"
        "m = GPT(7, 8, 16, 2, 1, rng=0)\nopt, lf, losses = Adam(m.parameters(), lr=1e-2), CrossEntropyLoss(), []\n"
        "for _ in range(15):\n    opt.zero_grad()\n    loss = lf(m(tokens[:, :-1]).reshape(-1, 7), tokens[:, 1:].reshape(-1))\n"
        "    loss.backward()\n    missing = [n for n, q in m.named_parameters() if q.grad is None]\n"
        "    opt.step()\n    losses.append(float(loss.data))\n(losses, missing)", tokens=tokens,
    )
    assert grads_missing == [], f"parameters without a gradient: {grads_missing}"
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.points(2)
def test_sample_next_token_follows_the_tempered_softmax(student, rng):
    logits, n = rng.normal(size=5) * 2, 20_000
    ids, again, greedy = student.value(
        "rows = np.repeat(logits[None], n, axis=0)\n"
        "(sample_next_token(rows, temperature=0.7, generator=np.random.default_rng(1)),"
        " sample_next_token(rows, temperature=0.7, generator=np.random.default_rng(1)),"
        " sample_next_token(np.stack([logits, -logits]), temperature=0))",
        logits=logits, n=n,
    )
    want = np.exp(logits / 0.7 - (logits / 0.7).max())
    want /= want.sum()
    assert np.shape(ids) == (n,) and np.issubdtype(np.asarray(ids).dtype, np.integer)
    assert np.array_equal(ids, again), "the same generator state must give the same ids"
    freq = np.bincount(ids, minlength=5) / n
    assert np.abs(freq - want).max() < 0.02, f"{n} draws: frequencies {freq.round(3)}, softmax(logits/0.7) {want.round(3)}"
    assert list(greedy) == [logits.argmax(), (-logits).argmax()], "temperature=0 is the argmax of each row"


@pytest.mark.points(2)
def test_generate_greedy_and_seeded(student, rng):
    prompt = rng.integers(0, 11, size=3)
    p, greedy, top1, s1, s2 = student.value(
        "m = GPT(11, 6, 8, 2, 1, rng=0)\n(m.state_dict(), m.generate(prompt, 5, temperature=0),"
        " m.generate(prompt, 5, top_k=1, seed=3), m.generate(prompt, 5, seed=7), m.generate(prompt, 5, seed=7))",
        prompt=prompt,
    )
    seq = prompt.copy()
    for _ in range(5):       # greedy with a sliding window of max_len = 6
        seq = np.append(seq, gpt(p, seq[None, -6:], 2, 1)[0, -1].argmax())
    assert_array(greedy, seq, rtol=0, atol=0, dtype=np.int64)
    assert_array(top1, seq, rtol=0, atol=0, dtype=np.int64)
    assert_array(s1, s2, rtol=0, atol=0, dtype=np.int64)
    assert s1.shape == (8,) and np.array_equal(s1[:3], prompt) and ((s1 >= 0) & (s1 < 11)).all()


@pytest.mark.points(1)
def test_count_parameters(student):
    got = student.value("count_parameters(GPT(10, 6, 8, 2, 3)), count_parameters(LayerNorm(5))")
    d = 8
    assert got == (10 * d + 6 * d + 3 * (12 * d * d + 13 * d) + 2 * d + d * 10, 10)
