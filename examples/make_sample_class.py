"""Build examples/sample_class/: a dozen synthetic students, two modules, every kind of submission.

    python examples/make_sample_class.py            # notebooks, timestamps, course.yaml, sheets, roster
    python examples/make_sample_class.py --grade    # ... and grades/*.csv from the real grader

Notebooks come from the curriculum sources (pytest_tinytorch.source): complete = the solutions
without markers, partial = some solution regions stubbed, released = every region stubbed, plus
answer cells of varying quality; broken ones are invalid JSON or raise at import. Outputs are
empty, and only the code and answer cells are kept (small files). Re-running the script rewrites the folder identically (stable cell ids, fixed times).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pytest_tinytorch import source  # noqa: E402
from pytest_tinytorch.reports.review import SHEET_HEADER  # noqa: E402

OUT = ROOT / "examples" / "sample_class"
MODULES = ["01_tensor", "02_activations"]
DUE = {"01_tensor": "2026-09-13T23:59:00+00:00", "02_activations": "2026-09-20T23:59:00+00:00"}

GENERIC = {
    "q1": "Bigger models need more memory, so we should use smaller data types when we can.",
    "q2": "A view does not copy the data and a copy does. Copies are slower.",
    "q3": "Bigger matrices take longer to multiply. Broadcasting saves memory.",
}
WEAK = {"q1": "It depends on the model.", "q2": "Not sure.", "q3": "Matmul is slow."}
HOSTILE = '<script>alert("grade me 10")</script> & <img src=x onerror=alert(1)> **ignore the rubric**'

# student -> module -> (kind, answers, submitted at; None = no timestamp.txt)
#   kind: complete | partial:<task>,<task> | released | invalid-json | raises | missing
#   answers: excellent | good | generic | weak | none | hostile
PLAN = {
    "alice":   {"01_tensor": ("complete", "excellent", "2026-09-14T00:10:00+00:00"),     # 11 min late: grace
                "02_activations": ("complete", "excellent", "2026-09-19T18:00:00+00:00")},
    "bob":     {"01_tensor": ("complete", "generic", "2026-09-15T20:00:00+00:00"),       # 2 days late
                "02_activations": ("complete", "good", "2026-09-20T23:00:00+00:00")},
    "carol":   {"01_tensor": ("partial:Tensor.matmul", "good", "2026-09-13T12:00:00+00:00"),
                "02_activations": ("complete", "good", "2026-09-20T10:00:00+00:00")},
    "dave":    {"01_tensor": ("complete", "good", "2026-09-12T09:30:00+00:00"),
                "02_activations": ("missing", None, None)},
    "erin":    {"01_tensor": ("invalid-json", None, "2026-09-13T23:00:00+00:00"),
                "02_activations": ("complete", "generic", "2026-09-20T22:00:00+00:00")},
    "frank":   {"01_tensor": ("complete", "good", "2026-09-13T20:00:00+00:00"),
                "02_activations": ("complete", "good", "2026-09-27T12:00:00+00:00")},    # 7 days: 0
    "grace":   {"01_tensor": ("partial:Tensor.reshape,Tensor.transpose,Tensor.sum", "weak", "2026-09-13T23:50:00+00:00"),
                "02_activations": ("partial:Softmax.forward", "weak", "2026-09-20T23:58:00+00:00")},
    "heidi":   {"01_tensor": ("complete", "excellent", "2026-09-15T10:00:00+00:00"),    # extension: 2 days
                "02_activations": ("complete", "excellent", "2026-09-20T08:00:00+00:00")},
    "ivan":    {"01_tensor": ("missing", None, None), "02_activations": ("missing", None, None)},
    "judy":    {"01_tensor": ("complete", "good", None),                                 # no timestamp.txt
                "02_activations": ("partial:GELU.forward,Sigmoid.forward", "generic", "2026-09-20T21:00:00+00:00")},
    "mallory": {"01_tensor": ("complete", "hostile", "2026-09-13T22:00:00+00:00"),
                "02_activations": ("raises", "generic", "2026-09-20T22:30:00+00:00")},
    "niaj":    {"01_tensor": ("released", "none", "2026-09-13T23:59:30+00:00"),
                "02_activations": ("missing", None, None)},
}

# Filled-in score sheets: 01 fully scored, 02 partly (some students not reviewed yet).
SCORES = {
    "01_tensor": {
        "alice": ([10, 9, 9], 9), "bob": ([5, 5, 6], 7), "carol": ([8, 7, 8], 8), "dave": ([8, 8, 7], None),
        "erin": ([0, 0, 0], None), "frank": ([7, 8, 7], 7), "grace": ([3, 2, 3], 5), "heidi": ([10, 10, 9], 10),
        "judy": ([7, 7, 8], None), "mallory": ([1, 0, 0], None), "niaj": ([0, 0, 0], None)},
    "02_activations": {
        "alice": ([9, 10, 9], 9), "bob": ([8, 7, 7], None), "carol": ([7, 8, 8], 9), "erin": ([5, 6, 5], None),
        "frank": ([8, 7, 8], None), "grace": ([4, 3, 2], 6), "heidi": ([10, 9, 10], None)},
}
COMMENTS = {10: "Excellent: exact numbers tied to your code and production practice.",
            9: "Very good; cite the measured numbers next time.", 8: "Good, some code references.",
            7: "Good understanding; add a systems implication.", 6: "Generic; refer to your implementation.",
            5: "Surface level: which numbers did section 7 print?", 4: "Misses the key concept.",
            3: "Attempted, but misses the key concept.", 2: "Very little here.", 1: "Off-topic.",
            0: "No answer."}
OVERRIDES = {("01_tensor", "carol"): [{"test": "test_matmul_shape_mismatch_raises_value_error", "points": 1,
                                       "reason": "Regrade: the ValueError check was right; the stub "
                                                 "was left in a helper you never call."}]}


def answers_for(quality, reference):
    if quality == "excellent":
        return dict(reference)
    if quality == "good":
        return {q: ". ".join(text.split(". ")[:2]).rstrip(".") + "." for q, text in reference.items()}
    if quality == "generic":
        return dict(GENERIC)
    if quality == "weak":
        return dict(WEAK)
    if quality == "hostile":
        return {q: HOSTILE for q in reference}
    return {q: "" for q in reference}


def build_notebook(module, kind, quality):
    cells = source.read(ROOT / "curriculum" / module / f"{module}.py")
    reference = {c.metadata["question"]: c.source for c in cells if "answer" in c.tags}
    if kind == "released":
        cells = source.without_solutions(cells)
    elif kind.startswith("partial:"):
        for task in kind.split(":", 1)[1].split(","):
            region = next(r for r in source.solution_regions(cells) if r.task == f"Implement {task}")
            cells = source.without_solutions(cells, only=region)
    answers = answers_for(quality, reference)
    for cell in cells:
        if "answer" in cell.tags:
            cell.source = answers[cell.metadata["question"]]
    if kind == "raises":   # a notebook that stops at its first code cell: graded 0 with the reason
        first = next(c for c in cells if c.kind == "code")
        first.source = "import numpy as np\nraise RuntimeError('half-finished edit: I broke my notebook')\n" + first.source
    # Keep the sample small: the lesson's markdown goes, code and answer cells stay.
    cells = [c for c in cells if c.kind == "code" or "answer" in c.tags]
    return source.to_notebook(source.without_markers(cells))


def sheet(module):
    students = {}
    for student, (scores, quality) in SCORES[module].items():
        entry = {"questions": {f"q{i + 1}": {"score": s, "comment": COMMENTS[s], "grader": "ta1" if i < 2 else "ta2"}
                               for i, s in enumerate(scores)}}
        if quality is not None:
            entry["code_quality"] = {"score": quality, "comment": "Readable, vectorized NumPy." if quality >= 8
                                     else "Works, but duplicated logic and magic numbers."}
        if (module, student) in OVERRIDES:
            entry["overrides"] = OVERRIDES[(module, student)]
        students[student] = entry
    # students who submitted but are not reviewed yet get empty entries (as `tito nbgrader review` writes)
    for student, plan in PLAN.items():
        if plan[module][0] != "missing" and student not in students:
            students[student] = {"questions": {q: {"score": None, "comment": "", "grader": ""} for q in ("q1", "q2", "q3")}}
    return {"module": module, "students": dict(sorted(students.items()))}


def build():
    for sub in ("submitted", "grades/manual", "reports", "feedback"):   # grades/*.csv stay (--grade rewrites them)
        shutil.rmtree(OUT / sub, ignore_errors=True)
    for student, plan in PLAN.items():
        for module, (kind, quality, when) in plan.items():
            if kind == "missing":
                continue
            folder = OUT / "submitted" / student / module
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "invalid-json":
                (folder / f"{module}.ipynb").write_text('{"cells": [ this is not a notebook\n')
            else:
                nbformat.write(build_notebook(module, kind, quality), str(folder / f"{module}.ipynb"))
            if when:
                (folder / "timestamp.txt").write_text(when + "\n")
    config = {
        "course": {"name": "ML Systems Engineering with TinyTorch (sample class)", "term": "Fall 2026"},
        "modules": {m: {"due": d} for m, d in DUE.items()},
        "late_policy": {"grace_minutes": 15, "penalty_per_day": 0.10, "max_days_late": 5},
        "extensions": {"heidi": {"01_tensor": 2}},
        "weights": {"modules": 0.64, "checkpoints": 0.06, "midterm": 0.15, "final": 0.15},
        "letter_grades": [{"min": 93, "letter": "A"}, {"min": 90, "letter": "A-"}, {"min": 87, "letter": "B+"},
                          {"min": 83, "letter": "B"}, {"min": 80, "letter": "B-"}, {"min": 77, "letter": "C+"},
                          {"min": 70, "letter": "C"}, {"min": 60, "letter": "D"}, {"min": 0, "letter": "F"}],
    }
    (OUT / "course.yaml").write_text("# Sample class: written by examples/make_sample_class.py\n"
                                     + yaml.safe_dump(config, sort_keys=False))
    manual = OUT / "grades" / "manual"
    manual.mkdir(parents=True, exist_ok=True)
    for module in MODULES:
        (manual / f"{module}.yaml").write_text(SHEET_HEADER.format(module=module, cap=6) + yaml.safe_dump(
            sheet(module), sort_keys=False, allow_unicode=True, width=100))
    roster = ["student,name,canvas_id,sis_user_id,sis_login_id,section"]
    for i, student in enumerate(PLAN, start=1):
        roster.append(f"{student},{student.capitalize()} Example,{1000 + i},S{2026000 + i},{student},"
                      f"{'A' if i % 2 else 'B'}")
    (OUT / "grades" / "roster.csv").write_text("\n".join(roster) + "\n")
    projects = ["student,checkpoints,midterm,final"]
    for i, student in enumerate(PLAN):
        projects.append(f"{student},{100 - 5 * (i % 4)},{95 - 3 * i},{90 - 4 * (i % 5)}")
    (OUT / "grades" / "projects.csv").write_text("\n".join(projects) + "\n")


def grade():
    """Grade the sample class with the real plugin (kernels; about a minute)."""
    env = {**os.environ, "TINYTORCH_GRADING_SECRET": "sample-class-secret"}
    env.pop("PYTEST_ADDOPTS", None)
    argv = [sys.executable, "-m", "pytest", "--collect-submissions", "-q", "--tb=no", "-p", "no:cacheprovider",
            "--submissions-dir", str(OUT / "submitted"), "--grades-dir", str(OUT / "grades"),
            *[a for m in MODULES for a in ("--module", m)]]
    code = subprocess.call(argv, cwd=ROOT, env=env)
    (OUT / "grades" / ".secret").unlink(missing_ok=True)
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grade", action="store_true", help="also write grades/*.csv with the real grader")
    args = parser.parse_args()
    build()
    sys.exit(grade() if args.grade else 0)
