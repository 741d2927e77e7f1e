"""Module sources in jupytext's percent format, and the notebooks made from them.

A source is plain Python: ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose
lines are commented with ``# ``. After the marker, ``key=value`` pairs with JSON values become
cell metadata (``tags=["export"]``, ``question="q1"``). See curriculum/README.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import SourceFormatError

CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
KEY_VALUE = re.compile(r'\s*(?P<key>[A-Za-z_][\w-]*)=(?P<value>\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\S+)')
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass
class Cell:
    kind: str                      # "code" or "markdown"
    source: str
    metadata: dict = field(default_factory=dict)
    line: int = 1                  # line of the cell marker in the source file

    @property
    def tags(self) -> list[str]:
        return list(self.metadata.get("tags", []))


def _parse_header(rest: str, path: str, line: int) -> tuple[str, dict]:
    kind = "code"
    rest = rest.strip()
    if rest.startswith("[markdown]") or rest.startswith("[md]"):
        kind, rest = "markdown", rest.split("]", 1)[1]
    metadata, pos = {}, 0
    while rest[pos:].strip():
        match = KEY_VALUE.match(rest, pos)
        if not match:
            raise SourceFormatError(
                f"{path}:{line}: cannot read the cell header {rest!r}; expected key=value pairs "
                f'with JSON values, like tags=["export"] question="q1"'
            )
        try:
            metadata[match["key"]] = json.loads(match["value"])
        except json.JSONDecodeError as err:
            raise SourceFormatError(f"{path}:{line}: {match['key']}= is not JSON ({err})") from None
        pos = match.end()
    return kind, metadata


def _uncomment(lines: list[str]) -> str:
    """Markdown cells are stored as comments: drop the leading '# ' (or a lone '#')."""
    out = []
    for text in lines:
        if text.startswith("# "):
            out.append(text[2:])
        elif text.rstrip() == "#":
            out.append("")
        else:
            out.append(text)
    return "\n".join(out)


def parse(text: str, path: str = "<source>") -> list[Cell]:
    """The cells of a percent-format source, in order (text before the first marker is dropped)."""
    cells: list[Cell] = []
    current: Cell | None = None
    body: list[str] = []

    def close():
        if current is not None:
            while body and not body[-1].strip():
                body.pop()
            while body and not body[0].strip():
                body.pop(0)
            current.source = _uncomment(body) if current.kind == "markdown" else "\n".join(body)
            cells.append(current)

    for number, text in enumerate(text.splitlines(), start=1):
        marker = CELL_MARKER.match(text)
        if marker:
            close()
            kind, metadata = _parse_header(marker["rest"], path, number)
            current, body = Cell(kind, "", metadata, number), []
        elif current is not None:
            body.append(text)
    close()
    return cells


def read(path: Path) -> list[Cell]:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), str(path))


def to_notebook(cells: list[Cell]) -> nbformat.NotebookNode:
    """An nbformat v4 notebook of the cells, outputs empty, ready for Jupyter."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(cells):
        make = nbformat.v4.new_code_cell if cell.kind == "code" else nbformat.v4.new_markdown_cell
        nb_cell = make(cell.source, metadata=dict(cell.metadata))
        # Stable ids keep regenerated notebooks byte-identical (nbformat otherwise draws random ids).
        nb_cell["id"] = f"cell-{index:03d}"
        nb.cells.append(nb_cell)
    return nb


def notebook_cells(nb) -> list[Cell]:
    """The cells of an nbformat notebook as `Cell`s (the inverse of `to_notebook`)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type in ("code", "markdown"):
            cells.append(Cell(cell.cell_type, cell.source, dict(cell.get("metadata", {}))))
    return cells


# --- solution regions -----------------------------------------------------------------------

DEF_OR_CLASS = re.compile(r"^(?P<indent>\s*)(?:async\s+)?(?P<kind>def|class)\s+(?P<name>\w+)")


@dataclass(frozen=True)
class Region:
    """One ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a code cell."""
    cell: int        # index of the cell in the cell list
    begin: int       # line index of the BEGIN marker within the cell
    end: int         # line index of the END marker within the cell
    indent: str
    task: str        # what the student is asked to do, e.g. "Implement Tensor.__add__"


def _task_name(lines: list[str], begin: int, indent: str) -> str:
    """Name the task after the function (and class) enclosing line `begin`."""
    names, limit = [], len(indent)
    for text in reversed(lines[:begin]):
        match = DEF_OR_CLASS.match(text)
        if match and len(match["indent"]) < limit:
            names.append(match["name"])
            limit = len(match["indent"])
            if limit == 0:
                break
    return "Implement " + ".".join(reversed(names)) if names else "Implement this part"


def solution_regions(cells: list[Cell], path: str = "<source>") -> list[Region]:
    """Every solution region, checked: markers paired, alone on their line, not nested."""
    regions = []
    for index, cell in enumerate(cells):
        if cell.kind != "code":
            continue
        lines = cell.source.split("\n")
        begin = None
        for number, text in enumerate(lines):
            stripped = text.strip()
            where = f"{path}:{cell.line + 1 + number}"
            if stripped.startswith(BEGIN_SOLUTION):
                if begin is not None:
                    raise SourceFormatError(f"{where}: {BEGIN_SOLUTION} inside another solution region")
                begin = number
            elif stripped.startswith(END_SOLUTION):
                if begin is None:
                    raise SourceFormatError(f"{where}: {END_SOLUTION} without a {BEGIN_SOLUTION} before it")
                indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
                regions.append(Region(index, begin, number, indent, _task_name(lines, begin, indent)))
                begin = None
        if begin is not None:
            raise SourceFormatError(f"{path}:{cell.line + 1 + begin}: {BEGIN_SOLUTION} is never closed")
    return regions


def stub(region: Region) -> str:
    return f'{region.indent}raise NotImplementedError("{region.task}")'


def without_solutions(cells: list[Cell], only: Region | None = None, path: str = "<source>") -> list[Cell]:
    """A copy of the cells with solution regions replaced by stubs (all, or `only` one).

    Used by the release (every region) and by the knockout check (one region at a time).
    """
    regions = solution_regions(cells, path)
    if only is not None:
        regions = [only]
    by_cell: dict[int, list[Region]] = {}
    for region in regions:
        by_cell.setdefault(region.cell, []).append(region)
    out = []
    for index, cell in enumerate(cells):
        if index not in by_cell:
            out.append(Cell(cell.kind, cell.source, dict(cell.metadata), cell.line))
            continue
        lines = cell.source.split("\n")
        for region in sorted(by_cell[index], key=lambda r: r.begin, reverse=True):
            lines[region.begin : region.end + 1] = [stub(region)]
        out.append(Cell(cell.kind, "\n".join(lines), dict(cell.metadata), cell.line))
    return out


def without_markers(cells: list[Cell]) -> list[Cell]:
    """The solution text kept, the marker lines dropped (the exported package, the reference)."""
    out = []
    for cell in cells:
        source = cell.source
        if cell.kind == "code":
            source = "\n".join(
                text for text in source.split("\n")
                if not text.strip().startswith((BEGIN_SOLUTION, END_SOLUTION))
            )
        out.append(Cell(cell.kind, source, dict(cell.metadata), cell.line))
    return out
