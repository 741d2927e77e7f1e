"""The back office's numbers (pytest_tinytorch/reports/grades.py) against hand-computed values.

A tiny class built directly as tables (no kernels): two modules of the real registry and
rubrics (3 questions x 10 points each), three students.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pytest_tinytorch import scores as score_files
from pytest_tinytorch.reports import config as cfg
from pytest_tinytorch.reports import grades as g
from pytest_tinytorch.reports.rubric import course_rules, load_rubric, validate_sheet
from pytest_tinytorch.submissions import shard_of

ROOT = Path(__file__).resolve().parents[1]
M1, M2 = "01_tensor", "02_activations"
UTC = dt.timezone.utc

CONFIG = {
    "course": {"name": "Test course", "term": "2026"},
    "modules": {M1: {"due": "2026-09-13T23:59:00+00:00"}, M2: {"due": "2026-09-20T23:59:00Z"}},
    "late_policy": {"grace_minutes": 15, "penalty_per_day": 0.10, "max_days_late": 5},
    "extensions": {"bob": {M1: 2}},
}


def row(student, module, test, points, max_points, outcome="passed", message="", hidden=False):
    return {"student": student, "module": module, "test": test, "points": points, "max_points": max_points,
            "outcome": outcome, "message": message, "duration_s": 0.5, "hidden": hidden}


def table():
    nosub = "no submission: the folder bob/02_activations/ does not exist"
    return g.normalize(pd.DataFrame([
        # alice 01: 2 + 3 + 5 = 10 / 10
        row("alice", M1, "test_a", 2, 2), row("alice", M1, "test_b", 3, 3), row("alice", M1, "test_h", 5, 5, hidden=True),
        # alice 02: 2 / (2 + 4 + 4) = 2 / 10
        row("alice", M2, "test_a", 2, 2), row("alice", M2, "test_b", 0, 4, "failed", "AssertionError: expected 0.5, got 0.7"),
        row("alice", M2, "test_h", 0, 4, "failed", "hidden test failed: wrong result", hidden=True),
        # bob 01: 2 + 0 + 5 = 7 / 10; the override gives test_b 2 -> 9 / 10
        row("bob", M1, "test_a", 2, 2), row("bob", M1, "test_b", 0, 3, "failed", "NotImplementedError: Implement Tensor.matmul"),
        row("bob", M1, "test_h", 5, 5, hidden=True),
        # bob 02: no folder: the plugin's zero rows
        row("bob", M2, "test_a", 0, 2, "failed", nosub), row("bob", M2, "test_b", 0, 4, "failed", nosub),
        row("bob", M2, "test_h", 0, 4, "failed", nosub, hidden=True),
        # carol 01: 10 / 10, but 7 days late
        row("carol", M1, "test_a", 2, 2), row("carol", M1, "test_b", 3, 3), row("carol", M1, "test_h", 5, 5, hidden=True),
    ]))


SHEETS = {
    M1: {"module": M1, "students": {
        "alice": {"questions": {"q1": {"score": 9}, "q2": {"score": 8}, "q3": {"score": 10}},
                  "code_quality": {"score": 9, "comment": "clean"}},
        "bob": {"questions": {"q1": {"score": 7}, "q2": {"score": 7}, "q3": {"score": 7}},
                "code_quality": {"score": 9},
                "overrides": [{"test": "test_b", "points": 2, "reason": "regrade: shape check was right"}]},
        "carol": {"questions": {"q1": {"score": 10}, "q2": {"score": 10}, "q3": {"score": 10}}}}},
    M2: {"module": M2, "students": {
        "alice": {"questions": {"q1": {"score": 6}, "q2": {"score": None}, "q3": {"score": 5}},
                  "code_quality": {"score": 9}}}},
}

SUBMISSIONS = pd.DataFrame([
    {"student": "alice", "module": M1, "submitted_at": "2026-09-14T00:10:00+00:00"},  # 11 min: grace
    {"student": "alice", "module": M2, "submitted_at": "2026-09-22T00:00:00Z"},       # 1 day 1 min late
    {"student": "bob", "module": M1, "submitted_at": "2026-09-16T12:00:00+00:00"},    # ext. 2 days, then 12h01 late
    {"student": "carol", "module": M1, "submitted_at": "2026-09-20T00:00:00+00:00"},  # 6 days 1 min late
])


@pytest.fixture
def course():
    config = cfg.validate(CONFIG, "course.yaml", [M1, M2])
    rules = course_rules(ROOT)
    rubrics = {m: load_rubric(ROOT, m, rules) for m in (M1, M2)}
    scores = table()
    subs = g.parse_submissions(SUBMISSIONS)
    sheets = []
    for m in (M1, M2):
        rows = scores[scores["module"] == m]
        sheets.append(validate_sheet(SHEETS[m], f"grades/manual/{m}.yaml", rubrics[m],
                                     set(subs.loc[subs["module"] == m, "student"]),
                                     dict(zip(zip(rows["student"], rows["test"]), rows["max_points"]))))
    from pytest_tinytorch.reports.rubric import concat_sheets
    sheet = concat_sheets(sheets)
    grades = g.module_grades(scores, sheet, subs, config, [M1, M2], rubrics)
    return config, rubrics, scores, sheet, subs, grades


def at(grades, student, module):
    return grades.set_index(["student", "module"]).loc[(student, module)]


def test_lateness_grace_extension_and_limit(course):
    config, *_, subs, _ = course
    late = g.lateness(subs, config).set_index(["student", "module"])
    assert late.loc[("alice", M1), "days_late"] == 0            # 11 min <= 15 min grace
    assert late.loc[("alice", M2), "days_late"] == 2            # 1441 min -> ceil(1441 / 1440) = 2
    assert late.loc[("alice", M2), "late_penalty"] == pytest.approx(0.2)
    assert late.loc[("bob", M1), "extension_days"] == 2         # due 09-15 23:59, 721 min late -> 1 day
    assert late.loc[("bob", M1), "days_late"] == 1
    assert late.loc[("carol", M1), "days_late"] == 7            # 6 d 1 min -> 7 > max_days_late 5
    assert late.loc[("carol", M1), "late_penalty"] == 1.0


def test_module_percent_hand_computed(course):
    *_, grades = course
    a1 = at(grades, "alice", M1)
    # auto 10/10 = 100%, manual (9+8+10)/30 = 90%: 0.7*100 + 0.3*90 = 97, on time
    assert (a1["auto_pct"], a1["manual_pct"], a1["score_pct"]) == pytest.approx((100, 90, 97))
    assert a1["code_quality_capped"] == 9 and a1["manual_complete"]
    a2 = at(grades, "alice", M2)
    # auto 2/10 = 20%, manual (6+0+5)/30 = 36.67%: 14 + 11 = 25; 2 days late: 25 * 0.8 = 20
    assert (a2["auto_pct"], a2["raw_pct"], a2["score_pct"]) == pytest.approx((20, 25, 20))
    assert not a2["manual_complete"] and a2["questions_scored"] == 2
    assert a2["code_quality"] == 9 and a2["code_quality_capped"] == 6    # correctness first: tests fail
    b1 = at(grades, "bob", M1)
    # override test_b 0 -> 2: auto 9/10 = 90%; manual 21/30 = 70%: 63 + 21 = 84; 1 day late: 84 * 0.9 = 75.6
    assert (b1["auto_points"], b1["raw_pct"], b1["score_pct"]) == pytest.approx((9, 84, 75.6))
    assert b1["code_quality_capped"] == 6 and b1["not_implemented"] == 1
    b2 = at(grades, "bob", M2)
    assert not b2["submitted"] and b2["score_pct"] == 0                  # no folder: 0
    c1 = at(grades, "carol", M1)
    assert c1["raw_pct"] == pytest.approx(100) and c1["score_pct"] == 0  # 7 days late: 0
    c2 = at(grades, "carol", M2)
    assert not c2["submitted"] and not c2["autograded"] and c2["score_pct"] == 0


def test_course_total_and_letters(course):
    config, *_, grades = course
    projects = pd.DataFrame([{"student": "alice", "checkpoints": 100, "midterm": 80, "final": 90}])
    before = dt.datetime(2026, 10, 1, tzinfo=UTC)
    graded = g.graded_modules(config, [M1, M2], before)
    assert graded == [M1, M2]
    total = g.course_grades(grades, config, graded, projects).set_index("student")
    # alice: modules (97 + 20) / 2 = 58.5; 0.64*58.5 + 0.06*100 + 0.15*80 + 0.15*90 = 37.44 + 6 + 12 + 13.5 = 68.94
    assert total.loc["alice", "modules_pct"] == pytest.approx(58.5)
    assert total.loc["alice", "total_pct"] == pytest.approx(68.94)
    assert total.loc["alice", "letter"] == "D"
    # bob: (75.6 + 0) / 2 = 37.8; 0.64 * 37.8 = 24.192, no projects row -> F
    assert total.loc["bob", "total_pct"] == pytest.approx(24.192) and total.loc["bob", "letter"] == "F"
    # on 2026-09-15 only 01 is due: alice 0.64*97 + 31.5 = 62.08 + 31.5 = 93.58 -> A
    early = g.course_grades(grades, config, g.graded_modules(config, [M1, M2], dt.datetime(2026, 9, 15, tzinfo=UTC)),
                            projects).set_index("student")
    assert early.loc["alice", "total_pct"] == pytest.approx(93.58) and early.loc["alice", "letter"] == "A"



def test_a_registered_project_fills_its_weight_once_due(course):
    """Treat M2 as the midterm project: once graded, its module percent is the midterm column
    (replacing projects.csv's), and it no longer counts in module completion."""
    config, *_, grades = course
    projects = pd.DataFrame([{"student": "alice", "checkpoints": 100, "midterm": 80, "final": 90}])
    total = g.course_grades(grades, config, [M1, M2], projects, {M2: "midterm"}).set_index("student")
    assert M2 not in total.columns
    # alice: modules 97 (M1 only); midterm = her M2 percent, 20 (projects.csv's 80 ignored)
    assert total.loc["alice", "modules_pct"] == pytest.approx(97) and total.loc["alice", "midterm"] == pytest.approx(20)
    assert total.loc["alice", "total_pct"] == pytest.approx(0.64 * 97 + 0.06 * 100 + 0.15 * 20 + 0.15 * 90)
    assert total.loc["bob", "midterm"] == 0                      # graded, not submitted: 0
    before = g.course_grades(grades, config, [M1], projects, {M2: "midterm"}).set_index("student")
    assert before.loc["alice", "midterm"] == 80                  # not due yet: projects.csv's value stays

def test_letters_boundaries():
    scale = cfg.DEFAULT_LETTERS
    got = g.letters(pd.Series([100, 93, 92.999, 90, 60, 59.99, 0]), scale).tolist()
    assert got == ["A", "A", "A-", "A-", "D", "F", "F"]


def test_missing_timestamp_is_on_time_and_reported(course):
    config, rubrics, scores, sheet, subs, _ = course
    subs = g.parse_submissions(pd.DataFrame([{"student": "alice", "module": M1, "submitted_at": ""},
                                             {"student": "alice", "module": M2, "submitted_at": "garbage"}]))
    grades = g.module_grades(scores, sheet, subs, config, [M1, M2], rubrics)
    a = grades.set_index(["student", "module"])
    assert (a.loc["alice", "days_late"] == 0).all() and not a.loc["alice", "has_timestamp"].any()
    from pytest_tinytorch.reports.progress import needs_attention
    att = needs_attention(grades, [M1, M2])
    assert set(att[att["reason"] == "no submission time"]["module"]) == {M1, M2}


def test_needs_attention_lists_missing_low_and_incomplete(course):
    *_, grades = course
    from pytest_tinytorch.reports.progress import needs_attention, status
    att = needs_attention(grades, [M1, M2])
    reasons = set(zip(att["student"], att["module"], att["reason"]))
    assert ("bob", M2, "missing module") in reasons and ("carol", M2, "missing module") in reasons
    assert ("alice", M2, "incomplete submission") in reasons
    # bob 01: the override raised test_b to 2 of 3 points; it still fails, with a NotImplementedError
    detail = att[(att["student"] == "bob") & (att["module"] == M1)]["detail"].tolist()
    assert detail == ["2 of 3 tests pass, 1 raise NotImplementedError"]
    assert not any(r[0] == "alice" and r[1] == M1 for r in reasons)   # complete, on time, 90% manual
    assert ("carol", M1, "too late") in reasons
    st = status(grades).set_index(["student", "module"])
    assert st.loc[("alice", M1), "state"] == "passing" and st.loc[("alice", M1), "graded"]
    assert st.loc[("alice", M2), "state"] == "incomplete" and not st.loc[("alice", M2), "graded"]  # q2 unscored
    assert st.loc[("alice", M2), "late"] and st.loc[("bob", M2), "state"] == "missing"
    assert st.loc[("carol", M1), "state"] == "passing" and st.loc[("carol", M1), "days_late"] == 7


def test_shards_merge_to_the_unsharded_tables(tmp_path):
    """Grading in 3 shards (each writing its own grades/) and merging == one run."""
    rows = []
    for i in range(40):
        student = f"s{i:02d}"
        for module in (M1, M2):
            for t in range(5):
                ok = (i + t) % 3 != 0
                rows.append({**row(student, module, f"test_{t}", 2 if ok else 0, 2, "passed" if ok else "failed",
                                   "" if ok else f"AssertionError: {i}"), "hidden": str(t == 4)})
    whole = tmp_path / "whole"
    score_files.write_tables(whole, rows)
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, folder in enumerate(shards, start=1):
        score_files.write_tables(folder, [r for r in rows if shard_of(r["student"], 3) == k])
    assert all(any(f.glob("*.csv")) for f in shards)
    one, merged = g.read_tables(whole), g.read_tables(*shards)
    pd.testing.assert_frame_equal(one, merged)
    # the order of the shard folders does not matter either
    pd.testing.assert_frame_equal(one, g.read_tables(*reversed(shards)))
    config = cfg.validate(CONFIG, "course.yaml", [M1, M2])
    empty = validate_sheet({"module": M1, "students": {}}, "x", load_rubric(ROOT, M1))
    a = g.module_grades(one, empty, None, config, [M1, M2])
    b = g.module_grades(merged, empty, None, config, [M1, M2])
    pd.testing.assert_frame_equal(a, b)
    # and per-shard computations concatenate to the whole: grades are per student
    parts = pd.concat([g.module_grades(g.read_tables(f), empty, None, config, [M1, M2]) for f in shards])
    pd.testing.assert_frame_equal(a, parts.sort_values(["student", "module"]).reset_index(drop=True))


def test_merge_tables_rerun_replaces_rows():
    old = table()
    new = old[old["student"] == "alice"].assign(points=0.0)
    merged = g.merge_tables([old, new])
    assert merged[merged["student"] == "alice"]["points"].sum() == 0
    assert len(merged) == len(old)


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ({"modules": {M1: {"due": "2026-09-13T23:59:00"}}}, ["modules.01_tensor.due", "timezone"]),
    ({"modules": {M1: {"when": "2026-09-13T23:59:00Z"}}}, ["modules.01_tensor", "due"]),
    ({"modules": {"99_nope": {"due": "2026-09-13T23:59:00Z"}}}, ["modules.99_nope", "unknown module"]),
    ({"late_policy": {"penalty_per_day": 2}}, ["late_policy.penalty_per_day", "out of range"]),
    ({"weights": {"modules": 0.5}}, ["weights", "sum to"]),
    ({"extensions": {"bob": {M1: "two"}}}, ["extensions.bob.01_tensor", "number"]),
    ({"letter_grades": [{"letter": "A"}]}, ["letter_grades[0]", "min"]),
    ({"colour": 1}, ["unknown key 'colour'"]),
])
def test_course_yaml_errors_name_file_key_and_expectation(change, words):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate({**CONFIG, **change}, "/c/course.yaml", [M1, M2])
    text = str(err.value)
    assert text.startswith("/c/course.yaml") and all(w in text for w in words), text


