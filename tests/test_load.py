"""A class graded in one run, interrupted runs and reruns: every row there, once, and right.

The load test grades generated submissions of mixed quality (full, half done, blank, broken
JSON, missing notebook) on the tiny course with `-n 2`. The suite grades 60 (36 kernels, about
40 s on two idle cores) to stay fast; TINYTORCH_LOAD_STUDENTS=300 grades a class of a few hundred
the same way (0 skips it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import grade_class, read_grades, tiny_course_at, tree_hashes

KINDS = {"full": 6.0, "half": 4.0, "blank": 0.0, "broken": 0.0, "missing": 0.0}
STUDENTS = int(os.environ.get("TINYTORCH_LOAD_STUDENTS", "60"))


def _submit(course, student: str, kind: str):
    if kind == "broken":
        course.submit(student, raw='{"cells": [')
    elif kind == "missing":
        (course.root / "submitted" / student).mkdir(parents=True)
    else:
        course.submit(student, kind)


def comparable(tables):
    return {s: [{k: v for k, v in r.items() if k != "duration_s"} for r in rows] for s, rows in tables.items()}


@pytest.mark.skipif(STUDENTS <= 0, reason="TINYTORCH_LOAD_STUDENTS=0")
def test_a_class_gets_every_row_once_and_right(tmp_path):
    course = tiny_course_at(tmp_path / "course", reference_package=False)
    kinds = list(KINDS)
    expected = {}
    for i in range(STUDENTS):
        kind = kinds[i % len(kinds)]
        student = f"s{i:04d}-{kind}"
        _submit(course, student, kind)
        expected[student] = kind
    before = tree_hashes(course.root, skip=("grades",))
    start = time.monotonic()
    done = grade_class(course.root, "-n", "2", "--sandbox", "require", "-q", "-p", "no:randomly")
    elapsed = time.monotonic() - start
    print(f"graded {STUDENTS} submissions with -n 2 in {elapsed:.0f} s")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    tables = read_grades(course.root)
    assert set(tables) == set(expected)
    for student, rows in tables.items():
        tests = [r["test"] for r in rows]
        assert tests == ["test_double", "test_halve", "test_double_random"], (student, tests)  # none missing, none twice
        assert {(r["student"], r["module"]) for r in rows} == {(student, "01_tiny")}
        assert sum(float(r["points"]) for r in rows) == KINDS[expected[student]], rows
        if expected[student] in ("broken", "missing"):
            assert all(r["message"] for r in rows)
    assert f"score tables: {STUDENTS} written" in done.stdout
    assert tree_hashes(course.root, skip=("grades",)) == before


# --- interrupted runs and reruns -------------------------------------------------------------

CLASS = [f"st{i:02d}" for i in range(6)]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _interrupt(course, how: signal.Signals, after_rows: int = 3):
    """Start grading the class with -n 2 and send `how` once a few tests have run."""
    env = {**os.environ}
    env.pop("PYTEST_XDIST_WORKER", None)
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--collect-submissions", "-n", "2", "-v",
                                "--sandbox", "require"], cwd=course.root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, tree, lines = 0, set(), []
    deadline = time.monotonic() + 120
    while seen < after_rows and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        seen += ("PASSED" in line or "FAILED" in line)
        tree |= _descendants(process.pid)
    assert seen >= after_rows, "".join(lines)
    tree |= _descendants(process.pid)
    process.send_signal(how)
    out, _ = process.communicate(timeout=120)
    return process.returncode, "".join(lines) + out, tree


def _check_interrupted(course, old, code, output, tree, how):
    tables = read_grades(course.root)
    assert set(tables) == set(CLASS), output[-3000:]
    new, kept = 0, []
    for student, rows in tables.items():
        assert [r["test"] for r in rows] == ["test_double", "test_halve", "test_double_random"]
        total = sum(float(r["points"]) for r in rows)
        if total == 0:
            assert rows == old[student]            # untouched, byte for byte (same rows, same durations)
            kept.append(student)
        else:
            assert total == 6.0, rows              # a complete, new table; never a mix
            new += 1
    if how == signal.SIGKILL:
        assert code == -signal.SIGKILL and new == 0  # only the controller writes, at the very end
    else:
        # Every submission whose old table stays is named, whether it was mid-way or never started.
        for student in kept:
            assert f"not written (run interrupted before all its tests ran): {student} 01_tiny" in output, output[-3000:]
    assert not list((course.root / "grades").glob(".*.tmp")), "a temporary table was left behind"
    deadline = time.monotonic() + 30
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(tree), f"processes of the interrupted run still alive: {sorted(_alive(tree))}"


def test_interrupted_runs_keep_the_old_tables_and_a_rerun_completes_them(tmp_path):
    course = tiny_course_at(tmp_path / "course", reference_package=False)
    for student in CLASS:          # graded once on blank notebooks (all 0) ...
        course.submit(student, "blank")
    done = grade_class(course.root, "-n", "2", "--sandbox", "require")
    assert done.returncode == 1, done.stdout[-2000:]
    old = read_grades(course.root)
    assert {s: sum(float(r["points"]) for r in rows) for s, rows in old.items()} == {s: 0.0 for s in CLASS}
    for student in CLASS:          # ... then everyone resubmits a full notebook
        course.submit(student, "full")
    submissions = tree_hashes(course.root / "submitted")
    for how in (signal.SIGKILL, signal.SIGINT):
        code, output, tree = _interrupt(course, how)
        _check_interrupted(course, old, code, output, tree, how)
    done = grade_class(course.root, "-n", "2", "--sandbox", "require")
    assert done.returncode == 0, done.stdout[-3000:]
    tables = read_grades(course.root)
    assert {s: sum(float(r["points"]) for r in rows) for s, rows in tables.items()} == {s: 6.0 for s in CLASS}
    assert tree_hashes(course.root / "submitted") == submissions


def test_reruns_write_identical_tables(tmp_path):
    course = tiny_course_at(tmp_path / "course", reference_package=False)
    for student, kind in [("ann", "full"), ("ben", "half"), ("cat", "blank"), ("dan", "broken"), ("eve", "missing")]:
        _submit(course, student, kind)
    first = grade_class(course.root, "-n", "2", "--sandbox", "require")
    tables = comparable(read_grades(course.root))
    second = grade_class(course.root, "--sandbox", "require")
    assert first.returncode == second.returncode == 1
    assert comparable(read_grades(course.root)) == tables
    assert sorted(tables) == ["ann", "ben", "cat", "dan", "eve"]
