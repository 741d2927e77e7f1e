"""Manual review: pre-fill the score sheet of a module and write its static review page.

`review(course_dir, module)` writes ``grades/manual/<module>.yaml`` with an entry for every
student who submitted (scores already entered are kept, nothing is removed) and
``reports/review/<module>.html``: each student's answers to the ML-systems questions (markdown
cells tagged ``answer`` with ``question="qN"`` metadata) beside the rubric bands, the question's
look_for items and the guide's calibration examples.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from .. import registry
from . import grades as g
from ..scores import atomic_write
from .files import write
from .html import badge, bullet_list, esc, page, table
from .rubric import Rubric, course_rules, load_rubric, read_yaml, sheet_path, validate_sheet

SHEET_HEADER = ("# Manual scores of {module}: one entry per student who submitted (`tito nbgrader review`).\n"
                "# Fill in score (0-10; null = not graded yet), comment (the student reads it) and grader.\n"
                "# code_quality (optional, 0-10) is reported, capped at {cap:g} when a test fails, not counted.\n"
                "# overrides: [{{test: test_name, points: N, reason: why}}] replace a test's points.\n")


@dataclass
class ReviewResult:
    sheet: Path
    page: Path
    students: list[str]
    added: list[str]


def extract_answers(notebook_path: Path) -> dict[str, str]:
    """question id -> the text of the student's answer cell(s) (markdown, tag ``answer``)."""
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as err:  # a broken notebook is shown as such on the review page
        return {"_error": f"the notebook could not be read ({type(err).__name__})"}
    answers: dict[str, str] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        if "answer" in (meta.get("tags") or []) and meta.get("question"):
            qid = str(meta["question"])
            answers[qid] = (answers.get(qid, "") + "\n\n" + cell.get("source", "")).strip()
    return answers


DEF = re.compile(r"^(?P<indent>[ \t]*)def (?P<name>\w+)\(", re.M)


def calibrated_function(rubric: Rubric) -> str | None:
    """The function the calibration examples are about (the first `def` of their code)."""
    for example in rubric.calibration:
        match = DEF.search(str(example.get("code", "")))
        if match:
            return match["name"]
    return None


def extract_function(notebook_path: Path, name: str) -> str | None:
    """The source of `def name(...)` in the notebook's code cells (through its last indented line)."""
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception:
        return None
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        lines = cell.get("source", "").split("\n")
        for i, line in enumerate(lines):
            match = DEF.match(line)
            if match and match["name"] == name:
                indent, end = len(match["indent"]), i + 1
                while end < len(lines) and (not lines[end].strip() or
                                            len(lines[end]) - len(lines[end].lstrip()) > indent):
                    end += 1
                return "\n".join(lines[i:end]).rstrip()
    return None


def prefill(existing: dict, module: str, students: list[str], rubric: Rubric) -> tuple[dict, list[str]]:
    """The sheet with an entry per student (pure): entered scores, comments and students kept."""
    sheet = copy.deepcopy(existing) if existing else {}
    sheet["module"] = module
    entries = sheet.get("students") or {}
    added = []
    for student in students:
        entry = entries.get(student)
        if entry is None:
            entry = {}
            added.append(student)
        questions = entry.setdefault("questions", {}) or {}
        for q in rubric.questions:
            questions.setdefault(q.id, {"score": None, "comment": "", "grader": ""})
        entry["questions"] = questions
        entries[student] = entry
    sheet["students"] = dict(sorted(entries.items()))
    return sheet, added


def _notebook(course_dir: Path, student: str, module: registry.Module) -> Path | None:
    from ..submissions import find_notebook
    notebook, _ = find_notebook(Path(course_dir) / "submitted" / student / module.slug, module)
    return notebook


def review(course_dir: Path, module: str, root: Path | None = None) -> ReviewResult:
    """Pre-fill grades/manual/<module>.yaml and write reports/review/<module>.html."""
    course_dir = Path(course_dir)
    root = Path(root) if root else registry.find_root(course_dir)
    mod = registry.resolve(root, module)
    rubric = load_rubric(root, mod.slug, course_rules(root))
    subs = g.read_submissions(course_dir / "submitted", [mod.slug])
    students = sorted(subs["student"])
    path = sheet_path(course_dir, mod.slug)
    existing = read_yaml(path) if path.is_file() else {}
    sheet, added = prefill(existing, mod.slug, students, rubric)
    validated = validate_sheet(sheet, str(path), rubric, set(students))  # refuse to write a bad sheet
    text = SHEET_HEADER.format(module=mod.slug, cap=rubric.correctness_first) + yaml.safe_dump(
        sheet, sort_keys=False, allow_unicode=True, width=100)
    atomic_write(path, text)   # the TAs' data: fsync'ed like the score tables
    scores = g.read_tables(course_dir / "grades")
    auto = g.autograded(scores[scores["module"] == mod.slug]) if len(scores) else None
    notebooks = {s: _notebook(course_dir, s, mod) for s in students}
    answers = {s: extract_answers(nb) if nb else {"_error": "no notebook"} for s, nb in notebooks.items()}
    function = calibrated_function(rubric)
    code = {s: extract_function(nb, function) if nb and function else None for s, nb in notebooks.items()}
    html_path = course_dir / "reports" / "review" / f"{mod.slug}.html"
    write(html_path, render_review(mod.slug, rubric, answers, validated.questions, auto,
                                   code, validated.quality))
    return ReviewResult(path, html_path, students, added)


