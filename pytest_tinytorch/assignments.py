"""The notebooks made from a module source: the instructor's and the student's.

A small pipeline of single-purpose steps over cells (like nbgrader's preprocessors): strip
solutions, empty answers, mark cells. Each step takes cells and returns new cells.
"""

from __future__ import annotations

import nbformat

from . import source
from .source import Cell

ANSWER_PLACEHOLDER = "*Your answer here: a few sentences that refer to your code and to the measurements above.*"


def empty_answers(cells: list[Cell]) -> list[Cell]:
    """Answer cells of the ML-systems questions lose their reference answer."""
    return [Cell(c.kind, ANSWER_PLACEHOLDER, dict(c.metadata), c.line) if "answer" in c.tags else c for c in cells]


def mark_cells(nb: nbformat.NotebookNode, slug: str) -> nbformat.NotebookNode:
    """nbgrader-compatible metadata: solution cells editable, answers graded by hand, the rest locked."""
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        meta = {"schema_version": 3, "grade_id": f"{slug}-{index:03d}", "solution": False, "grade": False, "locked": True}
        if cell.cell_type == "code" and ("export" in tags or "NotImplementedError" in cell.source):
            meta.update(solution=True, locked=False)
        elif "answer" in tags:
            meta.update(solution=True, grade=True, locked=False, points=10, task=False)
        elif cell.cell_type == "code":
            meta.update(locked=False)  # checks and experiments students may run and change
        cell.metadata["nbgrader"] = meta
    return nb


def instructor_notebook(cells: list[Cell], slug: str) -> nbformat.NotebookNode:
    """With solutions and reference answers, solution markers kept (nbgrader's convention)."""
    return mark_cells(source.to_notebook(cells), slug)


def student_notebook(cells: list[Cell], slug: str) -> nbformat.NotebookNode:
    """Solutions replaced by stubs, answers emptied, no outputs: what students receive."""
    return mark_cells(source.to_notebook(empty_answers(source.without_solutions(cells))), slug)
