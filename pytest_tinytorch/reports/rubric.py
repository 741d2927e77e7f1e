"""Rubrics (rubrics/*.yaml) and the TAs' manual score sheets (grades/manual/<module>.yaml).

A score sheet::

    module: 01_tensor
    students:
      alice:
        questions:
          q1: {score: 9, comment: "...", grader: ta1}     # score null: not graded yet
        code_quality: {score: 8, comment: "..."}           # optional, 0-10
        overrides:                                         # optional
          - {test: test_matmul, points: 2, reason: "..."}

`load_sheet` validates a sheet against the rubric, the students who submitted and the tests of
the score tables; every error names the file, the student and the key (`ScoreSheetError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .config import ConfigError

QUALITY_MAX = 10.0
MANUAL_DIR = Path("grades") / "manual"


class ScoreSheetError(ConfigError):
    """A manual score sheet names an unknown question, a score above the maximum, ..."""


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    prompt: str
    points: float
    look_for: tuple[str, ...]


@dataclass
class Rubric:
    module: str
    questions: list[Question]
    bands: list[dict] = field(default_factory=list)           # shared 0-10 bands (rubrics/course.yaml)
    look_for: list[str] = field(default_factory=list)         # shared "what to look for"
    calibration: list[dict] = field(default_factory=list)     # {level, points, code, why: [...]}
    correctness_first: float = 6.0

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.questions))

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)


def course_rules(root: Path) -> dict:
    """rubrics/course.yaml: grading split, bands, look_for, correctness_first, weights."""
    path = Path(root) / "rubrics" / "course.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_rubric(root: Path, module: str, rules: dict | None = None) -> Rubric:
    """The rubric of one module, with the course's shared bands; ConfigError naming the file."""
    path = Path(root) / "rubrics" / f"{module}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no rubric for module {module}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rules = course_rules(root) if rules is None else rules
    if raw.get("module") != module:
        raise ConfigError(f"{path}: module: expected {module!r}, got {raw.get('module')!r}")
    questions = []
    for i, q in enumerate(raw.get("questions") or []):
        if not isinstance(q, dict) or "id" not in q:
            raise ConfigError(f"{path}: questions[{i}]: expected a mapping with id, title, prompt, points, look_for")
        questions.append(Question(str(q["id"]), str(q.get("title", q["id"])), str(q.get("prompt", "")),
                                  float(q.get("points", 10)), tuple(q.get("look_for") or ())))
    if not questions:
        raise ConfigError(f"{path}: questions: expected the module's ML-systems questions (q1, q2, q3)")
    calibration = raw.get("calibration") or []
    if not isinstance(calibration, list):
        raise ConfigError(f"{path}: calibration: expected a list of {{level, points, code, why}}")
    return Rubric(module, questions, list(rules.get("bands") or []), list(rules.get("look_for") or []),
                  calibration, float(rules.get("correctness_first", 6)))


# --- score sheets ----------------------------------------------------------------------------

QUESTION_COLUMNS = ["student", "module", "question", "score", "max_score", "comment", "grader"]
QUALITY_COLUMNS = ["student", "module", "code_quality", "quality_comment"]
OVERRIDE_COLUMNS = ["student", "module", "test", "points", "reason"]


@dataclass
class Sheet:
    """One validated score sheet as three tables."""
    questions: pd.DataFrame    # QUESTION_COLUMNS; score NaN = not graded yet
    quality: pd.DataFrame      # QUALITY_COLUMNS
    overrides: pd.DataFrame    # OVERRIDE_COLUMNS


def sheet_path(course_dir: Path, module: str) -> Path:
    return Path(course_dir) / MANUAL_DIR / f"{module}.yaml"


def read_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ScoreSheetError(f"{path}: not valid YAML ({err})") from None


def _score(value, where: str, high: float) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScoreSheetError(f"{where}: expected a number from 0 to {high:g} (or null when not graded yet), "
                              f"got {value!r}")
    if not 0 <= value <= high:
        raise ScoreSheetError(f"{where}: {value:g} is outside 0..{high:g}")
    return float(value)


