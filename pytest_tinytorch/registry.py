"""The module registry: the one list of TinyTorch modules and projects (curriculum/modules.yaml).

One slug, ``NN_name`` (e.g. ``01_tensor``), joins a module's source, notebook, graded tests,
``module`` marker, rubric and score rows. Everything else asks this file for modules.

A *project* (the midterm: ``midterm``) is graded exactly like a module (a notebook, public and
hidden tests, a rubric for the manual 30%) but exports nothing into the package, counts towards
its own course weight instead of module completion, and runs on the student's own package:
the exports of the modules it ``requires``, taken from the student's notebooks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import UnknownModuleError

REGISTRY_FILE = Path("curriculum") / "modules.yaml"


@dataclass(frozen=True)
class Module:
    slug: str            # "01_tensor"
    title: str           # "Tensor"
    week: int            # week of the 16-week schedule
    focus: str
    exports: str | None = None   # "tinytorch/core/tensor.py", relative to the repository root
    kind: str = "module"         # or "project"
    weight: str | None = None    # a project's course weight ("midterm"; rubrics/course.yaml weights)
    requires: tuple[str, ...] = ()   # a project's modules, run from the student's own notebooks
    notebook_timeout: float | None = None   # a project's own limits (seconds), when it trains models:
    test_timeout: float | None = None       # they replace the grader's defaults for its kernels
    cpu_seconds: int | None = None

    @property
    def number(self) -> str:
        return self.slug.split("_", 1)[0]

    @property
    def name(self) -> str:
        return self.slug.split("_", 1)[-1]

    @property
    def is_project(self) -> bool:
        return self.kind == "project"

    def folder(self, root: Path) -> Path:
        return root / "curriculum" / self.slug

    def source(self, root: Path) -> Path:
        """The percent-format source with solutions (absent in a student repository)."""
        return self.folder(root) / f"{self.slug}.py"

    def notebook(self, root: Path) -> Path:
        """The notebook a student works in."""
        return self.folder(root) / f"{self.slug}.ipynb"

    def public_tests(self, root: Path) -> Path:
        return self.folder(root) / f"test_{self.slug}.py"

    def hidden_tests(self, root: Path) -> Path:
        return self.folder(root) / f"test_{self.slug}_hidden.py"

    def rubric(self, root: Path) -> Path:
        return root / "rubrics" / f"{self.slug}.yaml"


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder at or above `start` holding the registry."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / REGISTRY_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"no {REGISTRY_FILE} found in {start} or any parent folder; run this from a TinyTorch "
        f"checkout (the course repository or a released student repository)"
    )


@functools.lru_cache(maxsize=None)
def _read(root: Path) -> dict:
    return yaml.safe_load((Path(root) / REGISTRY_FILE).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def load(root: Path) -> tuple[Module, ...]:
    """All modules of the registry at `root`, in course order (projects not included)."""
    return tuple(Module(**entry) for entry in _read(Path(root))["modules"])


@functools.lru_cache(maxsize=None)
def projects(root: Path) -> tuple[Module, ...]:
    """The projects of the registry at `root` (graded like modules; see the module docstring)."""
    out = []
    for entry in _read(Path(root)).get("projects") or []:
        entry = {**entry, "kind": "project", "requires": tuple(entry.get("requires") or ())}
        out.append(Module(**entry))
    return tuple(out)


def assignments(root: Path) -> tuple[Module, ...]:
    """Everything a student hands in and the grader grades: the modules, then the projects."""
    return load(root) + projects(root)


def resolve(root: Path, name: str) -> Module:
    """A module or project from any accepted spelling: ``01_tensor``, ``01``, ``1``, ``tensor``, ``midterm``."""
    every = assignments(Path(root))
    wanted = str(name).strip().lower()
    for module in every:
        if wanted in (module.slug, module.number, module.name) or (
            wanted.isdigit() and module.number.isdigit() and int(wanted) == int(module.number)
        ):
            return module
    raise UnknownModuleError(name, [m.slug for m in every])
