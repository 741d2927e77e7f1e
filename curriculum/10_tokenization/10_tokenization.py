# %% [markdown]
# # Module 10: Tokenization
#
# A language model never sees text. It sees a list of integers, one per **token**, and each
# integer selects one row of an embedding table (Module 11). The tokenizer is the function
# `str -> list[int]` (and back) that sits between the world and the model. It decides how long
# every sequence is, how big the embedding and output layers are, and which strings the model
# can represent at all. Every later module (embeddings, attention, transformers, KV caches) pays
# for the choices made here.
#
# **What you build:**
#
# | you build | what it does | production equivalent |
# |---|---|---|
# | `CharTokenizer(corpus)` | one token per character, a vocabulary learned from a corpus, an `<unk>` id for unseen characters | character-level models (char-RNN, the early "tiny Shakespeare" GPTs) |
# | `count_pairs(ids)`, `merge_pair(ids, pair, new_id)` | the two primitives of byte-pair encoding | inside every BPE trainer |
# | `BPETokenizer.train(text, vocab_size)` | learns merges of frequent byte pairs | GPT-2's byte-level BPE, Hugging Face `tokenizers`, SentencePiece (BPE mode) |
# | `BPETokenizer.encode / decode` | applies the merges in learned order; `decode(encode(s)) == s` for **any** string | `tiktoken` (OpenAI's fast BPE encoder), `GPT2TokenizerFast` |
#
# **The systems lesson:** the vocabulary size `V` trades memory for sequence length. A bigger
# `V` makes sequences shorter (cheaper attention, more text per context window) but the
# embedding table and the output layer grow as `V x d` parameters, and the final softmax costs
# `V` operations per token. Section 7 *measures* the trade-off on a corpus bundled with TinyTorch.
#
# **PyTorch equivalent:** PyTorch itself has no tokenizer: `torch.nn.Embedding` takes the ids.
# Production code uses `tiktoken` (GPT-2/3/4 vocabularies, byte-level BPE written in Rust),
# Hugging Face `tokenizers` (BPE, WordPiece, Unigram) or Google's `sentencepiece` (Llama 2, T5).
#
# **How to work:** fill in every `raise NotImplementedError(...)`, run the check cell after each
# part, then run `pytest --module 10_tokenization` in a terminal to see your points.

# %% tags=["export"]
"""Tokenizers: text <-> lists of integer token ids.

CharTokenizer: one id per character, learned from a corpus, with special tokens and <unk>.
BPETokenizer: byte-level byte-pair encoding (GPT-2 style): decode(encode(s)) == s for any str.
"""

# %% [markdown]
# ## 1. Text is already numbers: code points and UTF-8 bytes
#
# A Python `str` is a sequence of Unicode **code points**: `ord("a") == 97`,
# `ord("é") == 233`, `ord("🙂") == 128578`. There are about 150,000 assigned code points, too
# many to give each one a row of an embedding table, and new ones (emoji) appear every year.
#
# Files and networks store text as **UTF-8 bytes**: `"a"` is 1 byte, `"é"` 2 bytes, `"世"` 3
# bytes, `"🙂"` 4 bytes. Every string, in every language, is a sequence of values `0..255`.
# That alphabet of 256 symbols is small, fixed and complete: the starting point of GPT-2's
# tokenizer and of the `BPETokenizer` you write in this module.

# %%
for ch in ["a", "é", "世", "🙂"]:
    print(f"{ch!r}: code point {ord(ch):>6}, UTF-8 bytes {list(ch.encode('utf-8'))}")
sample = "héllo 世界 🙂"
print(f"{sample!r}: {len(sample)} characters, {len(sample.encode('utf-8'))} bytes")
assert bytes(list(sample.encode("utf-8"))).decode("utf-8") == sample

