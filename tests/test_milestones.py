"""The milestones (curriculum/milestones/*.py) are achieved by the reference package, and break
when the student code they rely on is knocked out.

Every milestone defines TITLE, REQUIRES (module slugs), SABOTAGE (slug -> the task of one
solution region of that module, as the release stub names it), run(quick, seed) and
check(result, quick) (curriculum/milestones/README.md). For each milestone file found:

1. `run(quick=True)` in a fresh interpreter against the reference package must pass `check`;
2. for every slug in REQUIRES, a copy of the package whose export of that module is re-rendered
   with the SABOTAGE region stubbed (exactly what a student who skipped that task exports) must
   make the quick milestone fail: a non-empty `check` or an exception.

The metadata is read with `ast` (no import of the milestone in the pytest process); the runs
are subprocesses with one BLAS thread, the copy first on PYTHONPATH, in an empty working folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tinytorch import export, registry, source
from pytest_tinytorch.checkpoints import metadata

ROOT = Path(__file__).resolve().parents[1]
MILESTONES = ROOT / "curriculum" / "milestones"
FILES = sorted(p for p in MILESTONES.glob("*.py") if not p.name.startswith("_"))
MODULES = {m.slug: m for m in registry.load(ROOT)}

DRIVER = """\
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("milestone", sys.argv[1])
milestone = importlib.util.module_from_spec(spec)
spec.loader.exec_module(milestone)
result = milestone.run(quick=True, seed=0)
problems = milestone.check(result, quick=True)
import tinytorch
print("MILESTONE " + json.dumps({"result": result, "problems": problems, "package": tinytorch.__file__}, default=str))
"""


def run_quick(path: Path, workdir: Path, package_parent: Path | None = None, timeout: float = 120):
    """Run the quick milestone in a fresh interpreter; returns (returncode, parsed output or None, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(package_parent if package_parent is not None else ROOT)
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(path)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MILESTONE ")]
    parsed = json.loads(lines[-1][len("MILESTONE "):]) if proc.returncode == 0 and lines else None
    return proc.returncode, parsed, proc.stderr


def sabotaged_package(slug: str, task: str, into: Path) -> Path:
    """A copy of tinytorch/ in `into` with module `slug`'s export re-rendered with the solution
    region named `task` stubbed. Returns `into` (the folder to put on PYTHONPATH)."""
    module = MODULES[slug]
    src = module.source(ROOT)
    cells = source.read(src)
    regions = [r for r in source.solution_regions(cells) if r.task == task]
    assert regions, f"{slug} has no solution region {task!r}"
    shutil.copytree(ROOT / "tinytorch", into / "tinytorch", ignore=shutil.ignore_patterns("__pycache__"))
    text = export.render(source.without_solutions(cells, only=regions[0]), src.relative_to(ROOT).as_posix())
    (into / module.exports).write_text(text, encoding="utf-8")
    return into


def test_there_are_milestones():
    names = {p.stem for p in FILES}
    assert {"perceptron", "xor", "digits_mlp"} <= names, sorted(names)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_milestone_declares_its_contract(path):
    meta = metadata(path)
    assert isinstance(meta.get("TITLE"), str) and meta["TITLE"].strip(), "TITLE = '...'"
    assert {"run", "check"} <= meta["functions"], "run(quick=False, seed=0) and check(result, quick=False)"
    requires, sabotage = meta.get("REQUIRES"), meta.get("SABOTAGE")
    assert isinstance(requires, list) and requires and all(slug in MODULES for slug in requires), \
        f"REQUIRES must list module slugs of curriculum/modules.yaml, got {requires!r}"
    assert isinstance(sabotage, dict) and sorted(sabotage) == sorted(requires), \
        f"SABOTAGE needs one task for every slug in REQUIRES: {requires}, got {sorted(sabotage or {})}"
    for slug, task in sabotage.items():
        cells = source.read(MODULES[slug].source(ROOT))
        tasks = [r.task for r in source.solution_regions(cells)]
        assert task in tasks, f"{path.name}: {slug} has no solution region {task!r}; its tasks are {tasks}"
    assert "__main__" in path.read_text(encoding="utf-8"), "a script: `if __name__ == '__main__':` runs the full version"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_quick_milestone_is_achieved_by_the_reference(path, tmp_path):
    code, parsed, stderr = run_quick(path, tmp_path / "work")
    assert code == 0 and parsed is not None, f"{path.name} crashed:\n{stderr[-3000:]}"
    assert Path(parsed["package"]).resolve().is_relative_to(ROOT / "tinytorch")
    assert parsed["problems"] == [], f"{path.name}: {parsed['problems']} (result {parsed['result']})"


SABOTAGE_CASES = [(path, slug, task) for path in FILES
                  for slug, task in (metadata(path).get("SABOTAGE") or {}).items() if slug in MODULES]


@pytest.mark.parametrize("path,slug,task", SABOTAGE_CASES,
                         ids=[f"{p.stem}-{slug}" for p, slug, _ in SABOTAGE_CASES])
def test_milestone_fails_when_required_code_is_knocked_out(path, slug, task, tmp_path):
    package = sabotaged_package(slug, task, tmp_path / "pkg")
    code, parsed, stderr = run_quick(path, tmp_path / "work", package_parent=package)
    if parsed is not None:
        assert Path(parsed["package"]).resolve().is_relative_to(package.resolve()), \
            f"the run imported {parsed['package']}, not the sabotaged copy"
        assert parsed["problems"], \
            f"{path.name} is still achieved with {slug}'s {task!r} stubbed: result {parsed['result']}"
    else:
        assert code != 0, f"{path.name} produced no result:\n{stderr[-2000:]}"   # it raised: not achieved
