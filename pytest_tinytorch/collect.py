"""`tito nbgrader collect`: copy submissions into submitted/<student>/<module>/.

Accepted sources (what instructors download):
* a folder of GitHub Classroom clones, ``<assignment>-<username>/`` (a git repository each);
* a folder of per-student folders, ``<student>/...``;
* an LMS zip (Canvas: ``<name>_[late_]<userid>_<submissionid>_<filename>``).

Each collected notebook gets a trustworthy ``timestamp.txt`` beside it: the last commit time of
a git clone, the LMS's time for a zip entry, else the collection time; never a file the student
wrote. Earlier collected versions are kept under ``.history/<timestamp>/``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .registry import Module
from .submissions import SAFE_ID

STUB = 'raise NotImplementedError("Implement'

CANVAS_NAME = re.compile(r"^(?P<name>[a-z0-9]+)_(?:late_)?(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$")


@dataclass
class Collected:
    student: str
    status: str          # "new", "updated", "unchanged", "missing", "incomplete"
    detail: str = ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _git_time(folder: Path) -> str | None:
    if not (folder / ".git").exists():
        return None
    result = subprocess.run(["git", "-C", str(folder), "log", "-1", "--format=%cI"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _student_id(folder_name: str, assignment: str | None) -> str:
    """`tinytorch-alice` -> `alice` for GitHub Classroom clones; otherwise the folder name."""
    if assignment and folder_name.startswith(assignment + "-"):
        return folder_name[len(assignment) + 1:]
    return folder_name


def _find_notebook(folder: Path, module: Module) -> Path | None:
    for candidate in (folder / "curriculum" / module.slug / f"{module.slug}.ipynb",
                      folder / module.slug / f"{module.slug}.ipynb", folder / f"{module.slug}.ipynb"):
        if _inside(candidate, folder):
            return candidate
    found = sorted(p for p in folder.rglob(f"{module.slug}.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and _inside(p, folder))
    return found[0] if found else None


def _inside(path: Path, folder: Path) -> bool:
    """A regular file that really lies in the student's folder: a symbolic link in a student
    repository could make collect copy any file of the instructor's machine into submitted/."""
    return path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(folder.resolve())


def _store(dest: Path, data: bytes, timestamp: str, module: Module) -> str:
    """Write one collected notebook; an earlier, different version moves to .history/."""
    notebook = dest / f"{module.slug}.ipynb"
    if notebook.is_file():
        if notebook.read_bytes() == data:
            return "unchanged"
        old_time = (dest / "timestamp.txt").read_text().strip() if (dest / "timestamp.txt").is_file() else "unknown"
        history = dest / ".history" / old_time.replace(":", "-")
        history.mkdir(parents=True, exist_ok=True)
        for name in (notebook.name, "timestamp.txt"):
            if (dest / name).exists():
                shutil.move(str(dest / name), history / name)
        status = "updated"
    else:
        dest.mkdir(parents=True, exist_ok=True)
        status = "new"
    tmp = dest / f".{notebook.name}.tmp"
    tmp.write_bytes(data)
    tmp.replace(notebook)
    (dest / "timestamp.txt").write_text(timestamp + "\n")
    return status


def _incomplete(data: bytes) -> bool:
    """Whether a code cell still holds a released stub (the narrative may mention them)."""
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:
        return True  # unreadable: autograde will say why
    return any(cell.cell_type == "code" and STUB in cell.source for cell in nb.cells)


def collect(source: Path, submitted: Path, module: Module, students: list[str] | None = None,
            assignment: str | None = None) -> list[Collected]:
    """Collect one module from `source` (folder or zip) into `submitted`; returns one line per student."""
    source = Path(source)
    entries: dict[str, tuple[bytes | None, str]] = {}
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                match = CANVAS_NAME.match(Path(info.filename).name)
                if match and match["file"].endswith(".ipynb") and module.slug in match["file"]:
                    when = dt.datetime(*info.date_time, tzinfo=dt.timezone.utc).isoformat()
                    entries[match["name"]] = (archive.read(info), when)
    elif source.is_dir():
        for folder in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
            student = _student_id(folder.name, assignment)
            notebook = _find_notebook(folder, module)
            entries[student] = (notebook.read_bytes() if notebook else None, _git_time(folder) or _now())
    else:
        raise FileNotFoundError(f"nothing to collect at {source}: expected a folder of student repositories "
                                f"or folders, or an LMS zip file")
    report = []
    for student, (data, when) in sorted(entries.items()):
        if students and student not in students:
            continue
        if not SAFE_ID.match(student):
            report.append(Collected(student, "skipped", "unsafe student id (letters, digits, . _ @ + - only)"))
            continue
        if data is None:
            report.append(Collected(student, "missing", f"no {module.slug}.ipynb found"))
            continue
        status = _store(submitted / student / module.slug, data, when, module)
        report.append(Collected(student, status, f"submitted {when}"))
        if _incomplete(data):
            report.append(Collected(student, "incomplete", "the notebook still raises NotImplementedError somewhere"))
    for student in students or []:
        if student not in entries:
            report.append(Collected(student, "missing", "not found in the source"))
    return report