# %% [markdown]
# ## 2. A character tokenizer with special tokens
#
# The simplest tokenizer gives every distinct character of a training corpus its own id.
#
# **Special tokens** come first, with fixed ids, so that every tokenizer of this kind agrees on
# them (they are strings, never characters of the text, so they cannot collide with it):
#
# | id | token | meaning |
# |---|---|---|
# | 0 | `<pad>` | padding: fills short sequences up to the length of a batch; ignored by the loss |
# | 1 | `<unk>` | unknown: stands for any character that was not in the corpus |
# | 2 | `<bos>` | beginning of sequence: the first token a generator is given |
# | 3 | `<eos>` | end of sequence: the model emits it to say "I am done" |
#
# After them come the distinct characters of the corpus, **sorted by code point** (so the same
# corpus always gives the same vocabulary, whatever the order of the text): for the corpus
# `"hello"` the vocabulary is `["<pad>", "<unk>", "<bos>", "<eos>", "e", "h", "l", "o"]`.
#
# Implement:
# - `__init__(corpus)`: build `self.id_to_token` (the list above: specials, then the sorted
#   distinct characters) and `self.token_to_id` (the inverse dict, token -> id).
# - `encode(text, add_special_tokens=False)`: the id of each character, `UNK_ID` for a character
#   not in the vocabulary; with `add_special_tokens=True`, wrapped in `BOS_ID ... EOS_ID`.
# - `decode(ids)`: the string of the ids. Special tokens `<pad>`, `<bos>` and `<eos>` are
#   skipped (they are not text); `<unk>` becomes the replacement character `"\ufffd"` (`�`),
#   exactly as `bytes.decode("utf-8", errors="replace")` marks what it could not decode. An id
#   outside `range(vocab_size)` raises `ValueError` (a negative id must not silently index from
#   the end of the list).
#
# So `decode(encode(s)) == s` for every string made of corpus characters; any other character
# comes back as `"\ufffd"`. Information is **lost**: that is the weakness byte-level BPE removes.

# %% tags=["export"]
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
REPLACEMENT_CHARACTER = "\ufffd"


class CharTokenizer:
    """One token per character of a corpus.

    ids 0..3 are SPECIAL_TOKENS (<pad>, <unk>, <bos>, <eos>); ids 4.. are the distinct
    characters of `corpus`, sorted by code point. Unseen characters encode to UNK_ID.
    """

    def __init__(self, corpus=""):
        """Build self.id_to_token (list: specials, then sorted distinct characters) and
        self.token_to_id (dict: token -> id)."""
        ### BEGIN SOLUTION
        self.id_to_token = list(SPECIAL_TOKENS) + sorted(set(corpus))
        self.token_to_id = {token: i for i, token in enumerate(self.id_to_token)}
        ### END SOLUTION

    @property
    def vocab_size(self):
        return len(self.id_to_token)

    def encode(self, text, add_special_tokens=False):
        """list[int]: the id of each character (UNK_ID if unseen), optionally BOS ... EOS."""
        ### BEGIN SOLUTION
        ids = [self.token_to_id.get(ch, UNK_ID) for ch in text]
        if add_special_tokens:
            ids = [BOS_ID] + ids + [EOS_ID]
        return ids
        ### END SOLUTION

    def decode(self, ids):
        """str: skip <pad>/<bos>/<eos>, <unk> -> "\\ufffd"; ValueError for an id out of range."""
        ### BEGIN SOLUTION
        pieces = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.id_to_token):
                raise ValueError(f"token id {i} is outside the vocabulary (size {len(self.id_to_token)})")
            if i == UNK_ID:
                pieces.append(REPLACEMENT_CHARACTER)
            elif i not in (PAD_ID, BOS_ID, EOS_ID):
                pieces.append(self.id_to_token[i])
        return "".join(pieces)
        ### END SOLUTION

# %% [markdown]
# ### Check: CharTokenizer

# %%
char_tok = CharTokenizer("hello world")
assert char_tok.id_to_token == ["<pad>", "<unk>", "<bos>", "<eos>", " ", "d", "e", "h", "l", "o", "r", "w"]
assert char_tok.token_to_id["h"] == 7 and char_tok.vocab_size == 12
assert char_tok.encode("hold") == [7, 9, 8, 5]
assert char_tok.encode("hi!") == [7, UNK_ID, UNK_ID], "unseen characters become <unk>"
assert char_tok.encode("lo", add_special_tokens=True) == [BOS_ID, 8, 9, EOS_ID]
assert char_tok.decode(char_tok.encode("hello world")) == "hello world"
assert char_tok.decode([BOS_ID, 7, UNK_ID, EOS_ID, PAD_ID]) == "h\ufffd"
try:
    char_tok.decode([-1])
    raise AssertionError("decode([-1]) should raise ValueError")
