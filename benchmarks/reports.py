"""Back-office throughput: every report for a large class, from tables already in memory and
from files on disk.

    python benchmarks/reports.py [--students 1000] [--modules 20] [--tests 30] [--files]

Builds score tables (students x modules x tests rows), score sheets (3 questions each), a few
overrides, submission times (some late, some missing) and a course.yaml with every module due,
then times each step of pytest_tinytorch.reports: module grades, course grades, gradebook,
Canvas CSV, long CSV, progress (status, needs attention, heatmap SVG), Gradescope results and
feedback pages. With --files it also writes the score tables as grades/<student>.csv and times
reading them back (the I/O `tito nbgrader report` does). Prints wall and CPU seconds per step (on a shared
machine the CPU time is the steadier figure). No test asserts on these times.

Measured 2026-11-25 (Linux, 2 cores, Python 3.11, pandas 3.1; 1,000 x 20 x 30 = 600,000 score
rows, 19,431 submissions), one process:

    read_tables, 1,000 grades/*.csv                         2.4 s
    module + course grades (overrides, lateness, manual)    0.8 s
    gradebook (CSV, table), Canvas, long CSV (46 MB), progress CSV,
      needs attention, progress page with the heatmap      2.6 s   (long CSV alone 1.5 s)
    = every class-level report from the tables in memory   3.4 s
    group rows per submission (for per-file outputs)        2.0 s
    20,000 Gradescope results.json (as JSON text)           1.9 s
    20,000 feedback pages (HTML text)                       3.7 s
"""

from __future__ import annotations

import argparse
import json
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pytest_tinytorch import registry  # noqa: E402
from pytest_tinytorch.reports import config as cfg, exports, feedback, grades as g, progress  # noqa: E402
from pytest_tinytorch.reports.data import Computed  # noqa: E402
from pytest_tinytorch.reports.files import by_submission  # noqa: E402
from pytest_tinytorch.reports.rubric import Question, Rubric, Sheet  # noqa: E402
from targets import report  # noqa: E402  (benchmarks/targets.py)


