"""Broken and odd submissions: each gets 0 with a clear reason (or is graded as written), alone.

One class is graded once (module scope, in a subprocess) on the tiny course: a correct
bystander, then one student per kind of damage. Every submission file must be byte-identical
after grading, and a submitted conftest.py or test file must change nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from conftest import grade_class, once_per_run, read_grades, tiny_course_at, tree_hashes
from pytest_tinytorch import kernel
from pytest_tinytorch.kernel import NotebookProblem, load_notebook

FULL = 6.0
WRONG = "def double(x):\n    return x + 1\n"

# student -> (points expected in total, a phrase the reason must contain, or None when graded normally)
EXPECTED = {
    "alice": (FULL, None),
    "invalid_json": (0, "not a valid notebook (not JSON: Expecting"),
    "not_json_at_all": (0, "not a valid notebook (not JSON"),
    "empty_file": (0, "is empty (0 bytes)"),
    "format_v3": (FULL, None),            # nbformat upgrades version 3 notebooks: graded as written
    "format_v5": (0, "Unsupported nbformat version 5"),
    "schema_invalid": (0, "does not follow the notebook format"),
    "non_utf8": (0, "is not UTF-8 text"),
    "utf16": (0, "is not UTF-8 text"),
    "missing_notebook": (0, "no notebook in missing_notebook/01_tiny/: expected 01_tiny.ipynb"),
    "no_module_folder": (0, "no submission: the folder no_module_folder/01_tiny/ does not exist"),
    "misnamed": (FULL, None),             # a single notebook of another name is accepted
    "expected_plus_copy": (FULL, None),   # the expected name wins over other notebooks
    "several_candidates": (0, "several notebooks in several_candidates/01_tiny/ (a.ipynb, b.ipynb)"),
    "notebook_is_a_folder": (0, "no notebook in notebook_is_a_folder/01_tiny/"),
    "symlinked_notebook": (0, "is a symbolic link"),
    "cells_deleted": (0, "is not defined"),
    "cells_reordered": (FULL, None),      # the check cell fails before the definitions; the tests pass
    "no_cells": (0, "is not defined"),
    "huge_outputs_stored": (FULL, None),
    "extra_files": (2.0, None),           # a wrong double, plus a conftest.py and tests that would pass it
}
UNSAFE = ["bad name", "x" * 65, "jos\u00e9", "-dash", "semi;colon"]
HIDDEN_FOLDERS = [".history", ".ipynb_checkpoints"]   # dot folders are not students, silently


def _json(nb) -> str:
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    data = once_per_run(tmp_path_factory, "broken", _grade)
    return {**data, "root": Path(data["root"]), "run": SimpleNamespace(**data["run"])}


def _grade(folder):
    root = folder / "course"
    course = tiny_course_at(root)
    full = course.notebook("full")
    course.submit("alice", "full")
    course.submit("invalid_json", raw="{this is not json")
    course.submit("not_json_at_all", raw="-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n")
    course.submit("empty_file", raw="")
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[
        nbformat.v3.new_code_cell(input=cell.source) for cell in full.cells if cell.cell_type == "code"])])
    course.submit("format_v3", raw=nbformat.writes(v3, version=3))
    v5 = json.loads(_json(full))
    v5["nbformat"] = 5
    course.submit("format_v5", raw=json.dumps(v5))
    bad = json.loads(_json(full))
    del bad["cells"][1]["source"]
    course.submit("schema_invalid", raw=json.dumps(bad))
    course.submit("non_utf8").write_bytes(_json(full).replace("Tiny", "T\u00e9ny").encode("latin-1"))
    course.submit("utf16").write_bytes(_json(full).encode("utf-16"))
    (root / "submitted" / "missing_notebook" / "01_tiny").mkdir(parents=True)
    (root / "submitted" / "missing_notebook" / "01_tiny" / "notes.txt").write_text("forgot it\n")
    (root / "submitted" / "no_module_folder").mkdir(parents=True)
    course.submit("misnamed", name="my work (final).ipynb")
    course.submit("expected_plus_copy", "blank", name="01_tiny-Copy1.ipynb")
    course.submit("expected_plus_copy", "full")
    course.submit("several_candidates", name="a.ipynb")
    course.submit("several_candidates", "blank", name="b.ipynb")
    (root / "submitted" / "notebook_is_a_folder" / "01_tiny" / "01_tiny.ipynb").mkdir(parents=True)
    link = root / "submitted" / "symlinked_notebook" / "01_tiny" / "01_tiny.ipynb"
    link.parent.mkdir(parents=True)
    link.symlink_to(root / "curriculum" / "01_tiny" / "test_01_tiny_hidden.py")
    deleted = nbformat.reads(_json(full), as_version=4)
    deleted.cells = [c for c in deleted.cells if "def double" not in c.source]
    nbformat.write(deleted, course.submit("cells_deleted"))
    reordered = nbformat.reads(_json(full), as_version=4)
    reordered.cells = list(reversed(reordered.cells))
    nbformat.write(reordered, course.submit("cells_reordered"))
    nbformat.write(nbformat.v4.new_notebook(), course.submit("no_cells"))
    huge = nbformat.reads(_json(full), as_version=4)
    for cell in huge.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="z" * 40_000_000)]
    nbformat.write(huge, course.submit("huge_outputs_stored"))
    course.submit("extra_files", "full", extra=WRONG)
    extra = root / "submitted" / "extra_files" / "01_tiny"
    (extra / "conftest.py").write_text(
        "import pytest\n\n@pytest.hookimpl(wrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    report = yield\n    report.outcome = 'passed'\n    return report\n")
    (extra / "test_always.py").write_text("def test_ok():\n    assert True\n")
    (extra / "data.csv").write_text("a,b\n1,2\n")
    (extra / "blob.bin").write_bytes(os.urandom(1 << 20))
    (extra / "sub").mkdir()
    (extra / "sub" / "01_tiny.ipynb").write_text("{}")
    for name in UNSAFE:
        course.submit(name)
    for name in HIDDEN_FOLDERS:
        course.submit(name)
    before = tree_hashes(root, skip=("grades",))
    done = grade_class(root, "-n", "2", "--notebook-timeout", "30", "--sandbox", "require")
    return {"root": str(root), "run": {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr},
            "tables": read_grades(root), "before": before,
            "after": tree_hashes(root, skip=("grades",))}


def test_every_submission_has_its_table_and_no_other(graded):
    assert graded["run"].returncode == 1, graded["run"].stdout[-3000:] + graded["run"].stderr[-2000:]
    assert set(graded["tables"]) == set(EXPECTED)
    for name, rows in graded["tables"].items():
        assert [r["test"] for r in rows] == ["test_double", "test_halve", "test_double_random"], name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_points_and_reason(graded, name):
    rows = graded["tables"][name]
    points, phrase = EXPECTED[name]
    assert sum(float(r["points"]) for r in rows) == points, rows
    if phrase is not None:
        assert all(phrase in r["message"] for r in rows), [r["message"] for r in rows]
    for row in rows:
        assert (row["outcome"] == "passed") != bool(row["message"]), row


def test_reasons_never_show_the_graders_own_code(graded):
    for rows in graded["tables"].values():
        for row in rows:
            assert "compile(" not in row["message"] and "<test>" not in row["message"], row


def test_reasons_never_quote_a_file_that_is_not_a_notebook(graded):
    for name in ("not_json_at_all", "symlinked_notebook"):
        for row in graded["tables"][name]:
            assert "PRIVATE" not in row["message"] and "hidden" not in row["message"].replace("hidden test", "")


def test_unsafe_student_ids_are_reported_with_a_reason(graded):
    out = graded["run"].stdout
    for name in UNSAFE:
        assert f"not graded: submitted/{name!r}: a student id must be" in out, out[-3000:]
    for name in HIDDEN_FOLDERS:
        assert repr(name) not in out
    assert "score tables: %d written" % len(EXPECTED) in out


def test_submissions_are_byte_identical_after_grading(graded):
    assert graded["after"] == graded["before"]


def test_a_notebook_too_large_is_refused_with_a_reason(tmp_path, monkeypatch):
    path = tmp_path / "01_tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    monkeypatch.setattr(kernel, "MAX_NOTEBOOK_BYTES", 10)
    with pytest.raises(NotebookProblem, match=r"more than the 0 MiB.*clear its outputs"):
        load_notebook(path)
