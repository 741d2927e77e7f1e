"""The instructor's whole chain on the bundled sample class, with the real grader:
collect -> autograde -> review -> feedback -> report -> module status.

The sample's committed score tables were written by the grader and its gradebook is checked
against hand-computed numbers in test_reports_outputs.py; here a fresh course folder is filled
by `collect` from per-student folders, graded by `pytest --collect-submissions -n 2` (22
notebooks), and every later step must give exactly the sample's numbers.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pytest_tinytorch import collect, registry
from pytest_tinytorch.reports import commands

from test_reports import M1, M2, ROOT

SAMPLE = ROOT / "examples" / "sample_class"
AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
KEY = ["student", "module", "test"]


def _table(folder, student):
    rows = pd.read_csv(folder / "grades" / f"{student}.csv", dtype=str, keep_default_na=False)
    return rows.drop(columns=["duration_s"]).sort_values(KEY).reset_index(drop=True)


def _without_durations(path):
    """A report's content without the measured times, which differ between two gradings."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        data.pop("execution_time", None)
        for test in data.get("tests", []):
            test.pop("execution_time", None)
        return data
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return table.drop(columns=[c for c in table.columns if c.startswith("duration")]).to_dict("records")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    if not (SAMPLE / "grades" / "alice.csv").is_file():
        pytest.skip("examples/sample_class has no score tables; run examples/make_sample_class.py --grade")
    course = tmp_path_factory.mktemp("course")
    shutil.copy(SAMPLE / "course.yaml", course)
    shutil.copytree(SAMPLE / "grades" / "manual", course / "grades" / "manual")
    for name in ("projects.csv", "roster.csv"):
        shutil.copy(SAMPLE / "grades" / name, course / "grades" / name)
    # What the instructor downloaded: one folder per student holding the notebooks.
    inbox = tmp_path_factory.mktemp("inbox")
    for notebook in (SAMPLE / "submitted").glob("*/*/*.ipynb"):
        student = inbox / notebook.parent.parent.name
        student.mkdir(exist_ok=True)
        shutil.copy(notebook, student)
    collected = {}
    for slug in (M1, M2):
        module = registry.resolve(ROOT, slug)
        for line in collect.collect(inbox, course / "submitted", module):
            collected.setdefault((line.student, slug), set()).add(line.status)
    # collect recorded today as the submission time; put back the times the sample records
    # (judy's has none: reported, and counted on time).
    for stamp in (course / "submitted").glob("*/*/timestamp.txt"):
        recorded = SAMPLE / stamp.relative_to(course)
        shutil.copy(recorded, stamp) if recorded.is_file() else stamp.unlink()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-submissions", "-n", "2", "-q", "-p", "no:randomly",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
         "--submissions-dir", str(course / "submitted"), "--grades-dir", str(course / "grades")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TINYTORCH_GRADING_SECRET": "sample-class-secret"})
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    return course, collected, result.stdout


def test_collect_copies_every_notebook_and_reports_the_missing(chain):
    course, collected, _ = chain
    assert "missing" in collected[("dave", M2)] and "missing" in collected[("niaj", M2)]
    assert ("ivan", M1) not in collected                       # on the roster only: no folder at all
    assert "incomplete" in collected[("niaj", M1)]             # the released notebook, unchanged
    for notebook in (SAMPLE / "submitted").glob("*/*/*.ipynb"):
        copy = course / "submitted" / notebook.relative_to(SAMPLE / "submitted")
        assert filecmp.cmp(notebook, copy, shallow=False), copy


def test_autograde_gives_the_sample_tables(chain):
    course, _, stdout = chain
    students = sorted(p.stem for p in (SAMPLE / "grades").glob("*.csv") if p.stem not in ("projects", "roster"))
    assert sorted(p.stem for p in (course / "grades").glob("*.csv") if p.stem not in ("projects", "roster")) == students
    for student in students:
        pd.testing.assert_frame_equal(_table(course, student), _table(SAMPLE, student), obj=student)
    assert f"score tables: {len(students)} written" in stdout


def test_review_feedback_report_and_status_match_the_sample(chain, tmp_path):
    course, _, _ = chain
    reference = tmp_path / "sample"
    shutil.copytree(SAMPLE, reference, ignore=shutil.ignore_patterns("reports", "feedback"))
    for folder in (course, reference):
        for slug in (M1, M2):
            commands.review(folder, slug, root=ROOT)
        commands.feedback(folder, None, None, root=ROOT, as_of=AS_OF)
        commands.report(folder, None, root=ROOT, as_of=AS_OF)
        commands.status(folder, None, folder / "class_progress.csv", root=ROOT, as_of=AS_OF)
    # Review kept every score the TAs had entered.
    for slug in (M1, M2):
        assert (course / "grades" / "manual" / f"{slug}.yaml").read_text() == \
               (reference / "grades" / "manual" / f"{slug}.yaml").read_text()
    for name in ("gradebook.csv", "canvas.csv", "scores_long.csv", "results.json"):
        got, want = sorted((course / "reports").rglob(name)), sorted((reference / "reports").rglob(name))
        assert got and len(got) == len(want), name
        for a, b in zip(got, want):
            assert _without_durations(a) == _without_durations(b), a
    assert (course / "class_progress.csv").read_text() == (reference / "class_progress.csv").read_text()
    pages = sorted(p.relative_to(course) for p in (course / "feedback").rglob("feedback.html"))
    assert pages == sorted(p.relative_to(reference) for p in (reference / "feedback").rglob("feedback.html"))
    assert len(pages) == 20                                    # 12 x 2 less ivan (2), dave and niaj (02)
