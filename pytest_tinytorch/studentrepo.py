"""`tito nbgrader release --all --to DIR`: a complete student repository (a GitHub Classroom template).

It holds the released notebooks, the public graded tests, the grading plugin, a tinytorch
package whose module files are exported from the *released* notebooks (stubs, no solutions),
and a README for students. It never holds a module source, a hidden test or a rubric answer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from . import assignments, export, registry, source
from .safety import write_guarded

STUDENT_README = """\
# TinyTorch: build your own ML framework

You will build an ML framework from scratch in NumPy, one module a week. Each module is a
notebook in `curriculum/NN_name/NN_name.ipynb`: read it, replace every
`raise NotImplementedError("Implement ...")` with your code, run its check cells.

## Set up (once)

```bash
python -m venv .venv && . .venv/bin/activate
pip install -e . && pytest --module 01_tensor
```

The second command grades module 01 and scores 0 until you implement it.

## Check your work

```bash
pytest --module 01_tensor            # your points, test by test
tito module test 01_tensor --verbose # the same, with every failure in full
tito export 01_tensor                # turn your notebook into tinytorch/core/tensor.py
```

Later modules import your earlier work (`from tinytorch.core.tensor import Tensor`): export each
module when you finish it. Your instructor also runs hidden tests with other inputs, and a TA
grades your answers to the three ML-systems questions at the end of each notebook.

## Milestones and projects

`curriculum/milestones/` holds scripts that train real models with *your* package: run
`python curriculum/milestones/digits_mlp.py` once modules 01-08 are exported (the table in
`curriculum/milestones/README.md` says which modules each one needs). The midterm project is a
notebook graded like a module, `curriculum/midterm/midterm.ipynb` (`pytest --module midterm`;
handout in its README): it runs on your own exported package. The final project's handout is
in `curriculum/projects/final/`; the capstone's leaderboard is `python -m tinytorch.olympics FOLDER`.

If a notebook gets into a bad state, `tito module reset 01_tensor` restores the released one
(your current notebook is kept as a timestamped backup beside it).
"""

GITIGNORE = "__pycache__/\n*.egg-info/\n.venv/\n.ipynb_checkpoints/\n*.bak\n"
CONFTEST = "# The grading plugin is registered by the `pytest11` entry point (pyproject.toml).\n"


def _copy_package(src: Path, dest: Path, force: bool, log: list[str]):
    for path in sorted(src.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        target = dest / path.relative_to(src)
        if path.suffix in (".py", ".md", ".yaml", ".txt", ".toml"):
            log.append(f"{target}: {write_guarded(target, path.read_text(encoding='utf-8'), force=force)}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def release_repository(root: Path, dest: Path, force: bool = False) -> list[str]:
    """Write the student repository for every module that has a source; returns what happened."""
    dest = Path(dest).resolve()
    log: list[str] = []
    modules = [m for m in registry.assignments(root) if m.source(root).is_file()]
    exported = {m.exports for m in registry.load(root)}
    # The plugin and the tools, as they are.
    _copy_package(root / "pytest_tinytorch", dest / "pytest_tinytorch", force, log)
    # tinytorch/: everything except module exports (data, __init__ files), then stub exports.
    for path in sorted((root / "tinytorch").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() or "__pycache__" in path.parts or rel in exported:
            continue
        target = dest / rel
        if path.suffix == ".py":
            log.append(f"{target}: {write_guarded(target, path.read_text(encoding='utf-8'), force=force)}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    for module in modules:
        cells = source.read(module.source(root))
        nb = assignments.student_notebook(cells, module.slug)
        text = nbformat.writes(nb) + "\n"
        folder = dest / "curriculum" / module.slug
        log.append(f"{module.slug}: {write_guarded(folder / f'{module.slug}.ipynb', text, force=force)}")
        # A pristine copy for `tito module reset`.
        write_guarded(folder / ".released" / f"{module.slug}.ipynb", text, force=True)
        tests = module.public_tests(root).read_text(encoding="utf-8")
        log.append(f"{module.slug} tests: {write_guarded(folder / module.public_tests(root).name, tests, force=force)}")
        for path in sorted(module.folder(root).glob("*.md")):   # a project's handout
            log.append(f"{path.relative_to(root).as_posix()}: {write_guarded(folder / path.name, path.read_text(encoding='utf-8'), force=force)}")
        if module.exports:
            stub_export = export.render(source.notebook_cells(nb), f"curriculum/{module.slug}/{module.slug}.ipynb")
            log.append(f"{module.exports}: {write_guarded(dest / module.exports, stub_export, force=force)}")
    # The milestones (scripts run against the student's own package) and the project handouts.
    curriculum = root / "curriculum"
    for path in sorted([*curriculum.glob("milestones/*.py"), *curriculum.glob("milestones/README.md"),
                        *curriculum.glob("projects/*/README.md")]):
        rel = path.relative_to(root)
        log.append(f"{rel.as_posix()}: {write_guarded(dest / rel, path.read_text(encoding='utf-8'), force=force)}")
    registry_text = (root / registry.REGISTRY_FILE).read_text(encoding="utf-8")
    write_guarded(dest / registry.REGISTRY_FILE, registry_text, force=force)
    # A student repository has no tests/ folder: its tests are the curriculum's graded tests.
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8").replace(
        'testpaths = ["tests"]', 'testpaths = ["curriculum"]')
    for name, text in [("pyproject.toml", pyproject),
                       ("conftest.py", CONFTEST),
                       ("README.md", STUDENT_README), (".gitignore", GITIGNORE)]:
        log.append(f"{name}: {write_guarded(dest / name, text, force=force)}")
    return log


def reset_notebook(root: Path, module: registry.Module) -> str:
    """Restore a module's released notebook, backing up the current one first."""
    pristine = module.folder(root) / ".released" / f"{module.slug}.ipynb"
    if pristine.is_file():
        text = pristine.read_text(encoding="utf-8")
    elif module.source(root).is_file():
        text = nbformat.writes(assignments.student_notebook(source.read(module.source(root)), module.slug)) + "\n"
    else:
        raise FileNotFoundError(f"no released copy of {module.slug} to restore (expected {pristine})")
    return write_guarded(module.notebook(root), text, force=True)
