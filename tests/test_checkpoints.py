"""Checkpoint achievements (pytest_tinytorch/checkpoints.py): a milestone run against each
student's own package, judged in the grader, merged into the gradebook.

Most tests use the tiny course of conftest.py with one milestone, `doubling`, that needs the
student's `double`; one test runs a real milestone (XOR, quick) on the course's curriculum with
one student's Adam knocked out.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from pytest_tinytorch import checkpoints, cli, registry, source
from pytest_tinytorch.reports import data as report_data
from pytest_tinytorch.reports import grades as g

from conftest import tiny_course_at, tree_hashes

ROOT = Path(__file__).resolve().parents[1]

DOUBLING = '''\
"""Milestone: doubling (a test fixture)."""
import time
from tinytorch.core.tiny import double

TITLE = "Doubling: the tiny module doubles"
REQUIRES = ["01_tiny"]
SABOTAGE = {"01_tiny": "Implement double"}


def run(quick=False, seed=0):
    return {"value": double(21 + seed), "seed": seed, "quick": quick}


def check(result, quick=False):
    expected = 2 * (21 + result["seed"])
    return [] if result["value"] == expected else [f"double gave {result['value']!r}, expected {expected}"]


if __name__ == "__main__":
    print(check(run()))
'''


@pytest.fixture
def klass(tmp_path):
    """The tiny course with the doubling milestone and a class of five."""
    course = tiny_course_at(tmp_path / "course")
    folder = course.root / "curriculum" / "milestones"
    folder.mkdir()
    (folder / "doubling.py").write_text(DOUBLING)
    course.submit("alice")                                        # correct
    course.submit("bob", "blank")                                 # double is still a stub
    course.submit("carol", extra="def double(x):\n    return x + 2\n")   # redefined in an untagged cell
    wrong = course.notebook()
    for cell in wrong.cells:
        if "export" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("return 2 * x", "return x + 2")
    nbformat.write(wrong, course.submit("dave"))                  # a wrong exported double
    course.submit("erin", raw="{ not json")                       # an unreadable notebook
    (course.root / "submitted" / "frank").mkdir()                 # submitted nothing
    return course


def grade(course, **options):
    milestones = checkpoints.select(course.root, None)
    lines = []
    out, failures = checkpoints.grade(course.root, course.root, milestones=milestones, progress=lines.append,
                                      **options)
    assert not failures, failures
    return {o.student: o for o in out}, lines


def test_each_student_is_judged_on_their_own_export(klass):
    before = tree_hashes(klass.root / "submitted")
    got, lines = grade(klass, jobs=2, isolation="require")
    assert tree_hashes(klass.root / "submitted") == before, "submissions are never modified"
    assert got["alice"].achieved and got["alice"].problems == ""
    # carol's wrong double is in an untagged cell: her export (the tagged cell) is correct.
    assert got["carol"].achieved
    assert not got["bob"].achieved and "NotImplementedError: Implement double" in got["bob"].problems
    assert not got["dave"].achieved and "double gave 23, expected 42" in got["dave"].problems
    assert not got["erin"].achieved and "01_tiny.ipynb" in got["erin"].problems
    assert not got["frank"].achieved and got["frank"].problems.startswith("no submission")
    assert len(lines) == 6 and all(o.run == "full" and o.seed == 0 for o in got.values())
    table = checkpoints.read(klass.root / "grades")
    assert dict(zip(table["student"], table["achieved"])) == {s: o.achieved for s, o in got.items()}


def test_reruns_merge_and_keep_other_milestones(klass):
    folder = klass.root / "grades" / checkpoints.FOLDER
    folder.mkdir(parents=True)
    (folder / "alice.csv").write_text("student,milestone,title,achieved,problems,run,seed,seconds\n"
                                      "alice,older,An older milestone,True,,full,0,1.0\n"
                                      "alice,doubling,Doubling,False,stale,full,0,1.0\n")
    grade(klass, students=["alice"], quick=True, seed=3, isolation="require")
    rows = list(csv.DictReader(open(folder / "alice.csv", encoding="utf-8")))
    assert [(r["milestone"], r["achieved"], r["run"], r["seed"]) for r in rows] == [
        ("older", "True", "full", "0"), ("doubling", "True", "quick", "3")]
    assert sorted(p.name for p in folder.iterdir()) == ["alice.csv"], "only the student graded is written"


def test_shards_split_the_class_and_together_cover_it(klass):
    seen = []
    for index in (1, 2, 3):
        got, _ = grade(klass, shard=(index, 3), isolation="require")
        seen += list(got)
    assert sorted(seen) == ["alice", "bob", "carol", "dave", "erin", "frank"]


def test_unknown_names_are_refused_with_the_known_ones(klass):
    with pytest.raises(Exception, match=r"unknown milestone\(s\) nope; the milestones are doubling"):
        checkpoints.select(klass.root, ["nope"])
    with pytest.raises(Exception, match="no submissions of zoe"):
        grade(klass, students=["zoe"])
    result = subprocess.run([sys.executable, "-m", "pytest_tinytorch.cli", "nbgrader", "checkpoints", "nope"],
                            cwd=klass.root, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown milestone(s) nope" in result.stderr, result.stderr


def test_measurements_that_break_the_check_cost_only_that_student(klass):
    """check() runs in the grader on data the student's run produced: whatever it raises is that
    student's problem, and the class goes on."""
    fragile = DOUBLING.replace(
        '    expected = 2 * (21 + result["seed"])\n',
        '    expected = 2 * (21 + result["seed"])\n    1 / (result["value"] - 23)   # dave\'s 23 breaks it\n')
    assert "dave's 23" in fragile
    (klass.root / "curriculum" / "milestones" / "doubling.py").write_text(fragile)
    got, _ = grade(klass, isolation="require")
    assert not got["dave"].achieved
    assert "could not be checked: ZeroDivisionError" in got["dave"].problems, got["dave"].problems
    assert got["alice"].achieved and got["carol"].achieved and len(got) == 6


