"""The quality bar of every module and project, checked by grading it like a class would be graded.

One `pytest --collect-submissions -n 2` run grades, for every module with a source: the reference
notebook (must score 100% of public and hidden points), the released notebook (0 points, every
test failed rather than errored), and one "knockout" notebook per solution region with only that
region stubbed (must lose points: a graded test that cannot fail is a defect).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from pytest_tinytorch import assignments, export, registry, source

from conftest import once_per_run

ROOT = Path(__file__).resolve().parents[1]
MODULES = [m for m in registry.assignments(ROOT) if m.source(ROOT).is_file()]   # projects too
IDS = [m.slug for m in MODULES]


def _grade_modules(work: Path, slugs: set[str]) -> dict:
    """One `pytest --collect-submissions -n 2` run grades every variant of the given modules (one
    session: the start-up of pytest and its workers is paid once, not once per module), and one
    more grades the projects'.
    Returns {slug: {"tasks": [...], "tables": {variant: rows}}}."""
    plan = {}
    for module in (m for m in MODULES if m.slug in slugs):
        cells = source.read(module.source(ROOT))
        regions = source.solution_regions(cells)
        variants = {"reference": source.to_notebook(source.without_markers(cells)),
                    "release": assignments.student_notebook(cells, module.slug)}
        for index, region in enumerate(regions):
            variants[f"ko{index:02d}"] = source.to_notebook(
                source.without_markers(source.without_solutions(cells, only=region)))
        # A project runs on the student's own module notebooks: its variants are students of
        # their own whose module notebooks are the reference ones (another module's knock-out
        # must not be what makes a project's knock-out lose points).
        names = {v: f"{module.slug}.{v}" if module.is_project else v for v in variants}
        base = work / ("submitted-projects" if module.is_project else "submitted")
        for variant, nb in variants.items():
            folder = base / names[variant] / module.slug
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{module.slug}.ipynb")
            for slug in module.requires:   # a project's student did every module it needs, right
                needed = registry.resolve(ROOT, slug)
                (base / names[variant] / slug).mkdir()
                nbformat.write(source.to_notebook(source.without_markers(source.read(needed.source(ROOT)))),
                               base / names[variant] / slug / f"{slug}.ipynb")
        plan[module.slug] = {"tasks": [r.task for r in regions], "variants": names}
    # Projects are graded in a session of their own (--module): their students' module notebooks
    # are there only to build the package, not to be graded again.
    sessions = {"modules": [], "projects": []}
    for module in (m for m in MODULES if m.slug in slugs):
        sessions["projects" if module.is_project else "modules"].append(module.slug)
    outputs = []
    for kind, chosen in sessions.items():
        if not chosen:
            continue
        where = work / ("submitted" if kind == "modules" else "submitted-projects")
        modules = [] if kind == "modules" else [arg for slug in chosen for arg in ("--module", slug)]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-submissions", "-n", "2", "-p", "no:randomly",
             "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "-q", "--no-header", *modules,
             "--submissions-dir", str(where), "--grades-dir", str(work / "grades")],
            cwd=ROOT, capture_output=True, text=True, timeout=3600,
            env={**os.environ, "TINYTORCH_GRADING_SECRET": "curriculum-check"},
        )
        outputs.append(result)
    result = subprocess.CompletedProcess([], 0, "".join(r.stdout for r in outputs), "".join(r.stderr for r in outputs))
    graded = {}
    for slug, entry in plan.items():
        tables = {}
        for variant, student in entry["variants"].items():
            path = work / "grades" / f"{student}.csv"
            assert path.is_file(), f"no score table for {student}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            with open(path, newline="") as handle:
                tables[variant] = [row for row in csv.DictReader(handle) if row["module"] == slug]
            assert tables[variant], f"no rows of {slug} for {student}:\n{result.stdout[-3000:]}"
        graded[slug] = {"tasks": entry["tasks"], "tables": tables}
    return graded


@pytest.fixture(params=MODULES, ids=IDS)
def graded(request, tmp_path_factory):
    """(module, solution-region tasks, {variant: rows}) of one module, from the shared run."""
    # The modules this session selected (`-k 09_spatial` grades one module, not all of them).
    slugs = {item.callspec.params["graded"].slug for item in request.session.items
             if "graded" in getattr(getattr(item, "callspec", None), "params", {})}
    entry = once_per_run(tmp_path_factory, "curriculum", lambda work: _grade_modules(work, slugs))[request.param.slug]
    return request.param, entry["tasks"], entry["tables"]


def _points(rows, hidden=None):
    rows = [r for r in rows if hidden is None or (r["hidden"] == "True") == hidden]
    return sum(float(r["points"]) for r in rows), sum(float(r["max_points"]) for r in rows)


def test_reference_scores_everything(graded):
    module, _, tables = graded
    rows = tables["reference"]
    failed = [(r["test"], r["message"]) for r in rows if r["outcome"] != "passed"]
    assert not failed, f"{module.slug}: the reference fails {failed}"
    got, most = _points(rows, hidden=False)
    assert most > 0 and got == most
    hidden_got, hidden_most = _points(rows, hidden=True)
    assert hidden_most > 0 and hidden_got == hidden_most, "every module needs hidden tests"


def test_release_scores_zero_without_plugin_errors(graded):
    module, _, tables = graded
    rows = tables["release"]
    assert _points(rows)[0] == 0, [r["test"] for r in rows if r["outcome"] == "passed"]
    assert {r["outcome"] for r in rows} == {"failed"}, "released stubs must fail tests, never error them"


def test_every_solution_region_is_graded(graded):
    module, regions, tables = graded
    full = _points(tables["reference"])[0]
    survivors = [regions[i] for i in range(len(regions)) if _points(tables[f"ko{i:02d}"])[0] >= full]
    assert not survivors, f"{module.slug}: no graded test fails when these are stubbed: {survivors}"


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_release_contains_no_solution_line_nor_reference_answer(module):
    cells = source.read(module.source(ROOT))
    released = "\n".join(c.source for c in assignments.student_notebook(cells, module.slug).cells)
    for region in source.solution_regions(cells):
        lines = cells[region.cell].source.split("\n")[region.begin + 1 : region.end]
        for line in lines:
            if len(line.strip()) > 12 and line.strip() not in _shared_lines(cells, region):
                assert line.strip() not in released, f"solution line leaked: {line.strip()!r}"
    for cell in cells:
        if "answer" in cell.tags:
            assert cell.source not in released


def _shared_lines(cells, region):
    """Lines of a solution that also appear outside every solution region (not secrets)."""
    outside = "\n".join(c.source for c in source.without_solutions(cells))
    return {line.strip() for line in outside.split("\n")}


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_module_files_rubric_and_export(module):
    assert module.public_tests(ROOT).is_file() and module.hidden_tests(ROOT).is_file()
    cells = source.read(module.source(ROOT))
    rubric = yaml.safe_load(module.rubric(ROOT).read_text())
    ids = [q["id"] for q in rubric["questions"]]
    assert rubric["module"] == module.slug and len(ids) == 3 and len(set(ids)) == 3
    assert all(q["points"] == 10 and q["prompt"].strip() and q["look_for"] for q in rubric["questions"])
    answers = [c.metadata.get("question") for c in cells if "answer" in c.tags]
    assert sorted(answers) == sorted(ids), "each rubric question needs one answer cell in the source"
    assert any("analysis" in c.tags for c in cells), "a systems-analysis cell that measures something"
    if module.is_project:
        assert module.exports is None and module.requires, "a project exports nothing and names the modules it runs on"
        return
    exported = (ROOT / module.exports).read_text(encoding="utf-8")
    assert exported == export.render(cells, module.source(ROOT).relative_to(ROOT).as_posix()), \
        f"{module.exports} differs from a fresh export: run `tito export {module.slug}`"
