"""What a student's kernel may import of the tinytorch package.

A module's notebook must be graded on the student's own code: its kernel may import the modules
*before* it (module 03 builds on `tinytorch.core.tensor`) but never the exported code of the
module being graded, nor of later ones (which would hand it the reference solution). The
grader builds that view once per module: a copy of the package without those files, placed
first on the kernel's PYTHONPATH and, in the sandbox, the only tinytorch it can see.

Projects and checkpoints run on the student's *own* package instead: `from_notebooks` renders
the export cells of the student's module notebooks over a copy of the course's package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import export, registry, source


def build(root: Path, module: registry.Module, package: Path, into: Path) -> Path:
    """Copy `package` (a tinytorch folder) into `into/tinytorch`, without the exports of
    `module` and every later module. Returns `into`, the folder to put on PYTHONPATH."""
    modules = registry.load(root)
    index = [m.slug for m in modules].index(module.slug)
    return build_with(package, into, banned={m.exports for m in modules[index:]})


def build_with(package: Path, into: Path, *, banned=(), overlay: dict[str, str] | None = None) -> Path:
    """Copy `package` into `into/tinytorch` leaving out the `banned` files and writing the
    `overlay` texts over theirs (both keyed "tinytorch/core/tensor.py"). Returns `into`."""
    banned = {Path(name).relative_to("tinytorch") for name in banned}
    target = into / "tinytorch"

    def ignore(folder, names):
        rel = Path(folder).relative_to(package)
        return {n for n in names if rel / n in banned or n == "__pycache__"}

    shutil.copytree(package, target, ignore=ignore, dirs_exist_ok=True)
    for name, text in (overlay or {}).items():
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # The sandboxed kernel runs as another user: it must be able to read the view.
    for path in [into, *into.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return into


def from_notebooks(root: Path, package: Path, into: Path, notebooks: dict[str, Path | None]) -> Path:
    """Copy `package` into `into/tinytorch` with the export of each module slug in `notebooks`
    rendered from that notebook (what `tito export` writes in the student's repository). A slug
    whose notebook is None gets the *released* stubs, as in a student repository where the module
    was never done (not the course's solution: skipping a module must not help).
    A damaged notebook raises kernel.NotebookProblem naming it. Returns `into`."""
    from .assignments import student_notebook
    from .kernel import NotebookProblem, load_notebook
    overlay = {}
    for slug, path in notebooks.items():
        module = registry.resolve(root, slug)
        if path is None:
            nb = student_notebook(source.read(module.source(root)), slug)
            overlay[module.exports] = export.render(source.notebook_cells(nb), f"the released {slug} (not submitted)")
            continue
        try:
            cells = source.notebook_cells(load_notebook(path))
        except NotebookProblem as problem:
            raise NotebookProblem(f"{path.parent.name}/{problem}") from None
        overlay[module.exports] = export.render(cells, f"{path.parent.name}/{path.name}")
    return build_with(package, into, overlay=overlay)
