"""Progress (INSTRUCTOR_GUIDE.md "Tracking Progress"): per student and module, submitted /
passing / graded / late; the class CSV; the needs-attention list; a students x modules heatmap
as inline SVG in a self-contained HTML page (no plotting library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .data import CourseData, Computed
from .files import write
from .html import badge, esc, num, page, table

STATUS_COLUMNS = ["student", "module", "state", "submitted", "passing", "graded", "late", "days_late",
                  "auto_pct", "manual_pct", "score_pct"]
LOW_MANUAL_PCT = 50.0


def status(grades: pd.DataFrame) -> pd.DataFrame:
    """One row per (student, module). `state`: missing, submitted (not autograded yet),
    incomplete (some test fails) or passing (every test passes); `graded`: submitted,
    autograded and every ML-systems question scored (the module grade is final); `late`."""
    df = grades.copy()
    df["passing"] = df["all_passed"] & df["submitted"]
    df["graded"] = df["submitted"] & df["autograded"] & df["manual_complete"]
    df["late"] = df["days_late"] > 0
    state = np.select([~df["submitted"], ~df["autograded"], df["passing"]],
                      ["missing", "submitted", "passing"], default="incomplete")
    df["state"] = state
    return df[STATUS_COLUMNS]


def label(st: pd.DataFrame) -> pd.Series:
    """A short cell text per status row: 'passing, graded, late 2d'."""
    text = st["state"].astype(object)
    text = text.where(~st["graded"], text + ", graded")
    return text.where(~st["late"], text + ", late " + st["days_late"].astype(str) + "d")


def class_csv(grades: pd.DataFrame) -> str:
    """`tito module status --export class_progress.csv`."""
    return status(grades).round(2).to_csv(index=False, lineterminator="\n")


def student_table(grades: pd.DataFrame, student: str) -> pd.DataFrame:
    """`tito module status --student S`: that student's modules."""
    return status(grades[grades["student"] == student])


def _text(values: pd.Series) -> pd.Series:
    """Numbers as short text (object dtype even when empty, so that + " / " works)."""
    return pd.Series([f"{v:g}" for v in values], index=values.index, dtype=object)


