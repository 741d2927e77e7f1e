# %% [markdown]
# # Module 11: Embeddings
#
# Module 10 turned text into integers: token ids. A neural network cannot do arithmetic with
# an id (token 512 is not "twice" token 256), so the first layer of every language model turns
# each id into a learned vector, its **embedding**: row `id` of a table of shape
# `(vocabulary size, width)`. Similar tokens end up with similar rows because training pushes
# them to be useful in similar contexts. Attention (Module 12) then mixes these vectors, but it
# is blind to order: it sees a *set* of vectors. So we also add a vector per *position*.
#
# | you build | what it does | PyTorch equivalent |
# |---|---|---|
# | `EmbeddingFn` | the lookup `weight[indices]` as an autograd `Function`, with a scatter-add backward | `torch.nn.functional.embedding` |
# | `Embedding(num_embeddings, embedding_dim)` | a learnable table of token vectors | `torch.nn.Embedding` |
# | `sinusoidal_positional_encoding(max_len, dim)` | fixed sin/cos position vectors ("Attention Is All You Need") | written by hand in PyTorch (no built-in) |
# | `PositionalEmbedding(max_len, dim)` | learned position vectors added to the input (GPT-2's `wpe`) | `torch.nn.Embedding(max_len, dim)` on `torch.arange(T)` |
#
# **The systems lesson** is that an embedding table is the biggest single matrix of a small
# language model, yet each batch touches only a few of its rows. GPT-2's table is
# 50,257 x 768 = 38.6M numbers (154 MB in float32), a third of the 124M-parameter model. A
# batch of 8 sequences of 1,024 tokens uses at most 8,192 distinct rows, in practice far fewer.
# The gradient of the lookup is therefore **sparse**: zero in every row that the batch did not
# use. You will implement the backward as a scatter-add into the rows used, and measure how
# much a dense gradient (and a dense optimizer step) wastes.
#
# **Prerequisites:** `Tensor` (Module 01), `Module`/`Parameter` (Module 03), and the autograd
# `Function` contract of Module 06: `forward(self, *arrays, **params)` returns an array and may
# `save_for_backward`; `backward(self, grad)` returns one gradient per Tensor input;
# `Subclass.apply(...)` wires it into the graph.

# %% tags=["export"]
import numpy as np

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Module, Parameter
from tinytorch.core.tensor import Tensor