def make_class(n_students: int, n_modules: int, n_tests: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    modules = [m.slug for m in registry.load(ROOT)][:n_modules]
    students = [f"student{i:05d}" for i in range(n_students)]
    s_idx, m_idx, t_idx = np.meshgrid(np.arange(n_students), np.arange(n_modules), np.arange(n_tests), indexing="ij")
    s_idx, m_idx, t_idx = s_idx.ravel(), m_idx.ravel(), t_idx.ravel()
    max_points = (t_idx % 3 + 1).astype(float)
    passed = rng.random(len(s_idx)) < 0.8
    hidden = t_idx >= n_tests * 2 // 3
    message = np.where(passed, "", np.where(hidden, "hidden test failed: wrong result",
                                            "AssertionError: expected [1. 2.] got [1. 3.]"))
    scores = pd.DataFrame({
        "student": np.array(students, dtype=object)[s_idx], "module": np.array(modules, dtype=object)[m_idx],
        "test": np.char.add("test_", t_idx.astype(str)).astype(object), "points": np.where(passed, max_points, 0.0),
        "max_points": max_points, "outcome": np.where(passed, "passed", "failed"), "message": message,
        "duration_s": (rng.random(len(s_idx)) * 0.02).round(3), "hidden": hidden})  # 3 decimals, as the plugin writes
    # score sheets: 3 questions, 10 points, 5% not scored yet
    qs = pd.MultiIndex.from_product([students, modules, ["q1", "q2", "q3"]], names=["student", "module", "question"]).to_frame(index=False)
    score = rng.integers(0, 11, len(qs)).astype(float)
    score[rng.random(len(qs)) < 0.05] = np.nan
    qs = qs.assign(score=score, max_score=10.0, comment="Good: cite the numbers of section 7.", grader="ta1")
    quality = pd.DataFrame({"student": np.repeat(students, n_modules), "module": np.tile(modules, n_students),
                            "code_quality": rng.integers(3, 11, n_students * n_modules).astype(float),
                            "quality_comment": ""})
    failed = scores[~passed].sample(min(500, int((~passed).sum())), random_state=seed)
    overrides = failed[["student", "module", "test"]].assign(points=failed["max_points"] / 2, reason="regrade")
    sheet = Sheet(qs, quality, overrides)
    # submissions: 3% missing, 10% late by 0-8 days, 2% without a time
    start = dt.datetime(2026, 9, 7, 23, 59, tzinfo=dt.timezone.utc)
    due = {m: start + dt.timedelta(weeks=i) for i, m in enumerate(modules)}
    subs = pd.MultiIndex.from_product([students, modules], names=["student", "module"]).to_frame(index=False)
    subs = subs[rng.random(len(subs)) > 0.03]
    offset = np.where(rng.random(len(subs)) < 0.10, rng.random(len(subs)) * 8 * 24, -rng.random(len(subs)) * 48)
    times = subs["module"].map(due) + pd.to_timedelta(offset, unit="h")
    times = times.where(rng.random(len(subs)) > 0.02)
    subs = g.parse_submissions(subs.assign(submitted_at=times.map(lambda t: "" if pd.isna(t) else t.isoformat())))
    config = cfg.validate(cfg.default(modules, dt.date(2026, 9, 1)), "course.yaml", modules)
    config.due = due
    rubrics = {m: Rubric(m, [Question(q, q, "", 10.0, ()) for q in ("q1", "q2", "q3")]) for m in modules}
    projects = pd.DataFrame({"student": students, "checkpoints": rng.integers(50, 101, n_students),
                             "midterm": rng.integers(40, 101, n_students), "final": rng.integers(40, 101, n_students)})
    return scores, sheet, subs, config, modules, rubrics, projects


class Timer:
    def __init__(self):
        self.rows = []

    def __call__(self, label, fn, *args, **kwargs):
        t, c = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        self.rows.append((label, time.perf_counter() - t, time.process_time() - c))
        print(f"{label:<52} {self.rows[-1][1]:8.3f} s wall {self.rows[-1][2]:8.3f} s cpu", flush=True)
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--tests", type=int, default=30)
    parser.add_argument("--files", action="store_true", help="also write and read grades/<student>.csv")
    parser.add_argument("--feedback", type=int, default=20000, help="feedback pages to render (0: none)")
    args = parser.parse_args()
    timer = Timer()
    scores, sheet, subs, config, modules, rubrics, projects = timer(
        "build the synthetic class", make_class, args.students, args.modules, args.tests)
    print(f"{len(scores):,} score rows, {len(sheet.questions):,} question scores, {len(subs):,} submissions")
    if args.files:
        from pytest_tinytorch.scores import to_csv
        with tempfile.TemporaryDirectory() as tmp:
            def write():
                for student, rows in scores.groupby("student", sort=False):
                    (Path(tmp) / f"{student}.csv").write_text(to_csv(rows.to_dict("records")))
            timer("write grades/<student>.csv (setup)", write)
            scores = timer("read_tables: all grades/*.csv", g.read_tables, Path(tmp))
    t0, c0 = time.perf_counter(), time.process_time()
    mg = timer("module_grades (overrides, lateness, manual)", g.module_grades, scores, sheet, subs, config, modules, rubrics)
    graded = g.graded_modules(config, modules, dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    cg = timer("course_grades (weights, letters)", g.course_grades, mg, config, graded, projects)
    after = timer("apply_overrides (for feedback and exports)", g.apply_overrides, scores, sheet.overrides)
    computed = Computed(mg, cg, graded, after)
    book = timer("gradebook", exports.gradebook, computed)
    timer("gradebook CSV", exports.gradebook_csv, book)
    timer("gradebook terminal table", exports.gradebook_table, book)
    timer("long CSV", exports.long_csv, computed)
    data = type("D", (), {"roster": pd.DataFrame(columns=["student", "name", "canvas_id", "sis_user_id",
                                                           "sis_login_id", "section"]),
                          "modules": modules, "projects": projects})()
    timer("Canvas CSV", lambda: exports.canvas_csv(exports.canvas_frame(data, computed)))
    timer("class progress CSV", progress.class_csv, mg)
    att = timer("needs attention", progress.needs_attention, mg, graded)
    timer("progress page with heatmap SVG", progress.render, mg, att)
    core, core_cpu = time.perf_counter() - t0, time.process_time() - c0
    groups = timer("group score rows by submission", by_submission, after)
    keyed = timer("module grade rows as dicts", lambda: {(r["student"], r["module"]): r for r in mg.to_dict("records")})
    timer(f"Gradescope results.json x {len(groups):,} (json text)",
          lambda: [json.dumps(exports.gradescope_results(t, keyed[k])) for k, t in groups.items()])
    keys = []
    if args.feedback:
        qgroups = by_submission(sheet.questions)
        keys = list(groups)[: args.feedback]
        timer(f"feedback pages x {len(keys):,}",
              lambda: [feedback.render(*k, groups[k], keyed[k], qgroups.get(k, [])) for k in keys])
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\ngrades + gradebook + exports + progress (no per-submission files): {core:.2f} s wall, "
          f"{core_cpu:.2f} s cpu")
    print(f"every report from the tables, with Gradescope results and feedback pages: {total:.2f} s wall, "
          f"{total_cpu:.2f} s cpu")

    # The target: every report for 1,000 students x 20 modules x 30 tests from the score
    # tables in seconds, not minutes (here: under a minute of wall time). A smaller class, or
    # fewer feedback pages than submissions, does not measure it.
    n_modules = len(modules)
    name = f"all reports, {args.students:,} students x {n_modules} modules x {args.tests} tests"
    goal = "seconds, not minutes (under 60 s)"
    full = args.students >= 1000 and n_modules >= 20 and args.tests >= 30 and len(keys) == len(groups)
    if full:
        report(name, f"{total:.1f} s wall ({total_cpu:.1f} s cpu)", goal, total < 60)
    else:
        report(name, f"{total:.1f} s wall, smaller than 1,000 x 20 x 30 with every feedback page", goal, None)


if __name__ == "__main__":
    main()
