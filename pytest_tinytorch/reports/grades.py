"""Grades: pure, vectorized pandas functions over the score tables, score sheets and times.

The rules (INSTRUCTOR_GUIDE.md "Grading Components" and "Assessment Strategy"):

* autograded fraction = sum(points) / sum(max_points) of the module's tests, public and hidden,
  after the TAs' overrides (an override replaces the points of one test);
* manual fraction = sum of the ML-systems question scores / sum of their maxima (3 x 10 = 30);
  a question not scored yet counts 0 and the module is flagged ``manual_complete = False``;
* raw module percent = 100 * (0.70 * autograded + 0.30 * manual)  (rubrics/course.yaml grading:);
* code quality (0-10, optional) is *reported, not counted*: the guide's 30% is the three
  ML-systems questions, and the code-quality calibration is guidance for those questions'
  "references specific code" criterion. The "correctness first" rule is applied to what is
  reported: ``code_quality_capped = min(code_quality, 6)`` unless every autograded test passed;
* late: submitted after due + extension + grace -> days_late = ceil(lateness / 24 h) (grace only
  decides on time or not; it is not subtracted); penalty = days_late * penalty_per_day on the
  module percent; more than max_days_late days -> the module scores 0. No timestamp.txt: on time,
  reported (``has_timestamp = False``);
* course percent = weights.modules * mean(module percent over the graded modules: registered,
  in course.yaml and due by `as_of`; a module not submitted counts 0)
  + checkpoints/midterm/final weights * their percentages (missing: 0): midterm and final from
  grades/projects.csv; checkpoints from grades/checkpoints/ when it holds results (100 *
  achieved / counted milestones, a milestone counted once every module it requires is graded),
  else from projects.csv.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CourseConfig
from .rubric import QUALITY_MAX, Rubric, Sheet

SCORE_COLUMNS = ["student", "module", "test", "points", "max_points", "outcome", "message", "duration_s", "hidden"]
KEY = ["student", "module"]
AUTO_WEIGHT, MANUAL_WEIGHT = 0.70, 0.30
NO_SUBMISSION = "no submission"   # how the plugin's message for a missing folder starts


# --- score tables ----------------------------------------------------------------------------

def normalize(scores: pd.DataFrame) -> pd.DataFrame:
    """A score table with the plugin's columns and proper types (hidden: bool, points: float)."""
    df = scores.reindex(columns=SCORE_COLUMNS).copy()
    for column in ("student", "module", "test", "outcome", "message"):
        df[column] = df[column].fillna("").astype(str)
    for column in ("points", "max_points", "duration_s"):
        df[column] = pd.to_numeric(df[column], errors="coerce").fillna(0.0).astype(float)
    hidden = df["hidden"]
    if hidden.dtype != bool:
        hidden = hidden.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    df["hidden"] = hidden
    return df.reset_index(drop=True)


def read_tables(*grades_dirs: Path) -> pd.DataFrame:
    """The union of every grades/<student>.csv of one or several folders (shard runs)."""
    frames = []
    for folder in grades_dirs:
        for path in sorted(Path(folder).glob("*.csv")):
            if path.name.startswith("."):
                continue
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            if {"student", "module", "test", "points"} <= set(frame.columns):  # not projects.csv, roster.csv
                frames.append(frame)
    if not frames:
        return normalize(pd.DataFrame(columns=SCORE_COLUMNS))
    return merge_tables([pd.concat(frames, ignore_index=True)])


