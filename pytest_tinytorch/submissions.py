"""Which notebooks to grade: the student's own module notebooks, or a class's submissions.

Student mode (``pytest --module 01_tensor``): the notebook in this checkout,
``curriculum/01_tensor/01_tensor.ipynb``, or, in the course repository where only the source
exists, the notebook built from ``01_tensor.py``.

Instructor mode (``pytest --collect-submissions``): every ``submitted/<student>/<module>/``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .registry import Module

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
UNSAFE_ID_REASON = ("a student id must be 1 to 64 letters, digits and . _ @ + -, starting with a letter or "
                    "digit, so that it can name a score table; rename the folder")
LOCAL = "local"   # the student id used in student mode


@dataclass(frozen=True)
class Submission:
    student: str            # "alice", or LOCAL in student mode
    module: str             # "01_tensor"
    notebook: Path | None   # the notebook to grade (None: build from `source`)
    source: Path | None = None
    problem: str | None = None   # why it cannot be graded, known before running anything

    @property
    def key(self) -> str:
        return f"{self.student}-{self.module}"

    @property
    def test_id(self) -> str:
        return self.module if self.student == LOCAL else self.key


def local(root: Path, module: Module) -> Submission:
    """The student-mode submission of a module: its notebook in this checkout."""
    notebook, src = module.notebook(root), module.source(root)
    if notebook.is_file():
        return Submission(LOCAL, module.slug, notebook)
    if src.is_file():
        return Submission(LOCAL, module.slug, None, source=src)
    return Submission(LOCAL, module.slug, notebook,
                      problem=f"no notebook {notebook.relative_to(root)} in this checkout; "
                              f"`tito module reset {module.slug}` restores the released one")


def students(submissions_dir: Path) -> list[str]:
    """The student folders of a submissions folder, sorted."""
    if not submissions_dir.is_dir():
        return []
    return sorted(p.name for p in submissions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_notebook(folder: Path, module: Module) -> tuple[Path | None, str | None]:
    """The notebook of one student's module folder, or the reason there is none."""
    if not folder.is_dir():
        return None, f"no submission: the folder {folder.parent.name}/{folder.name}/ does not exist"
    expected = folder / f"{module.slug}.ipynb"
    candidates = [expected] if expected.is_file() else sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if len(candidates) == 1:
        if candidates[0].is_symlink():  # it could lead to any file of the grading machine
            return None, (f"{folder.parent.name}/{folder.name}/{candidates[0].name} is a symbolic link, "
                          f"not a notebook file; submit the notebook itself")
        return candidates[0], None
    if not candidates:
        return None, f"no notebook in {folder.parent.name}/{folder.name}/: expected {expected.name}"
    names = ", ".join(p.name for p in candidates[:5])
    return None, f"several notebooks in {folder.parent.name}/{folder.name}/ ({names}); expected exactly one, named {expected.name}"


def collect(submissions_dir: Path, modules: list[Module], only_students: list[str] | None = None) -> list[Submission]:
    """One submission per (student, module): a student who did not submit gets a problem row."""
    found = []
    for student in students(submissions_dir):
        if only_students and student not in only_students:
            continue
        if not SAFE_ID.match(student):
            continue  # reported by the plugin as a warning: such a name cannot name a score table
        for module in modules:
            notebook, problem = find_notebook(submissions_dir / student / module.slug, module)
            found.append(Submission(student, module.slug, notebook, problem=problem))
    return found


def shard_of(student: str, count: int) -> int:
    """The shard (1..count) of a student: a stable hash, the same on every machine and run."""
    digest = hashlib.sha256(student.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
