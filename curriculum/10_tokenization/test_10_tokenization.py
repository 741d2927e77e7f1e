"""Public graded tests of module 10 (Tokenization).

Oracles are computed here: Python's own UTF-8 codec, collections.Counter, and a brute-force
reference BPE that recounts every pair from scratch after each merge.
"""

from collections import Counter

import pytest

from pytest_tinytorch.kernel import StudentError

pytestmark = pytest.mark.module("10_tokenization")

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def random_text(rng, alphabet, n):
    return "".join(alphabet[int(k)] for k in rng.integers(0, len(alphabet), size=n))


def random_unicode(rng, n):
    """n characters from ASCII, Latin-1, Greek, CJK, emoji and the whole code space (no surrogates)."""
    ranges = [(0x20, 0x7F), (0x00, 0x20), (0xA0, 0x250), (0x370, 0x400), (0x4E00, 0x9FFF),
              (0x1F300, 0x1FAFF), (0x0, 0x110000)]
    chars = []
    while len(chars) < n:
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        cp = int(rng.integers(lo, hi))
        if not 0xD800 <= cp <= 0xDFFF:
            chars.append(chr(cp))
    return "".join(chars)


def brute_force_bpe(text, vocab_size, min_frequency=2):
    """Reference BPE over UTF-8 bytes: recount all pairs from scratch before every merge; the
    most frequent pair wins, ties to the smallest pair. Returns (merges list, final ids, vocab)."""
    ids = list(text.encode("utf-8"))
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for i in range(len(ids) - 1):
            counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
        if not counts:
            break
        best = max(counts.values())
        if best < min_frequency:
            break
        pair = sorted(p for p, c in counts.items() if c == best)[0]
        new_id = 256 + len(merges)
        merges.append((pair, new_id))
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return merges, ids, vocab


def apply_merges_in_order(text, merges):
    """Encoding oracle: apply every learned merge, first to last, each over the whole sequence."""
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges:
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids


# --- CharTokenizer ----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_char_vocabulary_is_specials_then_sorted_characters(student, rng):
    corpus = random_text(rng, "the quick brown fox jumps over a lazy dog!?", int(rng.integers(20, 60)))
    id_to_token, vocab_size, mapping_ok = student.value(
        "tok = CharTokenizer(corpus)\n"
        "(tok.id_to_token, tok.vocab_size, all(tok.token_to_id[t] == i for i, t in enumerate(tok.id_to_token)))",
        corpus=corpus,
    )
    expected = SPECIALS + sorted(set(corpus))
    assert id_to_token == expected
    assert vocab_size == len(expected) and mapping_ok is True


@pytest.mark.points(2)
def test_char_encode_decode_and_unknown_characters(student, rng):
    corpus = random_text(rng, "abcdefgh ", 40)
    text = random_text(rng, "abcdefghXYZ", 25)
    vocab = SPECIALS + sorted(set(corpus))
    ids, wrapped, known_round_trip, decoded = student.value(
        "tok = CharTokenizer(corpus)\n"
        "(tok.encode(text), tok.encode(text, add_special_tokens=True),\n"
        " tok.decode(tok.encode(corpus)), tok.decode(tok.encode(text)))",
        corpus=corpus, text=text,
    )
    expected = [vocab.index(ch) if ch in vocab else 1 for ch in text]
    assert ids == expected
    assert wrapped == [2] + expected + [3]
    assert known_round_trip == corpus
    assert decoded == "".join(ch if ch in vocab else "\ufffd" for ch in text)


# --- BPE primitives ---------------------------------------------------------------------------

@pytest.mark.points(2)
def test_count_pairs_matches_counter(student, rng):
    ids = [int(v) for v in rng.integers(0, 5, size=int(rng.integers(20, 60)))]
    got = student.value("sorted(count_pairs(ids).items())", ids=ids)
    assert got == sorted(Counter(zip(ids, ids[1:])).items())


@pytest.mark.points(2)
def test_merge_pair_left_to_right_without_overlap(student, rng):
    ids = [int(v) for v in rng.integers(0, 3, size=int(rng.integers(20, 50)))] + [1, 1, 1]
    pair = (1, 1)
    got, untouched = student.value("out = merge_pair(ids, pair, 999)\n(out, ids)", ids=ids, pair=pair)
    out, i = [], 0
    while i < len(ids):                                   # oracle: the definition, step by step
        if ids[i:i + 2] == [1, 1]:
            out.append(999)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    assert got == out
    assert untouched == ids, "merge_pair must return a new list and leave its input alone"


# --- BPETokenizer -----------------------------------------------------------------------------

@pytest.mark.points(3)
def test_bpe_training_matches_brute_force_on_a_tiny_text(student):
    text = "low lower lowest newer newest wider"
    merges, _, vocab = brute_force_bpe(text, 270)
    got_merges, got_vocab = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(text, 270)\n"
        "(list(tok.merges.items()), {str(i): list(b) for i, b in tok.vocab.items()})",
        text=text,
    )
    assert got_merges == merges, "merges (pair, new id) in the order they were learned"
    assert got_vocab == {str(i): list(b) for i, b in vocab.items()}


@pytest.mark.points(2)
def test_bpe_round_trips_random_unicode(student, rng):
    training = random_text(rng, "abc déf 世界 🙂", 300)
    texts = [random_unicode(rng, int(rng.integers(1, 30))) for _ in range(8)] + ["", training[:50]]
    decoded = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(training, 300)\n"
        "[tok.decode(tok.encode(s)) for s in texts]",
        training=training, texts=texts,
    )
    assert decoded == texts


@pytest.mark.points(2)
def test_encode_of_training_text_uses_the_learned_merges(student, rng):
    text = random_text(rng, "ab c", 200)
    merges, final_ids, _ = brute_force_bpe(text, 290)
    other = random_text(rng, "abc d", 60)
    got, got_other = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(text, 290)\n"
        "(tok.encode(text), tok.encode(other))",
        text=text, other=other,
    )
    assert got == final_ids, "encoding the training text must give the final sequence of training"
    assert got_other == apply_merges_in_order(other, merges)


@pytest.mark.points(1)
def test_decode_rejects_an_unknown_char_id(student):
    with pytest.raises(StudentError) as err:
        student.value("CharTokenizer('abc').decode([0, 99])")
    assert err.value.is_a("ValueError")
