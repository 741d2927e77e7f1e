"""Hidden graded tests of module 10 (Tokenization): texts and sizes drawn at grading time.

Oracles: Python's UTF-8 codec, collections.Counter and a brute-force reference BPE (all pairs
recounted from scratch before every merge), computed here in pytest.
"""

from collections import Counter

import pytest

from pytest_tinytorch.kernel import StudentError

pytestmark = [pytest.mark.module("10_tokenization"), pytest.mark.hidden]

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


def random_text(rng, alphabet, n):
    return "".join(alphabet[int(k)] for k in rng.integers(0, len(alphabet), size=n))


def random_unicode(rng, n):
    """n characters from ASCII, controls, Latin, Cyrillic, CJK, emoji and the whole code space
    (surrogates excluded: they are not characters and have no UTF-8 encoding)."""
    ranges = [(0x20, 0x7F), (0x00, 0x20), (0xA0, 0x250), (0x400, 0x500), (0x3040, 0x30FF),
              (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x0, 0x110000)]
    chars = []
    while len(chars) < n:
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        cp = int(rng.integers(lo, hi))
        if not 0xD800 <= cp <= 0xDFFF:
            chars.append(chr(cp))
    return "".join(chars)


def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def brute_force_bpe(text, vocab_size, min_frequency=2):
    """Reference BPE: (merges list in learned order, final ids). Every round recounts all pairs
    by scanning the whole sequence; the most frequent pair wins, ties to the smallest pair."""
    ids = list(text.encode("utf-8"))
    merges = []
    while 256 + len(merges) < vocab_size:
        counts = Counter(zip(ids, ids[1:]))
        if not counts:
            break
        best = max(counts.values())
        if best < min_frequency:
            break
        pair = min(p for p, c in counts.items() if c == best)
        merges.append((pair, 256 + len(merges)))
        ids = merge(ids, pair, 256 + len(merges) - 1)
    return merges, ids


def apply_merges_in_order(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges:
        ids = merge(ids, pair, new_id)
    return ids


# --- CharTokenizer ----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_char_tokenizer_on_a_random_unicode_corpus(student, rng):
    corpus = random_unicode(rng, int(rng.integers(30, 80)))
    text = corpus[: int(rng.integers(5, 20))] + random_unicode(rng, 10)
    vocab = SPECIALS + sorted(set(corpus))
    id_to_token, ids, decoded = student.value(
        "tok = CharTokenizer(corpus)\n"
        "(tok.id_to_token, tok.encode(text, add_special_tokens=True), tok.decode(tok.encode(text)))",
        corpus=corpus, text=text,
    )
    assert id_to_token == vocab
    assert ids == [2] + [vocab.index(ch) if ch in vocab[4:] else 1 for ch in text] + [3]
    assert decoded == "".join(ch if ch in vocab[4:] else "\ufffd" for ch in text)


@pytest.mark.points(1)
def test_char_decode_skips_padding_and_markers(student, rng):
    corpus = random_text(rng, "xyzw", 30)
    vocab = SPECIALS + sorted(set(corpus))
    ids = [int(v) for v in rng.integers(0, len(vocab), size=25)]
    got = student.value("CharTokenizer(corpus).decode(ids)", corpus=corpus, ids=ids)
    assert got == "".join("\ufffd" if i == 1 else vocab[i] for i in ids if i not in (0, 2, 3))
    with pytest.raises(StudentError) as err:
        student.value("CharTokenizer(corpus).decode([-1])", corpus=corpus)
    assert err.value.is_a("ValueError")


# --- BPE primitives ---------------------------------------------------------------------------

@pytest.mark.points(2)
def test_count_and_merge_on_random_sequences(student, rng):
    ids = [int(v) for v in rng.integers(0, int(rng.integers(2, 5)), size=int(rng.integers(30, 80)))]
    pair = (ids[3], ids[4])
    counts, merged, single, empty = student.value(
        "(sorted(count_pairs(ids).items()), merge_pair(ids, pair, 4242),\n"
        " count_pairs(ids[:1]), merge_pair([], pair, 4242))",
        ids=ids, pair=pair,
    )
    assert counts == sorted(Counter(zip(ids, ids[1:])).items())
    assert merged == merge(ids, pair, 4242)
    assert single == {} and empty == []


# --- BPETokenizer -----------------------------------------------------------------------------

@pytest.mark.points(3)
def test_bpe_training_matches_brute_force(student, rng):
    text = random_text(rng, "aabbc d", int(rng.integers(80, 160)))
    vocab_size = 256 + int(rng.integers(5, 20))
    tiny = random_text(rng, "xyz", 9)
    merges, _ = brute_force_bpe(text, vocab_size)
    tiny_merges, _ = brute_force_bpe(tiny, 300, min_frequency=1)
    got, got_tiny, token_bytes = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(text, vocab_size)\n"
        "tok2 = BPETokenizer()\n"
        "tok2.train(tiny, 300, min_frequency=1)\n"
        "(list(tok.merges.items()), list(tok2.merges.items()), [list(tok.vocab[i]) for i in range(tok.vocab_size)])",
        text=text, vocab_size=vocab_size, tiny=tiny,
    )
    assert got == merges
    assert got_tiny == tiny_merges, "min_frequency=1 merges pairs seen once"
    expected_bytes = {i: bytes([i]) for i in range(256)}
    for pair, new_id in merges:
        expected_bytes[new_id] = expected_bytes[pair[0]] + expected_bytes[pair[1]]
    assert token_bytes == [list(expected_bytes[i]) for i in range(len(expected_bytes))]


