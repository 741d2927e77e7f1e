"""The instructor workflow and `tito`, on copies of this repository's curriculum."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from pytest_tinytorch import assignments, cli, collect, registry, source, studentrepo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A copy of the course repository (curriculum, rubrics, tinytorch), as an instructor's clone."""
    for name in ("curriculum", "rubrics", "tinytorch"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tito(*argv) -> int:
    return cli.main(list(argv))


def test_init_is_idempotent_and_keeps_the_config(course):
    assert tito("nbgrader", "init", "--start", "2026-09-07") == 0
    for folder in ("assignments/source", "assignments/release", "submitted", "grades", "feedback", "reports"):
        assert (course / folder).is_dir()
    config = yaml.safe_load((course / "course.yaml").read_text())
    assert config["modules"]["01_tensor"]["due"].startswith("2026-09-13T23:59")   # week 1 ends on Sunday
    assert config["modules"]["09_spatial"]["due"].startswith("2026-11-15")        # week 10 (midterm in week 9)
    assert config["weights"] == {"modules": 0.64, "checkpoints": 0.06, "midterm": 0.15, "final": 0.15}
    (course / "course.yaml").write_text("# mine\n")
    (course / "submitted" / "keep.txt").write_text("x")
    assert tito("nbgrader", "init") == 0
    assert (course / "course.yaml").read_text() == "# mine\n"
    assert (course / "submitted" / "keep.txt").exists()


def test_generate_release_never_lose_an_edit(course, capsys):
    tito("nbgrader", "init")
    assert tito("nbgrader", "generate", "01_tensor") == 0
    assert tito("nbgrader", "release", "01_tensor") == 0
    released = course / "assignments/release/01_tensor/01_tensor.ipynb"
    assert tito("nbgrader", "release", "01_tensor") == 0 and "unchanged" in capsys.readouterr().out
    released.write_text(released.read_text().replace("Module 01", "Module 01 (edited)"))
    assert tito("nbgrader", "release", "01_tensor") == 2
    assert "rerun with --force" in capsys.readouterr().err
    assert "(edited)" in released.read_text()
    assert tito("nbgrader", "release", "01_tensor", "--force") == 0
    backups = list(released.parent.glob("01_tensor.ipynb.*.bak"))
    assert len(backups) == 1 and "(edited)" in backups[0].read_text()
    nb = nbformat.read(released, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert 'raise NotImplementedError("Implement Tensor.matmul")' in text and "BEGIN SOLUTION" not in text
    assert all(c.cell_type != "code" or not c.get("outputs") for c in nb.cells)
    instructor = nbformat.read(course / "assignments/source/01_tensor/01_tensor.ipynb", as_version=4)
    assert "### BEGIN SOLUTION" in "\n".join(c.source for c in instructor.cells)


def test_unknown_module_lists_valid_ones_and_missing_folder_names_the_command(course, capsys):
    assert tito("nbgrader", "generate", "tensr") == 2
    assert "expected one of: 01_tensor" in capsys.readouterr().err
    assert tito("nbgrader", "autograde", "01_tensor") == 2
    assert "run `tito nbgrader init` first" in capsys.readouterr().err


def _student_repo(folder: Path, nb, when: str):
    (folder / "curriculum" / "01_tensor").mkdir(parents=True)
    nbformat.write(nb, folder / "curriculum" / "01_tensor" / "01_tensor.ipynb")
    env = {**os.environ, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when}
    run = lambda *a: subprocess.run(["git", "-C", str(folder), *a], check=True, capture_output=True, env=env)
    run("init", "-q")
    run("add", "-A")
    run("-c", "user.email=s@example.edu", "-c", "user.name=s", "commit", "-qm", "work")


def test_collect_from_classroom_clones_folders_and_zip(course, tmp_path_factory):
    tito("nbgrader", "init")
    module = registry.resolve(course, "01_tensor")
    cells = source.read(module.source(course))
    full = source.to_notebook(source.without_markers(cells))
    blank = assignments.student_notebook(cells, module.slug)
    clones = tmp_path_factory.mktemp("classroom")
    _student_repo(clones / "tinytorch-alice", full, "2026-09-12T10:00:00+00:00")
    _student_repo(clones / "tinytorch-bob", blank, "2026-09-14T09:30:00+00:00")
    (clones / "tinytorch-carol").mkdir()                       # cloned, but nothing in it
    secret = tmp_path_factory.mktemp("instructor") / "secret.ipynb"
    secret.write_text(nbformat.writes(full))
    (clones / "tinytorch-mallory" / "curriculum" / "01_tensor").mkdir(parents=True)
    (clones / "tinytorch-mallory" / "curriculum" / "01_tensor" / "01_tensor.ipynb").symlink_to(secret)
    lines = collect.collect(clones, course / "submitted", module, assignment="tinytorch")
    status = {(l.student, l.status) for l in lines}
    assert ("alice", "new") in status and ("bob", "new") in status and ("bob", "incomplete") in status
    assert ("carol", "missing") in status
    assert ("mallory", "missing") in status                     # a symbolic link is not a submission
    assert not (course / "submitted" / "mallory").exists()
    stamp = (course / "submitted/alice/01_tensor/timestamp.txt").read_text().strip()
    assert stamp == "2026-09-12T10:00:00+00:00"                 # the commit time, not the copy time
    # A second collection with a new commit keeps the earlier version.
    (clones / "tinytorch-alice" / "curriculum/01_tensor/01_tensor.ipynb").write_text(nbformat.writes(blank))
    subprocess.run(["git", "-C", str(clones / "tinytorch-alice"), "-c", "user.email=a@x", "-c", "user.name=a",
                    "commit", "-qam", "oops"], check=True, capture_output=True)
    again = {(l.student, l.status) for l in collect.collect(clones, course / "submitted", module, assignment="tinytorch")}
    assert ("alice", "updated") in again and ("bob", "unchanged") in again
    history = list((course / "submitted/alice/01_tensor/.history").iterdir())
    assert len(history) == 1 and (history[0] / "01_tensor.ipynb").is_file()
    # An LMS zip download (Canvas file names).
    archive = tmp_path_factory.mktemp("lms") / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dianaprince_123_456_01_tensor.ipynb", nbformat.writes(full))
        zf.writestr("ericlate_late_124_457_01_tensor.ipynb", nbformat.writes(blank))
    zipped = {(l.student, l.status) for l in collect.collect(archive, course / "submitted", module)}
    assert ("dianaprince", "new") in zipped and ("ericlate", "incomplete") in zipped


def test_student_repository_has_no_solutions_and_grades_zero(course, tmp_path_factory):
    dest = tmp_path_factory.mktemp("student-repo")
    studentrepo.release_repository(course, dest)
    files = [p for p in dest.rglob("*") if p.is_file()]
    names = {p.relative_to(dest).as_posix() for p in files}
    assert "curriculum/01_tensor/01_tensor.ipynb" in names and "curriculum/01_tensor/test_01_tensor.py" in names
    assert {"curriculum/milestones/digits_mlp.py", "curriculum/projects/final/README.md",
            "curriculum/midterm/README.md", "curriculum/midterm/midterm.ipynb", "curriculum/midterm/test_midterm.py"} <= names
    assert not any(n.endswith("_hidden.py") or n.startswith("rubrics/") for n in names)
    assert not any(n == f"curriculum/{m.slug}/{m.slug}.py" for m in registry.assignments(course) for n in names), "no sources"
    text = "\n".join(p.read_text(errors="ignore") for p in files if p.suffix in (".py", ".ipynb", ".md"))
    for module in registry.assignments(course):
        if not module.source(course).is_file():
            continue
        cells = source.read(module.source(course))
        assert "### BEGIN SOLUTION" not in text
        for cell in cells:
            if "answer" in cell.tags:
                assert cell.source not in text
    assert (dest / "tinytorch/core/tensor.py").read_text().count("raise NotImplementedError") >= 10
    result = subprocess.run([sys.executable, "-m", "pytest", "--module", "01_tensor", "-p", "no:cacheprovider"],
                            cwd=dest, capture_output=True, text=True, timeout=300)
    assert "01_tensor: 0 / 17 points (0%)" in result.stdout, result.stdout[-2000:]
    assert " error" not in result.stdout.splitlines()[-1]


def test_reset_backs_up_the_students_notebook(course, tmp_path_factory):
    dest = tmp_path_factory.mktemp("student-repo")
    studentrepo.release_repository(course, dest)
    notebook = dest / "curriculum/01_tensor/01_tensor.ipynb"
    notebook.write_text(notebook.read_text().replace("Module 01", "Module 01 my work"))
    module = registry.resolve(dest, "01_tensor")
    assert studentrepo.reset_notebook(dest, module).startswith("replaced (backup:")
    assert "my work" not in notebook.read_text()
    assert "my work" in next(notebook.parent.glob("01_tensor.ipynb.*.bak")).read_text()


def test_system_health_is_green_here(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert tito("system", "health") == 0
    out = capsys.readouterr().out
    assert "Jupyter kernel" in out and "module 01_tensor" in out and "FAIL" not in out


def test_guide_workflow_collect_then_autograde(course, tmp_path_factory, capsys):
    """The guide's commands as written: init, collect 01_tensor (from incoming/), autograde 01_tensor."""
    assert tito("nbgrader", "init") == 0
    module = registry.resolve(course, "01_tensor")
    cells = source.read(module.source(course))
    _student_repo(course / "incoming" / "tinytorch-alice", source.to_notebook(source.without_markers(cells)),
                  "2026-09-12T10:00:00+00:00")
    _student_repo(course / "incoming" / "tinytorch-bob", assignments.student_notebook(cells, module.slug),
                  "2026-09-13T10:00:00+00:00")
    assert tito("nbgrader", "collect", "01_tensor") == 0
    assert tito("nbgrader", "collect", "01_tensor", "--student", "alice") == 0
    out = capsys.readouterr().out
    assert "alice" in out and "unchanged" in out
    assert tito("nbgrader", "autograde", "01_tensor", "--student", "alice") == 0
    assert tito("nbgrader", "autograde", "01_tensor") == 0
    import csv
    alice = list(csv.DictReader(open(course / "grades" / "alice.csv")))
    bob = list(csv.DictReader(open(course / "grades" / "bob.csv")))
    assert sum(float(r["points"]) for r in alice) == sum(float(r["max_points"]) for r in alice) > 0
    assert sum(float(r["points"]) for r in bob) == 0 and len(bob) == len(alice)


def test_export_replaces_its_own_output_but_not_hand_edits(course, capsys):
    target = course / "tinytorch/core/tensor.py"
    assert tito("export", "01_tensor") == 0
    assert tito("export", "01_tensor") == 0 and "unchanged" in capsys.readouterr().out
    src = course / "curriculum/01_tensor/01_tensor.py"
    src.write_text(src.read_text().replace("import numpy as np\n", "import numpy as np  # arrays\n", 1))
    assert tito("export", "01_tensor") == 0 and "replaced" in capsys.readouterr().out
    assert not list(target.parent.glob("*.bak")), "replacing its own output needs no backup"
    assert "# arrays" in target.read_text()
    target.write_text(target.read_text() + "\n# my own helper\n")
    assert tito("export", "01_tensor") == 2
    assert "my own helper" in target.read_text()
    assert tito("export", "01_tensor", "--force") == 0
    assert "my own helper" in next(target.parent.glob("tensor.py.*.bak")).read_text()
    assert "my own helper" not in target.read_text()


def test_olympics_names_what_a_submissions_folder_holds(tmp_path, capsys):
    assert tito("olympics", str(tmp_path / "nowhere")) == 2
    assert "submission.yaml and model.npz" in capsys.readouterr().err