def test_runs_without_isolation_say_so_first(klass):
    lines = []
    checkpoints.grade(klass.root, klass.root, milestones=checkpoints.select(klass.root, None), students=["alice"],
                      isolation="off", progress=lines.append)
    assert lines[0].startswith("warning: kernel sandbox unavailable (isolation='off' was asked for)"), lines
    assert len(lines) == 2


def test_a_grading_error_is_reported_not_recorded():
    """The worker turns its own exceptions into an error row, never a verdict."""
    row = checkpoints._grade_job({"root": ".", "submitted": ".", "student": "alice", "milestone": {}})
    assert set(row) == {"error"} and row["error"].startswith("TypeError"), row


def _dies_for_bob(job):
    """A grading worker that crashes (as if killed by the OOM killer) on bob's run."""
    import os
    if job["student"] == "bob":
        os._exit(3)
    return checkpoints._grade_job(job)


def test_a_run_that_kills_its_grading_process_costs_only_itself(klass, monkeypatch):
    """bob's run kills the worker, and the pool's queued runs (carol's...) die with it: they
    run again, each alone; only bob's is reported, for a rerun."""
    monkeypatch.setattr(checkpoints, "_grade_job", _dies_for_bob)
    lines = []
    out, failures = checkpoints.grade(klass.root, klass.root, milestones=checkpoints.select(klass.root, None),
                                      jobs=1, isolation="require", progress=lines.append)
    assert [o.student for o in out] == ["alice", "carol", "dave", "erin", "frank"]
    assert out[0].achieved and out[1].achieved and not out[2].achieved   # judged as usual
    assert checkpoints.read(klass.root / "grades")["student"].tolist() == ["alice", "carol", "dave", "erin", "frank"]
    assert [f.student for f in failures] == ["bob"] and "BrokenProcessPool" in failures[0].error
    assert "tito nbgrader checkpoints doubling --student bob" in "\n".join(lines)


