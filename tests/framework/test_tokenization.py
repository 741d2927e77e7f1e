"""The exported tokenizers (tinytorch/core/tokenization.py) and the bundled text corpus.

Oracles: Python's UTF-8 codec, collections.Counter, and a brute-force BPE that recounts every
pair from scratch before each merge.
"""

import hashlib
from collections import Counter

import numpy as np
import pytest

from tinytorch.core.tokenization import (
    BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, BPETokenizer, CharTokenizer, count_pairs, merge_pair,
)
from tinytorch.datasets.tiny_corpus import TINY_CORPUS, load_tiny_corpus, paragraphs


def random_text(rng, alphabet, n):
    return "".join(alphabet[int(k)] for k in rng.integers(0, len(alphabet), size=n))


def random_unicode(rng, n):
    ranges = [(0x00, 0x80), (0x80, 0x800), (0x800, 0x10000), (0x10000, 0x110000), (0x1F300, 0x1FAFF)]
    out = []
    while len(out) < n:
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        cp = int(rng.integers(lo, hi))
        if not 0xD800 <= cp <= 0xDFFF:
            out.append(chr(cp))
    return "".join(out)


def brute_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if tuple(ids[i:i + 2]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def brute_force_bpe(text, vocab_size, min_frequency=2):
    ids = list(text.encode("utf-8"))
    merges = []
    while 256 + len(merges) < vocab_size:
        counts = Counter((ids[i], ids[i + 1]) for i in range(len(ids) - 1))
        if not counts or max(counts.values()) < min_frequency:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges.append((pair, 256 + len(merges)))
        ids = brute_merge(ids, pair, merges[-1][1])
    return merges, ids


def apply_in_order(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges:
        ids = brute_merge(ids, pair, new_id)
    return ids


# --- CharTokenizer ----------------------------------------------------------------------------

def test_char_tokenizer_vocabulary_and_specials():
    tok = CharTokenizer("banana bread")
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.id_to_token == list(SPECIAL_TOKENS) + sorted(set("banana bread"))
    assert all(tok.token_to_id[t] == i for i, t in enumerate(tok.id_to_token))
    assert tok.vocab_size == 4 + len(set("banana bread"))
    assert CharTokenizer().id_to_token == list(SPECIAL_TOKENS)


@pytest.mark.parametrize("seed", range(5))
def test_char_tokenizer_encode_decode(seed):
    rng = np.random.default_rng(seed)
    corpus = random_unicode(rng, 50)
    tok = CharTokenizer(corpus)
    text = corpus[:20] + random_unicode(rng, 10)
    known = set(corpus)
    assert tok.encode(text) == [tok.token_to_id[c] if c in known else UNK_ID for c in text]
    assert tok.encode(text, add_special_tokens=True) == [BOS_ID] + tok.encode(text) + [EOS_ID]
    assert tok.decode(tok.encode(corpus, add_special_tokens=True) + [PAD_ID] * 3) == corpus
    assert tok.decode(tok.encode(text)) == "".join(c if c in known else "\ufffd" for c in text)
    assert tok.decode(np.array(tok.encode(corpus))) == corpus      # NumPy ids work too


@pytest.mark.parametrize("bad", [-1, 99])
def test_char_decode_rejects_ids_outside_the_vocabulary(bad):
    with pytest.raises(ValueError):
        CharTokenizer("abc").decode([4, bad])


# --- BPE primitives ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_count_pairs_and_merge_pair_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    ids = [int(v) for v in rng.integers(0, 3, size=int(rng.integers(0, 60)))]
    assert count_pairs(ids) == Counter(zip(ids, ids[1:]))
    for pair in [(0, 0), (0, 1), (2, 2)]:
        before = list(ids)
        assert merge_pair(ids, pair, 500) == brute_merge(ids, pair, 500)
        assert ids == before


def test_merge_pair_overlaps():
    assert merge_pair([7, 7, 7], (7, 7), 256) == [256, 7]
    assert merge_pair([7, 7, 7, 7, 7], (7, 7), 256) == [256, 256, 7]
    assert merge_pair([], (1, 2), 256) == []


# --- BPETokenizer -----------------------------------------------------------------------------

def test_the_classic_example():
    tok = BPETokenizer().train("aaabdaaabac", 259)
    assert list(tok.merges.items()) == [((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]
    assert [tok.vocab[i] for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.vocab_size == 259


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_frequency", [1, 2, 3])
def test_training_matches_brute_force(seed, min_frequency):
    rng = np.random.default_rng(seed)
    text = random_text(rng, ["a", "b", "c", " ", "é", "🙂"], int(rng.integers(20, 200)))
    vocab_size = 256 + int(rng.integers(0, 40))
    tok = BPETokenizer().train(text, vocab_size, min_frequency=min_frequency)
    merges, final_ids = brute_force_bpe(text, vocab_size, min_frequency)
    assert list(tok.merges.items()) == merges
    assert tok.vocab_size == 256 + len(merges) <= vocab_size
    for (a, b), new_id in merges:
        assert tok.vocab[new_id] == tok.vocab[a] + tok.vocab[b]
    assert tok.encode(text) == final_ids
    other = random_text(rng, ["a", "b", "c", "d", " "], 50)
    assert tok.encode(other) == apply_in_order(other, merges)


def test_train_restarts_and_validates():
    tok = BPETokenizer().train("abababab", 300)
    tok.train("xyxyxy", 258)
    assert list(tok.merges) == [(120, 121), (256, 256)]
    with pytest.raises(ValueError, match="256"):
        tok.train("abc", 100)


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_on_random_unicode(seed):
    rng = np.random.default_rng(seed)
    tok = BPETokenizer().train(random_unicode(rng, 30) * 4 + random_text(rng, "the cat ", 300), 400)
    for _ in range(30):
        s = random_unicode(rng, int(rng.integers(0, 40)))
        ids = tok.encode(s)
        assert all(type(i) is int and 0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == s
        assert b"".join(tok.vocab[i] for i in ids) == s.encode("utf-8")


def test_compression_is_monotone_and_merges_are_prefixes():
    text = random_text(np.random.default_rng(0), "abcab ba", 400)
    lengths, previous = [], []
    for vocab_size in (256, 260, 280, 320, 400):
        tok = BPETokenizer().train(text, vocab_size)
        merges = list(tok.merges.items())
        assert merges[: len(previous)] == previous
        previous = merges
        lengths.append(len(tok.encode(text)))
    assert lengths == sorted(lengths, reverse=True) and lengths[0] == 400 and lengths[-1] < 200


def test_decode_replaces_cut_characters_and_token_strings():
    tok = BPETokenizer()
    assert tok.decode([0xE4, 0xB8]) == bytes([0xE4, 0xB8]).decode("utf-8", errors="replace")
    assert tok.token_strings(list("é".encode("utf-8"))) == ["\ufffd", "\ufffd"]
    with pytest.raises(KeyError):
        tok.decode([256])


# --- the bundled corpus -------------------------------------------------------------------------

def test_corpus_is_the_documented_one():
    text = load_tiny_corpus()
    assert text is TINY_CORPUS and text.endswith("\n")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == \
        "ce7e5b59cd4d49b8e2b2782ed4cb21a86391403e3874c5c2131a96e5633f9eb3"
    assert len(text) == 5422 and len(text.encode("utf-8")) == 5593
    assert "\n\n".join(paragraphs()) == text and len(paragraphs()) == 25


def test_bpe_on_the_corpus():
    text = load_tiny_corpus()
    tok = BPETokenizer().train(text, 512)
    assert tok.vocab_size == 512
    ids = tok.encode(text)
    assert len(ids) < 0.5 * len(text)
    assert tok.decode(ids) == text
    assert tok.vocab[256] == b"e "                       # the most frequent pair of English prose
