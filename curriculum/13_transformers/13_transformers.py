# %% [markdown]
# # Module 13: Transformers
#
# Everything is ready: token vectors (Module 11), attention (Module 12), layers, losses,
# autograd and optimizers (Modules 03-07). This week you assemble them into the architecture
# behind GPT, Llama and every chat model: a stack of **transformer blocks** between an embedding
# and an output projection, trained to predict the next token. At the end of the week your own
# GPT generates text (the `tinygpt` milestone trains one).
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `LayerNormFn`, `LayerNorm(normalized_shape, eps=1e-5)` | normalises each token vector to mean 0, variance 1, then scales and shifts; its own backward | `torch.nn.LayerNorm` |
# | `FeedForwardFn`, `FeedForward(dim, hidden_dim)` | the per-token MLP: Linear, GELU, Linear, fused into one Function | GPT-2's `GPT2MLP` (`c_fc`, `gelu`, `c_proj`) |
# | `TransformerBlock(dim, num_heads)` | pre-norm block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))` | `nn.TransformerEncoderLayer(..., norm_first=True, activation="gelu")` with a causal mask |
# | `GPT(vocab_size, max_len, dim, num_heads, num_layers)` | embeddings, blocks, final norm, LM head; `generate` samples text | nanoGPT's `GPT`, Hugging Face `GPT2LMHeadModel` |
# | `count_parameters(model)` | the size of the model | `sum(p.numel() for p in model.parameters())` |
#
# **The systems lesson** is where the parameters, the FLOPs and the memory of a transformer go.
# Almost all parameters sit in the blocks, `12 d^2` per block (`4 d^2` attention, `8 d^2` MLP);
# every token costs about `2 x parameters` FLOPs forward; and the activations kept for backward
# grow with `batch x seq x d x layers`, plus `batch x heads x seq^2` per layer for attention.
# You will count and time them on your own model, and scale them to GPT-2 and a 1B model.
#
# **Autograd.** `LayerNorm` and the feed-forward block get their own `Function`s (one fused
# forward and backward instead of a dozen recorded primitives: less memory, less Python, one
# place to get the numerics right). Everything else is composed from differentiable pieces you
# already have: `MultiHeadAttention` (written with Tensor operations, so Module 06
# differentiates it), your `Embedding` and `PositionalEmbedding`, `Linear`.

# %% tags=["export"]
import math

import numpy as np

from tinytorch.core.activations import GELU
from tinytorch.core.attention import MultiHeadAttention, causal_mask
from tinytorch.core.autograd import Function, no_grad
from tinytorch.core.embeddings import Embedding, PositionalEmbedding
from tinytorch.core.layers import Linear, Module, Parameter, Sequential
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## Layer normalization, forward and backward
#
# Deep stacks train only if the scale of the activations stays under control. LayerNorm
# (Ba et al., 2016) normalises each token vector on its own, over its last dimension(s), then
# applies a learned per-feature scale `weight` (gamma) and shift `bias` (beta):
#
# $$\hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \hat x \cdot w + b,$$
#
# where `mu` and `sigma^2` are the mean and the *biased* variance (divide by `D`, not `D - 1`) of
# the `D` numbers being normalised, and `eps = 1e-5` guards against dividing by zero for a
# constant vector. Unlike batch normalization it never mixes tokens or examples: it behaves
# the same in training and inference, for a batch of 1, and at every sequence length.
#
# **Backward.** With `g = dL/dy`, the parameter gradients are sums over every token:
# `dL/dw = sum(g * x_hat)`, `dL/db = sum(g)`. For the input, write `g_hat = g * w`, and
# `rstd = 1 / sqrt(sigma^2 + eps)`; differentiating through `mu` and `sigma^2` (both depend on
# every element of the vector) gives, with `mean` over the normalised dimensions:
#
# $$\frac{\partial L}{\partial x} = \mathrm{rstd}\,\Big(\hat g - \mathrm{mean}(\hat g) - \hat x \cdot \mathrm{mean}(\hat g\,\hat x)\Big)$$
#
# The two subtracted terms remove the parts of the gradient that would change the mean and the
# variance, which the normalisation undoes anyway. Save `x_hat`, `rstd` and `weight` in forward:
# that is all backward needs.
#
# **Your tasks** (`LayerNormFn`, called as `LayerNormFn.apply(x, weight, bias, eps=eps)`, where
# `weight` and `bias` have the shape of the normalised trailing dimensions of `x`):
# - `forward(self, x, weight, bias, eps=1e-5)`: return `y`, save what backward needs;
# - `backward(self, grad)`: return `(dL/dx, dL/dweight, dL/dbias)`, `None` for an input whose
#   `self.needs_input_grad` entry is False. No Python loops: sums and means over axes.

