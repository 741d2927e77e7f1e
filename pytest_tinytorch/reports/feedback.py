"""Feedback pages: feedback/<student>/<module>/feedback.html, one per graded submission.

What a student sees: every test with its points; the failure message of public tests; for
hidden tests only the name, the points and a neutral message (never the stored text beyond
the plugin's neutral forms, never inputs or expected values); the TA's scores and comments;
the late penalty; the module percent. Everything from the tables or the sheets is escaped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .data import CourseData, Computed
from .files import by_submission, records, write
from .html import badge, esc, num, page, table

# The messages the plugin stores for hidden tests that carry no test internals.
NEUTRAL_HIDDEN = re.compile(r"^hidden test failed: (wrong result|the result could not be checked \(\w+\))$")
HIDDEN_FALLBACK = "hidden test did not pass"
PASS, FAIL, ADJUSTED, HIDDEN = badge("pass", "ok"), badge("fail", "bad"), badge("adjusted", "warn"), badge("hidden")


def hidden_message(outcome: str, message: str) -> str:
    """The only text shown for a hidden test: passed, or one of the neutral forms."""
    if outcome == "passed":
        return ""
    return message if NEUTRAL_HIDDEN.match(str(message or "")) else HIDDEN_FALLBACK


def render(student: str, module: str, tests, grade, questions, course_name: str = "TinyTorch",
           titles: dict[str, str] | None = None) -> str:
    """The feedback page of one submission (pure). `tests`: its score rows after overrides and
    `questions`: its score-sheet rows (DataFrames or lists of namedtuples); `grade`: its
    module_grades row (a Series or a dict)."""
    titles = titles or {}
    tests, questions = as_records(tests), as_records(questions)
    rows = []
    for t in tests:
        ok = t.outcome == "passed" and t.points >= t.max_points
        mark = PASS if ok else FAIL if t.outcome == "failed" else badge(t.outcome, "bad")
        if t.overridden:
            mark = ADJUSTED
        if t.hidden:
            why = esc(hidden_message(t.outcome, t.message))
            name = f"{esc(t.test)} {HIDDEN}"
        else:
            why = "" if ok else esc(t.message)
            name = esc(t.test)
        if t.overridden:
            why += f'<br>{badge("adjusted by your TA", "warn")} {esc(t.override_reason)}'
        rows.append([name, f"{num(t.points, 2)} / {num(t.max_points, 2)}", mark, why])
    test_table = table(["test", "points", "", "details"], rows, numeric={1})

    qrows = []
    for q in questions:
        score = "not graded yet" if q.score != q.score else f"{num(q.score)} / {num(q.max_score)}"
        qrows.append([esc(f"{q.question}: {titles.get(q.question, '')}".rstrip(": ")), esc(score), esc(q.comment)])
    manual = table(["question", "score", "comment"], qrows, numeric={1}) if qrows else \
        '<p class="muted">Your ML-systems answers have not been scored yet.</p>'
    quality = ""
    if grade.get("code_quality") == grade.get("code_quality"):
        capped = grade["code_quality_capped"]
        note = "" if capped == grade["code_quality"] else \
            f" (capped at {num(capped)}: correctness first, not every test passes)"
        quality = (f'<p>Code quality: <b>{num(capped)} / 10</b>{esc(note)} '
                   f'<span class="muted">reported for your information, not part of the grade</span>. '
                   f"{esc(grade.get('quality_comment') or '')}</p>")
    late = ""
    if grade["days_late"] > 0:
        late = (f'<p>{badge("late", "bad")} submitted {int(grade["days_late"])} day(s) late: '
                f'penalty {num(100 * grade["late_penalty"])}% of the module total.</p>')
    elif grade["time_checked"] and not grade["has_timestamp"]:
        late = '<p class="muted">No recorded submission time: counted as on time.</p>'
    summary = table(
        ["part", "weight", "score"],
        [["Autograded tests", "70%", f'{num(grade["auto_points"], 2)} / {num(grade["auto_max"], 2)} '
                                      f'({num(grade["auto_pct"])}%)'],
         ["ML-systems questions", "30%", f'{num(grade["manual_points"])} / {num(grade["manual_max"])} '
                                          f'({num(grade["manual_pct"])}%)'],
         ["Before late penalty", "", f'{num(grade["raw_pct"])}%'],
         ["Late penalty", "", f'-{num(100 * grade["late_penalty"])}%' if grade["late_penalty"] else "none"]],
        numeric={1})
    body = (f'<p class="total">{num(grade["score_pct"])}%</p>{late}{summary}'
            f"<h2>Tests</h2>{test_table}<h2>ML-systems questions</h2>{manual}{quality}")
    return page(f"{module}: feedback for {student}", body, course_name)


def as_records(rows) -> list:
    return records(rows) if isinstance(rows, pd.DataFrame) else list(rows)


def write_feedback(data: CourseData, computed: Computed, module: str | None = None,
                   students: list[str] | None = None) -> list[Path]:
    """feedback/<student>/<module>/feedback.html for every autograded submission selected."""
    grades = computed.modules[computed.modules["autograded"] & computed.modules["submitted"]]
    if module:
        grades = grades[grades["module"] == module]
    if students:
        grades = grades[grades["student"].isin(students)]
    tests = by_submission(computed.scores)
    questions = by_submission(data.sheet.questions)
    titles = {m: {q.id: q.title for q in r.questions} for m, r in data.rubrics.items()}
    written = []
    for grade in grades.to_dict("records"):
        key = (grade["student"], grade["module"])
        html = render(*key, tests.get(key, []), grade, questions.get(key, []), data.config.name,
                      titles.get(key[1], {}))
        written.append(write(data.course_dir / "feedback" / key[0] / key[1] / "feedback.html", html))
    return written