def _rubric_panel(rubric: Rubric, qid: str) -> str:
    q = rubric.question(qid)
    bands = table(["points", "criteria"], [[esc(b.get("points")), esc(b.get("criteria"))] for b in rubric.bands])
    return (f"<h3>Look for</h3>{bullet_list(q.look_for)}<details><summary>Bands (all questions)</summary>"
            f"{bands}{bullet_list(rubric.look_for)}</details>")


def _calibration(rubric: Rubric, code: dict[str, str | None] | None = None, quality=None) -> str:
    if not rubric.calibration:
        return ""
    function = calibrated_function(rubric)
    entered = {} if quality is None else dict(zip(quality["student"], quality["code_quality"]))
    students = []
    for student, source in (code or {}).items():
        score = entered.get(student)
        mark = badge("code quality not scored", "warn") if score is None or score != score else \
            badge(f"code quality {score:g} / 10", "ok")
        shown = f"<pre>{esc(source)}</pre>" if source else f'<p class="muted">no <code>{esc(function)}</code> found</p>'
        students.append(f'<div class="card"><h3>{esc(student)} {mark}</h3>{shown}</div>')
    cards = []
    for example in rubric.calibration:
        cards.append(f'<div class="card"><h3>{esc(example.get("level", ""))} '
                     f'({esc(example.get("points", ""))} points)</h3>'
                     f'<pre>{esc(example.get("code", ""))}</pre>{bullet_list(example.get("why") or [])}</div>')
    return ("<h2>Calibration examples (INSTRUCTOR_GUIDE.md)</h2><p class=\"muted\">Reference points for "
            "consistent scoring; correctness first: code that fails tests gets at most "
            f"{rubric.correctness_first:g} for quality.</p>" + "".join(cards)
            + (f"<h2>Each student's <code>{esc(function)}</code></h2>" + "".join(students) if students else ""))


def render_review(module: str, rubric: Rubric, answers: dict[str, dict[str, str]], scored, auto,
                  code: dict[str, str | None] | None = None, quality=None) -> str:
    """The review page (pure): per question, each student's answer beside the rubric."""
    entered = {(s, q): v for s, q, v in zip(scored["student"], scored["question"], scored["score"])}
    tests = {}
    if auto is not None:
        tests = {s: f"{p:g} / {m:g}" for s, p, m in zip(auto["student"], auto["auto_points"], auto["auto_max"])}
    body = [f"<p>{len(answers)} submissions. Scores go in <code>grades/manual/{esc(module)}.yaml</code>; "
            f"this page is regenerated by <code>tito nbgrader review {esc(module)}</code>.</p>"]
    for q in rubric.questions:
        body.append(f"<h2>{esc(q.id)}: {esc(q.title)} ({q.points:g} points)</h2>"
                    f'<div class="grid"><div class="card answer">{esc(q.prompt)}</div>'
                    f'<div class="card">{_rubric_panel(rubric, q.id)}</div></div>')
        for student, their in answers.items():
            text = their.get(q.id, "")
            score = entered.get((student, q.id))
            mark = badge("not scored", "warn") if score is None or score != score else badge(f"{score:g} / {q.points:g}", "ok")
            problem = f'<p class="muted">{esc(their["_error"])}</p>' if "_error" in their else ""
            shown = esc(text) if text.strip() else '<span class="muted">(no answer)</span>'
            body.append(f'<div class="card"><h3>{esc(student)} {mark} '
                        f'<span class="muted">tests {esc(tests.get(student, "not graded"))}</span></h3>'
                        f'{problem}<div class="answer">{shown}</div></div>')
    body.append(_calibration(rubric, code, quality))
    return page(f"Review {module}: ML-systems questions", "".join(body),
                "Rubric bands and look-for items beside every answer")
