"""What the `tito` commands call: one function per command, returning the text to print and
the files written. Each loads and validates the course folder (errors: ConfigError /
ScoreSheetError with file, key and expectation), computes, then writes.

    tito nbgrader review MODULE              -> review(course_dir, module)
    tito nbgrader feedback MODULE [--student] -> feedback(course_dir, module, students)
    tito nbgrader report [--module M]         -> report(course_dir, modules)
    tito module status [--student S] [--export FILE] -> status(course_dir, student, export)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from . import exports, progress
from . import feedback as fb
from . import review as rv
from .data import compute, load_course
from .files import write


@dataclass
class Outcome:
    text: str                                   # what the command prints
    paths: list[Path] = field(default_factory=list)


def _warnings(data) -> str:
    return "".join(f"\nwarning: {w}" for w in data.warnings)


def review(course_dir: Path, module: str, root: Path | None = None) -> Outcome:
    result = rv.review(course_dir, module, root)
    added = f", added {', '.join(result.added)}" if result.added else ""
    return Outcome(f"{result.sheet}: {len(result.students)} submissions{added}\nreview page: {result.page}",
                   [result.sheet, result.page])


def feedback(course_dir: Path, module: str | None = None, students: list[str] | None = None,
             root: Path | None = None, as_of: dt.datetime | None = None) -> Outcome:
    data = load_course(course_dir, root, [module] if module else None, as_of)
    computed = compute(data)
    paths = fb.write_feedback(data, computed, data.modules[0] if module else None, students)
    return Outcome(f"{len(paths)} feedback pages under {Path(course_dir) / 'feedback'}{_warnings(data)}", paths)


def report(course_dir: Path, modules: list[str] | None = None, root: Path | None = None,
           as_of: dt.datetime | None = None) -> Outcome:
    """Gradebook (printed and CSV), long CSV, Canvas CSV, Gradescope results, progress page."""
    data = load_course(course_dir, root, modules, as_of)
    computed = compute(data)
    paths = {**exports.write_all(data, computed), **progress.write_progress(data, computed)}
    counted = ", ".join(computed.graded) or "none yet"
    text = (exports.gradebook_table(exports.gradebook(computed))
            + f"\n\nmodules counted in the total (registered and due): {counted}\n"
            + "\n".join(f"{name}: {path}" for name, path in paths.items()) + _warnings(data))
    return Outcome(text, list(paths.values()))


def status(course_dir: Path, student: str | None = None, export: Path | None = None,
           root: Path | None = None, as_of: dt.datetime | None = None) -> Outcome:
    """Progress of one student, or of the class (with --export FILE: the class CSV)."""
    data = load_course(course_dir, root, None, as_of)
    computed = compute(data)
    paths = []
    if export:
        paths.append(write(Path(export), progress.class_csv(computed.modules)))
    if student:
        table = progress.student_table(computed.modules, student)
        if not len(table):
            return Outcome(f"no student {student!r} in {course_dir} (score tables, submitted/, roster)", paths)
        shown = table.drop(columns=["student"]).round(1)
        text = tabulate(shown, headers="keys", tablefmt="simple", showindex=False)
        mine = data.checkpoints[data.checkpoints["student"] == student]
        if len(mine):
            rows = mine[["milestone", "achieved", "problems"]].assign(problems=mine["problems"].str.slice(0, 200))
            text += "\n\ncheckpoints\n" + tabulate(rows, headers="keys", tablefmt="simple", showindex=False)
        return Outcome(text + _warnings(data), paths)
    st = progress.status(computed.modules)
    counts = st.assign(cell=progress.label(st)).pivot(index="student", columns="module", values="cell")
    attention = progress.needs_attention(computed.modules, computed.graded)
    text = tabulate(counts, headers="keys", tablefmt="simple")
    if len(attention):
        text += "\n\nneeds attention:\n" + tabulate(attention, headers="keys", tablefmt="simple", showindex=False)
    text += "".join(f"\nwrote {p}" for p in paths) + _warnings(data)
    return Outcome(text, paths)
