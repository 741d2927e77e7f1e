"""Projects (the midterm): graded like modules, but on the student's *own* package.

A tiny course with one module (01_tiny, exporting `double`) and one project, `tinyproj`, whose
`quadruple` calls the package's `double`. In class mode the project's kernel must import the
student's own export of 01_tiny (from their 01_tiny notebook), the released stubs when they did
not submit it (never the course's solution), and the project's own limits apply.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from pytest_tinytorch import source

from conftest import REGISTRY, grade_class, read_grades, tiny_course_at

PROJECT_SOURCE = '''\
# %% [markdown]
# # Tiny project: quadruple with your own double

# %%
import time
from tinytorch.core.tiny import double


def quadruple(x):
    """Four times x, with the package's double."""
    ### BEGIN SOLUTION
    return double(double(x))
    ### END SOLUTION
'''

PROJECT_TESTS = '''\
import pytest

pytestmark = pytest.mark.module("tinyproj")


@pytest.mark.points(4)
def test_quadruple(student):
    assert student.value("quadruple(x)", x=3) == 12


@pytest.mark.points(1)
def test_the_project_time_limit_applies(student):
    assert student.value("time.sleep(4) or 'slept'") == "slept"
'''

PROJECT_ENTRY = '''\
projects:
  - {slug: tinyproj, title: Tiny project, week: 2, focus: Projects, weight: midterm, requires: [01_tiny],
     test_timeout: 2}
'''


@pytest.fixture
def project_course(tmp_path):
    course = tiny_course_at(tmp_path / "course")
    (course.root / "curriculum" / "modules.yaml").write_text(REGISTRY + PROJECT_ENTRY)
    folder = course.root / "curriculum" / "tinyproj"
    folder.mkdir()
    (folder / "tinyproj.py").write_text(PROJECT_SOURCE)
    (folder / "test_tinyproj.py").write_text(PROJECT_TESTS)
    project = source.to_notebook(source.without_markers(source.parse(PROJECT_SOURCE)))

    def hand_in(student):
        target = course.root / "submitted" / student / "tinyproj"
        target.mkdir(parents=True)
        nbformat.write(project, target / "tinyproj.ipynb")

    course.hand_in = hand_in
    return course


def test_class_mode_runs_the_project_on_each_students_own_modules(project_course):
    course = project_course
    course.submit("alice")                      # a correct double
    course.hand_in("alice")
    course.hand_in("bob")                       # never submitted 01_tiny: the released stub
    wrong = course.notebook()
    for cell in wrong.cells:
        if "export" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace("return 2 * x", "return x + 2")
    nbformat.write(wrong, course.submit("carol"))   # her own double is wrong
    course.hand_in("carol")
    result = grade_class(course.root, "--module", "tinyproj", "--sandbox", "require")
    assert result.returncode == 1, result.stdout[-3000:]
    tables = read_grades(course.root)
    quadruple = {student: [r for r in rows if r["test"] == "test_quadruple"][0] for student, rows in tables.items()}
    assert quadruple["alice"]["outcome"] == "passed"
    assert quadruple["bob"]["outcome"] == "failed" and "Implement double" in quadruple["bob"]["message"]
    assert quadruple["carol"]["outcome"] == "failed"       # (3 + 2) + 2 = 7, not 12
    assert "bob/tinyproj ran with the released stubs of 01_tiny (no 01_tiny notebook submitted)" in result.stdout
    # The project's own test_timeout (2 s) replaces the grader's default (30 s).
    slept = [r for r in tables["alice"] if r["test"] == "test_the_project_time_limit_applies"][0]
    assert slept["outcome"] == "failed" and "longer than 2 s" in slept["message"], slept


def test_student_mode_uses_the_whole_package(project_course):
    """`pytest --module tinyproj` in a student's repository: the package as exported there."""
    course = project_course
    nbformat.write(source.to_notebook(source.without_markers(source.parse(PROJECT_SOURCE))),
                   course.root / "curriculum" / "tinyproj" / "tinyproj.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    result = subprocess.run([sys.executable, "-m", "pytest", "--module", "tinyproj", "--sandbox", "require"],
                            cwd=course.root, env=env, capture_output=True, text=True, timeout=300)
    assert "test_quadruple" in result.stdout and "tinyproj: 4 / 5 points" in result.stdout, result.stdout[-3000:]
