"""The course configuration, `course.yaml` at the course folder root: load, validate, defaults.

    course:        {name: ..., term: ...}
    modules:       {<slug>: {due: 2026-09-13T23:59:00+00:00}}      ISO datetime with a timezone
    late_policy:   {grace_minutes: 15, penalty_per_day: 0.10, max_days_late: 5}
    extensions:    {<student>: {<slug>: <days>}}
    weights:       {modules: 0.64, checkpoints: 0.06, midterm: 0.15, final: 0.15}
    letter_grades: [{min: 93, letter: A}, ...]                      optional

Every error names the file, the key and what is expected (`ConfigError`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONFIG_NAME = "course.yaml"
WEIGHT_KEYS = ("modules", "checkpoints", "midterm", "final")
DEFAULT_WEIGHTS = {"modules": 0.64, "checkpoints": 0.06, "midterm": 0.15, "final": 0.15}
DEFAULT_LATE = {"grace_minutes": 15, "penalty_per_day": 0.10, "max_days_late": 5}
DEFAULT_LETTERS = [(93, "A"), (90, "A-"), (87, "B+"), (83, "B"), (80, "B-"), (77, "C+"), (70, "C"),
                   (60, "D"), (0, "F")]


class ConfigError(ValueError):
    """course.yaml (or another input file) is not what the reports expect."""


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: float = 15
    penalty_per_day: float = 0.10
    max_days_late: int = 5


@dataclass
class CourseConfig:
    name: str = "TinyTorch"
    term: str = ""
    due: dict[str, dt.datetime] = field(default_factory=dict)          # slug -> due (aware)
    late: LatePolicy = field(default_factory=LatePolicy)
    extensions: dict[tuple[str, str], float] = field(default_factory=dict)  # (student, slug) -> days
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    letters: list[tuple[float, str]] = field(default_factory=lambda: list(DEFAULT_LETTERS))
    path: Path | None = None


def parse_time(value, where: str) -> dt.datetime:
    """An aware datetime from an ISO-8601 string (or a YAML timestamp); `where` names the source."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO-8601 datetime; expected e.g. "
                              f"2026-09-13T23:59:00+00:00") from None
    else:
        raise ConfigError(f"{where}: expected an ISO-8601 datetime string, got {type(value).__name__}")
    if when.tzinfo is None:
        raise ConfigError(f"{where}: {value!s} has no timezone; write it with an offset, e.g. "
                          f"2026-09-13T23:59:00+00:00 or ...Z")
    return when


def _number(value, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where}: {value} is out of range; expected {low} <= value <= {high}")
    return float(value)