# %% tags=["export"]
class LayerNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing weight.ndim dimensions
    of x (biased variance). PyTorch: torch.nn.functional.layer_norm."""

    __slots__ = ()

    def forward(self, x, weight, bias, eps=1e-5):
        ### BEGIN SOLUTION
        axes = tuple(range(x.ndim - weight.ndim, x.ndim))
        x_hat = x - x.mean(axis=axes, keepdims=True)           # centre first: accurate for large means
        rstd = 1.0 / np.sqrt(np.mean(x_hat * x_hat, axis=axes, keepdims=True) + eps)
        x_hat *= rstd                                           # in place: one full-size array, not two
        self.save_for_backward(x_hat, rstd, weight)
        y = x_hat * weight
        y += bias
        return y
        ### END SOLUTION

    def backward(self, grad):
        ### BEGIN SOLUTION
        x_hat, rstd, weight = self.saved
        need_x, need_w, need_b = self.needs_input_grad
        axes = tuple(range(grad.ndim - weight.ndim, grad.ndim))   # the normalised dimensions
        batch = tuple(range(grad.ndim - weight.ndim))              # every token
        grad_x = grad_w = grad_b = None
        if need_x:
            g_hat = grad * weight
            projection = np.mean(g_hat * x_hat, axis=axes, keepdims=True)   # (..., 1): per token
            grad_x = g_hat - g_hat.mean(axis=axes, keepdims=True)           # remove the mean's part
            grad_x -= x_hat * projection                                    # remove the variance's part
            grad_x *= rstd
        if need_w:
            grad_w = np.sum(grad * x_hat, axis=batch)
        if need_b:
            grad_b = grad.sum(axis=batch)
        return grad_x, grad_w, grad_b
        ### END SOLUTION

# %%
# Check LayerNormFn against NumPy, then its backward against central differences (float64).
from tinytorch.core.autograd import gradcheck

_rng = np.random.default_rng(0)
_x = _rng.standard_normal((2, 3, 5)) * 3 + 1
_w, _b = _rng.standard_normal(5), _rng.standard_normal(5)
_y = LayerNormFn.apply(Tensor(_x, dtype=np.float64), Tensor(_w, dtype=np.float64), Tensor(_b, dtype=np.float64))
_ref = (_x - _x.mean(-1, keepdims=True)) / np.sqrt(_x.var(-1, keepdims=True) + 1e-5) * _w + _b
assert _y.dtype == np.float64 and np.allclose(_y.data, _ref)
assert gradcheck(lambda x, w, b: LayerNormFn.apply(x, w, b), _x, _w, _b)
assert gradcheck(lambda x, w, b: LayerNormFn.apply(x, w, b), _x, _rng.standard_normal((3, 5)), _rng.standard_normal((3, 5)))
print("LayerNormFn ok: forward matches NumPy, backward matches central differences")

# %% [markdown]
# ## The `LayerNorm` module
#
# `LayerNorm(normalized_shape, eps=1e-5)` as in PyTorch: `normalized_shape` is an int (the last
# dimension) or a tuple (the trailing dimensions). Parameters `weight` (ones) and `bias`
# (zeros) of that shape, float32, registered in that order, so a fresh LayerNorm is the plain
# normalisation. `forward(x)` checks that the trailing dimensions of `x` equal
# `normalized_shape` (`ValueError` naming both shapes otherwise), then calls `LayerNormFn`.
#
# **Your tasks:** `LayerNorm.__init__` and `LayerNorm.forward`.

# %% tags=["export"]
class LayerNorm(Module):
    """Layer normalization over the trailing dimensions. PyTorch: torch.nn.LayerNorm.

    LayerNorm(normalized_shape, eps=1e-5): weight (ones) and bias (zeros), float32 Parameters of
    shape normalized_shape (an int means (int,)).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5):
        ### BEGIN SOLUTION
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = float(eps)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """Normalise x (..., *normalized_shape) per token, then scale by weight and shift by bias."""
        ### BEGIN SOLUTION
        if x.shape[x.ndim - len(self.normalized_shape):] != self.normalized_shape:
            raise ValueError(f"LayerNorm{self.normalized_shape} got an input of shape {x.shape}: its trailing "
                             f"dimensions must be {self.normalized_shape}")
        return LayerNormFn.apply(x, self.weight, self.bias, eps=self.eps)
        ### END SOLUTION

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"

# %%
_ln = LayerNorm(5)
assert [n for n, _ in _ln.named_parameters()] == ["weight", "bias"] and _ln.weight.dtype == np.float32
_out = _ln(Tensor(_x))
assert _out.dtype == np.float32 and np.allclose(_out.data.mean(-1), 0, atol=1e-5) and np.allclose(_out.data.std(-1), 1, atol=1e-3)
assert LayerNorm((3, 5))(Tensor(_x)).shape == (2, 3, 5)
print("LayerNorm ok:", _ln)

# %% [markdown]
# ## The feed-forward block, fused
#
# Attention moves information *between* tokens; the feed-forward block (MLP) processes each
# token *on its own*: `fc2(GELU(fc1(x)))`, with `fc1 = Linear(dim, hidden_dim)` and
# `fc2 = Linear(hidden_dim, dim)`. The hidden width is 4x the model width by convention
# (GPT-2, BERT), so the MLP holds `8 d^2` of the `12 d^2` parameters of a block: two thirds of
# the model. (Llama replaces it by a gated SwiGLU with three matrices.) The activation is
# GPT-2's GELU, tanh approximation, as in Module 02:
# `GELU(h) = 0.5 h (1 + t)` with `t = tanh(c (h + 0.044715 h^3))`, `c = sqrt(2 / pi)`.
#
# Composed from Module 03's `Linear` and Module 02's `GELU`, Module 06 would record five nodes
# (two matmuls, two bias additions, the GELU) and keep every intermediate `(tokens, hidden)`
# array alive until backward, and the GELU alone allocates four temporary arrays of that size.
# The hidden activations are the largest arrays of the block (4x the width), so this is where
# a transformer's time and activation memory go. As for LayerNorm, we write **one Function**:
#
# - **forward(x, w1, b1, w2, b2)**: flatten `x` to `(tokens, dim)` (one 2-D matrix product,
#   the shape BLAS likes best), `h = x @ w1.T + b1`, `t` computed *in place* in one buffer
#   (a product, in-place `*=` and `+=`, then `np.tanh` with `out=`), `a = 0.5 h (1 + t)`,
#   `y = a @ w2.T + b2`, reshaped back to `x`'s leading dimensions. Save `x` (flattened), `h`, `t`
#   and the weights: `a` is *recomputed* in backward from `h` and `t`, a cheap element-wise
#   product, rather than stored (the trade of activation checkpointing, in miniature).
# - **backward(grad)**: with `g` the upstream gradient flattened to `(tokens, dim)`:
#   `dL/dw2 = g^T a`, `dL/db2 = sum(g)`, `dL/da = g w2`,
#   `dL/dh = dL/da * GELU'(h)` with
#   `GELU'(h) = 0.5 (1 + t) + 0.5 h (1 - t^2) c (1 + 3 * 0.044715 h^2)`,
#   then `dL/dw1 = (dL/dh)^T x`, `dL/db1 = sum(dL/dh)`, `dL/dx = (dL/dh) w1`, reshaped to `x`'s
#   shape. Return `None` for inputs that need no gradient.
#
# The inline check compares your fused Function with the composed `fc2(GELU(fc1(x)))`: same
# values, same gradients, fewer nodes. (Fusing element-wise work into its neighbours is what
# `torch.compile` and hand-written CUDA kernels do; Module 17 goes further.)
#
# **Your tasks:** `FeedForwardFn.forward`, `FeedForwardFn.backward`,
# `FeedForward.__init__(dim, hidden_dim=None, rng=None)` (`hidden_dim` defaults to `4 * dim`;
# `fc1` then `fc2`, drawn from one `np.random.default_rng(rng)`; keep a `GELU()` as `self.act`
# for the composed version) and `FeedForward.forward(x)` (one `FeedForwardFn.apply`).