except ValueError as err:
    print("out-of-range id rejected:", err)
print("CharTokenizer ok:", char_tok.vocab_size, "tokens;", char_tok.encode("hello"))

# %% [markdown]
# ## 3. Byte-pair encoding: the two primitives
#
# A character (or byte) tokenizer makes long sequences: one token per byte. **Byte-pair
# encoding** (BPE; Sennrich et al. 2016 for subwords, after Gage 1994 for compression) shortens
# them by learning new tokens from data:
#
# 1. start with the 256 byte tokens: the text is `list(text.encode("utf-8"))`;
# 2. count every pair of **adjacent** tokens;
# 3. the most frequent pair `(a, b)` becomes a new token with the next free id (256, 257, ...):
#    its bytes are the bytes of `a` followed by those of `b`;
# 4. replace every occurrence of `(a, b)` by the new id, and go back to 2 until the vocabulary
#    has `vocab_size` tokens.
#
# Two functions do all the work. Implement them on plain lists of ints:
#
# - `count_pairs(ids)`: a dict `{(a, b): number of positions i with ids[i] == a and ids[i+1] == b}`.
#   Pairs overlap: `[7, 7, 7]` holds the pair `(7, 7)` twice. A `dict` (or `collections.Counter`)
#   makes this one pass over the list.
# - `merge_pair(ids, pair, new_id)`: a **new** list in which every occurrence of `pair` is
#   replaced by `new_id`, scanning **left to right**, never overlapping: merging `(7, 7)` in
#   `[7, 7, 7]` gives `[new_id, 7]`. Do not modify `ids`.

