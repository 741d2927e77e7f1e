"""Everything the reports read from a course folder, loaded and validated in one place.

    course.yaml                          due dates, late policy, extensions, weights, letters
    grades/<student>.csv                 score tables (pytest --collect-submissions)
    grades/manual/<module>.yaml          the TAs' score sheets
    grades/checkpoints/<student>.csv     optional: the milestones run on each student's package
    grades/projects.csv                  optional: student, checkpoints, midterm, final
    grades/roster.csv                    optional: student, name, canvas_id, sis_user_id, sis_login_id, section
    submitted/<student>/<module>/        submissions and their timestamp.txt
    rubrics/<module>.yaml                in the course repository (`root`)

`load_course` does the I/O; `compute` is pure (grades.py); writers live in the other files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import checkpoints as cp
from .. import registry
from . import config as config_mod
from . import grades as g
from .rubric import Rubric, Sheet, concat_sheets, course_rules, load_rubric, load_sheet

ROSTER_COLUMNS = ["student", "name", "canvas_id", "sis_user_id", "sis_login_id", "section"]


@dataclass
class CourseData:
    course_dir: Path
    root: Path
    config: config_mod.CourseConfig
    registered: list[str]                     # every module of the registry, in course order
    modules: list[str]                        # the modules reported on
    rubrics: dict[str, Rubric]
    scores: pd.DataFrame                      # the union of grades/*.csv
    sheet: Sheet                              # all score sheets
    submissions: pd.DataFrame                 # student, module, submitted_at, has_timestamp
    projects: pd.DataFrame
    roster: pd.DataFrame
    as_of: dt.datetime
    warnings: list[str] = field(default_factory=list)
    checkpoints: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=cp.COLUMNS))
    milestones: dict[str, tuple[str, ...]] = field(default_factory=dict)   # name -> modules required


@dataclass
class Computed:
    modules: pd.DataFrame                     # grades.module_grades
    course: pd.DataFrame                      # grades.course_grades
    graded: list[str]                         # modules counted in the total
    scores: pd.DataFrame                      # score rows after overrides


def read_roster(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=ROSTER_COLUMNS)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "student" not in df.columns:
        raise config_mod.ConfigError(f"{path}: missing column 'student'; expected {', '.join(ROSTER_COLUMNS)}")
    return df.reindex(columns=ROSTER_COLUMNS).fillna("")


def load_course(course_dir: Path, root: Path | None = None, modules: list[str] | None = None,
                as_of: dt.datetime | None = None, grades_dirs: list[Path] | None = None) -> CourseData:
    """Read and validate a course folder. `root` is the course repository (rubrics, registry),
    by default found at or above `course_dir`; `modules` limits the report to some modules."""
    course_dir = Path(course_dir)
    root = Path(root) if root else registry.find_root(course_dir)
    registered = [m.slug for m in registry.assignments(root)]
    config = config_mod.load(course_dir, registered)
    scores = g.read_tables(*(grades_dirs or [course_dir / "grades"]))
    submissions = g.read_submissions(course_dir / "submitted", registered)
    if modules is None:
        present = set(scores["module"]) | set(submissions["module"]) | set(config.due)
        modules = [m for m in registered if m in present]
    else:
        modules = [registry.resolve(root, m).slug for m in modules]
    rules = course_rules(root)
    rubrics = {m: load_rubric(root, m, rules) for m in modules if registry.resolve(root, m).rubric(root).is_file()}
    sheets = []
    have_folders = (course_dir / "submitted").is_dir()
    for module, rubric in rubrics.items():
        rows = scores[scores["module"] == module]
        if have_folders:
            submitted = set(submissions.loc[submissions["module"] == module, "student"])
        else:  # a report job with only the score tables: who has rows other than "no submission"
            submitted = set(rows.loc[~rows["message"].str.startswith(g.NO_SUBMISSION), "student"])
        test_max = dict(zip(zip(rows["student"], rows["test"]), rows["max_points"]))
        sheets.append(load_sheet(course_dir, rubric, submitted, test_max if len(rows) else None))
    data = CourseData(course_dir, root, config, registered, modules, rubrics, scores, concat_sheets(sheets),
                      submissions, g.read_projects(course_dir / "grades" / "projects.csv"),
                      read_roster(course_dir / "grades" / "roster.csv"),
                      as_of or dt.datetime.now(dt.timezone.utc))
    tables = [cp.read(folder) for folder in (grades_dirs or [course_dir / "grades"])]
    data.checkpoints = pd.concat(tables, ignore_index=True).drop_duplicates(["student", "milestone"], keep="last")
    if len(data.checkpoints):
        data.milestones = {m.name: m.requires for m in cp.discover(root)}
        if data.projects["checkpoints"].notna().any():
            data.warnings.append("grades/projects.csv's checkpoints column is ignored: grades/checkpoints/ "
                                 "holds the graded checkpoints (`tito nbgrader checkpoints`)")
        unknown = sorted(set(data.checkpoints["milestone"]) - set(data.milestones))
        if unknown:
            data.warnings.append(f"checkpoint rows of unknown milestone(s) ignored: {', '.join(unknown)}")
    for project in registry.projects(root):
        column = project.weight
        if column in data.projects and data.projects[column].notna().any() and project.slug in modules \
                and project.slug in config.due:
            data.warnings.append(f"grades/projects.csv's {column} column is ignored once {project.slug} is due: "
                                 f"the graded {project.slug} notebook gives that grade")
    if not have_folders:
        data.warnings.append("no submitted/ folder: submission times unknown, no late penalties applied; "
                             "submissions are inferred from the score tables")
    no_time = submissions[~submissions["has_timestamp"]]
    for student, module in zip(no_time["student"], no_time["module"]):
        data.warnings.append(f"submitted/{student}/{module}/timestamp.txt is missing or unreadable: "
                             f"treated as on time")
    unknown = sorted(set(scores["module"]) - set(registered))
    if unknown:
        data.warnings.append(f"score rows of unregistered module(s) ignored: {', '.join(unknown)}")
    return data


def compute(data: CourseData) -> Computed:
    """Module and course grades of a loaded course (pure)."""
    students = sorted(set(data.roster["student"]) | set(data.projects["student"]) | set(data.checkpoints["student"]))
    scores = data.scores[data.scores["module"].isin(data.modules)]
    graded = g.graded_modules(data.config, data.modules, data.as_of, scores)
    modules = g.module_grades(scores, data.sheet, data.submissions[data.submissions["module"].isin(data.modules)],
                              data.config, data.modules, data.rubrics, students)
    projects = data.projects
    if len(data.checkpoints):
        # A checkpoint counts once every module it requires is graded (due by as_of).
        counted = [name for name, requires in data.milestones.items() if set(requires) <= set(graded)]
        percent = g.checkpoint_percent(data.checkpoints, counted)
        projects = projects.drop(columns="checkpoints").merge(
            percent.rename("checkpoints").reset_index(), on="student", how="outer")
    weights = {m.slug: m.weight for m in registry.projects(data.root) if m.weight}
    course = g.course_grades(modules, data.config, graded, projects, weights)
    return Computed(modules, course, graded, g.apply_overrides(scores, data.sheet.overrides))