def _as_indices(indices, num_embeddings):
    """Token ids as an integer NumPy array, checked to lie in [0, num_embeddings).

    Accepts a list, an integer array, or a Tensor (whose float32 values must be whole numbers,
    since Tensor stores float32 by default). Raises TypeError for fractional ids and IndexError,
    naming the offending id, for ids out of range (PyTorch raises IndexError too).
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        if idx.dtype.kind != "f" or not np.array_equal(idx, np.floor(idx)):
            raise TypeError(f"embedding indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= num_embeddings):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise IndexError(f"index {bad} is out of range for an embedding table of {num_embeddings} rows")
    return idx

# %% [markdown]
# ## The lookup as a differentiable operation
#
# **Forward.** For a weight table `W` of shape `(V, D)` and integer `indices` of any shape `S`,
# the output is `W[indices]`, of shape `S + (D,)`: NumPy's fancy indexing copies the selected
# rows in one vectorised gather. (Mathematically it equals `one_hot(indices) @ W`, but building
# a `(tokens, V)` one-hot matrix would cost `V` times more memory and work: never do that.)
#
# **Backward.** Output row `(n, t)` is a copy of `W[indices[n, t]]`, so its upstream gradient
# `grad[n, t]` flows to that one row of `W`. When a token appears several times in the batch
# (the word "the", or padding), its row receives the **sum** of all those gradients. The
# gradient of `W` is zero everywhere else:
#
# ```
# grad_W = zeros((V, D));  for every position p: grad_W[indices[p]] += grad[p]
# ```
#
# The obvious vectorised version `grad_W[indices] += grad` is **wrong**: with repeated indices
# NumPy's buffered `+=` writes each row once, so only one of the repeats counts. The unbuffered
# `np.add.at(grad_W, indices, grad)` accumulates every occurrence (PyTorch's `index_add_`).
#
# The autograd engine of Module 06 expects one gradient per input, of that input's shape, so
# `backward` returns a full `(V, D)` array whose only nonzero rows are the ones used.
# PyTorch can also return a truly sparse gradient (`nn.Embedding(..., sparse=True)`, a list of
# row ids and their values), which the analysis below measures.
#
# **Your tasks:** in `EmbeddingFn`,
# - `forward(self, weight, indices)`: save what backward needs (the table's shape and the
#   indices) and return the gathered rows;
# - `backward(self, grad)`: return a one-element tuple with the scatter-added gradient of
#   the table, in `grad`'s dtype.
#
# It is called as `EmbeddingFn.apply(weight, indices=idx)`: the indices are a keyword
# parameter, not a Tensor input, so the engine never asks for their (meaningless) gradient.

# %% tags=["export"]
class EmbeddingFn(Function):
    """y = weight[indices]: rows of a (V, D) table gathered for integer indices of any shape.
    PyTorch: torch.nn.functional.embedding(indices, weight).

    Call as EmbeddingFn.apply(weight, indices=idx). Backward scatters the upstream gradient
    back into the rows used (np.add.at: repeated indices accumulate); other rows get 0.
    """

    __slots__ = ()

    def forward(self, weight, indices):
        ### BEGIN SOLUTION
        indices = np.asarray(indices)   # a list works too; backward needs .reshape
        self.save_for_backward(weight.shape, indices)
        return weight[indices]
        ### END SOLUTION

    def backward(self, grad):
        ### BEGIN SOLUTION
        shape, indices = self.saved
        grad_weight = np.zeros(shape, dtype=grad.dtype)
        # Flatten to (tokens,) and (tokens, D): np.add.at's fast path for 1-d row indices.
        np.add.at(grad_weight, indices.reshape(-1), grad.reshape(-1, shape[-1]))
        return (grad_weight,)
        ### END SOLUTION

# %%
# Check EmbeddingFn: the gather, and a backward in which token 1 appears three times.
_W = Tensor(np.arange(12, dtype=np.float32).reshape(4, 3), requires_grad=True)
_idx = np.array([[1, 3], [1, 1]])
_y = EmbeddingFn.apply(_W, indices=_idx)
assert _y.shape == (2, 2, 3) and np.array_equal(_y.data, _W.data[_idx]) and _y.requires_grad
_y.backward(np.ones((2, 2, 3), dtype=np.float32))
assert _W.grad.tolist() == [[0, 0, 0], [3, 3, 3], [0, 0, 0], [1, 1, 1]], _W.grad
_wrong = np.zeros((4, 3))
_wrong[_idx] += 1.0                # the buffered update counts row 1 once, not three times
assert _wrong[1, 0] == 1.0
print("EmbeddingFn ok; gradient of the table:\n", _W.grad)

# %% [markdown]
# ## The `Embedding` layer
#
# `Embedding(num_embeddings, embedding_dim, rng=None)` owns one `Parameter` named `weight`, of
# shape `(num_embeddings, embedding_dim)`, drawn from a standard normal distribution `N(0, 1)`
# in float32, as PyTorch does (GPT-2 uses a smaller standard deviation, 0.02; the scale matters
# less than you might think when a LayerNorm follows, as in Module 13).
#
# `forward(indices)` accepts a list, an integer array or a `Tensor` of ids of any shape and
# returns a float32 Tensor of shape `indices.shape + (embedding_dim,)`. The helper
# `_as_indices(indices, num_embeddings)` above converts and checks them: an id outside
# `[0, num_embeddings)` must raise `IndexError`, because NumPy would silently accept `-1` (the
# last row) and a training run would learn from garbage.
#
# **Your tasks:** `Embedding.__init__` (store `num_embeddings` and `embedding_dim`, draw the
# weight with `np.random.default_rng(rng)`, `ValueError` for non-positive sizes) and
# `Embedding.forward` (check the indices with `_as_indices`, then `EmbeddingFn.apply`).

# %% tags=["export"]
class Embedding(Module):
    """A learnable lookup table of token vectors. PyTorch: torch.nn.Embedding.

    Embedding(num_embeddings, embedding_dim, rng=None)

    weight: Parameter (num_embeddings, embedding_dim), float32, drawn from N(0, 1) with
    np.random.default_rng(rng). Calling it on integer ids of shape S returns a Tensor of shape
    S + (embedding_dim,).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding needs positive sizes, got num_embeddings={num_embeddings}, "
                             f"embedding_dim={embedding_dim}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        generator = np.random.default_rng(rng)
        self.weight = Parameter(generator.standard_normal((num_embeddings, embedding_dim)).astype(np.float32))
        ### END SOLUTION

    def forward(self, indices) -> Tensor:
        """The rows of weight for integer ids of any shape: a Tensor of shape ids.shape + (embedding_dim,)."""
        ### BEGIN SOLUTION
        return EmbeddingFn.apply(self.weight, indices=_as_indices(indices, self.num_embeddings))
        ### END SOLUTION

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"

