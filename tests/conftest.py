"""Shared fixtures of the project's own tests: a tiny course to grade with `pytester`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from pytest_tinytorch import source

TINY_SOURCE = '''\
# %% [markdown]
# # Module 01: Tiny
# A module small enough to grade in a test.

# %% tags=["export"]
def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


def halve(x):
    """Half of x."""
    ### BEGIN SOLUTION
    return x / 2
    ### END SOLUTION

# %%
assert double(2) == 4

# %% [markdown] tags=["answer"] question="q1"
# Doubling costs one multiplication.
'''

TINY_PUBLIC = '''\
import pytest
from pytest_tinytorch.testing import assert_exact

pytestmark = pytest.mark.module("01_tiny")


@pytest.mark.points(1)
def test_double(student):
    assert_exact(student.value("double(x)", x=21), 42)


@pytest.mark.points(2)
def test_halve(student):
    assert_exact(student.value("halve(x)", x=3.0), 1.5)
'''

TINY_HIDDEN = '''\
import pytest

pytestmark = [pytest.mark.module("01_tiny"), pytest.mark.hidden]


@pytest.mark.points(3)
def test_double_random(student, rng):
    x = int(rng.integers(-1000, 1000))
    assert student.value("double(x)", x=x) == 2 * x
'''

REGISTRY = '''\
modules:
  - {slug: 01_tiny, title: Tiny, week: 1, focus: "Testing", exports: tinytorch/core/tiny.py}
'''


class TinyCourse:
    """A course repository with one module, 01_tiny, laid out as in curriculum/README.md."""

    def __init__(self, root: Path):
        self.root = root
        folder = root / "curriculum" / "01_tiny"
        folder.mkdir(parents=True)
        (root / "curriculum" / "modules.yaml").write_text(REGISTRY)
        (folder / "01_tiny.py").write_text(TINY_SOURCE)
        (folder / "test_01_tiny.py").write_text(TINY_PUBLIC)
        (folder / "test_01_tiny_hidden.py").write_text(TINY_HIDDEN)
        self.cells = source.parse(TINY_SOURCE)

    def notebook(self, kind: str = "full", extra: str | None = None):
        """A notebook: "full" (solutions), "blank" (stubs) or "half" (double done, halve not)."""
        cells = self.cells
        if kind == "blank":
            cells = source.without_solutions(cells)
        elif kind == "half":
            halve = [r for r in source.solution_regions(cells) if r.task.endswith("halve")][0]
            cells = source.without_solutions(cells, only=halve)
        nb = source.to_notebook(source.without_markers(cells))
        if extra is not None:
            nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(extra)))
        return nb

    def submit(self, student: str, kind: str = "full", extra: str | None = None, raw: str | None = None,
               name: str = "01_tiny.ipynb") -> Path:
        folder = self.root / "submitted" / student / "01_tiny"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if raw is not None:
            path.write_text(raw)
        else:
            nbformat.write(self.notebook(kind, extra), path)
        return path


@pytest.fixture
def tiny(pytester) -> TinyCourse:
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    return TinyCourse(Path(pytester.path))


# --- helpers of the hostile, broken-input and load tests: a tiny class graded in a subprocess ---

def tiny_course_at(root: Path, reference_package: bool = True) -> TinyCourse:
    """A TinyCourse in any folder (for module-scoped runs), with a pytest.ini like `tiny`'s and,
    optionally, the exported reference `tinytorch/core/tiny.py` a kernel must never import."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    course = TinyCourse(root)
    if reference_package:
        core = root / "tinytorch" / "core"
        core.mkdir(parents=True)
        (root / "tinytorch" / "__init__.py").write_text("")
        (core / "__init__.py").write_text("")
        (core / "tiny.py").write_text("def double(x):\n    return 2 * x\n\n\ndef halve(x):\n    return x / 2\n")
    return course


def grade_class(root: Path, *args: str, env: dict | None = None, timeout: float = 900):
    """`pytest --collect-submissions ARGS` in `root`, in a subprocess; returns the CompletedProcess."""
    import os
    import subprocess
    import sys
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-submissions", *args],
                          cwd=root, env=environment, capture_output=True, text=True, timeout=timeout)


def read_grades(root: Path) -> dict[str, list[dict]]:
    """student -> rows of grades/<student>.csv."""
    import csv
    tables = {}
    for path in sorted((root / "grades").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            tables[path.stem] = list(csv.DictReader(handle))
    return tables


def tree_hashes(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under root (except top-level folders in `skip`)."""
    import hashlib
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or not path.is_file():
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def once_per_run(tmp_path_factory, name: str, build) -> dict:
    """`build(folder)` run once per test session, even across pytest-xdist workers (who would
    each run a module-scoped fixture): the first worker builds under a file lock, the others
    read its JSON result. `build` returns JSON-able data."""
    import fcntl
    import json
    import os
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    folder, result = base / name, base / f"{name}.json"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            folder.mkdir(parents=True, exist_ok=True)
            result.write_text(json.dumps(build(folder)))
        return json.loads(result.read_text())
