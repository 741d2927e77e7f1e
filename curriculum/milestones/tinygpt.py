"""Milestone: TinyGPT. A small GPT, built and trained with nothing but the tinytorch package.

Two tasks, one model class (module 13's `GPT`), trained with Adam (module 07) on the
cross-entropy of the next token (module 04's loss made differentiable by module 06):

1. **Sequence reversal.** Sequences of random digits followed by a separator; the model must
   write them backwards: `3 1 4 1 5 9 2 6 | 6 2 9 5 1 4 1 3`. Every output token depends on a
   token far away in the input, so a model without working attention cannot do it. Measured:
   exact-match accuracy of greedy generation on held-out sequences (never used in training).
2. **Character-level language model** of the English prose of the course's tiny corpus
   (`tinytorch.datasets.tiny_corpus`, CC0; its multilingual paragraph is left out): held-out
   cross-entropy (nats per character) against the unigram baseline (character frequencies of the
   training text, measured on the same held-out text; a bigram baseline is printed too), with
   early stopping on a separate validation text, then a sample of generated text.

`python curriculum/milestones/tinygpt.py` runs the full version (a few minutes on 2 cores);
`run(quick=True)` is the test suite's version (a few seconds, with lower targets).

Modules 02 (activations) and 04 (losses) provide classes used here, but their forward passes
are replaced by module 06's differentiable Functions, so no region of theirs can be knocked out
to break this milestone: they are not listed in REQUIRES.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

TITLE = "TinyGPT: a transformer that reverses sequences and writes like its corpus"
REQUIRES = ["01_tensor", "03_layers", "06_autograd", "07_optimizers", "11_embeddings", "12_attention",
            "13_transformers"]
SABOTAGE = {
    "01_tensor": "Implement Tensor.__init__",
    "03_layers": "Implement Linear.forward",
    "06_autograd": "Implement MatMul.backward",
    "07_optimizers": "Implement Adam.step",
    "11_embeddings": "Implement EmbeddingFn.backward",
    "12_attention": "Implement scaled_dot_product_attention",
    "13_transformers": "Implement LayerNormFn.backward",
}

# Sizes and targets: (quick, full).
REVERSAL = {
    False: dict(length=8, digits=10, dim=64, heads=4, layers=2, batch=64, steps=800, lr=3e-3, held_out=1000, target=0.99),
    True: dict(length=4, digits=6, dim=32, heads=2, layers=2, batch=32, steps=150, lr=1e-2, held_out=300, target=0.90),
}
CORPUS = {
    False: dict(context=64, dim=64, heads=4, layers=2, batch=16, steps=600, eval_every=50, lr=3e-3, margin=0.6),
    True: dict(context=32, dim=32, heads=2, layers=1, batch=16, steps=60, eval_every=60, lr=1e-2, margin=0.2),
}


def train(model, batches, steps, optimizer, loss_mask=None, log_every=0):
    """`steps` of `optimizer` on the next-token cross-entropy of `batches()` (int arrays (N, T+1));
    returns the losses.

    loss_mask: None (every position counts) or a boolean array (T,): the input positions whose
    prediction enters the loss (reversal: only the answer)."""
    from tinytorch.core.losses import CrossEntropyLoss

    loss_fn, losses = CrossEntropyLoss(), []
    for step in range(steps):
        tokens = batches()
        logits = model(tokens[:, :-1])
        targets = tokens[:, 1:]
        if loss_mask is not None:
            logits, targets = logits[:, loss_mask], targets[:, loss_mask]
        loss = loss_fn(logits.reshape(-1, model.vocab_size), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
        if log_every and (step + 1) % log_every == 0:
            print(f"    step {step + 1:>5}: loss {np.mean(losses[-log_every:]):.3f}", flush=True)
    return losses


def reversal(quick, seed, log_every=0):
    """Train a GPT to reverse digit sequences; exact-match accuracy on held-out sequences."""
    from tinytorch.core.optimizers import Adam
    from tinytorch.core.transformers import GPT, count_parameters

    cfg = REVERSAL[quick]
    length, digits = cfg["length"], cfg["digits"]
    sep = digits                                        # the separator token, after the digits
    rng = np.random.default_rng(seed)
    code = digits ** np.arange(length)                  # a sequence's number, to keep held-out ones out

    held_out = rng.integers(0, digits, size=(cfg["held_out"], length))
    held_codes = held_out @ code

    def batch():
        x = rng.integers(0, digits, size=(cfg["batch"], length))
        x = x[~np.isin(x @ code, held_codes)]            # never train on a held-out sequence
        return np.concatenate([x, np.full((len(x), 1), sep), x[:, ::-1]], axis=1)

    model = GPT(digits + 1, 2 * length + 1, cfg["dim"], cfg["heads"], cfg["layers"], rng=seed)
    mask = np.arange(2 * length) >= length               # input positions length..2L-1 predict the answer
    start = time.perf_counter()
    losses = train(model, batch, cfg["steps"], Adam(model.parameters(), lr=cfg["lr"]), loss_mask=mask,
                   log_every=log_every)
    seconds = time.perf_counter() - start
    prompts = np.concatenate([held_out, np.full((len(held_out), 1), sep)], axis=1)
    answers = model.generate(prompts, length, temperature=0)[:, length + 1:]
    exact = float(np.mean(np.all(answers == held_out[:, ::-1], axis=1)))
    example = held_out[0].tolist(), answers[0].tolist()
    return {"reversal_exact_match": exact, "reversal_token_accuracy": float(np.mean(answers == held_out[:, ::-1])),
            "reversal_final_loss": float(np.mean(losses[-20:])), "reversal_train_seconds": seconds,
            "reversal_steps": cfg["steps"], "reversal_parameters": count_parameters(model),
            "reversal_example": example, "reversal_target": cfg["target"]}


def corpus(quick, seed, log_every=0):
    """Train a character-level GPT on the tiny corpus; held-out loss against unigram and bigram baselines."""
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import Adam
    from tinytorch.core.transformers import GPT, count_parameters
    from tinytorch.datasets.tiny_corpus import paragraphs

    cfg = CORPUS[quick]
    # The English prose of the corpus: its one multilingual paragraph has dozens of characters
    # that occur once or twice, which no model (and no baseline) can learn from 6 KB.
    text = "\n\n".join(p for p in paragraphs() if p.isascii()) + "\n"
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    # Blocks of 256 characters: every 10th (index 9, 19, ...) is the held-out test text, every
    # 10th shifted by 5 the validation text that picks the checkpoint (early stopping: 6 KB of
    # text is memorised within a few hundred steps), the rest is for training. The corpus changes
    # topic by paragraph, so a single tail split would test on a different kind of text.
    block = 256
    which = (np.arange(len(ids)) // block) % 10
    train_ids = ids[(which != 9) & (which != 4)]
    context = cfg["context"]

    def windows(part):
        """Every held-out character once, predicted from up to `context` characters of its own block."""
        for first in range(0, len(ids), block):
            piece = ids[first:first + block]
            if which[first] == part:
                for offset in range(0, len(piece) - 1, context):
                    yield piece[offset:offset + context + 1]

    test_targets = np.concatenate([w[1:] for w in windows(9)])
    test_prev = np.concatenate([w[:-1] for w in windows(9)])
    # Baselines measured on the same test characters, from training counts (add-one smoothing):
    # unigram = character frequencies; bigram = frequencies given the previous character.
    unigram_counts = np.bincount(train_ids, minlength=len(chars)) + 1.0
    unigram = float(-np.mean(np.log(unigram_counts / unigram_counts.sum())[test_targets]))
    pairs = np.ones((len(chars), len(chars)))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1.0)
    bigram = float(-np.mean(np.log(pairs / pairs.sum(axis=1, keepdims=True))[test_prev, test_targets]))

    loss_fn = CrossEntropyLoss()

    def held_out_loss(model, part):
        total = count = 0
        with no_grad():
            for window in windows(part):
                n = len(window) - 1
                total += float(loss_fn(model(window[None, :-1]).reshape(n, -1), window[1:]).data) * n
                count += n
        return total / count

    rng = np.random.default_rng(seed)

    def batch():
        starts = rng.integers(0, len(train_ids) - context - 1, size=cfg["batch"])
        return train_ids[starts[:, None] + np.arange(context + 1)]

    model = GPT(len(chars), context, cfg["dim"], cfg["heads"], cfg["layers"], rng=seed)
    optimizer = Adam(model.parameters(), lr=cfg["lr"])
    start = time.perf_counter()
    losses, best = [], (float("inf"), None, 0)
    for _ in range(cfg["steps"] // cfg["eval_every"]):
        losses += train(model, batch, cfg["eval_every"], optimizer)
        val = held_out_loss(model, 4)
        if val < best[0]:
            best = (val, model.state_dict(), len(losses))
        if log_every:
            print(f"    step {len(losses):>5}: train loss {np.mean(losses[-cfg['eval_every']:]):.3f}, "
                  f"validation loss {val:.3f}", flush=True)
    seconds = time.perf_counter() - start
    model.load_state_dict(best[1])
    test_loss = held_out_loss(model, 9)
    prompt = np.array([chars.index(c) for c in "The "])
    sample = "".join(chars[i] for i in model.generate(prompt, 200 if not quick else 40, temperature=0.8,
                                                        top_k=10, seed=seed))
    return {"corpus_unigram_loss": unigram, "corpus_bigram_loss": bigram, "corpus_test_loss": test_loss,
            "corpus_val_loss": best[0], "corpus_best_step": best[2], "corpus_train_loss": float(np.mean(losses[-20:])),
            "corpus_first_loss": losses[0], "corpus_train_seconds": seconds, "corpus_steps": cfg["steps"],
            "corpus_vocab": len(chars), "corpus_parameters": count_parameters(model),
            "corpus_margin": cfg["margin"], "corpus_sample": sample}


def run(quick: bool = False, seed: int = 0) -> dict:
    """Both tasks; plain measurements (accuracies, nats per character, seconds)."""
    log_every = 0 if quick else 250
    if not quick:
        print("training the reversal GPT ...", flush=True)
    result = reversal(quick, seed, log_every)
    if not quick:
        print("training the character-level GPT on the tiny corpus ...", flush=True)
    result.update(corpus(quick, seed, log_every))
    return result


def check(result: dict, quick: bool = False) -> list[str]:
    """The unmet targets, as sentences (empty: milestone achieved)."""
    problems = []
    target = REVERSAL[quick]["target"]
    if not result["reversal_exact_match"] >= target:
        problems.append(f"sequence reversal: exact match {result['reversal_exact_match']:.1%} on held-out sequences, "
                        f"target at least {target:.0%}")
    margin = CORPUS[quick]["margin"]
    if not result["corpus_test_loss"] <= result["corpus_unigram_loss"] - margin:
        problems.append(f"tiny corpus: held-out loss {result['corpus_test_loss']:.3f} nats/char is not {margin} below the "
                        f"unigram baseline {result['corpus_unigram_loss']:.3f}")
    if not result["corpus_train_loss"] < result["corpus_first_loss"]:
        problems.append("tiny corpus: the training loss did not fall")
    return problems


if __name__ == "__main__":
    result = run(quick=False)
    print(f"\n{TITLE}")
    x, y = result["reversal_example"]
    print(f"reversal ({result['reversal_parameters']:,} parameters, {result['reversal_steps']} steps, "
          f"{result['reversal_train_seconds']:.0f} s): exact match {result['reversal_exact_match']:.2%} "
          f"(tokens {result['reversal_token_accuracy']:.2%}) on held-out sequences; e.g. {x} -> {y}")
    print(f"tiny corpus ({result['corpus_vocab']} characters, {result['corpus_parameters']:,} parameters, "
          f"{result['corpus_steps']} steps, {result['corpus_train_seconds']:.0f} s): held-out test loss "
          f"{result['corpus_test_loss']:.3f} nats/char (checkpoint of step {result['corpus_best_step']}, validation "
          f"{result['corpus_val_loss']:.3f}) vs unigram baseline {result['corpus_unigram_loss']:.3f} and bigram "
          f"{result['corpus_bigram_loss']:.3f}; train loss {result['corpus_first_loss']:.2f} -> "
          f"{result['corpus_train_loss']:.2f} (memorising)")
    print("sample (prompt 'The ', temperature 0.8, top-k 10):\n" + result["corpus_sample"])
    problems = check(result)
    print("\n" + ("milestone achieved" if not problems else "NOT achieved:\n  " + "\n  ".join(problems)))
    sys.exit(1 if problems else 0)