def validate_sheet(raw: dict, path: str, rubric: Rubric, submitted: set[str] | None = None,
                   test_max: dict[tuple[str, str], float] | None = None) -> Sheet:
    """Check a parsed sheet; `submitted` are the students who submitted the module and
    `test_max` maps (student, test) -> max_points of the score tables (None: not checked)."""
    module = rubric.module
    if not isinstance(raw, dict):
        raise ScoreSheetError(f"{path}: expected a mapping {{module: {module}, students: {{...}}}}")
    if raw.get("module") != module:
        raise ScoreSheetError(f"{path}: module: expected {module!r}, got {raw.get('module')!r}")
    students = raw.get("students") or {}
    if not isinstance(students, dict):
        raise ScoreSheetError(f"{path}: students: expected a mapping student -> {{questions: ...}}")
    qrows, crows, orows = [], [], []
    ids = [q.id for q in rubric.questions]
    for student, entry in students.items():
        student = str(student)
        where = f"{path}: students.{student}"
        if submitted is not None and student not in submitted:
            raise ScoreSheetError(f"{where}: this student did not submit {module}; remove the entry or check the name")
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ScoreSheetError(f"{where}: expected a mapping with questions, code_quality, overrides")
        for key in entry:
            if key not in ("questions", "code_quality", "overrides"):
                raise ScoreSheetError(f"{where}.{key}: unknown key; expected questions, code_quality or overrides")
        questions = entry.get("questions") or {}
        if not isinstance(questions, dict):
            raise ScoreSheetError(f"{where}.questions: expected a mapping q1 -> {{score, comment, grader}}")
        for qid, q in questions.items():
            qwhere = f"{where}.questions.{qid}"
            question = rubric.question(str(qid))
            if question is None:
                raise ScoreSheetError(f"{qwhere}: unknown question id; the rubric of {module} has {', '.join(ids)}")
            q = q if isinstance(q, dict) else {"score": q}
            qrows.append({"student": student, "module": module, "question": str(qid),
                          "score": _score(q.get("score"), qwhere + ".score", question.points),
                          "max_score": question.points, "comment": str(q.get("comment") or ""),
                          "grader": str(q.get("grader") or "")})
        quality = entry.get("code_quality")
        if quality is not None:
            quality = quality if isinstance(quality, dict) else {"score": quality}
            value = _score(quality.get("score"), f"{where}.code_quality.score", QUALITY_MAX)
            crows.append({"student": student, "module": module, "code_quality": value,
                          "quality_comment": str(quality.get("comment") or "")})
        overrides = entry.get("overrides") or []
        if not isinstance(overrides, list):
            raise ScoreSheetError(f"{where}.overrides: expected a list of {{test, points, reason}}")
        for i, o in enumerate(overrides):
            owhere = f"{where}.overrides[{i}]"
            if not isinstance(o, dict) or "test" not in o or "points" not in o:
                raise ScoreSheetError(f"{owhere}: expected {{test: test_name, points: N, reason: why}}")
            if not str(o.get("reason") or "").strip():
                raise ScoreSheetError(f"{owhere}.reason: missing; every override needs a reason the student will read")
            test = str(o["test"])
            high = None
            if test_max is not None:
                if (student, test) not in test_max:
                    raise ScoreSheetError(f"{owhere}.test: {test!r} is not a graded test of {student}'s {module}")
                high = test_max[(student, test)]
            points = _score(o["points"], f"{owhere}.points", high if high is not None else float("inf"))
            if points is None:
                raise ScoreSheetError(f"{owhere}.points: expected a number")
            orows.append({"student": student, "module": module, "test": test, "points": points,
                          "reason": str(o["reason"])})
    return Sheet(pd.DataFrame(qrows, columns=QUESTION_COLUMNS).astype({"score": float, "max_score": float}),
                 pd.DataFrame(crows, columns=QUALITY_COLUMNS).astype({"code_quality": float}),
                 pd.DataFrame(orows, columns=OVERRIDE_COLUMNS).astype({"points": float}))


def load_sheet(course_dir: Path, rubric: Rubric, submitted: set[str] | None = None,
               test_max: dict[tuple[str, str], float] | None = None) -> Sheet:
    """grades/manual/<module>.yaml, validated (empty tables when there is no sheet)."""
    path = sheet_path(course_dir, rubric.module)
    raw = read_yaml(path) if path.is_file() else {"module": rubric.module, "students": {}}
    return validate_sheet(raw, str(path), rubric, submitted, test_max)


def concat_sheets(sheets: list[Sheet]) -> Sheet:
    def cat(frames, columns):
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return Sheet(cat([s.questions for s in sheets], QUESTION_COLUMNS).astype({"score": float, "max_score": float}),
                 cat([s.quality for s in sheets], QUALITY_COLUMNS).astype({"code_quality": float}),
                 cat([s.overrides for s in sheets], OVERRIDE_COLUMNS).astype({"points": float}))
