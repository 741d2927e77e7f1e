"""Hidden graded tests of Module 13 (Transformers): instructors only, never released.

Inputs come from `rng`, seeded by the grader at grading time, so a hard-coded answer cannot pass.
The NumPy oracles are written independently of the public file's (attention head by head,
LayerNorm gradients in closed form)."""

import numpy as np
import pytest

from pytest_tinytorch.testing import assert_array

pytestmark = [pytest.mark.module("13_transformers"), pytest.mark.hidden]

C = np.sqrt(2 / np.pi)


def layer_norm(x, w, b, axes=(-1,), eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + np.tanh(C * (x + 0.044715 * x ** 3)))


def linear(p, name, x):
    out = x @ p[name + ".weight"].astype(np.float64).T
    return out + p[name + ".bias"] if name + ".bias" in p else out


def block(p, prefix, x, heads, causal=True):
    """Pre-norm block, attention written head by head (unlike the student's reshape)."""
    ln = lambda name, a: layer_norm(a, p[f"{prefix}.{name}.weight"], p[f"{prefix}.{name}.bias"])  # noqa: E731
    h = ln("ln1", x)
    b, n, e = x.shape
    d = e // heads
    q, k, v = (linear(p, f"{prefix}.attn.{w}_proj", h) for w in "qkv")
    outs = []
    for i in range(heads):
        cols = slice(i * d, (i + 1) * d)
        s = q[..., cols] @ k[..., cols].transpose(0, 2, 1) / np.sqrt(d)
        if causal:
            s = np.where(np.tril(np.ones((n, n), bool)), s, -1e9)
        w = np.exp(s - s.max(-1, keepdims=True))
        outs.append((w / w.sum(-1, keepdims=True)) @ v[..., cols])
    x = x + linear(p, f"{prefix}.attn.out_proj", np.concatenate(outs, -1))
    return x + linear(p, f"{prefix}.mlp.fc2", gelu(linear(p, f"{prefix}.mlp.fc1", ln("ln2", x))))


def gpt(p, tokens, heads, layers):
    x = p["token_embedding.weight"].astype(np.float64)[tokens] + p["position_embedding.weight"][: tokens.shape[1]]
    for i in range(layers):
        x = block(p, f"blocks.{i}", x, heads)
    return linear(p, "lm_head", layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]))


@pytest.mark.points(3)
def test_layernorm_fn_random_shapes_and_grads(student, rng):
    for trailing in (1, 2):
        shape = tuple(int(n) for n in rng.integers(2, 5, size=int(rng.integers(trailing, 4))))
        x = rng.standard_normal(shape) * rng.uniform(0.5, 5) + rng.uniform(-3, 3)
        w, b = rng.standard_normal(shape[-trailing:]), rng.standard_normal(shape[-trailing:])
        g = rng.standard_normal(shape)
        y, grads = student.value(
            "ts = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b)]\n"
            "y = LayerNormFn.apply(*ts, eps=1e-5)\ny.backward(g)\n(y.data, [t.grad for t in ts])",
            x=x, w=w, b=b, g=g,
        )
        axes = tuple(range(-trailing, 0))
        assert_array(y, layer_norm(x, w, b, axes), rtol=1e-7, atol=1e-9, dtype=np.float64)
        # closed-form gradients, derived independently of the student's formula
        n = int(np.prod(shape[-trailing:]))
        mu = x.mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
        xhat = (x - mu) * rstd
        gh = g * w
        gx = rstd / n * (n * gh - gh.sum(axis=axes, keepdims=True) - xhat * (gh * xhat).sum(axis=axes, keepdims=True))
        lead = tuple(range(len(shape) - trailing))
        assert_array(grads[0], gx, rtol=1e-6, atol=1e-8, dtype=np.float64)
        assert_array(grads[1], (g * xhat).sum(axis=lead), rtol=1e-6, atol=1e-8, dtype=np.float64)
        assert_array(grads[2], g.sum(axis=lead), rtol=1e-6, atol=1e-8, dtype=np.float64)