def test_tito_exits_1_and_lists_the_reruns_when_runs_could_not_be_graded(klass, monkeypatch, capsys):
    monkeypatch.setattr(checkpoints, "_grade_job", _dies_for_bob)
    monkeypatch.chdir(klass.root)
    assert cli.main(["nbgrader", "checkpoints", "--sandbox", "require", "--student", "bob"]) == 1
    err = capsys.readouterr().err
    assert "1 run(s) could not be graded" in err and "tito nbgrader checkpoints doubling --student bob" in err


def test_a_real_milestone_fails_for_the_student_whose_adam_is_knocked_out(tmp_path):
    """XOR (quick) on the course's curriculum: the reference notebooks achieve it; the same
    notebooks with Adam.step stubbed do not."""
    xor = checkpoints.select(ROOT, ["xor"])[0]
    for student in ("ref", "noadam"):
        for slug in xor.requires:
            cells = source.read(registry.resolve(ROOT, slug).source(ROOT))
            if student == "noadam" and slug == "07_optimizers":
                region = [r for r in source.solution_regions(cells) if r.task == "Implement Adam.step"][0]
                cells = source.without_solutions(cells, only=region)
            folder = tmp_path / "submitted" / student / slug
            folder.mkdir(parents=True)
            nbformat.write(source.to_notebook(source.without_markers(cells)), folder / f"{slug}.ipynb")
    out, failures = checkpoints.grade(ROOT, tmp_path, milestones=[xor], quick=True, jobs=2, progress=lambda line: None)
    assert not failures, failures
    got = {o.student: o for o in out}
    assert got["ref"].achieved, got["ref"].problems
    assert not got["noadam"].achieved and "Implement Adam.step" in got["noadam"].problems


# --- the gradebook ----------------------------------------------------------------------------

def test_checkpoint_percent_counts_only_milestones_whose_modules_are_graded():
    table = pd.DataFrame({"student": ["a", "a", "b", "b", "c"],
                          "milestone": ["m1", "m2", "m1", "late", "m2"],
                          "achieved": [True, True, False, True, True]})
    percent = g.checkpoint_percent(table, ["m1", "m2"])
    assert percent.to_dict() == {"a": 100.0, "b": 0.0, "c": 50.0}
    assert g.checkpoint_percent(table, []).to_dict() == {"a": 0.0, "b": 0.0, "c": 0.0}


def test_gradebook_takes_checkpoints_from_the_graded_runs(klass):
    grade(klass, isolation="require")
    (klass.root / "rubrics").mkdir()
    shutil.copy(ROOT / "rubrics" / "course.yaml", klass.root / "rubrics" / "course.yaml")
    (klass.root / "course.yaml").write_text(yaml.safe_dump(
        {"modules": {"01_tiny": {"due": "2026-09-10T23:59:00+00:00"}},
         "weights": {"modules": 0.64, "checkpoints": 0.06, "midterm": 0.15, "final": 0.15}}))
    (klass.root / "grades" / "projects.csv").write_text("student,checkpoints,midterm\nalice,10,80\nbob,,50\n")
    before_due = report_data.load_course(klass.root, as_of=dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc))
    course = report_data.compute(before_due).course.set_index("student")
    assert (course["checkpoints"] == 0).all(), "not counted before its module is due"
    data = report_data.load_course(klass.root, as_of=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    assert any("projects.csv's checkpoints column is ignored" in w for w in data.warnings)
    course = report_data.compute(data).course.set_index("student")
    assert course.loc["alice", "checkpoints"] == 100.0 and course.loc["bob", "checkpoints"] == 0.0
    assert course.loc["alice", "midterm"] == 80.0
    modules = course.loc["alice", "modules_pct"]
    assert course.loc["alice", "total_pct"] == pytest.approx(0.64 * modules + 0.06 * 100 + 0.15 * 80)
    from pytest_tinytorch.reports import commands
    text = commands.status(klass.root, "bob", as_of=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)).text
    assert "\ncheckpoints\n" in text and "NotImplementedError: Implement double" in text
