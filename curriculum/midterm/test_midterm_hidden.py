"""Hidden graded tests of the midterm project: instructors only, never released.

The splits come from `grading_seed`, a secret drawn at grading time and shared by the tests of
one submission: two seeds, so the 360 held-out images the accuracy is measured on are unknown to
the student, and each seed's model is trained once (the cache of test_midterm.py, shared with
the public tests: seed 0 is trained once for both files).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from test_midterm import PUBLIC_SEED, check_trained_conv, training_run

pytestmark = [pytest.mark.module("midterm"), pytest.mark.hidden]

TIME_LIMIT, TIME_LIMIT_HALF = 180.0, 360.0      # seconds of wall-clock training per seed
LEARNED = 0.80                                  # the time points count for a model that learned


def grading_seeds(grading_seed):
    """The two split-and-training seeds of this submission."""
    base = grading_seed % 10_000
    return [base, base + 1]


def hidden_runs(student, grading_seed):
    return [training_run(student, "cnn", seed) for seed in grading_seeds(grading_seed)]


def mean_accuracy(student, grading_seed):
    """Mean held-out accuracy of the CNN over the two grading seeds (raises the student's error).
    The project is to build and train a CNN: a model without a trained Conv2d earns no accuracy."""
    runs = hidden_runs(student, grading_seed)
    for run in runs:
        check_trained_conv(run)
    return float(np.mean([run.accuracy() for run in runs]))


def assert_tier(student, grading_seed, target):
    acc = mean_accuracy(student, grading_seed)
    assert acc >= target, f"mean held-out accuracy {acc:.1%} over two grading seeds is below {target:.0%}"


@pytest.mark.points(5)
def test_accuracy_at_least_80(student, grading_seed):
    assert_tier(student, grading_seed, 0.80)


@pytest.mark.points(7)
def test_accuracy_at_least_90(student, grading_seed):
    assert_tier(student, grading_seed, 0.90)


@pytest.mark.points(8)
def test_accuracy_at_least_95(student, grading_seed):
    assert_tier(student, grading_seed, 0.95)


@pytest.mark.points(5)
def test_accuracy_at_least_97(student, grading_seed):
    assert_tier(student, grading_seed, 0.97)


def assert_training_time(student, grading_seed, limit):
    """Every grading seed's training (the train call, wall clock measured by the grader) under
    `limit` seconds, for a model that learned (mean accuracy >= 80%)."""
    runs = hidden_runs(student, grading_seed)
    seconds = [run.get("seconds") for run in runs]
    cpu = [run.get("train") for run in runs]        # reported by the kernel: shown, never trusted
    acc = mean_accuracy(student, grading_seed)
    assert acc >= LEARNED, (f"the training time counts for a model that learned: mean held-out accuracy "
                            f"{acc:.1%} is below {LEARNED:.0%}")
    cpu_text = ", ".join(f"{c:.1f}" if isinstance(c, (int, float)) and math.isfinite(c) else "?" for c in cpu)
    assert max(seconds) < limit, (f"training took {', '.join(f'{s:.1f}' for s in seconds)} s of wall-clock time "
                                  f"per seed (CPU time reported by the kernel: {cpu_text} s), more than {limit:.0f} s")


@pytest.mark.points(5)
def test_training_time_under_3_minutes(student, grading_seed):
    assert_training_time(student, grading_seed, TIME_LIMIT)


@pytest.mark.points(5)
def test_training_time_under_6_minutes(student, grading_seed):
    assert_training_time(student, grading_seed, TIME_LIMIT_HALF)


@pytest.mark.points(5)
def test_mlp_baseline_at_least_90(student, grading_seed):
    """Part A: build_mlp, trained by the student's own train on a grading seed, reaches 90%
    held-out accuracy without any convolution."""
    run = training_run(student, "mlp", grading_seeds(grading_seed)[0])
    build = run.get("build")
    assert "Module" in build["mro"], f"build_mlp must return a tinytorch Module, got a {build['mro'][0]}"
    assert not build["conv"], "build_mlp must return an MLP: it contains a Conv2d"
    acc = run.accuracy()
    assert acc >= 0.90, f"the MLP baseline reached {acc:.1%} held-out accuracy, below 90%"


@pytest.mark.points(3)
def test_results_reproduce_the_graders_run(student):
    """RESULTS["test_accuracy"], computed by the notebook for seed 0, is within 1.5 percentage
    points of the accuracy the grader measures when it trains seed 0 itself."""
    measured = training_run(student, "cnn", PUBLIC_SEED).accuracy()
    results = student.value("RESULTS")
    assert type(results) is dict, f"RESULTS must be a dict, got a {type(results).__name__}"
    for key in ("test_accuracy", "train_seconds", "parameters"):
        value = results.get(key)
        assert isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool), \
            f"RESULTS[{key!r}] must be a number, got {value!r:.100}"
    reported = float(results["test_accuracy"])
    assert 0.0 <= reported <= 1.0, f"RESULTS['test_accuracy'] must be a fraction in [0, 1], got {reported}"
    assert abs(reported - measured) <= 0.015, (f"RESULTS['test_accuracy'] = {reported:.1%} but the grader's run "
                                               f"of seed {PUBLIC_SEED} reached {measured:.1%}")
