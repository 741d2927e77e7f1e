"""The back office: grades, manual review, feedback, progress and exports of a course folder.

Compute, persist, render are separate: `data.load_course` reads and validates the inputs,
`data.compute` (grades.py) is pure pandas, and each writer renders one kind of output.

    data = load_course(course_dir)            # course.yaml, grades/*.csv, grades/manual/*.yaml, submitted/
    computed = compute(data)                  # module_grades + course_grades
    write_reports(data, computed)             # reports/, feedback/
"""

from __future__ import annotations

from pathlib import Path

from .config import ConfigError
from .data import Computed, CourseData, compute, load_course
from .rubric import ScoreSheetError


def write_reports(data: CourseData, computed: Computed, feedback: bool = True) -> dict[str, Path]:
    """Every report: gradebook, long CSV, Canvas CSV, Gradescope results, progress, feedback."""
    from . import exports, feedback as fb, progress
    paths = {**exports.write_all(data, computed), **progress.write_progress(data, computed)}
    if feedback:
        fb.write_feedback(data, computed)
    return paths


__all__ = ["ConfigError", "ScoreSheetError", "CourseData", "Computed", "load_course", "compute", "write_reports"]
