"""The instructor's course folder: `tito nbgrader init` and the course configuration.

    assignments/source/   instructor notebooks (tito nbgrader generate)
    assignments/release/  student notebooks (tito nbgrader release)
    submitted/            submitted/<student>/<module>/ (tito nbgrader collect)
    grades/               score tables, manual score sheets (grades/manual/)
    feedback/             feedback/<student>/<module>/ (tito nbgrader feedback)
    reports/              gradebook, exports, progress (tito nbgrader report)
    course.yaml           course name, due dates, late policy, weights, extensions
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from . import registry
from .safety import write_guarded

FOLDERS = ["assignments/source", "assignments/release", "submitted", "grades", "feedback", "reports"]
CONFIG = "course.yaml"


def default_config(root: Path, name: str, start: dt.date) -> dict:
    """A course.yaml: each module (and project) due on the Sunday of its week of the 16-week schedule."""
    modules = {}
    for module in registry.assignments(root):
        due = dt.datetime.combine(start + dt.timedelta(weeks=module.week - 1, days=6), dt.time(23, 59),
                                  tzinfo=dt.timezone.utc)
        modules[module.slug] = {"due": due.isoformat()}
    course_rules = yaml.safe_load((root / "rubrics" / "course.yaml").read_text(encoding="utf-8"))
    return {
        "course": {"name": name, "term": f"{start:%Y}"},
        "modules": modules,
        "late_policy": {"grace_minutes": 15, "penalty_per_day": 0.10, "max_days_late": 5},
        "extensions": {},
        # Where `tito nbgrader collect` looks: GitHub Classroom clones are <assignment>-<username>/.
        "collect": {"from": "incoming", "assignment": "tinytorch"},
        "weights": dict(course_rules["weights"]),
        "letter_grades": [{"min": 93, "letter": "A"}, {"min": 90, "letter": "A-"}, {"min": 87, "letter": "B+"},
                          {"min": 83, "letter": "B"}, {"min": 80, "letter": "B-"}, {"min": 77, "letter": "C+"},
                          {"min": 70, "letter": "C"}, {"min": 60, "letter": "D"}, {"min": 0, "letter": "F"}],
    }


def init(root: Path, name: str = "ML Systems Engineering with TinyTorch", start: dt.date | None = None) -> list[str]:
    """Create the course folders and course.yaml; idempotent, never replaces existing files."""
    done = []
    for folder in FOLDERS:
        path = root / folder
        if path.is_dir():
            done.append(f"{folder}/ exists")
        else:
            path.mkdir(parents=True)
            done.append(f"{folder}/ created")
    config = root / CONFIG
    if config.exists():
        done.append(f"{CONFIG} exists (kept as it is)")
    else:
        start = start or dt.date.today()
        text = ("# TinyTorch course configuration, written by `tito nbgrader init`; edit freely.\n"
                "# Due dates follow the 16-week schedule of INSTRUCTOR_GUIDE.md from the start date.\n"
                + yaml.safe_dump(default_config(root, name, start), sort_keys=False))
        done.append(f"{CONFIG} {write_guarded(config, text)}")
    return done


def collect_settings(root: Path) -> dict:
    """The `collect:` section of course.yaml (empty when there is no course.yaml)."""
    path = root / CONFIG
    if not path.is_file():
        return {}
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = config.get("collect") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: collect: must be a mapping like {{from: incoming, assignment: tinytorch}}")
    return section


def require(root: Path, folder: str) -> Path:
    """A course folder, or an error that says which command creates it."""
    path = root / folder
    if not path.is_dir():
        raise FileNotFoundError(f"no {folder}/ folder in {root}: run `tito nbgrader init` first")
    return path