# %%
# Check Embedding: shapes, values, the parameter, out-of-range ids, and gradients.
_emb = Embedding(10, 4, rng=0)
assert [n for n, _ in _emb.named_parameters()] == ["weight"] and _emb.weight.shape == (10, 4)
assert _emb.weight.dtype == np.float32
_ids = np.array([[0, 9, 2], [2, 2, 5]])
_out = _emb(_ids)
assert _out.shape == (2, 3, 4) and np.array_equal(_out.data, _emb.weight.data[_ids])
assert np.array_equal(_emb(Tensor(_ids)).data, _out.data)      # float32 Tensor of whole numbers
for _bad in ([10], [-1]):
    try:
        _emb(_bad)
        raise AssertionError("an id out of range must raise IndexError")
    except IndexError:
        pass
(_out * _out).sum().backward()
_expected = np.zeros((10, 4), np.float32)
np.add.at(_expected, _ids.reshape(-1), 2 * _out.data.reshape(-1, 4))
assert np.allclose(_emb.weight.grad, _expected) and not _emb.weight.grad[[1, 3, 4, 6, 7, 8]].any()
print("Embedding ok:", _emb, "rows with a gradient:", np.flatnonzero(np.abs(_emb.weight.grad).sum(1)))

# %% [markdown]
# ## Positions, fixed: sinusoidal encodings
#
# Attention treats its input as a set: permute the tokens and the outputs are permuted the same
# way, nothing else changes. "dog bites man" and "man bites dog" would look alike. The fix is to
# add to each token's vector a vector that depends only on its position.
#
# The original transformer ("Attention Is All You Need", Vaswani et al., 2017, section 3.5)
# uses fixed sines and cosines of geometrically spaced frequencies:
#
# $$PE_{(pos,\,2i)} = \sin\!\left(pos / 10000^{2i/d}\right), \qquad PE_{(pos,\,2i+1)} = \cos\!\left(pos / 10000^{2i/d}\right)$$
#
# Column pair `(2i, 2i+1)` is a clock hand turning at angular speed `10000^(-2i/d)` per position:
# the first pair turns once every `2 pi` positions, the last one barely moves over thousands of
# positions. Every position gets a distinct pattern, the values stay in `[-1, 1]`, and because a
# rotation by a fixed angle is linear, `PE[pos + k]` is a linear function of `PE[pos]`: relative
# offsets are easy for a linear layer to read. Nothing is learned, so nothing is stored in a
# checkpoint, and the formula works for any `max_len`.
#
# **Your task:** `sinusoidal_positional_encoding(max_len, dim)` returning a float32 Tensor
# `(max_len, dim)`: even columns `0, 2, 4, ...` hold the sines, odd columns the cosines, and the
# pair `(2i, 2i+1)` shares the frequency `10000^(-2i/dim)`. An odd `dim` has one more sine
# column than cosine columns. Build it with broadcasting (a column of positions times a row of
# frequencies), no Python loop.

