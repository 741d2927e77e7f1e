"""The module registry: the one list of TinyTorch modules (curriculum/modules.yaml).

One slug, ``NN_name`` (e.g. ``01_tensor``), joins a module's source, notebook, graded tests,
``module`` marker, rubric and score rows. Everything else asks this file for modules.
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
    exports: str         # "tinytorch/core/tensor.py", relative to the repository root

    @property
    def number(self) -> str:
        return self.slug.split("_", 1)[0]

    @property
    def name(self) -> str:
        return self.slug.split("_", 1)[1]

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
def load(root: Path) -> tuple[Module, ...]:
    """All modules of the registry at `root`, in course order."""
    raw = yaml.safe_load((Path(root) / REGISTRY_FILE).read_text(encoding="utf-8"))
    return tuple(Module(**entry) for entry in raw["modules"])


def resolve(root: Path, name: str) -> Module:
    """A module from any accepted spelling: ``01_tensor``, ``01``, ``1`` or ``tensor``."""
    modules = load(Path(root))
    wanted = str(name).strip().lower()
    for module in modules:
        if wanted in (module.slug, module.number, module.name) or (
            wanted.isdigit() and int(wanted) == int(module.number)
        ):
            return module
    raise UnknownModuleError(name, [m.slug for m in modules])