def merge_tables(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One score table from several (shards, reruns): a (student, module, test) seen twice keeps
    its last row; rows ordered by student and module, tests in their table order. The result
    does not depend on how the students were split into shards."""
    frames = [normalize(f) for f in frames if len(f)]
    if not frames:
        return normalize(pd.DataFrame(columns=SCORE_COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df = df.drop_duplicates(subset=["student", "module", "test"], keep="last")
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


def apply_overrides(scores: pd.DataFrame, overrides: pd.DataFrame) -> pd.DataFrame:
    """Scores with the TAs' overrides applied: columns ``overridden`` and ``override_reason``."""
    df = scores.copy()
    if overrides is None or not len(overrides):
        df["overridden"], df["override_reason"] = False, ""
        return df
    o = overrides.drop_duplicates(["student", "module", "test"], keep="last")[
        ["student", "module", "test", "points", "reason"]].rename(columns={"points": "_new", "reason": "override_reason"})
    df = df.merge(o, on=["student", "module", "test"], how="left")
    df["overridden"] = df["_new"].notna()
    df["points"] = df["_new"].where(df["overridden"], df["points"]).clip(lower=0)
    df["points"] = np.minimum(df["points"], df["max_points"])
    df["override_reason"] = df["override_reason"].fillna("")
    return df.drop(columns="_new")


def autograded(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (student, module): auto_points, auto_max, tests, tests_passed, all_passed,
    not_implemented (tests whose message names NotImplementedError), errors, no_submission."""
    df = scores.assign(
        _passed=(scores["outcome"] == "passed") & (scores["points"] >= scores["max_points"]),
        _ni=scores["message"].str.contains("NotImplementedError", regex=False),
        _err=scores["outcome"] == "error",
        _nosub=scores["message"].str.startswith(NO_SUBMISSION))
    g = df.groupby(KEY, sort=True)
    out = pd.DataFrame({
        "auto_points": g["points"].sum(), "auto_max": g["max_points"].sum(), "tests": g.size(),
        "tests_passed": g["_passed"].sum(), "not_implemented": g["_ni"].sum(), "errors": g["_err"].sum(),
        "no_submission": g["_nosub"].all()}).reset_index()
    out["all_passed"] = out["tests_passed"] == out["tests"]
    out["auto_pct"] = 100 * _ratio(out["auto_points"], out["auto_max"])
    return out


def manual(sheet: Sheet) -> pd.DataFrame:
    """Per (student, module) of the score sheets: manual_points, questions_scored, code_quality."""
    q = sheet.questions
    g = q.assign(_scored=q["score"].notna()).groupby(KEY, sort=True)
    out = pd.DataFrame({"manual_points": g["score"].sum(min_count=0),
                        "questions_scored": g["_scored"].sum()}).reset_index()
    quality = sheet.quality.drop_duplicates(KEY, keep="last")[KEY + ["code_quality", "quality_comment"]]
    out = out.merge(quality, on=KEY, how="outer")
    out["manual_points"] = out["manual_points"].fillna(0.0)
    out["questions_scored"] = out["questions_scored"].fillna(0).astype(int)
    return out


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a / b.where(b > 0)).fillna(0.0)


# --- submissions and lateness ----------------------------------------------------------------

SUBMISSION_COLUMNS = ["student", "module", "submitted_at", "has_timestamp"]


def read_submissions(submitted_dir: Path, modules: list[str] | None = None) -> pd.DataFrame:
    """submitted/<student>/<module>/ folders and their timestamp.txt (UTC; NaT when missing or
    unreadable). I/O only; lateness is computed by `lateness`."""
    rows = []
    root = Path(submitted_dir)
    if root.is_dir():
        for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for module_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if modules is not None and module_dir.name not in modules:
                    continue
                stamp = module_dir / "timestamp.txt"
                text = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else ""
                rows.append({"student": student_dir.name, "module": module_dir.name, "submitted_at": text})
    df = pd.DataFrame(rows, columns=["student", "module", "submitted_at"])
    return parse_submissions(df)


def parse_submissions(df: pd.DataFrame) -> pd.DataFrame:
    """student, module, submitted_at (strings or timestamps) -> UTC timestamps + has_timestamp."""
    out = df[["student", "module"]].copy()
    text = df["submitted_at"].astype("string").str.strip().str.replace(r"Z$", "+00:00", regex=True)
    out["submitted_at"] = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    out["has_timestamp"] = out["submitted_at"].notna()
    return out.reset_index(drop=True)


def lateness(submissions: pd.DataFrame, config: CourseConfig) -> pd.DataFrame:
    """Per submission: due (with extension), minutes_late, days_late, late_penalty (0..1)."""
    df = submissions.copy()
    due = {m: pd.Timestamp(t).tz_convert("UTC") for m, t in config.due.items()}
    # (mapping through a dict: an empty datetime Series cannot be mapped in pandas 2)
    df["due"] = pd.to_datetime(df["module"].map(due), utc=True)
    ext = pd.Series(config.extensions, dtype=float)
    if len(ext):
        keys = pd.MultiIndex.from_frame(df[["student", "module"]])
        days = pd.Series(ext.reindex(keys).to_numpy(), index=df.index).fillna(0.0)
    else:
        days = pd.Series(0.0, index=df.index)
    df["extension_days"] = days
    df["due"] = df["due"] + pd.to_timedelta(days, unit="D")
    minutes = (df["submitted_at"] - df["due"]).dt.total_seconds() / 60
    late = minutes > config.late.grace_minutes            # NaN (no time or no due date): on time
    df["minutes_late"] = minutes.where(late, 0.0).fillna(0.0)
    df["days_late"] = np.ceil(df["minutes_late"] / 1440).astype(int)
    penalty = (df["days_late"] * config.late.penalty_per_day).clip(upper=1.0)
    df["late_penalty"] = penalty.where(df["days_late"] <= config.late.max_days_late, 1.0)
    return df


# --- module and course grades ----------------------------------------------------------------

def graded_modules(config: CourseConfig, registered: list[str], as_of: dt.datetime | None = None,
                   scores: pd.DataFrame | None = None) -> list[str]:
    """The modules that count in the course total: registered, in course.yaml and due by `as_of`.
    Without due dates (no course.yaml), the registered modules present in the score tables."""
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    if config.due:
        return [m for m in registered if m in config.due and config.due[m] <= as_of]
    present = set(scores["module"]) if scores is not None else set()
    return [m for m in registered if m in present]


def module_grades(scores: pd.DataFrame, sheet: Sheet, submissions: pd.DataFrame | None, config: CourseConfig,
                  modules: list[str], rubrics: dict[str, Rubric] | None = None,
                  students: list[str] | None = None) -> pd.DataFrame:
    """One row per (student, module) for every student and every module in `modules`.

    Columns: submitted, time_checked, has_timestamp, submitted_at, days_late, late_penalty, autograded,
    auto_points, auto_max, auto_pct, tests, tests_passed, all_passed, not_implemented, errors,
    manual_points, manual_max, manual_pct, questions_scored, manual_complete, code_quality,
    code_quality_capped, raw_pct, score_pct.
    """
    rubrics = rubrics or {}
    manual_max = {m: r.max_points for m, r in rubrics.items()}
    n_questions = {m: len(r.questions) for m, r in rubrics.items()}
    correctness_first = next((r.correctness_first for r in rubrics.values()), 6.0)
    scores = apply_overrides(scores, sheet.overrides)
    auto = autograded(scores)
    man = manual(sheet)
    everyone = set(scores["student"]) | set(man["student"]) | set(students or [])
    if submissions is not None:
        everyone |= set(submissions["student"])
    grid = pd.MultiIndex.from_product([sorted(everyone), list(modules)], names=KEY).to_frame(index=False)
    df = grid.merge(auto, on=KEY, how="left").merge(man, on=KEY, how="left")
    df["autograded"] = df["tests"].notna()
    # submitted: a submitted/<student>/<module>/ folder, or (when the folders are not at hand, as
    # in a CI report job that only has the shards' grades/) score rows that are not the plugin's
    # "no submission" zeros. time_checked: the folder was seen, so its timestamp.txt was looked for.
    graded_rows = df["autograded"] & ~df["no_submission"].fillna(True).astype(bool)
    if submissions is not None and len(submissions):
        late = lateness(submissions, config)[KEY + ["submitted_at", "has_timestamp", "days_late", "late_penalty"]]
        df = df.merge(late.assign(time_checked=True), on=KEY, how="left")
        df["time_checked"] = df["time_checked"].fillna(False).astype(bool)
    else:
        df["submitted_at"], df["has_timestamp"], df["time_checked"] = pd.NaT, False, False
        df["days_late"], df["late_penalty"] = 0, 0.0
    df["submitted"] = df["time_checked"] | graded_rows
    df["has_timestamp"] = df["has_timestamp"].fillna(False).astype(bool)
    df["days_late"] = df["days_late"].fillna(0).astype(int)
    df["late_penalty"] = df["late_penalty"].fillna(0.0)
    for column in ("auto_points", "auto_max", "auto_pct", "manual_points"):
        df[column] = df[column].fillna(0.0)
    for column in ("tests", "tests_passed", "not_implemented", "errors", "questions_scored"):
        df[column] = df[column].fillna(0).astype(int)
    df["all_passed"] = df["all_passed"].fillna(False).astype(bool)
    df = df.drop(columns=["no_submission"])
    df["manual_max"] = df["module"].map(manual_max).fillna(30.0)
    df["manual_complete"] = df["questions_scored"] >= df["module"].map(n_questions).fillna(3)
    df["manual_pct"] = 100 * _ratio(df["manual_points"], df["manual_max"])
    cap = np.where(df["all_passed"], QUALITY_MAX, correctness_first)
    df["code_quality_capped"] = np.minimum(df["code_quality"], cap)
    df["raw_pct"] = AUTO_WEIGHT * df["auto_pct"] + MANUAL_WEIGHT * df["manual_pct"]
    df["score_pct"] = df["raw_pct"] * (1 - df["late_penalty"])
    df.loc[~df["submitted"], ["raw_pct", "score_pct"]] = 0.0
    return df


def letters(percent: pd.Series, scale: list[tuple[float, str]]) -> pd.Series:
    """Letter of each percent: the highest `min` at or below it (below every min: the last letter)."""
    scale = sorted(scale)                      # ascending mins
    mins = np.array([m for m, _ in scale], dtype=float)
    names = np.array([n for _, n in scale], dtype=object)
    index = np.searchsorted(mins, percent.to_numpy(dtype=float) + 1e-9, side="right") - 1
    return pd.Series(names[np.clip(index, 0, None)], index=percent.index)


PROJECT_COLUMNS = ["checkpoints", "midterm", "final"]


def read_projects(path: Path) -> pd.DataFrame:
    """grades/projects.csv: student and any of checkpoints, midterm, final (percentages); a
    column left out counts as not graded yet. Empty when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=["student", *PROJECT_COLUMNS])
    df = pd.read_csv(path, dtype={"student": str})
    if "student" not in df.columns or not set(PROJECT_COLUMNS) & set(df.columns):
        from .config import ConfigError
        raise ConfigError(f"{path}: expected the columns student and any of {', '.join(PROJECT_COLUMNS)} "
                          f"(percentages), got {', '.join(map(str, df.columns))}")
    df = df.reindex(columns=["student", *PROJECT_COLUMNS])
    for c in PROJECT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def checkpoint_percent(table: pd.DataFrame, counted: list[str]) -> pd.Series:
    """Per student: 100 * (counted milestones achieved) / (counted milestones). `table` is
    checkpoints.read()'s (student, milestone, achieved); a counted milestone without a row is
    not achieved."""
    if not counted:
        return pd.Series(0.0, index=pd.Index(sorted(set(table["student"])), name="student"))
    rows = table[table["milestone"].isin(counted)]
    achieved = rows.groupby("student")["achieved"].sum().reindex(sorted(set(table["student"])), fill_value=0)
    return (100.0 * achieved / len(counted)).astype(float).rename_axis("student")


def course_grades(grades: pd.DataFrame, config: CourseConfig, graded: list[str],
                  projects: pd.DataFrame | None = None, project_weights: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per student: <module> percent columns, modules_pct (mean over the graded
    modules), checkpoints, midterm, final, total_pct, letter.

    `project_weights` maps a registered project (graded like a module, e.g. "midterm") to the
    course weight it fills: once graded (in `graded`), its module percent is that column,
    replacing projects.csv's; it never counts in modules_pct."""
    project_weights = project_weights or {}
    wide = grades.pivot(index="student", columns="module", values="score_pct")
    wide = wide.reindex(columns=list(dict.fromkeys(grades["module"])))
    modules = [m for m in graded if m not in project_weights]
    counted = wide.reindex(columns=modules).fillna(0.0)
    out = wide[[c for c in wide.columns if c not in project_weights]].copy()
    out["modules_pct"] = counted.mean(axis=1) if modules else 0.0
    proj = projects if projects is not None else pd.DataFrame(columns=["student", *PROJECT_COLUMNS])
    proj = proj.drop_duplicates("student", keep="last").set_index("student")[PROJECT_COLUMNS]
    out = out.join(proj, how="left")
    for slug, column in project_weights.items():
        if slug in graded:
            out[column] = wide[slug].fillna(0.0) if slug in wide.columns else 0.0
    w = config.weights
    total = w["modules"] * out["modules_pct"]
    for column in PROJECT_COLUMNS:
        total = total + w[column] * out[column].astype(float).fillna(0.0)
    out["total_pct"] = total
    out["letter"] = letters(out["total_pct"], config.letters)
    out.columns.name = None
    return out.reset_index()