@pytest.mark.points(2)
def test_bpe_round_trips_random_unicode(student, rng):
    training = random_unicode(rng, 40) * 3 + random_text(rng, "the cat sat ", 200)
    texts = [random_unicode(rng, int(rng.integers(1, 40))) for _ in range(10)] + [training[:60]]
    decoded, all_ints = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(training, 320)\n"
        "encoded = [tok.encode(s) for s in texts]\n"
        "([tok.decode(e) for e in encoded], all(type(i) is int for e in encoded for i in e))",
        training=training, texts=texts,
    )
    assert decoded == texts
    assert all_ints is True, "encode returns a list of Python ints"


@pytest.mark.points(2)
def test_compression_is_monotone_in_vocab_size(student, rng):
    text = random_text(rng, "abcab ba", int(rng.integers(300, 500)))
    sizes = [256, 260, 270, 290, 320]
    lengths, merge_lists = student.value(
        "out, lists = [], []\n"
        "for v in sizes:\n"
        "    tok = BPETokenizer()\n"
        "    tok.train(text, v)\n"
        "    out.append(len(tok.encode(text)))\n"
        "    lists.append(list(tok.merges.items()))\n"
        "(out, lists)",
        text=text, sizes=sizes,
    )
    expected = [len(brute_force_bpe(text, v)[1]) for v in sizes]
    assert lengths == expected
    assert all(a >= b for a, b in zip(lengths, lengths[1:])), "more merges never lengthen the training text"
    assert lengths[0] == len(text.encode("utf-8")) and lengths[-1] < lengths[0]
    for small, large in zip(merge_lists, merge_lists[1:]):
        assert large[: len(small)] == small, "a smaller vocabulary's merges are a prefix of a larger one's"


@pytest.mark.points(2)
def test_encode_applies_merges_in_learned_order(student, rng):
    text = random_text(rng, "aab ab", int(rng.integers(200, 300)))
    other = random_text(rng, "aabz ", 80) + random_unicode(rng, 5)
    merges, final_ids = brute_force_bpe(text, 300)
    got_text, got_other = student.value(
        "tok = BPETokenizer()\n"
        "tok.train(text, 300)\n"
        "(tok.encode(text), tok.encode(other))",
        text=text, other=other,
    )
    assert got_text == final_ids
    assert got_other == apply_merges_in_order(other, merges)


@pytest.mark.points(1)
def test_decode_of_a_cut_character_uses_the_replacement_character(student, rng):
    ch = chr(int(rng.integers(0x4E00, 0x9FFF)))
    raw = list((ch + "a").encode("utf-8"))
    got = student.value("BPETokenizer().decode(ids)", ids=raw[1:])
    assert got == bytes(raw[1:]).decode("utf-8", errors="replace")