# %% tags=["export"]
_GELU_C = math.sqrt(2 / math.pi)


class FeedForwardFn(Function):
    """y = GELU(x @ w1.T + b1) @ w2.T + b2 (tanh GELU) as one autograd node, x of shape (..., dim).
    PyTorch: F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2)."""

    __slots__ = ()

    def forward(self, x, w1, b1, w2, b2):
        ### BEGIN SOLUTION
        x2 = x.reshape(-1, x.shape[-1])                 # (tokens, dim): one 2-D BLAS call
        h = x2 @ w1.T
        h += b1
        t = h * h                                       # t = tanh(c (h + 0.044715 h^3)), in one buffer
        t *= 0.044715 * _GELU_C
        t += _GELU_C
        t *= h
        np.tanh(t, out=t)
        a = t + 1.0                                     # a = GELU(h) = 0.5 h (1 + t)
        a *= h
        a *= 0.5
        y = a @ w2.T
        y += b2
        self.save_for_backward(x2, h, t, w1, w2, x.shape)
        return y.reshape(x.shape[:-1] + (w2.shape[0],))
        ### END SOLUTION

    def backward(self, grad):
        ### BEGIN SOLUTION
        x2, h, t, w1, w2, shape = self.saved
        need_x, need_w1, need_b1, need_w2, need_b2 = self.needs_input_grad
        g = grad.reshape(-1, grad.shape[-1])
        grad_w2 = g.T @ (0.5 * h * (1 + t)) if need_w2 else None     # a recomputed, not stored
        grad_b2 = g.sum(axis=0) if need_b2 else None
        local = 0.5 * (1 + t) + 0.5 * h * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * (h * h))
        grad_h = (g @ w2) * local
        grad_x = (grad_h @ w1).reshape(shape) if need_x else None
        grad_w1 = grad_h.T @ x2 if need_w1 else None
        grad_b1 = grad_h.sum(axis=0) if need_b1 else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2
        ### END SOLUTION