# %% tags=["export"]
def count_pairs(ids):
    """dict {(a, b): count} of the adjacent pairs ids[i], ids[i + 1] (overlapping)."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


def merge_pair(ids, pair, new_id):
    """A new list: every occurrence of `pair` (left to right, non-overlapping) -> new_id."""
    ### BEGIN SOLUTION
    first, second = pair
    merged, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == first and ids[i + 1] == second:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged
    ### END SOLUTION

# %% [markdown]
# ### Check: count_pairs and merge_pair

# %%
assert count_pairs([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
assert count_pairs([7, 7, 7]) == {(7, 7): 2}, "pairs overlap when counting"
assert count_pairs([5]) == {} and count_pairs([]) == {}
ids_before = [1, 2, 3, 1, 2]
assert merge_pair(ids_before, (1, 2), 256) == [256, 3, 256]
assert ids_before == [1, 2, 3, 1, 2], "merge_pair must not modify its input"
assert merge_pair([7, 7, 7], (7, 7), 300) == [300, 7], "left to right, non-overlapping"
assert merge_pair([7, 7, 7, 7], (7, 7), 300) == [300, 300]
print("count_pairs and merge_pair ok")

# %% [markdown]
# ## 4. Training a byte-level BPE tokenizer
#
# `BPETokenizer` keeps two tables (set up for you in `__init__`):
#
# - `self.merges`: a dict `{(a, b): new_id}`, **in the order the merges were learned** (Python
#   dicts keep insertion order). Since new ids are handed out as 256, 257, ..., the new id is
#   also the merge's *rank*: a smaller id was learned earlier.
# - `self.vocab`: a dict `{id: bytes}`: `vocab[i] == bytes([i])` for the 256 byte tokens, and
#   `vocab[new_id] == vocab[a] + vocab[b]` for a merge.
#
# `train(text, vocab_size, min_frequency=2)`:
#
# - start again from the 256 bytes (call `self.reset()`); the ids are the UTF-8 bytes of `text`;
# - while the vocabulary has fewer than `vocab_size` tokens: count the pairs of `ids`; choose the
#   most frequent pair; **ties are broken deterministically by the smallest pair** `(a, b)` in
#   numerical order (so `(32, 116)` wins over `(101, 32)` when both occur 9 times); stop early
#   if there is no pair left or the best count is below `min_frequency` (a pair seen once is not
#   a pattern, and the vocabulary is then smaller than asked); else record the merge in
#   `self.merges` and `self.vocab` and replace the pair in `ids` with `merge_pair`;
# - return `self` (so `BPETokenizer().train(text, 300)` works).
#
# Tie-breaking matters more than it seems: two machines that train on the same text must learn
# the **same** merges, or the token ids of one do not mean anything to a model trained with the
# other. "The first maximum that `max` finds" depends on dict order, i.e. on implementation
# details; "the smallest pair" does not.
#
# **Cost.** Each merge recounts all pairs: `O(N)` for a text of `N` bytes, so training costs
# `O(N x merges)`. On our 5 KB corpus that is a fraction of a second. GPT-2 learned 50,000 merges
# from 40 GB of text: `2 x 10^15` steps this way, so production trainers (Hugging Face
# `tokenizers`, SentencePiece) first split the text into words and count each *distinct* word
# once, then update pair counts **incrementally** after each merge (only pairs next to the merged
# one change) with a priority queue to find the best pair.
#
# Example, the classic `"aaabdaaabac"`: the pair `(97, 97)` ("aa") occurs 4 times and becomes
# 256 (the text becomes `[256, 97, 98, 100, 256, 97, 98, 97, 99]`); then `(256, 97)` ("aa"
# followed by "a") and `(97, 98)` ("ab") both occur twice, and the tie goes to the smaller pair,
# `(97, 98)`, which becomes 257; then `(256, 257)` ("aaab") becomes 258.

# %% tags=["export"]
class BPETokenizer:
    """Byte-level byte-pair encoding, like GPT-2's tokenizer (without its regex pre-split).

    merges: {(a, b): new_id} in learned order (new ids 256, 257, ... are also the ranks).
    vocab:  {id: bytes}; the 256 single bytes, then vocab[a] + vocab[b] for each merge.
    Every str encodes (it is UTF-8 bytes) and decode(encode(s)) == s, emoji included.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        """Forget all merges: the vocabulary is the 256 single bytes."""
        self.merges = {}
        self.vocab = {i: bytes([i]) for i in range(256)}

    @property
    def vocab_size(self):
        return len(self.vocab)

    def train(self, text, vocab_size, min_frequency=2):
        """Learn merges from `text` until vocab_size tokens (or no pair occurs min_frequency
        times). Ties: the smallest pair (a, b). Returns self."""
        if vocab_size < 256:
            raise ValueError(f"a byte-level vocabulary has at least 256 tokens, got vocab_size={vocab_size}")
        ### BEGIN SOLUTION
        self.reset()
        ids = list(text.encode("utf-8"))
        while len(self.vocab) < vocab_size:
            counts = count_pairs(ids)
            if not counts:
                break
            pair = min(counts, key=lambda p: (-counts[p], p))
            if counts[pair] < min_frequency:
                break
            new_id = len(self.vocab)
            self.merges[pair] = new_id
            self.vocab[new_id] = self.vocab[pair[0]] + self.vocab[pair[1]]
            ids = merge_pair(ids, pair, new_id)
        return self
        ### END SOLUTION

    def encode(self, text):
        """list[int]: the UTF-8 bytes of `text`, merged in learned order."""
        ### BEGIN SOLUTION
        ids = list(text.encode("utf-8"))
        while len(ids) >= 2:
            candidates = set(zip(ids, ids[1:])) & self.merges.keys()
            if not candidates:
                break
            pair = min(candidates, key=self.merges.get)     # the earliest-learned merge present
            ids = merge_pair(ids, pair, self.merges[pair])
        return ids
        ### END SOLUTION

    def decode(self, ids):
        """str: the concatenated bytes of the tokens, decoded as UTF-8 (invalid bytes -> "\\ufffd")."""
        ### BEGIN SOLUTION
        return b"".join(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")
        ### END SOLUTION

    def token_strings(self, ids):
        """The text of each token, for display (a token may hold part of a character)."""
        return [self.vocab[int(i)].decode("utf-8", errors="replace") for i in ids]

# %% [markdown]
# ### Check: training on the classic example

# %%
tiny = BPETokenizer().train("aaabdaaabac", 259)
print("merges:", tiny.merges)
assert list(tiny.merges.items())[:2] == [((97, 97), 256), ((97, 98), 257)], tiny.merges
assert tiny.vocab[256] == b"aa" and tiny.vocab[257] == b"ab"
assert len(tiny.merges) == 3 and tiny.vocab_size == 259
assert BPETokenizer().train("abcd", 300).merges == {}, "no pair occurs twice: nothing to learn"
assert len(BPETokenizer().train("abcd", 300, min_frequency=1).merges) == 3

# %% [markdown]
# ## 5. Encoding and decoding
#
# **Encoding** a new text must reproduce the choices made in training: start from its UTF-8
# bytes and apply merges **in the order they were learned**. Applying "the first merge, then the
# second, ..." over all of them would work but costs `O(N x merges)` even for a short text.
# Faster and equivalent: repeatedly find, among the adjacent pairs present in `ids`, the one
# with the **smallest rank** (the smallest new id: `min(..., key=self.merges.get)` over the pairs
# that are in `self.merges`), merge it everywhere with `merge_pair`, and stop when no adjacent
# pair is a known merge. (A merge can only create pairs that contain its new id, whose own
# merges were learned later, so no earlier merge is ever skipped.) Hint: the pairs present are
# `set(zip(ids, ids[1:]))`, and a set `&` a dict's `.keys()` is a set of the common keys.
#
# **Decoding** is a table lookup: concatenate `self.vocab[i]` for every id, then
# `.decode("utf-8", errors="replace")`. Because merges only concatenate bytes, the bytes of
# `encode(s)` are exactly the UTF-8 bytes of `s`: `decode(encode(s)) == s` for **every** string,
# emoji and characters never seen in training included (they are spelled out as single bytes).
# `errors="replace"` only matters when someone decodes a *part* of a sequence that cuts a
# multi-byte character in two, as a generator streaming one token at a time does.
#
# The encoding of the training text is exactly the final `ids` of training: encoding *uses*
# what training learned.

# %% [markdown]
# ### Check: encode, decode, round trips

# %%
assert tiny.encode("aaabdaaabac") == [258, 100, 258, 97, 99], tiny.encode("aaabdaaabac")
assert tiny.decode([258, 100]) == "aaabd"
assert tiny.encode("") == [] and tiny.decode([]) == ""
for s in ["aaab", "cab", "héllo 世界 🙂", "\x00\n\t", "zzz"]:
    assert tiny.decode(tiny.encode(s)) == s, s
assert tiny.decode([0xC3]) == "\ufffd", "half of a 2-byte character decodes to the replacement character"
print("encode/decode ok:", tiny.encode("aaabdaaabac"), tiny.token_strings(tiny.encode("aaabdaaabac")))

# %% [markdown]
# ## 6. A tokenizer for real text
#
# TinyTorch bundles a small corpus (about 5 KB of English prose written for the course, public
# domain, with one sentence in ten languages at the end): `tinytorch.datasets.tiny_corpus`.
# Train a BPE tokenizer with 512 tokens (256 merges) on it and look at what it learned: the
# first merges are the most frequent pairs of English ("e ", " t", "the"), later ones whole
# words and word pieces.

# %%
from tinytorch.datasets.tiny_corpus import load_tiny_corpus, paragraphs

corpus = load_tiny_corpus()
bpe = BPETokenizer().train(corpus, 512)
print(f"corpus: {len(corpus)} characters, {len(corpus.encode('utf-8'))} bytes; learned {len(bpe.merges)} merges")
print("first 16 tokens learned:", [bpe.vocab[i].decode("utf-8", "replace") for i in range(256, 272)])
print("longest tokens:", sorted((b.decode("utf-8", "replace") for b in bpe.vocab.values()), key=len)[-6:])
sentence = "The machine measured the weather. Das Modell 🙂"
ids = bpe.encode(sentence)
print(f"{len(sentence)} characters -> {len(ids)} tokens:", bpe.token_strings(ids))
assert bpe.decode(ids) == sentence
assert len(bpe.encode(corpus)) < len(corpus) / 2, "BPE with 256 merges should at least halve the corpus"

# %% [markdown]
# ### (Reading) What production tokenizers add
#
# - **Pre-tokenization.** GPT-2 first splits text with a regular expression into words, numbers,
#   punctuation and spaces, and learns and applies merges *inside* each piece only: no token
#   spans "the." or "e t", the trainer counts each distinct word once, and an encoder can cache
#   the tokens of frequent words. (Our `BPETokenizer` merges across spaces: " the " is a token.)
# - **Special tokens** such as GPT-2's `<|endoftext|>` (id 50256) are added *after* the merges
#   and matched before BPE runs, so no ordinary text can produce them by accident.
# - **Speed.** `tiktoken` encodes in Rust, several times faster than Python implementations, with
#   the merge ranks in a hash map as in your `encode`; training in Hugging Face `tokenizers`
#   updates pair counts incrementally instead of recounting.
# - **SentencePiece** (Llama 2, T5) works on Unicode characters, marks spaces with `▁`, and with
#   `byte_fallback` spells out unseen characters as bytes: the same guarantee your byte-level BPE
#   gives. Its *Unigram* model prunes a big vocabulary instead of growing a small one.

# %% [markdown]
# ## 7. Systems analysis: vocabulary size against sequence length
#
# The cell below trains one tokenizer with as many merges as the corpus supports (a BPE
# vocabulary of size `V` is the first `V - 256` merges of a bigger one: training is greedy, so
# one run gives every smaller tokenizer too), then, for several vocabulary sizes, it measures:
#
# 1. **tokens per character** on the training paragraphs and on held-out paragraphs (every
#    fourth English paragraph is kept out of training), and the character tokenizer for
#    comparison;
# 2. the **encode time** of the held-out text (best of seven runs: the machine may be busy), in
#    microseconds per character;
# 3. the **memory of an embedding table** of width `d = 768` (GPT-2 small) in float32, allocated
#    with NumPy and measured with `.nbytes`, and the relative cost of attention (`n^2` for a
#    sequence of `n` tokens) for the held-out text;
# 4. the tokens per character of the largest tokenizer on each line of the paragraph "Many
#    Languages", which is kept out of training: a tokenizer learned from English text, applied
#    to other languages and scripts.
#
# Read the numbers it prints before answering the questions at the end.

# %% tags=["analysis"]
import time

import numpy as np

_paras = paragraphs()
_languages = next(p for p in _paras if p.startswith("The same idea"))   # kept out of training
_english = [p for p in _paras if p != _languages]
train_text = "\n\n".join(p for k, p in enumerate(_english) if k % 4 != 3)
held_out = "\n\n".join(p for k, p in enumerate(_english) if k % 4 == 3)


def _best_seconds(fn, repeats=7):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_start = time.perf_counter()
full = BPETokenizer().train(train_text, 2048)
print(f"training on {len(train_text)} characters: {len(full.merges)} merges in {time.perf_counter() - _start:.2f} s "
      f"(stopped when no pair occurs twice); held-out text: {len(held_out)} characters\n")


def truncated(tokenizer, vocab_size):
    """The tokenizer made of the first vocab_size - 256 merges of `tokenizer`."""
    small = BPETokenizer()
    for pair, new_id in list(tokenizer.merges.items())[: vocab_size - 256]:
        small.merges[pair] = new_id
        small.vocab[new_id] = tokenizer.vocab[new_id]
    return small


d_model = 768
_char = CharTokenizer(train_text)
_unk_rate = _char.encode(held_out).count(UNK_ID) / len(held_out)
_char_table = np.zeros((_char.vocab_size, d_model), dtype=np.float32)
print(f"char tokenizer: V = {_char.vocab_size}, 1.000 tokens/char, {_unk_rate:.1%} of held-out characters are <unk>, "
      f"embedding {_char_table.nbytes / 1e3:.0f} KB\n")
print(f"{'V':>6} {'tok/char train':>15} {'tok/char held-out':>18} {'encode us/char':>15} "
      f"{'embedding KB':>13} {'attention n^2 vs bytes':>23}")
_sizes = sorted({256, 300, 384, 512, 768, 1024, full.vocab_size})
_rows = []
for _v in [v for v in _sizes if v <= full.vocab_size]:
    _tok = truncated(full, _v)
    _train_ratio = len(_tok.encode(train_text)) / len(train_text)
    _n = len(_tok.encode(held_out))
    _seconds = _best_seconds(lambda: _tok.encode(held_out))
    _table = np.zeros((_v, d_model), dtype=np.float32)
    _rows.append((_v, _train_ratio, _n / len(held_out), _table.nbytes))
    print(f"{_v:>6} {_train_ratio:>15.3f} {_n / len(held_out):>18.3f} {_seconds / len(held_out) * 1e6:>15.1f} "
          f"{_table.nbytes / 1e3:>13.0f} {(_n / len(held_out.encode('utf-8'))) ** 2:>23.3f}")
    assert _tok.decode(_tok.encode(held_out)) == held_out

_bytes_per_param = _table.itemsize
for _name, _v, _d in [("GPT-2 small", 50_257, 768), ("Llama 3 8B", 128_256, 4096)]:
    print(f"{_name}: V = {_v:,} x d = {_d}: embedding {_v * _d * _bytes_per_param / 1e9:.2f} GB in float32, "
          f"the same again for an untied output layer")

print("\ntokens per character of the largest tokenizer, by language:")
for _line in _languages.split("\n")[1:]:
    _ids = full.encode(_line)
    print(f"  {len(_line.encode('utf-8')) / len(_line):4.2f} bytes/char {len(_ids) / len(_line):5.2f} tokens/char  {_line}")

# %% [markdown]
# ## Summary
#
# | you built | key idea | production |
# |---|---|---|
# | `CharTokenizer` | sorted characters after 4 special tokens; unseen -> `<unk>` (lossy) | char-level models |
# | `count_pairs`, `merge_pair` | one pass each over a list of ids | every BPE trainer |
# | `BPETokenizer.train` | greedy: most frequent pair, ties to the smallest pair | HF `tokenizers`, SentencePiece |
# | `BPETokenizer.encode/decode` | merges in learned order; bytes make every string round-trip | `tiktoken`, GPT-2 |
#
# In Module 11 the ids become rows of an `Embedding` table of shape `(V, d)`: the table whose
# memory section 7 measured.

# %% [markdown]
# ## 8. ML-systems questions
#
# Answer each question in the cell below it, in a few sentences. Refer to your code and to the
# numbers section 7 printed. These answers are graded by a TA (10 points each) with the course
# rubric: understanding, references to your implementation, and systems implications count.
#
# **Question 1 (vocabulary size against sequence length).**
# Using the table of section 7, describe how tokens per character, encode time and embedding
# memory change with the vocabulary size, on the training and on the held-out text. Why does a
# bigger vocabulary help less on held-out text? A transformer's attention costs grow with the
# square of the sequence length, and its embedding and output layers with `V x d`: which costs
# go down and which go up when GPT-2's 50,257 tokens become Llama 3's 128,256, and why can a
# 1B-parameter model not simply take a 1M-token vocabulary?

# %% [markdown] tags=["answer"] question="q1"
# Tokens per character fall as V grows: 1.0 with the 256 bytes, about 0.38 on the training
# paragraphs at V = 512 and about 0.31 at the largest V (about 620, where no pair occurs twice
# any more). On held-out paragraphs they fall much less (about 0.49 at V = 512, 0.47 at the
# largest V, nearly flat): the late merges are whole words and phrases of the training text
# ("the sea", "measured") that rarely reappear, so the merges overfit a small corpus. Encode time
# per character grows with V (tens of microseconds at V = 512), because my `encode` does one
# `merge_pair` pass over the ids per applicable merge. The embedding table grows linearly:
# V x 768 x 4 bytes, 0.8 MB at V = 256 and 1.6 MB at V = 512. Attention over n tokens costs
# n^2, so going from bytes to about 0.47 tokens per character cuts attention work about 4x and
# fits twice the text in a context window. From GPT-2's 50,257 to Llama 3's 128,256 tokens the
# sequences get shorter (less attention compute and KV-cache memory per character, more text in
# the context), but the embedding and output layers grow 2.5x (2.1 GB in float32 each at
# d = 4096) and the output softmax costs V per generated token. For a 1B model with d = 2048, a
# 1M vocabulary would put 2 x 10^6 x 2048, about 4B parameters, in the embedding and output
# layers alone, most rows would be rare tokens seen too few times to be trained well, and the
# logits (tokens x V) would dominate activation memory.

# %% [markdown]
# **Question 2 (what a tokenizer can represent).**
# Your `CharTokenizer` maps unseen characters to `<unk>`, your `BPETokenizer` never does. Show
# with your code why `decode(encode(s)) == s` holds for every string with byte-level BPE and
# not with the character tokenizer. What does section 7's last table say about the number of
# tokens a sentence costs in different languages, and what does that mean for users who pay
# per token or have a fixed context window? Why does `decode` need `errors="replace"` when a
# chatbot streams its answer one token at a time?

# %% [markdown] tags=["answer"] question="q2"
# `CharTokenizer.encode` looks each character up in `token_to_id` with `UNK_ID` as the default,
# so every unseen character becomes the same id 1 and `decode` can only return "\ufffd": the
# information is gone (section 7: even English held-out text has a few `<unk>` characters, and
# any other script would be all `<unk>`). `BPETokenizer.encode` starts from
# `text.encode("utf-8")`, whose 256 possible values are all in the vocabulary, and every merge
# only concatenates bytes (`vocab[new_id] = vocab[a] + vocab[b]`), so joining the tokens' bytes
# gives back exactly the UTF-8 bytes of `s`, and `decode` returns `s`; unseen characters just
# cost more tokens (one per byte at worst). The language table shows the price: the English
# held-out text costs about 0.47 tokens per character, French, German, Spanish and Italian
# 0.65-0.8 (shared Latin letters and pieces), but Greek and Russian cost exactly their 1.8-1.9
# bytes per character, Hindi 2.6 and Chinese and Japanese 3 tokens per character: no merge
# learned from English applies, so the same sentence is 4-6x more tokens. Users of those
# languages pay more per sentence, wait longer for generation and fit less text in a fixed
# context window; multilingual tokenizers train on balanced data with bigger vocabularies. A
# token can hold only part of a multi-byte character (the emoji "🙂" is 4 byte tokens here), so a
# chatbot that decodes each token as it streams meets incomplete UTF-8: `errors="replace"` shows
# "\ufffd" instead of raising, and a careful streaming decoder buffers the incomplete bytes until
# the character is complete.

# %% [markdown]
# **Question 3 (training and encoding at scale).**
# Your `train` recounts every pair after each merge. Estimate its cost for 50,000 merges over
# 10 GB of text from your measured training time, and explain two changes that production
# trainers make so that it runs in minutes. Why is the tie-breaking rule part of the tokenizer's
# specification, and what goes wrong if a model is served with a tokenizer whose merges differ
# from the one it was trained with?

# %% [markdown] tags=["answer"] question="q3"
# Each merge is one `count_pairs` pass and one `merge_pair` pass over all the ids, so training
# is O(N x merges): section 7 measured about 0.3 s for about 370 merges over 3.4 KB, roughly
# 0.25 microseconds per byte per merge. For 10^10 bytes and 5 x 10^4 merges that is about
# 10^10 x 5 x 10^4 x 0.25e-6 = 1.2 x 10^8 s, about 4 years of Python. Production trainers
# (1) pre-tokenize: split the text into words with a regex (GPT-2) and count each distinct word
# once, with its frequency, so the work is over a few million distinct words instead of 10^10
# bytes (merges then never cross word boundaries); (2) update pair counts incrementally: a merge
# changes only the counts of the pairs next to its occurrences, found through an index from each
# pair to the words that contain it, with a heap to find the most frequent pair; and they are
# written in Rust or C++ with parallel counting. The tie-breaking rule is part of the
# specification because training must be reproducible: my `train` chooses
# `min(counts, key=lambda p: (-counts[p], p))`, which does not depend on dict order, so every
# machine learns the same merges. A model's embedding row k means "token k of *its* tokenizer":
# with different merges the same text gets other ids and lengths, the model reads ids that meant
# other strings in training, and its output ids decode into wrong text, silently, with no error.
