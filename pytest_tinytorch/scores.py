"""Score tables: compute (pure functions over rows), persist (atomically), render (tabulate).

A row is one graded test of one student's module. ``grades/<student>.csv`` holds all of a
student's rows; a run replaces the rows of the modules it graded and keeps the rest.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tabulate import tabulate

from .safety import atomic_write

COLUMNS = ["student", "module", "test", "points", "max_points", "outcome", "message", "duration_s", "hidden"]


def _sort_key(row):
    return (row["student"], row["module"], int(row.get("order", 0)), row["test"])


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def read_table(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def merge(existing: list[dict], new: list[dict]) -> list[dict]:
    """The student's table after a run: rows of the modules graded now replace the old ones."""
    graded = {row["module"] for row in new}
    kept = [row for row in existing if row["module"] not in graded]
    # A stable sort by module keeps the table's order of old rows and the test order of new ones.
    return sorted(kept + sorted(new, key=_sort_key), key=lambda row: row["module"])


def write_tables(grades_dir: Path, rows: list[dict]) -> list[Path]:
    """Write one table per student in `rows`; returns the paths written."""
    by_student: dict[str, list[dict]] = {}
    for row in rows:
        by_student.setdefault(row["student"], []).append(row)
    written = []
    for student, new in sorted(by_student.items()):
        path = grades_dir / f"{student}.csv"
        merged = merge(read_table(path), new)
        atomic_write(path, to_csv(merged))
        written.append(path)
    return written


def totals(rows: list[dict]) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, module) -> (points, max_points)."""
    out: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        acc = out.setdefault((row["student"], row["module"]), [0.0, 0.0])
        acc[0] += float(row["points"])
        acc[1] += float(row["max_points"])
    return {key: (p, m) for key, (p, m) in out.items()}


def _fmt(number: float) -> str:
    return f"{number:g}"


def summary_table(rows: list[dict]) -> str:
    """Student x module, 'points / max' in each cell, with a total column."""
    sums = totals(rows)
    students = sorted({s for s, _ in sums})
    modules = sorted({m for _, m in sums})
    table = []
    for student in students:
        line, got, most = [student], 0.0, 0.0
        for module in modules:
            if (student, module) in sums:
                p, m = sums[(student, module)]
                got, most = got + p, most + m
                line.append(f"{_fmt(p)} / {_fmt(m)}")
            else:
                line.append("")
        line.append(f"{_fmt(got)} / {_fmt(most)} ({100 * got / most:.0f}%)" if most else "")
        table.append(line)
    return tabulate(table, headers=["student", *modules, "total"], tablefmt="simple")


def tests_table(rows: list[dict]) -> str:
    """One line per test (student mode): points, outcome and the reason of a failure."""
    table = []
    for row in sorted(rows, key=_sort_key):
        mark = "PASS" if row["outcome"] == "passed" else "FAIL"
        table.append([row["test"], f"{_fmt(float(row['points']))} / {_fmt(float(row['max_points']))}",
                      mark, _shorten(row["message"], 90)])
    return tabulate(table, headers=["test", "points", "", "why"], tablefmt="simple")


def _shorten(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."