# %% tags=["export"]
def sinusoidal_positional_encoding(max_len: int, dim: int) -> Tensor:
    """Fixed position vectors of "Attention Is All You Need": a float32 Tensor (max_len, dim) with
    PE[pos, 2i] = sin(pos / 10000^(2i/dim)) and PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))."""
    ### BEGIN SOLUTION
    positions = np.arange(max_len, dtype=np.float64)[:, None]                 # (max_len, 1)
    frequencies = 10000.0 ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (ceil(dim / 2),)
    angles = positions * frequencies                                          # (max_len, ceil(dim / 2))
    pe = np.empty((max_len, dim), dtype=np.float64)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : dim // 2])
    return Tensor(pe.astype(np.float32))
    ### END SOLUTION

# %%
# Check the encoding: position 0 is (0, 1, 0, 1, ...), values in [-1, 1], every row distinct,
# an odd width, and the "relative offset is a rotation" property of one frequency pair.
_pe = sinusoidal_positional_encoding(50, 16)
assert _pe.shape == (50, 16) and _pe.dtype == np.float32
assert np.allclose(_pe.data[0], [0, 1] * 8) and np.abs(_pe.data).max() <= 1
assert np.isclose(_pe.data[3, 4], np.sin(3 / 10000 ** (4 / 16))) and np.isclose(_pe.data[3, 5], np.cos(3 / 10000 ** (4 / 16)))
assert len({tuple(np.round(r, 5)) for r in _pe.data}) == 50
assert sinusoidal_positional_encoding(7, 5).shape == (7, 5)
_w = 10000 ** (-2 / 16)                       # frequency of the pair (2, 3)
_rot = np.array([[np.cos(5 * _w), -np.sin(5 * _w)], [np.sin(5 * _w), np.cos(5 * _w)]])
assert np.allclose(_pe.data[10:40, 2:4] @ _rot, _pe.data[15:45, 2:4], atol=1e-5)
print("sinusoidal encoding ok; first rows, first 6 columns:\n", np.round(_pe.data[:4, :6], 3))

# %% [markdown]
# ## Positions, learned: `PositionalEmbedding`
#
# GPT-2 and BERT instead **learn** the position vectors: one more embedding table, indexed by
# position `0 .. T-1` rather than by token id (GPT-2 calls it `wpe`, of shape `1024 x 768`).
# It can represent whatever position signal helps, but it knows only the positions it was
# trained on: there is no row for position `max_len`, so the context length is fixed at
# training time. (Modern models use rotary embeddings, RoPE, which rotate queries and keys by
# the sinusoidal angles above and extrapolate better.)
#
# `PositionalEmbedding(max_len, dim, rng=None)` holds a `Parameter` `weight` of shape
# `(max_len, dim)` drawn from `N(0, 1)` in float32 (as `nn.Embedding(max_len, dim)` would).
# `forward(x)` takes token vectors `x` of shape `(..., T, dim)` and returns `x + weight[:T]`,
# the same position vectors broadcast over the batch. Look the rows up with your
# `EmbeddingFn` on the indices `0 .. T-1`, so the gradient of the table is exactly what
# Module 06 expects: the sum over the batch in rows `0 .. T-1`, zero in the rows beyond `T`.
# A sequence longer than `max_len` must raise `ValueError` naming both lengths.

