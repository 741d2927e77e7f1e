"""Exports: the gradebook (CSV and terminal table), the long score CSV, a Canvas gradebook
import CSV and Gradescope autograder ``results.json`` files. Pure builders return text or
dicts; `write_all` persists them under reports/.

Canvas (gradebook import): the columns ``Student, ID, SIS User ID, SIS Login ID, Section`` then
one column per assignment, and a second row ``Points Possible`` (identity cells blank). Canvas
matches rows by ID / SIS User ID / SIS Login ID, so these come from an optional roster,
``grades/roster.csv`` (student, name, canvas_id, sis_user_id, sis_login_id, section). Without a
roster entry, Student is the student id, ID is blank and SIS Login ID is the student id
(assumed to be the Canvas login); Canvas then matches on the login. Assignment columns are
named ``TinyTorch <slug>`` plus Midterm/Final/Checkpoints when projects.csv exists; values are
module percents (points possible 100), so create the Canvas assignments out of 100 points.

Gradescope (autograder results spec): ``{"score", "execution_time", "output", "visibility",
"stdout_visibility", "tests": [{"name", "score", "max_score", "status", "output",
"visibility"}]}``; hidden tests get ``visibility: "after_published"`` and only the neutral message.
Scores are the autograded points (the manual 30% is graded in Gradescope's own rubric).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .data import CourseData, Computed
from .feedback import as_records, hidden_message
from .files import by_submission, to_csv, write
from .grades import PROJECT_COLUMNS

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def gradebook(computed: Computed) -> pd.DataFrame:
    """One row per student: per module autograded %, manual %, days late, module %; then
    modules_pct, checkpoints, midterm, final, total_pct, letter."""
    m = computed.modules
    parts = {"auto": "auto_pct", "manual": "manual_pct", "late_days": "days_late", "pct": "score_pct"}
    wide = m.pivot(index="student", columns="module", values=list(parts.values()))
    order = list(dict.fromkeys(m["module"]))
    columns = {}
    for module in order:
        for label, source in parts.items():
            columns[f"{module}_{label}"] = wide[(source, module)]
    book = pd.DataFrame(columns, index=wide.index)
    course = computed.course.set_index("student")[["modules_pct", *PROJECT_COLUMNS, "total_pct", "letter"]]
    return book.join(course).reset_index()


def gradebook_csv(book: pd.DataFrame) -> str:
    return book.round(2).to_csv(index=False, lineterminator="\n")


def gradebook_table(book: pd.DataFrame) -> str:
    """The gradebook for a terminal: module percents, the projects graded so far, total and letter."""
    projects = [c for c in ("checkpoints", "midterm", "final") if c in book.columns and book[c].notna().any()]
    cols = ["student", *[c for c in book.columns if c.endswith("_pct") and c != "total_pct"
                         and c[:-4] not in projects], *projects, "total_pct", "letter"]
    shown = book[cols].rename(columns=lambda c: c[:-4] if c.endswith("_pct") else c)
    return tabulate(shown.round(1).fillna(""), headers="keys", tablefmt="simple", showindex=False)


LONG_COLUMNS = ["student", "module", "test", "points", "max_points", "outcome", "message", "duration_s",
                "hidden", "overridden", "override_reason"]


def long_csv(computed: Computed) -> str:
    """Every graded test of every student (after overrides), one row each."""
    return to_csv(computed.scores.reindex(columns=LONG_COLUMNS))


def canvas_frame(data: CourseData, computed: Computed, prefix: str = "TinyTorch ") -> pd.DataFrame:
    """The Canvas import table (first data row: Points Possible)."""
    course = computed.course.set_index("student")
    roster = data.roster.drop_duplicates("student", keep="last").set_index("student").reindex(course.index).fillna("")
    out = pd.DataFrame({
        "Student": roster["name"].where(roster["name"] != "", course.index.to_series()),
        "ID": roster["canvas_id"],
        "SIS User ID": roster["sis_user_id"],
        "SIS Login ID": roster["sis_login_id"].where(roster["sis_login_id"] != "", course.index.to_series()),
        "Section": roster["section"]}, index=course.index)
    assignments = {f"{prefix}{m}": course[m] for m in data.modules if m in course.columns}
    if len(data.projects) or any(course[c].notna().any() for c in PROJECT_COLUMNS):
        assignments.update({f"{prefix}{c.capitalize()}": course[c] for c in PROJECT_COLUMNS})
    values = pd.DataFrame(assignments, index=course.index).astype(float).round(2)
    values = values.map(lambda v: "" if v != v else f"{v:g}")     # 97, 75.6; blank when unknown
    out = out.join(values).reset_index(drop=True)
    possible = pd.DataFrame([{"Student": "Points Possible", **{c: "100" for c in assignments}}])
    return pd.concat([possible, out], ignore_index=True)[CANVAS_IDENTITY + list(assignments)]


def canvas_csv(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    frame.to_csv(out, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return out.getvalue()


def gradescope_results(tests, grade=None) -> dict:
    """A Gradescope results.json for one submission: `tests` its score rows after overrides
    (a DataFrame or namedtuples), `grade` its module_grades row (Series or dict, optional)."""
    tests = as_records(tests)
    entries = []
    for number, t in enumerate(tests, start=1):
        ok = t.outcome == "passed" and t.points >= t.max_points
        if t.hidden:
            output, visibility = hidden_message(t.outcome, t.message) or "passed", "after_published"
        else:
            output, visibility = ("passed" if ok else str(t.message)), "visible"
        if t.overridden:
            output += f"\nAdjusted by a TA: {t.override_reason}"
        entries.append({"name": str(t.test), "number": str(number), "score": float(t.points),
                        "max_score": float(t.max_points), "status": "passed" if ok else "failed",
                        "output": output, "visibility": visibility})
    result = {"score": float(sum(e["score"] for e in entries)),
              "execution_time": round(float(sum(t.duration_s for t in tests)), 3),
              "output": "", "visibility": "visible", "stdout_visibility": "hidden", "tests": entries}
    if grade is not None and grade.get("days_late", 0) > 0:
        result["output"] = (f"Submitted {int(grade['days_late'])} day(s) late: the course applies a "
                            f"{100 * grade['late_penalty']:g}% penalty to the module total.")
    return result


def write_gradescope(data: CourseData, computed: Computed, module: str | None = None) -> list[Path]:
    """reports/gradescope/<module>/<student>/results.json per autograded submission."""
    grades = computed.modules[computed.modules["submitted"]]
    if module:
        grades = grades[grades["module"] == module]
    tests = by_submission(computed.scores)
    written = []
    for grade in grades.to_dict("records"):
        key = (grade["student"], grade["module"])
        if key not in tests:
            continue
        path = data.course_dir / "reports" / "gradescope" / key[1] / key[0] / "results.json"
        written.append(write(path, json.dumps(gradescope_results(tests[key], grade), indent=2) + "\n"))
    return written


def write_all(data: CourseData, computed: Computed) -> dict[str, Path]:
    """reports/gradebook.csv, reports/scores_long.csv, reports/canvas.csv (+ Gradescope files)."""
    out = data.course_dir / "reports"
    paths = {"gradebook": out / "gradebook.csv", "long": out / "scores_long.csv", "canvas": out / "canvas.csv"}
    book = gradebook(computed)
    write(paths["gradebook"], gradebook_csv(book))
    write(paths["long"], long_csv(computed))
    write(paths["canvas"], canvas_csv(canvas_frame(data, computed)))
    write_gradescope(data, computed)
    return paths