@pytest.mark.points(2)
def test_layernorm_module_random(student, rng):
    d = int(rng.integers(2, 9))
    x = (rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 5)), d)) * 4).astype(np.float32)
    w, b = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    y = student.value("ln = LayerNorm(d)\nln.load_state_dict({'weight': w, 'bias': b})\nln(Tensor(x)).data",
                      d=d, x=x, w=w, b=b)
    assert_array(y, layer_norm(x.astype(np.float64), w, b), rtol=1e-4, atol=1e-4, dtype=np.float32)


@pytest.mark.points(2)
def test_feedforward_random_hidden(student, rng):
    d, hidden = int(rng.integers(2, 7)), int(rng.integers(2, 11))
    x = rng.standard_normal((2, 3, d)).astype(np.float32)
    p, y = student.value("m = FeedForward(d, hidden, rng=seed)\n(m.state_dict(), m(Tensor(x)).data)",
                         d=d, hidden=hidden, x=x, seed=int(rng.integers(1000)))
    assert p["fc1.weight"].shape == (hidden, d) and p["fc2.weight"].shape == (d, hidden)
    assert_array(y, linear(p, "fc2", gelu(linear(p, "fc1", x.astype(np.float64)))), rtol=1e-4, atol=1e-5, dtype=np.float32)


@pytest.mark.points(2)
def test_feedforward_fn_random_grads(student, rng):
    lead = tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(1, 3))))
    d, hidden = int(rng.integers(1, 5)), int(rng.integers(1, 7))
    x, g = rng.standard_normal(lead + (d,)), rng.standard_normal(lead + (d,))
    w1, b1, w2, b2 = (rng.standard_normal(s) for s in ((hidden, d), (hidden,), (d, hidden), (d,)))
    y, grads = student.value(
        "ts = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w1, b1, w2, b2)]\n"
        "y = FeedForwardFn.apply(*ts)\ny.backward(g)\n(y.data, [t.grad for t in ts])",
        x=x, w1=w1, b1=b1, w2=w2, b2=b2, g=g,
    )
    h = x @ w1.T + b1
    t = np.tanh(C * (h + 0.044715 * h ** 3))
    a = 0.5 * h * (1 + t)
    assert_array(y, a @ w2.T + b2, rtol=1e-7, atol=1e-9, dtype=np.float64)
    # the chain rule written out independently: d tanh(u) = (1 - t^2) du
    du = C * (1 + 3 * 0.044715 * h ** 2)
    gh = (g @ w2) * (0.5 * (1 + t) + 0.5 * h * (1 - t ** 2) * du)
    flat = lambda m: m.reshape(-1, m.shape[-1])  # noqa: E731
    expected = [gh @ w1, flat(gh).T @ flat(x), flat(gh).sum(0), flat(g).T @ flat(a), flat(g).sum(0)]
    for got, want in zip(grads, expected):
        assert_array(got, want, rtol=1e-6, atol=1e-8, dtype=np.float64)


@pytest.mark.points(3)
def test_block_random_with_and_without_mask(student, rng):
    heads = int(rng.integers(1, 4))
    d, n = heads * int(rng.integers(1, 4)), int(rng.integers(2, 7))
    x = rng.standard_normal((2, n, d)).astype(np.float32)
    p, causal, full = student.value(
        "m = TransformerBlock(d, h, rng=seed)\n(m.state_dict(), m(Tensor(x), mask=causal_mask(x.shape[1])).data, m(Tensor(x)).data)",
        d=d, h=heads, x=x, seed=int(rng.integers(1000)),
    )
    p = {f"b.{k}": v for k, v in p.items()}
    assert_array(causal, block(p, "b", x.astype(np.float64), heads), rtol=1e-4, atol=1e-4, dtype=np.float32)
    assert_array(full, block(p, "b", x.astype(np.float64), heads, causal=False), rtol=1e-4, atol=1e-4, dtype=np.float32)