def needs_attention(grades: pd.DataFrame, graded: list[str], low_manual_pct: float = LOW_MANUAL_PCT) -> pd.DataFrame:
    """student, module, reason, detail: missing modules (of the graded ones), low ML-systems
    scores (all questions scored and below `low_manual_pct`), incomplete submissions (tests
    failing or raising NotImplementedError), late beyond the limit."""
    df = grades
    due = df["module"].isin(graded)
    parts = []
    missing = df[due & ~df["submitted"]]
    parts.append(missing.assign(reason="missing module", detail="no submission for a module that is due"))
    low = df[df["submitted"] & df["manual_complete"] & (df["manual_pct"] < low_manual_pct)]
    parts.append(low.assign(reason="low ML-systems score",
                            detail=_text(low["manual_points"]) + " / " + _text(low["manual_max"])))
    inc = df[df["submitted"] & df["autograded"] & ~df["all_passed"]]
    detail = _text(inc["tests_passed"]) + " of " + _text(inc["tests"]) + " tests pass"
    detail = detail.where(inc["not_implemented"] == 0,
                          detail + ", " + _text(inc["not_implemented"]) + " raise NotImplementedError")
    parts.append(inc.assign(reason="incomplete submission", detail=detail))
    zero = df[df["submitted"] & (df["late_penalty"] >= 1)]
    parts.append(zero.assign(reason="too late", detail=_text(zero["days_late"]) + " days late: module scores 0"))
    nostamp = df[df["submitted"] & df["time_checked"] & ~df["has_timestamp"]]
    parts.append(nostamp.assign(reason="no submission time", detail="timestamp.txt missing: treated as on time"))
    out = pd.concat([p[["student", "module", "reason", "detail"]] for p in parts], ignore_index=True)
    order = {"missing module": 0, "incomplete submission": 1, "low ML-systems score": 2, "too late": 3,
             "no submission time": 4}
    out["_o"] = out["reason"].map(order)
    return out.sort_values(["student", "module", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _color(pct: float, state: str) -> str:
    if state == "missing":
        return "#eaeef2"
    # red (0%) -> amber (60%) -> green (100%)
    pct = max(0.0, min(100.0, pct))
    if pct < 60:
        t = pct / 60
        r, g, b = 207 + (154 - 207) * t, 34 + (103 - 34) * t, 46 + (0 - 46) * t
    else:
        t = (pct - 60) / 40
        r, g, b = 154 + (26 - 154) * t, 103 + (127 - 103) * t, 0 + (55 - 0) * t
    return f"#{int(r):02x}{int(g):02x}{int(b):02x}"


def heatmap_svg(grades: pd.DataFrame, cell: int = 26) -> str:
    """Students (rows) x modules (columns), colored by module percent; late cells get a dot,
    missing cells are grey. Inline SVG with a <title> tooltip per cell."""
    st = status(grades)
    students = list(dict.fromkeys(st["student"]))
    modules = list(dict.fromkeys(st["module"]))
    left, top = 12 + 8 * max([len(s) for s in students] + [4]), 12 + 7 * max([len(m) for m in modules] + [4])
    width, height = left + cell * len(modules) + 10, top + cell * len(students) + 10
    row = {s: i for i, s in enumerate(students)}
    col = {m: j for j, m in enumerate(modules)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-label="progress heatmap">']
    for m, j in col.items():
        x = left + j * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 6}" transform="rotate(-60 {x} {top - 6})">{esc(m)}</text>')
    for s, i in row.items():
        parts.append(f'<text x="{left - 6}" y="{top + i * cell + cell * 0.65}" text-anchor="end">{esc(s)}</text>')
    for r in st.itertuples(index=False):
        x, y = left + col[r.module] * cell, top + row[r.student] * cell
        tip = f"{r.student} {r.module}: {r.state}" + ("" if r.state == "missing" else f", {num(r.score_pct)}%") + \
              (f", {r.days_late} day(s) late" if r.late else "")
        parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                     f'fill="{_color(r.score_pct, r.state)}"><title>{esc(tip)}</title></rect>')
        if r.late:
            parts.append(f'<circle cx="{x + cell - 8}" cy="{y + 6}" r="3" fill="#fff"/>')
    parts.append("</svg>")
    return "".join(parts)


def render(grades: pd.DataFrame, attention: pd.DataFrame, course_name: str = "TinyTorch",
           warnings: list[str] | None = None) -> str:
    """The class progress page (pure)."""
    st = status(grades)
    counts = st.pivot_table(index="module", columns="state", values="student", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=["missing", "submitted", "incomplete", "passing"], fill_value=0)
    counts["graded"] = st.groupby("module", sort=False)["graded"].sum().reindex(counts.index).fillna(0)
    counts["late"] = st.groupby("module", sort=False)["late"].sum().reindex(counts.index).fillna(0)
    count_rows = [[esc(m), *[str(int(v)) for v in row]] for m, row in counts.iterrows()]
    kinds = {"missing module": "bad", "incomplete submission": "warn", "low ML-systems score": "warn",
             "too late": "bad", "no submission time": ""}
    att_rows = [[esc(a.student), esc(a.module), badge(a.reason, kinds.get(a.reason, "")), esc(a.detail)]
                for a in attention.itertuples(index=False)]
    body = (f"<h2>Heatmap</h2><p class=\"muted\">Module percent (red 0% to green 100%); grey: missing; "
            f"white dot: late.</p>{heatmap_svg(grades)}"
            f"<h2>Modules</h2>{table(['module', *counts.columns], count_rows, numeric={1, 2, 3, 4, 5, 6})}"
            f"<h2>Needs attention ({len(attention)})</h2>"
            + (table(["student", "module", "reason", "detail"], att_rows) if att_rows else "<p>Nobody.</p>"))
    if warnings:
        body += "<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul>"
    return page("Class progress", body, course_name)


def write_progress(data: CourseData, computed: Computed) -> dict[str, Path]:
    out = data.course_dir / "reports"
    attention = needs_attention(computed.modules, computed.graded)
    paths = {"csv": out / "class_progress.csv", "attention": out / "needs_attention.csv", "html": out / "progress.html"}
    write(paths["csv"], class_csv(computed.modules))
    write(paths["attention"], attention.to_csv(index=False, lineterminator="\n"))
    write(paths["html"], render(computed.modules, attention, data.config.name, data.warnings))
    return paths
