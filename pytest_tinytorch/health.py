"""`tito system health`: is this machine ready to build and grade TinyTorch?

Each check returns (ok, what it found, what to do when it is not ok). Warnings (yellow) do not
fail the command; failures (red) do.
"""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import registry, sandbox

PACKAGES = ["numpy", "pytest", "pluggy", "nbformat", "nbclient", "testbook", "jupyter_client",
            "ipykernel", "pandas", "tabulate", "PyYAML"]


@dataclass
class Check:
    name: str
    status: str      # "ok", "warn", "fail"
    found: str
    fix: str = ""


def python_version() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("Python", "ok" if ok else "fail", sys.version.split()[0], "" if ok else "install Python 3.10 or newer")


def packages() -> list[Check]:
    out = []
    for name in PACKAGES:
        try:
            out.append(Check(f"package {name}", "ok", importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append(Check(f"package {name}", "fail", "not installed", "pip install -e ."))
    return out


def tinytorch_imports() -> Check:
    try:
        import tinytorch  # noqa: F401
        from tinytorch.core import tensor  # noqa: F401
    except Exception as err:
        return Check("tinytorch imports", "fail", f"{type(err).__name__}: {err}", "pip install -e . (then tito export --all)")
    return Check("tinytorch imports", "ok", str(Path(tinytorch.__file__).parent))


def kernel_starts() -> Check:
    from .kernel import StudentKernel
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import numpy as np\nx = np.arange(3)"))
    kernel = StudentKernel(nb, label="health-check", timeout=60)
    try:
        value = kernel.value("int(x.sum())")
    except Exception as err:
        return Check("Jupyter kernel", "fail", f"{type(err).__name__}: {err}", "pip install ipykernel; python -m ipykernel install --user")
    finally:
        kernel.close()
    ok = value == 3
    return Check("Jupyter kernel", "ok" if ok else "fail", "starts, runs a notebook, answers with plain data" if ok else repr(value))


def sandbox_check() -> Check:
    ok, reason = sandbox.sandbox_available()
    if ok:
        return Check("kernel sandbox", "ok", reason)
    return Check("kernel sandbox", "warn", reason,
                 "needed to grade a class safely (Linux: apt-get install bubblewrap); optional for students")


def curriculum(root: Path) -> list[Check]:
    out = []
    for module in registry.assignments(root):
        folder = module.folder(root)
        if not folder.is_dir():
            out.append(Check(f"module {module.slug}", "ok", "planned (not in this repository yet)"))
            continue
        missing = []
        if not (module.source(root).is_file() or module.notebook(root).is_file()):
            missing.append(f"{module.slug}.py or {module.slug}.ipynb")
        if not module.public_tests(root).is_file():
            missing.append(module.public_tests(root).name)
        if module.source(root).is_file():  # the course repository: instructors' files too
            for path in (module.hidden_tests(root), module.rubric(root)):
                if not path.is_file():
                    missing.append(str(path.relative_to(root)))
        if missing:
            out.append(Check(f"module {module.slug}", "fail", "missing " + ", ".join(missing), "restore the files from git"))
        else:
            out.append(Check(f"module {module.slug}", "ok", "source, tests and rubric present" if module.source(root).is_file() else "notebook and tests present"))
    return out


def run(root: Path) -> list[Check]:
    return [python_version(), *packages(), tinytorch_imports(), sandbox_check(), kernel_starts(), *curriculum(root)]