def _mapping(value, where: str, example: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping like {example}, got {type(value).__name__}")
    return value


def validate(raw, path: str = CONFIG_NAME, known_modules: list[str] | None = None) -> CourseConfig:
    """A CourseConfig from the parsed YAML `raw`; raises ConfigError naming path and key."""
    raw = _mapping(raw, path, "{course: ..., modules: ...}")
    allowed = {"course", "modules", "late_policy", "extensions", "weights", "letter_grades", "collect"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key {key!r}; expected one of {', '.join(sorted(allowed))}")
    config = CourseConfig(path=Path(path))
    course = _mapping(raw.get("course"), f"{path}: course", "{name: ..., term: ...}")
    config.name = str(course.get("name", config.name))
    config.term = str(course.get("term", ""))

    modules = _mapping(raw.get("modules"), f"{path}: modules", "{01_tensor: {due: 2026-09-13T23:59:00+00:00}}")
    for slug, entry in modules.items():
        where = f"{path}: modules.{slug}"
        if known_modules is not None and slug not in known_modules:
            raise ConfigError(f"{where}: unknown module; expected one of the registry's slugs "
                              f"({', '.join(known_modules[:4])}, ...)")
        entry = _mapping(entry, where, "{due: 2026-09-13T23:59:00+00:00}")
        if "due" not in entry:
            raise ConfigError(f"{where}: missing key 'due' (an ISO-8601 datetime with a timezone)")
        config.due[str(slug)] = parse_time(entry["due"], f"{where}.due")

    late = {**DEFAULT_LATE, **_mapping(raw.get("late_policy"), f"{path}: late_policy",
                                        "{grace_minutes: 15, penalty_per_day: 0.10, max_days_late: 5}")}
    for key in late:
        if key not in DEFAULT_LATE:
            raise ConfigError(f"{path}: late_policy.{key}: unknown key; expected {', '.join(DEFAULT_LATE)}")
    config.late = LatePolicy(
        grace_minutes=_number(late["grace_minutes"], f"{path}: late_policy.grace_minutes", 0),
        penalty_per_day=_number(late["penalty_per_day"], f"{path}: late_policy.penalty_per_day", 0, 1),
        max_days_late=int(_number(late["max_days_late"], f"{path}: late_policy.max_days_late", 0)))

    extensions = _mapping(raw.get("extensions"), f"{path}: extensions", "{alice: {01_tensor: 2}}")
    for student, per_module in extensions.items():
        per_module = _mapping(per_module, f"{path}: extensions.{student}", "{01_tensor: 2}")
        for slug, days in per_module.items():
            where = f"{path}: extensions.{student}.{slug}"
            if known_modules is not None and slug not in known_modules:
                raise ConfigError(f"{where}: unknown module")
            config.extensions[(str(student), str(slug))] = _number(days, where + " (days)", 0)

    weights = {**DEFAULT_WEIGHTS, **_mapping(raw.get("weights"), f"{path}: weights", str(DEFAULT_WEIGHTS))}
    for key in weights:
        if key not in WEIGHT_KEYS:
            raise ConfigError(f"{path}: weights.{key}: unknown key; expected {', '.join(WEIGHT_KEYS)}")
    config.weights = {k: _number(weights[k], f"{path}: weights.{k}", 0, 1) for k in WEIGHT_KEYS}
    if abs(sum(config.weights.values()) - 1) > 1e-9:
        raise ConfigError(f"{path}: weights: they sum to {sum(config.weights.values()):g}; expected 1")

    letters = raw.get("letter_grades")
    if letters is not None:
        if not isinstance(letters, list) or not letters:
            raise ConfigError(f"{path}: letter_grades: expected a list like [{{min: 93, letter: A}}, ...]")
        parsed = []
        for i, entry in enumerate(letters):
            where = f"{path}: letter_grades[{i}]"
            entry = _mapping(entry, where, "{min: 93, letter: A}")
            if "min" not in entry or "letter" not in entry:
                raise ConfigError(f"{where}: expected keys min and letter, like {{min: 93, letter: A}}")
            parsed.append((_number(entry["min"], f"{where}.min", 0, 100), str(entry["letter"])))
        config.letters = sorted(parsed, reverse=True)
    return config


def load(course_dir: Path, known_modules: list[str] | None = None) -> CourseConfig:
    """course.yaml of `course_dir`, validated; the defaults (no due dates) when there is none."""
    path = Path(course_dir) / CONFIG_NAME
    if not path.is_file():
        return CourseConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    return validate(raw, str(path), known_modules)


def default(modules: list[str], start: dt.date, name: str = "ML Systems Engineering with TinyTorch",
            weeks: dict[str, int] | None = None) -> dict:
    """A default course.yaml as a dict: module k due on Sunday 23:59 UTC of its week."""
    due = {}
    for index, slug in enumerate(modules):
        week = (weeks or {}).get(slug, index + 1)
        when = dt.datetime.combine(start + dt.timedelta(weeks=week - 1, days=6), dt.time(23, 59),
                                   tzinfo=dt.timezone.utc)
        due[slug] = {"due": when.isoformat()}
    return {"course": {"name": name, "term": f"{start:%Y}"}, "modules": due,
            "late_policy": dict(DEFAULT_LATE), "extensions": {}, "weights": dict(DEFAULT_WEIGHTS),
            "letter_grades": [{"min": m, "letter": letter} for m, letter in DEFAULT_LETTERS]}