class FeedForward(Module):
    """The position-wise MLP of a transformer block: fc2(GELU(fc1(x))), computed by FeedForwardFn.

    FeedForward(dim, hidden_dim=None, rng=None): fc1 = Linear(dim, hidden_dim or 4 * dim),
    fc2 = Linear(hidden_dim, dim), act = GELU(). PyTorch: nn.Sequential(nn.Linear,
    nn.GELU(approximate="tanh"), nn.Linear).
    """

    def __init__(self, dim: int, hidden_dim=None, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        hidden_dim = 4 * dim if hidden_dim is None else hidden_dim
        generator = np.random.default_rng(rng)
        self.fc1 = Linear(dim, hidden_dim, rng=generator)
        self.act = GELU()
        self.fc2 = Linear(hidden_dim, dim, rng=generator)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return FeedForwardFn.apply(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)
        ### END SOLUTION

# %%
# Check the fused block against the composed one: values, every gradient, and the graph size.
_ff = FeedForward(6, 10, rng=0)
_xf = _rng.standard_normal((2, 3, 6)).astype(np.float32)
_gf = _rng.standard_normal((2, 3, 6)).astype(np.float32)
_results = []
for _fn in (_ff, lambda x: _ff.fc2(_ff.act(_ff.fc1(x)))):
    _ff.zero_grad()
    _xt = Tensor(_xf, requires_grad=True)
    _yf = _fn(_xt)
    _yf.backward(_gf)
    _results.append([_yf.data, _xt.grad] + [p.grad for p in _ff.parameters()])
for _fused, _composed in zip(*_results):
    assert _fused.dtype == np.float32 and np.allclose(_fused, _composed, rtol=1e-4, atol=1e-5)
_tiny_ff = FeedForward(3, 4, rng=1)
for _p in _tiny_ff.parameters():
    _p.data = _p.data.astype(np.float64)
assert gradcheck(_tiny_ff, _rng.standard_normal((2, 2, 3)))
print("FeedForward ok: fused == composed, gradients match central differences")

# %% [markdown]
# ## The transformer block
#
# A block combines the two halves with **residual connections** and **pre-normalization**
# (GPT-2 and every later LLM; the 2017 paper normalised after the residual, which trains badly
# when deep):
#
# ```
# x = x + attn(ln1(x), mask)      # tokens exchange information
# x = x + mlp(ln2(x))             # each token thinks on its own
# ```
#
# The residual path `x + ...` is an identity highway: the gradient reaches early layers through
# the additions unchanged, however deep the stack. The normalisation sits on the branch, so the
# highway itself is never rescaled.
#
# **Your tasks:** `TransformerBlock.__init__(dim, num_heads, mlp_ratio=4, rng=None)`: children
# `ln1` (LayerNorm(dim)), `attn` (your `MultiHeadAttention(dim, num_heads)`), `ln2`, `mlp`
# (`FeedForward(dim, mlp_ratio * dim)`), in that order, the random ones drawing from one
# `np.random.default_rng(rng)`; and `forward(x, mask=None)` for `x` of shape `(batch, seq, dim)`.

# %% tags=["export"]
class TransformerBlock(Module):
    """A pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)).

    TransformerBlock(dim, num_heads, mlp_ratio=4, rng=None); children ln1, attn, ln2, mlp.
    PyTorch: nn.TransformerEncoderLayer(dim, num_heads, mlp_ratio * dim, dropout=0,
    activation="gelu", batch_first=True, norm_first=True) with a causal mask.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        generator = np.random.default_rng(rng)
        self.ln1 = LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, rng=generator)
        self.ln2 = LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio * dim, rng=generator)
        ### END SOLUTION

    def forward(self, x: Tensor, mask=None) -> Tensor:
        """x (batch, seq, dim) -> (batch, seq, dim); mask as in MultiHeadAttention (True = may attend)."""
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln1(x), mask=mask)
        return x + self.mlp(self.ln2(x))
        ### END SOLUTION

# %%
# Check the block: shapes, causality, and gradients of the whole block against central
# differences on a tiny block in float64.
_block = TransformerBlock(8, 2, rng=0)
assert [n for n, _ in _block.named_parameters()][:2] == ["ln1.weight", "ln1.bias"] and len(_block.parameters()) == 16
_xb = _rng.standard_normal((2, 5, 8)).astype(np.float32)
_ya = _block(Tensor(_xb), mask=causal_mask(5)).data
_xb2 = _xb.copy()
_xb2[:, 3:] += 1
assert np.allclose(_ya[:, :3], _block(Tensor(_xb2), mask=causal_mask(5)).data[:, :3], atol=1e-5)

_tiny = TransformerBlock(4, 2, mlp_ratio=2, rng=1)
for _p in _tiny.parameters():
    _p.data = _p.data.astype(np.float64)
assert gradcheck(lambda x: _tiny(x, mask=causal_mask(3)), _rng.standard_normal((2, 3, 4)), rtol=1e-4, atol=1e-6)
print("TransformerBlock ok: causal, gradients of the whole block match central differences")

# %% [markdown]
# ## GPT
#
# A decoder-only language model (GPT-2's layout), `GPT(vocab_size, max_len, dim, num_heads,
# num_layers, rng=None)`, with children in this order:
#
# 1. `token_embedding = Embedding(vocab_size, dim)`, `position_embedding =
#    PositionalEmbedding(max_len, dim)` (Module 11);
# 2. `blocks = Sequential(TransformerBlock(dim, num_heads), ...)`, `num_layers` of them
#    (Sequential registers them as `blocks.0`, `blocks.1`, ...; call them yourself in a loop,
#    because each needs the mask);
# 3. `ln_f = LayerNorm(dim)`, the final norm (pre-norm leaves the last residual un-normalised);
# 4. `lm_head = Linear(dim, vocab_size, bias=False)`: one score (logit) per vocabulary entry.
#
# All random initialisation draws from one `np.random.default_rng(rng)`.
#
# `forward(tokens)` takes integer ids `(batch, seq)` with `seq <= max_len` and returns logits
# `(batch, seq, vocab_size)`: the logits at position `t` predict token `t + 1` from tokens
# `0..t` only, thanks to `causal_mask(seq)`. Training on a sequence is therefore `seq`
# next-token predictions at once: cross-entropy between `logits[:, :-1]` and `tokens[:, 1:]`.
#
# `sample_next_token(logits, temperature=1.0, top_k=None, generator=None)` picks the next id of
# each sequence from the logits of its last position, `(batch, vocab)` in, `(batch,)` out:
#
# 1. `temperature=0` means greedy decoding: the argmax, no randomness;
# 2. otherwise, in float64, divide the logits by `temperature` (below 1: sharper, more
#    predictable; above 1: flatter, more surprising);
# 3. with `top_k`, keep only the `k` largest logits (the others become `-inf`): no more
#    sampling from the long tail of unlikely tokens;
# 4. softmax, and draw one id per row from that distribution with `generator` (an
#    `np.random.Generator`): one uniform `generator.random((batch, 1))`, and the id is the first
#    whose cumulative probability exceeds it (inverse-CDF sampling; in PyTorch,
#    `torch.multinomial(probs, 1)` draws the same distribution).
#
# `generate(prompt, max_new_tokens, temperature=1.0, top_k=None, seed=None)` extends a prompt
# of ids (shape `(seq,)` or `(batch, seq)`) one token at a time, under `no_grad()`: run the model
# on the last `max_len` tokens (the context window), take the logits of the **last** position,
# pick the next ids with `sample_next_token` and one `np.random.default_rng(seed)` for the whole
# call (the same seed gives the same text), append them, repeat. It returns a NumPy int64 array:
# the prompt followed by the `max_new_tokens` new ids, with the prompt's shape convention (1-d
# in, 1-d out). (Each step recomputes the whole context; Module 18's KV cache removes that
# waste, and reuses your `sample_next_token` so that its tokens are exactly these.)
#
# **Your tasks:** `sample_next_token`, `GPT.__init__`, `GPT.forward`, `GPT.generate`, and
# `count_parameters(model)` (the number of numbers in `model.parameters()`, PyTorch's
# `sum(p.numel() for p in model.parameters())`).

# %% tags=["export"]
def sample_next_token(logits, temperature: float = 1.0, top_k=None, generator=None):
    """The next ids (batch,) from last-position logits (batch, vocab). temperature=0 is the argmax;
    otherwise softmax(logits / temperature) over the top_k largest, sampled with `generator`
    (np.random.Generator; a fresh one when None). PyTorch: torch.multinomial(probs, 1)."""
    ### BEGIN SOLUTION
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return logits.argmax(axis=-1)
    generator = np.random.default_rng() if generator is None else generator
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))      # stable softmax
    cumulative = np.cumsum(probs / probs.sum(axis=-1, keepdims=True), axis=-1)
    draws = generator.random((len(logits), 1))
    # the first id whose cumulative probability exceeds the draw (min: rounding can leave the
    # last cumulative value a hair below 1)
    return np.minimum((cumulative < draws).sum(axis=-1), logits.shape[-1] - 1)
    ### END SOLUTION


# %% tags=["export"]
class GPT(Module):
    """A decoder-only transformer language model (GPT-2 layout, pre-norm, learned positions).

    GPT(vocab_size, max_len, dim, num_heads, num_layers, rng=None); children token_embedding,
    position_embedding, blocks (Sequential of TransformerBlock), ln_f, lm_head (no bias).
    forward(tokens (N, T) ids) -> logits Tensor (N, T, vocab_size).
    """

    def __init__(self, vocab_size: int, max_len: int, dim: int, num_heads: int, num_layers: int, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        generator = np.random.default_rng(rng)
        self.vocab_size, self.max_len, self.dim = vocab_size, max_len, dim
        self.token_embedding = Embedding(vocab_size, dim, rng=generator)
        self.position_embedding = PositionalEmbedding(max_len, dim, rng=generator)
        self.blocks = Sequential(*[TransformerBlock(dim, num_heads, rng=generator) for _ in range(num_layers)])
        self.ln_f = LayerNorm(dim)
        self.lm_head = Linear(dim, vocab_size, bias=False, rng=generator)
        ### END SOLUTION

    def forward(self, tokens) -> Tensor:
        """Logits (N, T, vocab_size) for integer ids (N, T), T <= max_len; causal."""
        ### BEGIN SOLUTION
        x = self.position_embedding(self.token_embedding(tokens))
        mask = causal_mask(x.shape[-2])
        for block in self.blocks.layers:
            x = block(x, mask=mask)
        return self.lm_head(self.ln_f(x))
        ### END SOLUTION

    def generate(self, prompt, max_new_tokens: int, temperature: float = 1.0, top_k=None, seed=None):
        """The prompt's ids followed by max_new_tokens sampled ids (NumPy int64, the prompt's shape
        convention). temperature=0 is greedy; top_k keeps the k most likely tokens; seed as
        np.random.default_rng."""
        ### BEGIN SOLUTION
        tokens = np.array(prompt, dtype=np.int64)
        single = tokens.ndim == 1
        tokens = tokens[None, :] if single else tokens
        generator = np.random.default_rng(seed)
        with no_grad():
            for _ in range(max_new_tokens):
                logits = self.forward(tokens[:, -self.max_len:]).data[:, -1, :]
                next_ids = sample_next_token(logits, temperature, top_k, generator)
                tokens = np.concatenate([tokens, next_ids[:, None].astype(np.int64)], axis=1)
        return tokens[0] if single else tokens
        ### END SOLUTION


def count_parameters(model: Module) -> int:
    """The number of learnable numbers in model. PyTorch: sum(p.numel() for p in model.parameters())."""
    ### BEGIN SOLUTION
    return int(sum(p.size for p in model.parameters()))
    ### END SOLUTION

# %%
# Check GPT: shapes, causality, the parameter formula, one training step, generation.
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam

_V, _L, _D, _H, _N = 11, 16, 16, 2, 2
_gpt = GPT(_V, _L, _D, _H, _N, rng=0)
_tok = _rng.integers(0, _V, size=(3, 10))
_logits = _gpt(_tok)
assert _logits.shape == (3, 10, _V) and _logits.dtype == np.float32
_tok2 = _tok.copy()
_tok2[:, 6:] = (_tok2[:, 6:] + 1) % _V
assert np.allclose(_logits.data[:, :6], _gpt(_tok2).data[:, :6], atol=1e-5)       # causal
_formula = _V * _D + _L * _D + _N * (12 * _D * _D + 13 * _D) + 2 * _D + _D * _V
assert count_parameters(_gpt) == _formula, (count_parameters(_gpt), _formula)

_opt, _loss_fn = Adam(_gpt.parameters(), lr=1e-2), CrossEntropyLoss()
_losses = []
for _ in range(30):                        # memorise one batch: the loss must fall
    _opt.zero_grad()
    _loss = _loss_fn(_gpt(_tok[:, :-1]).reshape(-1, _V), _tok[:, 1:].reshape(-1))
    _loss.backward()
    _opt.step()
    _losses.append(float(_loss.data))
assert _losses[-1] < 0.5 * _losses[0], _losses
_probe = np.array([[2.0, 1.0, 0.0, -1.0]])       # 20,000 draws follow softmax(logits / T) over the top 3
_ids = sample_next_token(np.repeat(_probe, 20_000, axis=0), temperature=2.0, top_k=3,
                         generator=np.random.default_rng(0))
_want = np.exp(_probe[0, :3] / 2.0) / np.exp(_probe[0, :3] / 2.0).sum()
assert _ids.shape == (20_000,) and (_ids < 3).all(), "top_k=3 must never pick the 4th logit"
assert np.abs(np.bincount(_ids, minlength=3) / 20_000 - _want).max() < 0.02, np.bincount(_ids) / 20_000
assert sample_next_token(_probe, temperature=0).tolist() == [0]
_sample = _gpt.generate(_tok[0, :4], 6, temperature=0.8, top_k=5, seed=1)
assert _sample.shape == (10,) and _sample.dtype == np.int64 and np.array_equal(_sample[:4], _tok[0, :4])
assert np.array_equal(_sample, _gpt.generate(_tok[0, :4], 6, temperature=0.8, top_k=5, seed=1))
print(f"GPT ok: {count_parameters(_gpt)} parameters, loss {_losses[0]:.2f} -> {_losses[-1]:.2f}; "
      f"memorised row {_tok[0].tolist()}, greedy continuation of its first 4: "
      f"{_gpt.generate(_tok[0, :4], 6, temperature=0).tolist()}")

# %% [markdown]
# ## Systems analysis: where the parameters, the time and the memory go
#
# The cell below measures, on your `GPT`:
#
# 1. **Parameters** per component (`count_parameters` on each child) against the `12 d^2` per
#    block rule, for the benchmark model (vocabulary 256, width 128, 4 heads, 2 layers) and
#    GPT-2 small's configuration (built at full size: 124M parameters).
# 2. **Time** of one forward pass of the benchmark model (batch 8, sequence 64) split into
#    embeddings, LayerNorms, attention, MLPs and the LM head, by timing each child on its own
#    input, with the achieved GFLOP/s against the `2 x parameters` FLOPs-per-token rule.
# 3. **Memory** kept for backward: the bytes of every array saved in the autograd graph of one
#    training forward pass (walking `grad_fn.saved` and `inputs`), for growing sequence lengths,
#    to separate the linear (`seq x d`) from the quadratic (`heads x seq^2`) part.

# %% tags=["analysis"]
import time

from tinytorch.core.autograd import topological_order


def _best(fn, repeat=7):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _parameter_table(model):
    groups = {"token_embedding": model.token_embedding, "position_embedding": model.position_embedding,
              "blocks (attention)": [b.attn for b in model.blocks.layers],
              "blocks (mlp)": [b.mlp for b in model.blocks.layers],
              "layernorms": [m for b in model.blocks.layers for m in (b.ln1, b.ln2)] + [model.ln_f],
              "lm_head": model.lm_head}
    total = count_parameters(model)
    for name, part in groups.items():
        count = sum(count_parameters(m) for m in (part if isinstance(part, list) else [part]))
        print(f"  {name:<20} {count:>12,} {count / total:>7.1%}")
    return total


_bench = GPT(256, 64, 128, 4, 2, rng=0)
print("benchmark GPT(vocab 256, max_len 64, dim 128, heads 4, layers 2):")
_total = _parameter_table(_bench)
print(f"  {'total':<20} {_total:>12,}   rule 12 d^2 L = {12 * 128**2 * 2:,} in the blocks")
_gpt2 = GPT(50_257, 1024, 768, 12, 12, rng=0)
print("GPT-2 small configuration (vocab 50257, max_len 1024, dim 768, 12 heads, 12 layers):")
_total2 = _parameter_table(_gpt2)
print(f"  {'total':<20} {_total2:>12,}   ({_total2 * 4 / 2**20:.0f} MiB in float32; GPT-2 ties lm_head "
      f"to the token embedding: {_total2 - 50_257 * 768:,})")
del _gpt2

def _saved_bytes(root):
    arrays = {}
    for tensor in topological_order(root):
        fn = tensor.grad_fn
        if fn is None:
            continue
        for value in getattr(fn, "saved", ()) or ():
            if isinstance(value, np.ndarray) and value.size > 1:
                arrays[id(value)] = value.nbytes
    return sum(arrays.values())


# 2. Time of one forward pass, per component.
_tokens = np.random.default_rng(0).integers(0, 256, size=(8, 64))
with no_grad():
    _x0 = _bench.position_embedding(_bench.token_embedding(_tokens))
    _mask = causal_mask(64)
    _b0 = _bench.blocks.layers[0]
    _parts = {
        "embeddings": lambda: _bench.position_embedding(_bench.token_embedding(_tokens)),
        "layernorms (5)": lambda: [_b0.ln1(_x0) for _ in range(5)],
        "attention (2)": lambda: [_b0.attn(_x0, mask=_mask) for _ in range(2)],
        "mlp (2)": lambda: [_b0.mlp(_x0) for _ in range(2)],
        "  composed mlp (2)": lambda: [_b0.mlp.fc2(_b0.mlp.act(_b0.mlp.fc1(_x0))) for _ in range(2)],
        "lm_head": lambda: _bench.lm_head(_x0),
    }
    _whole = _best(lambda: _bench(_tokens))
    print(f"\nforward pass, batch 8 x seq 64: {_whole * 1e3:.2f} ms "
          f"({2 * _total * 8 * 64 / _whole / 1e9:.1f} GFLOP/s by the 2 x parameters rule)")
    for _name, _fn in _parts.items():
        _t = _best(_fn)
        print(f"  {_name:<18} {_t * 1e3:6.2f} ms  {_t / _whole:6.1%}")

# The same comparison for training: the bytes the graph keeps for backward, fused vs composed MLP.
_xg = Tensor(_x0.data, requires_grad=True)
print(f"  saved for backward by one MLP: fused {_saved_bytes(_b0.mlp(_xg).sum()) / 2**20:.1f} MiB, composed "
      f"{_saved_bytes(_b0.mlp.fc2(_b0.mlp.act(_b0.mlp.fc1(_xg))).sum()) / 2**20:.1f} MiB")

# 3. Memory saved for backward, by sequence length.


print("\nactivation memory saved for backward (batch 8, dim 128, 4 heads, 2 layers):")
_small = GPT(256, 512, 128, 4, 2, rng=0)
for _seq in [32, 64, 128, 256, 512]:
    _ids = np.random.default_rng(1).integers(0, 256, size=(8, _seq))
    _bytes = _saved_bytes(_small(_ids).sum())
    _quadratic = 2 * 8 * 4 * _seq * _seq * 4    # one float32 (8, 4, seq, seq) array per layer
    print(f"  seq {_seq:>4}: {_bytes / 2**20:7.1f} MiB   of which one attention matrix per layer: "
          f"{_quadratic / 2**20:6.1f} MiB ({_bytes / (8 * _seq):,.0f} bytes per token)")

# %% [markdown]
# ## Summary
#
# | you built | key idea | PyTorch / production |
# |---|---|---|
# | `LayerNormFn` / `LayerNorm` | per-token normalisation, fused forward/backward | `nn.LayerNorm` (fused kernels); Llama uses RMSNorm |
# | `FeedForward` | `Linear -> GELU -> Linear`, 4x wide: 2/3 of the parameters | `GPT2MLP`; SwiGLU in Llama |
# | `TransformerBlock` | pre-norm, two residual branches | `nn.TransformerEncoderLayer(norm_first=True)` |
# | `GPT`, `generate`, `sample_next_token` | embeddings + blocks + head; temperature, top-k | nanoGPT, `GPT2LMHeadModel.generate` |
# | `count_parameters` | `12 d^2` per block | `sum(p.numel() ...)` |
#
# The `tinygpt` milestone (`curriculum/milestones/tinygpt.py`) trains this model to reverse
# sequences and to write like the course's tiny corpus; Module 14 profiles it and Module 18
# makes generation fast with a KV cache.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: Where the parameters and FLOPs are
#
# Using the parameter table of your analysis, where do the parameters of the small benchmark
# model and of the GPT-2-sized model live (embeddings, attention, MLP, LayerNorms, head)? Derive
# the `12 d^2` per block rule from your code, and the `2 x parameters` FLOPs per token rule.
# How does your measured time split between components compare with the parameter split, and
# why do the two differ at small width? What changes at 1B parameters (say 16 layers of width
# 2048): which term dominates parameters, FLOPs and memory, and how large is a training step's
# memory with Adam?

# %% [markdown] tags=["answer"] question="q1"
# The benchmark model (vocabulary 256, width 128, 2 layers) has 470,528 parameters: 56% in the
# MLPs, 28% in attention, 7% each in the token embedding and the LM head, 1.7% in the position
# table and 0.3% in the LayerNorms. The GPT-2-sized configuration has 163M parameters untied
# (124.4M with the LM head tied to the token embedding, GPT-2's published size): there the two
# vocabulary matrices are 24% each, the MLPs 35%, attention 17%.
#
# The `12 d^2` rule comes straight from the code: `MultiHeadAttention` holds four
# `Linear(d, d)` (`4 d^2 + 4 d`), `FeedForward` `Linear(d, 4d)` and `Linear(4d, d)`
# (`8 d^2 + 5 d`), two LayerNorms `4 d`: `12 d^2 + 13 d` per block, which my check cell's formula
# confirms. Forward, every weight is used in one multiply-add per token (2 FLOPs), so a token
# costs about `2 x parameters` FLOPs (embedding lookups cost nothing, attention's
# `2 x seq x d` per layer per token is extra and grows with context); backward costs twice that.
#
# At width 128 the measured time does not follow the parameters. The MLP (56% of the
# parameters) takes a large share, but attention, with half its parameters, costs nearly as
# much: its FLOPs on the `seq x seq` scores are comparable at this tiny width, and it runs as a
# dozen small NumPy operations (reshape, transpose, mask, softmax) whose Python overhead and
# memory traffic dominate the matrix products. The embeddings (a gather) and the LM head
# (a single 512 x 128 x 256 product) are cheap. The achieved rate is a few GFLOP/s, far from
# the CPU's peak: small matrices and element-wise work are memory- and overhead-bound. My
# fused `FeedForwardFn` ran 1.4x (quiet machine) to 3x (busy machine, where every fresh
# allocation costs more) faster than the composed `fc2(GELU(fc1(x)))` on the same input and keeps
# a quarter less memory for backward (2.8 vs 3.8 MiB per MLP), which is why the MLP is written
# as one Function.
#
# At 1B parameters (16 layers, width 2048): blocks hold `16 x 12 x 2048^2 = 805M` parameters,
# the embedding of a 128k vocabulary another 262M (twice if untied); the matrix products of
# the blocks dominate FLOPs (2 GFLOPs per token forward, 6 with backward), and at long context
# the attention scores add `2 x seq x d` per layer per token. A training step with Adam in
# float32 needs 4 bytes each of weights, gradients and two moments: 16 bytes per parameter =
# about 17 GB for 1.07B parameters before activations, which for a batch of long sequences are larger still (q3).

# %% [markdown]
# ### q2: LayerNorm, residuals and stable depth
#
# Explain your `LayerNormFn.backward`: where the two subtracted terms come from and why they
# are needed, and why a fused LayerNorm `Function` is better than composing it from recorded
# primitives (memory saved for backward, Python overhead, numerics in float16). Why does the
# pre-norm block with residual connections train stably when deep, where post-norm does not?
# Why does LayerNorm (and not BatchNorm) suit language models, and what does RMSNorm drop?

# %% [markdown] tags=["answer"] question="q2"
# `LayerNormFn.backward` returns `dL/dw = sum(g * x_hat)`, `dL/db = sum(g)` over every token,
# and for the input `rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))` with
# `g_hat = g * w`. The mean and the variance depend on every element of the token vector, so
# nudging one input moves all outputs: the first subtracted term is the path through the mean
# (it removes the component of the gradient that would shift all elements equally, which the
# centering cancels), the second the path through the variance (it removes the component along
# `x_hat`, a pure rescaling that the normalisation cancels). Without them the gradient would be
# wrong by exactly those components; my check against central differences (float64, one and
# two normalised dimensions) and the framework tests confirm the formula.
#
# Composed from primitives, LayerNorm would record mean, subtract, square, mean, add, sqrt,
# divide, multiply, add: about nine nodes, each keeping its inputs alive (several full-size
# arrays) and costing a Python call in forward and in backward. The fused Function keeps one
# full-size array (`x_hat`) plus one number per token (`rstd`), computes it with in-place
# updates, and controls the numerics: centering before squaring (inputs with a mean of 1e4 stay
# accurate, where `E[x^2] - E[x]^2` would cancel catastrophically), and in float16 one
# would accumulate the statistics in float32 in one place. PyTorch ships fused LayerNorm
# kernels for the same reasons. The same argument made me fuse the MLP.
#
# Pre-norm: `x + attn(ln1(x))` leaves the residual stream untouched, so the gradient of the
# output with respect to an early layer always contains the identity path `dL/dx_L` through
# the additions: no product of per-layer Jacobians can make it vanish or explode, and each
# block only adds a correction. Post-norm (`ln(x + attn(x))`, the 2017 paper) puts a
# normalisation on the highway itself; gradients near the input shrink with depth and training
# needs learning-rate warm-up and careful initialisation (the reason GPT-2 moved to pre-norm).
#
# BatchNorm normalises each feature over the batch (and positions): it couples examples,
# needs running statistics that differ between training and inference, breaks with batch size
# 1, padding and variable lengths, and leaks information across positions of a causal model.
# LayerNorm normalises each token on its own, identically in training and generation. RMSNorm
# (Llama, T5) drops the mean subtraction and the bias: `x / rms(x) * w`, cheaper (one reduction
# instead of two) and empirically as good.

# %% [markdown]
# ### q3: Activation memory and generation cost
#
# Using your memory measurement, how do the bytes saved for backward grow with the sequence
# length, and which part is quadratic? What do activation checkpointing and FlashAttention do
# about it? Then analyse your `generate`: how much work does producing `n` new tokens cost with
# a context of `T`, what does temperature and top-k do to the distribution (and greedy decoding
# to diversity), and what will Module 18's KV cache change?

# %% [markdown] tags=["answer"] question="q3"
# The measured bytes saved for backward (batch 8, width 128, 4 heads, 2 layers) grow from
# 6.6 MiB at 32 tokens to 13.2 at 64, 30.8 at 128, 84 at 256 and 264 MiB at 512: per token about
# 27 KB at short lengths, rising to 68 KB at 512. The linear part (`seq x d` arrays: inputs of
# every Linear, LayerNorm's `x_hat`, the MLP's `h` and `t` at width 4d, residuals) is constant
# per token; the quadratic part is attention's `(batch, heads, seq, seq)` arrays (scores,
# masked scores, softmax weights, each kept by a node): one such array is 1 MiB per layer at 64
# tokens and 64 MiB at 512, and several of them are alive per layer, so beyond a few hundred
# tokens they dominate, growing 4x per doubling.
#
# Activation checkpointing keeps only each block's input and recomputes the block's forward
# during backward: memory drops from all intermediates of all layers to one block's worth plus
# the block inputs, for about 33% more compute (one extra forward). FlashAttention removes the
# quadratic arrays altogether: it computes attention in tiles with an online softmax and
# recomputes scores in backward from the saved row statistics, so activation memory becomes
# linear in `seq`.
#
# My `generate` runs the whole model on the context (up to `max_len` tokens) for every new
# token: producing `n` tokens from a prompt of `T` costs `sum_i (T + i)` token-forwards, about
# `n T + n^2 / 2` times `2 x parameters` FLOPs, plus attention that is quadratic in the context
# at each step: cubic in total for long generations, and almost all of it recomputes keys and
# values that did not change. Temperature divides the logits: below 1 it sharpens the
# distribution towards the argmax (more predictable, repetitive), above 1 it flattens it (more
# diverse, more errors); `temperature=0` (greedy) is deterministic and tends to loop.
# Top-k keeps the k largest logits and renormalises, cutting the long tail of unlikely tokens
# that, summed over a large vocabulary, would otherwise be sampled surprisingly often; top-p
# (nucleus) adapts k to the distribution's shape.
#
# Module 18's KV cache stores each layer's keys and values for the tokens already processed;
# each new token then needs a forward of one position (`2 x parameters` FLOPs) plus one
# attention row over the cache (`O(T d)` per layer): generation becomes linear in the number of
# tokens instead of quadratic, at the cost of `2 x layers x T x d` cached numbers per sequence.