@pytest.mark.points(3)
def test_gpt_random_config(student, rng):
    heads, layers = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    vocab, dim, max_len = int(rng.integers(5, 20)), heads * int(rng.integers(2, 5)), int(rng.integers(4, 10))
    tokens = rng.integers(0, vocab, size=(int(rng.integers(1, 3)), int(rng.integers(1, max_len + 1))))
    p, logits, count = student.value(
        "m = GPT(v, L, d, h, n, rng=seed)\n(m.state_dict(), m(tokens).data, count_parameters(m))",
        v=vocab, L=max_len, d=dim, h=heads, n=layers, tokens=tokens, seed=int(rng.integers(1000)),
    )
    assert_array(logits, gpt(p, tokens, heads, layers), rtol=1e-4, atol=1e-4, dtype=np.float32)
    assert count == sum(v.size for v in p.values()) == vocab * dim + max_len * dim + layers * (12 * dim * dim + 13 * dim) + 2 * dim + dim * vocab


@pytest.mark.points(2)
def test_sample_next_token_top_k_per_row(student, rng):
    vocab, k, t, n = int(rng.integers(6, 10)), int(rng.integers(2, 4)), float(rng.uniform(0.5, 2.0)), 15_000
    logits = rng.normal(size=(2, vocab)) * 1.5
    ids = student.value(
        "sample_next_token(np.repeat(logits, n, axis=0), temperature=t, top_k=k, generator=np.random.default_rng(s))",
        logits=logits, n=n, t=t, k=k, s=int(rng.integers(1000)),
    )
    assert np.shape(ids) == (2 * n,)
    for row in range(2):                 # rows 0..n-1 repeat logits[0], rows n..2n-1 logits[1]
        top = np.argsort(logits[row])[-k:]
        want = np.zeros(vocab)
        want[top] = np.exp(logits[row, top] / t) / np.exp(logits[row, top] / t).sum()
        freq = np.bincount(ids[row * n:(row + 1) * n], minlength=vocab) / n
        assert np.abs(freq - want).max() < 0.025, f"row {row}: frequencies {freq.round(3)}, expected {want.round(3)} (top {k}, T={t:.2f})"


@pytest.mark.points(2)
def test_generate_top_k_batched_and_window(student, rng):
    vocab, k = int(rng.integers(6, 12)), int(rng.integers(2, 4))
    prompt = rng.integers(0, vocab, size=(2, 3))
    p, out, again = student.value(
        "m = GPT(v, 5, 8, 2, 1, rng=0)\n"
        "(m.state_dict(), m.generate(prompt, 6, temperature=1.5, top_k=k, seed=s), m.generate(prompt, 6, temperature=1.5, top_k=k, seed=s))",
        v=vocab, prompt=prompt, k=k, s=int(rng.integers(1000)),
    )
    assert out.shape == (2, 9) and out.dtype == np.int64 and np.array_equal(out[:, :3], prompt)
    assert np.array_equal(out, again)
    for t in range(3, 9):   # each sampled token is among the k most likely under a window of 5
        logits = gpt(p, out[:, max(0, t - 5):t], 2, 1)[:, -1]
        allowed = np.argsort(logits, axis=-1)[:, -k:]
        assert all(out[i, t] in allowed[i] for i in range(2)), f"token {t} is not among the top {k}"


@pytest.mark.points(1)
def test_generate_temperature_zero_is_greedy(student, rng):
    prompt = rng.integers(0, 9, size=2)
    p, out = student.value("m = GPT(9, 8, 8, 2, 2, rng=1)\n(m.state_dict(), m.generate(prompt, 4, temperature=0))", prompt=prompt)
    seq = prompt.copy()
    for _ in range(4):
        seq = np.append(seq, gpt(p, seq[None], 2, 2)[0, -1].argmax())
    assert_array(out, seq, rtol=0, atol=0, dtype=np.int64)