def test_default_course_yaml_validates():
    raw = cfg.default([M1, M2], dt.date(2026, 9, 7))
    config = cfg.validate(raw, "course.yaml", [M1, M2])
    assert config.due[M1] == dt.datetime(2026, 9, 13, 23, 59, tzinfo=UTC)
    assert config.weights == cfg.DEFAULT_WEIGHTS and config.late.max_days_late == 5


@pytest.mark.parametrize("entry, words", [
    ({"questions": {"q1": {"score": 11}}}, ["students.alice.questions.q1.score", "outside 0..10"]),
    ({"questions": {"q9": {"score": 1}}}, ["students.alice.questions.q9", "unknown question", "q1, q2, q3"]),
    ({"code_quality": {"score": 12}}, ["students.alice.code_quality.score", "outside 0..10"]),
    ({"overrides": [{"test": "test_a", "points": 1}]}, ["students.alice.overrides[0].reason", "missing"]),
    ({"overrides": [{"test": "test_zz", "points": 1, "reason": "r"}]}, ["overrides[0].test", "not a graded test"]),
    ({"overrides": [{"test": "test_a", "points": 3, "reason": "r"}]}, ["overrides[0].points", "outside 0..2"]),
    ({"questions": {"q1": {"score": "ten"}}}, ["q1.score", "expected a number"]),
])
def test_score_sheet_errors_name_file_student_and_key(entry, words):
    rubric = load_rubric(ROOT, M1)
    sheet = {"module": M1, "students": {"alice": entry}}
    with pytest.raises(cfg.ConfigError) as err:
        validate_sheet(sheet, "grades/manual/01_tensor.yaml", rubric, {"alice"}, {("alice", "test_a"): 2.0})
    text = str(err.value)
    assert text.startswith("grades/manual/01_tensor.yaml") and all(w in text for w in words), text


def test_score_sheet_rejects_a_student_who_did_not_submit():
    with pytest.raises(cfg.ConfigError, match=r"students\.mallory: this student did not submit 01_tensor"):
        validate_sheet({"module": M1, "students": {"mallory": {}}}, "s.yaml", load_rubric(ROOT, M1), {"alice"})


def test_the_course_yaml_of_tito_nbgrader_init_validates():
    """course.py's default_config (what `tito nbgrader init` writes) passes this validator."""
    import yaml
    from pytest_tinytorch import course, registry
    raw = yaml.safe_load(yaml.safe_dump(course.default_config(ROOT, "x", dt.date(2026, 9, 7)), sort_keys=False))
    config = cfg.validate(raw, "course.yaml", [m.slug for m in registry.assignments(ROOT)])
    assert len(config.due) == len(registry.assignments(ROOT)) and config.weights["modules"] == 0.64
    assert config.due["midterm"] >= config.due["09_spatial"]   # part B needs module 09