# %% tags=["export"]
class PositionalEmbedding(Module):
    """Learned absolute position vectors added to the token vectors (GPT-2's wpe).
    PyTorch: x + torch.nn.Embedding(max_len, dim)(torch.arange(T)).

    PositionalEmbedding(max_len, dim, rng=None): weight Parameter (max_len, dim), N(0, 1), float32.
    forward(x) for x of shape (..., T, dim) returns x + weight[:T].
    """

    def __init__(self, max_len: int, dim: int, rng=None):
        ### BEGIN SOLUTION
        super().__init__()
        if max_len < 1 or dim < 1:
            raise ValueError(f"PositionalEmbedding needs positive sizes, got max_len={max_len}, dim={dim}")
        self.max_len = max_len
        self.dim = dim
        generator = np.random.default_rng(rng)
        self.weight = Parameter(generator.standard_normal((max_len, dim)).astype(np.float32))
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x + weight[:T] for token vectors x of shape (..., T, dim)."""
        ### BEGIN SOLUTION
        seq_len = x.shape[-2]
        if seq_len > self.max_len:
            raise ValueError(f"sequence of length {seq_len} is longer than max_len={self.max_len} "
                             f"of this PositionalEmbedding")
        return x + EmbeddingFn.apply(self.weight, indices=np.arange(seq_len))
        ### END SOLUTION

    def extra_repr(self):
        return f"max_len={self.max_len}, dim={self.dim}"

# %%
# Check PositionalEmbedding: the sum, broadcasting over the batch, its gradient, and max_len.
_pos = PositionalEmbedding(8, 4, rng=1)
_x = Tensor(np.random.default_rng(2).standard_normal((3, 5, 4)).astype(np.float32), requires_grad=True)
_z = _pos(_x)
assert _z.shape == (3, 5, 4) and np.allclose(_z.data, _x.data + _pos.weight.data[:5])
_z.sum().backward()
assert np.allclose(_pos.weight.grad[:5], 3) and not _pos.weight.grad[5:].any() and np.allclose(_x.grad, 1)
try:
    _pos(Tensor(np.zeros((1, 9, 4))))
    raise AssertionError("a sequence longer than max_len must raise ValueError")
except ValueError as _e:
    print("PositionalEmbedding ok; too long:", _e)

# %% [markdown]
# ## Systems analysis: a big table, a few rows at a time
#
# The cell below measures, with your code:
#
# 1. **Memory** of embedding tables at real sizes (`weight.data.nbytes`), and what share of a
#    model's parameters they are.
# 2. **Rows touched per batch**: the fraction of a table's rows that one batch uses. First on
#    the course's tiny corpus cut into words (every word a token id), then on a GPT-2-sized
#    vocabulary with token frequencies that follow Zipf's law, as natural text does.
# 3. **Dense vs sparse gradient**: time and bytes of your backward (a dense `(V, D)` array)
#    against a sparse gradient that keeps only the rows used (`np.unique` + a scatter-add into
#    `(rows used, D)`), and of an SGD step over the whole table against one over those rows.

# %% tags=["analysis"]
import re
import time

from tinytorch.datasets.tiny_corpus import load_tiny_corpus


def _best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# 1. Memory of real tables (built at reduced width to spare memory, then scaled exactly).
print("embedding table memory (float32):")
for _name, _vocab, _dim, _total in [("BERT-base", 30_522, 768, 110e6), ("GPT-2 small", 50_257, 768, 124e6),
                                     ("Llama 3 8B", 128_256, 4_096, 8.0e9)]:
    _probe = Embedding(_vocab, 8, rng=0)
    _bytes = _probe.weight.data.nbytes * (_dim // 8)
    print(f"  {_name:<12} {_vocab:>7} x {_dim:<5} {_bytes / 2**20:>8.0f} MiB  "
          f"= {_vocab * _dim / _total:>5.1%} of the model's {_total / 1e9:.2f}B parameters")

# 2. Rows touched per batch.
_words = re.findall(r"\w+|[^\w\s]", load_tiny_corpus().lower())
_vocab_words = {w: i for i, w in enumerate(sorted(set(_words)))}
_corpus_ids = np.array([_vocab_words[w] for w in _words])
_rng = np.random.default_rng(0)
print(f"\ntiny corpus: {len(_corpus_ids)} word tokens, vocabulary {len(_vocab_words)}")
for _batch, _seq in [(1, 32), (8, 32), (8, 128)]:
    _starts = _rng.integers(0, len(_corpus_ids) - _seq, size=_batch)
    _b = np.stack([_corpus_ids[s:s + _seq] for s in _starts])
    print(f"  batch {_batch} x {_seq:>3}: {len(np.unique(_b)):>4} distinct rows = "
          f"{len(np.unique(_b)) / len(_vocab_words):6.1%} of the table")

_V, _D = 50_257, 256
_zipf = 1.0 / np.arange(1, _V + 1)
_zipf /= _zipf.sum()
print(f"Zipf-distributed ids over a {_V}-row vocabulary:")
for _tokens in [512, 8_192, 65_536]:
    _ids = _rng.choice(_V, size=_tokens, p=_zipf)
    print(f"  {_tokens:>6} tokens: {len(np.unique(_ids)):>6} distinct rows = {len(np.unique(_ids)) / _V:6.1%}")

# 3. Dense vs sparse gradient, for 8 x 1024 Zipf tokens into a (50257, 256) table.
_emb = Embedding(_V, _D, rng=0)
_ids = _rng.choice(_V, size=(8, 1024), p=_zipf)
_g = _rng.standard_normal((8, 1024, _D)).astype(np.float32)
_out = _emb(_ids)


def _dense_backward():
    return _out.grad_fn.backward(_g)[0]


def _sparse_backward():
    rows, inverse = np.unique(_ids.reshape(-1), return_inverse=True)
    values = np.zeros((len(rows), _D), dtype=np.float32)
    np.add.at(values, inverse, _g.reshape(-1, _D))
    return rows, values


_dense = _dense_backward()
_rows, _values = _sparse_backward()
assert np.allclose(_dense[_rows], _values, atol=1e-4) and np.count_nonzero(np.abs(_dense).sum(1)) == len(_rows)
_lr = np.float32(0.01)
_t_dense, _t_sparse = _best(_dense_backward), _best(_sparse_backward)
_t_step_dense = _best(lambda: np.subtract(_emb.weight.data, _lr * _dense, out=_emb.weight.data))

def _sparse_step():  # rows are unique here, so a plain (buffered) fancy-index update is correct
    _emb.weight.data[_rows] -= _lr * _values


_t_step_sparse = _best(_sparse_step)
print(f"\ngradient of a ({_V}, {_D}) table for 8 x 1024 tokens ({len(_rows)} rows used, {len(_rows) / _V:.1%}):")
print(f"  dense : {_dense.nbytes / 2**20:7.1f} MiB, backward {_t_dense * 1e3:6.1f} ms, SGD step {_t_step_dense * 1e3:6.1f} ms")
print(f"  sparse: {(_values.nbytes + _rows.nbytes) / 2**20:7.1f} MiB, backward {_t_sparse * 1e3:6.1f} ms, "
      f"SGD step {_t_step_sparse * 1e3:6.1f} ms")
print(f"  sparse / dense memory {(_values.nbytes + _rows.nbytes) / _dense.nbytes:.1%}, "
      f"step time {_t_step_sparse / _t_step_dense:.1%}")

# %% [markdown]
# ## Summary
#
# | you built | key idea | PyTorch / production |
# |---|---|---|
# | `EmbeddingFn` | gather forward, scatter-add (`np.add.at`) backward: repeats accumulate | `F.embedding`, `index_add_` |
# | `Embedding` | a `(V, D)` table of learned token vectors; ids checked | `nn.Embedding` (`sparse=True` for sparse gradients) |
# | `sinusoidal_positional_encoding` | fixed multi-frequency sin/cos clocks | the 2017 transformer; RoPE rotates q and k by the same angles |
# | `PositionalEmbedding` | learned position vectors, fixed context length | GPT-2's `wpe` |
#
# Module 12 lets these vectors attend to one another; Module 13 stacks embeddings, attention
# and MLPs into a GPT whose first layer is your `Embedding` plus your `PositionalEmbedding`.

# %% [markdown]
# ## ML-systems questions
#
# Answer each question in the cell below it, in a few paragraphs. Refer to your code and to the
# numbers your analysis cell printed.

# %% [markdown]
# ### q1: The biggest matrix, a few rows at a time
#
# Using your analysis, how large are real embedding tables in memory and as a share of their
# model's parameters, and how does that share change from a small model to an 8B one? What
# fraction of the table does one batch touch, on the tiny corpus and under Zipf's law, and how
# does it grow with the number of tokens in the batch? What does this mean for the gradient and
# the optimizer state of the table, and what changes at 1B parameters and vocabularies of 100k+
# tokens (tied input/output embeddings, sharded tables)?

# %% [markdown] tags=["answer"] question="q1"
# The analysis measures 4 bytes per entry: BERT-base's table (30,522 x 768) is about 90 MiB, a
# fifth of its 110M parameters; GPT-2 small's (50,257 x 768) about 147 MiB, 31% of 124M; Llama 3
# 8B's (128,256 x 4,096) about 2 GiB but only 6.6% of 8B parameters. The table grows with
# `V x D`, the blocks with `layers x D^2`, so the embedding share shrinks as models get deeper and
# wider, but in absolute terms it keeps growing with the vocabulary: at 100k+ tokens it is
# gigabytes, and the output projection (the LM head, the same shape) doubles it unless the two
# are tied (GPT-2 ties them, Llama 3 8B does not).
#
# One batch touches few rows. On the tiny corpus (a vocabulary of about 435 words) one
# sequence of 32 words uses about 6% of the rows, 8 x 32 words a third and 8 x 128 words about
# two thirds: a tiny vocabulary saturates quickly. With a GPT-2-sized vocabulary and
# Zipf-distributed ids, 512 tokens touch about 0.7% of the rows, 8,192 tokens about 7%, 65,536
# about 30%: the number of distinct rows grows much more slowly than the number of tokens,
# because frequent tokens repeat and rare ones almost never appear.
#
# So the table's gradient is mostly zeros. The dense gradient my backward returns is the full
# 49 MiB for a (50257, 256) table even though only about 6.5% of its rows are nonzero; the
# sparse form (row ids + values) is about 3 MiB, and an SGD step on just those rows took about a
# sixth of the dense step's time in the measurement. With Adam the dense cost is worse: two more full-size state
# tables, and every step decays the moments of all rows, even rows not used. At 1B+ parameters
# and 100k+ vocabularies this is why embeddings get special treatment: tying input and output
# tables halves them, recommendation systems with billions of rows use sparse gradients and
# sparse optimizers (sparse Adam, Adagrad), and large language models shard the vocabulary
# dimension across GPUs (vocab-parallel embeddings in Megatron), each GPU gathering its rows and
# an all-reduce combining the partial lookups.

# %% [markdown]
# ### q2: Scatter-add and the sparse gradient
#
# Explain your `EmbeddingFn.backward`: why is the gradient of the lookup a scatter-add, why does
# `grad_W[indices] += grad` give a wrong answer when an id repeats, and what does `np.add.at` do
# differently? Compare the memory and time of the dense and sparse gradients you measured, and
# say when PyTorch's `nn.Embedding(sparse=True)` pays off and what it costs (which optimizers
# accept it, what happens with weight decay or momentum).

# %% [markdown] tags=["answer"] question="q2"
# Output row `p` is a copy of table row `indices[p]`, so `d loss / d W[r]` is the sum of the
# upstream gradients of every output row that copied row `r`: one `+=` per token into the row
# it came from. That is a scatter-add, the adjoint of the gather in forward (the lookup is
# `one_hot(indices) @ W`, whose gradient is `one_hot(indices)^T @ grad`, computed without the
# one-hot matrix).
#
# `grad_W[indices] += grad` is evaluated as `grad_W[indices] = grad_W[indices] + grad`: NumPy
# gathers the current rows, adds, then writes each result back; when an id repeats, the later
# writes overwrite the earlier ones, so each row receives only one of its contributions. The
# check shows row 1 getting 1 instead of 3. `np.add.at` is unbuffered: it performs every
# addition in order, so repeats accumulate (PyTorch's `index_add_` / `scatter_add_`). Repeats
# are common: "the", spaces, padding tokens; getting them wrong silently under-trains exactly
# the most frequent tokens.
#
# In the measurement for 8 x 1024 Zipf tokens into a (50257, 256) table, the dense gradient
# allocates 49 MiB for about 3.3k nonzero rows, while the sparse one (unique rows plus their
# summed values) is about 3 MiB (6.6%), and the SGD step over only those rows took about 15% of
# the dense step's time. The backward itself costs about the same either way (tens of
# milliseconds), since the scatter-add of 8,192 gradient rows dominates and the dense version
# only adds a zero-filled allocation. Since the sparse rows are unique, the update can use a
# plain fancy-indexed `-=`; only the scatter of repeated ids needs `np.add.at`.
#
# `nn.Embedding(sparse=True)` returns a sparse COO gradient; it pays off when the table is large
# and a batch touches a small fraction of it (big vocabularies, recommendation models). Only some
# optimizers accept it: `SGD` (without momentum or weight decay applied densely), `SparseAdam`,
# `Adagrad`. Dense momentum, weight decay or Adam moments would touch every row anyway, undoing
# the saving; `SparseAdam` updates the moments of the rows used only, which is a different
# algorithm from Adam (moments of unused rows do not decay). Sparse gradients also complicate
# gradient clipping and all-reduce in data parallelism, which is why LLM training uses dense
# gradients and shards the table instead.

# %% [markdown]
# ### q3: Fixed or learned positions
#
# Attention is blind to order. Compare your sinusoidal encoding and your learned
# `PositionalEmbedding`: parameters and memory, what each does at a position beyond the
# training length (your ValueError), and what the rotation check in the sinusoidal cell tells
# you about relative positions. Why have most recent LLMs moved to rotary embeddings (RoPE), and
# what does a context of 100k tokens cost with learned absolute positions?

# %% [markdown] tags=["answer"] question="q3"
# Without positions, self-attention is permutation-equivariant: shuffling the tokens shuffles
# the outputs the same way, so "dog bites man" and "man bites dog" give the same set of vectors.
# Both methods add a position-dependent vector to each token vector.
#
# The sinusoidal encoding has no parameters: it is computed from a formula (in float64, stored
# as float32, `max_len x dim x 4` bytes if cached, or recomputed on the fly), it exists for any
# position, and nothing about it is learned or saved in a checkpoint. The learned
# `PositionalEmbedding` is a `max_len x dim` parameter table (GPT-2: 1024 x 768 = 0.8M
# parameters, 3 MiB, plus gradients and two Adam tables) that can learn whatever position signal
# helps, but has no row for positions it was not built with: my `forward` raises `ValueError`
# beyond `max_len`, and rows for positions rarely seen in training stay poorly trained. The
# context length is frozen at training time.
#
# The rotation check multiplies rows `10..39` of one frequency pair by a fixed 2 x 2 rotation
# matrix and gets rows `15..44`: `PE[pos + k]` is a linear function of `PE[pos]` that depends only
# on the offset `k`. So a linear layer can, in principle, read relative positions from absolute
# sinusoidal ones. In practice adding the encoding to the token vector mixes position and
# content, and models trained at one length still degrade beyond it.
#
# RoPE (Su et al., 2021; Llama, Mistral, Qwen) applies those same rotations to queries and keys
# instead of adding them to the input: the dot product `q_i . k_j` then depends only on the
# offset `i - j`, giving relative positions by construction, no parameters, and context
# extension by rescaling the frequencies (position interpolation, NTK/YaRN scaling). With learned
# absolute positions, a 100k-token context needs a 100k x D table (at D = 4096: 410M parameters,
# 1.6 GB in float32, 4.9 GB with Adam state), every row of which must be trained on sequences
# that long, and the quadratic attention cost of Module 12 comes on top.
