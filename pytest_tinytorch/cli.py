"""`tito`: the course's command line, a thin layer over pytest_tinytorch's functions.

    tito export MODULE | --all
    tito module test MODULE [--verbose]
    tito nbgrader generate MODULE | --all [--force]
    tito nbgrader release MODULE | --all [--force]
    tito nbgrader autograde MODULE | --all [--student S] [-n N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat

from . import assignments, export, registry, source
from .errors import TinyTorchError
from .safety import WouldOverwrite, write_guarded


def _root() -> Path:
    return registry.find_root(Path.cwd())


def _modules(root: Path, name: str | None, everything: bool):
    if everything:
        return [m for m in registry.load(root) if m.source(root).is_file() or m.notebook(root).is_file()]
    if not name:
        raise TinyTorchError("name a module (e.g. 01_tensor) or pass --all")
    return [registry.resolve(root, name)]


def cmd_export(args) -> int:
    root = _root()
    for module in _modules(root, args.module, args.all):
        path = export.export(root, module)
        print(f"exported {module.slug} -> {path.relative_to(root)}")
    return 0


def _notebooks(args, kind: str) -> int:
    root = _root()
    for module in _modules(root, args.module, args.all):
        src = module.source(root)
        if not src.is_file():
            raise TinyTorchError(f"{module.slug} has no source at {src.relative_to(root)}: generate and release run in the course repository")
        cells = source.read(src)
        if kind == "source":
            nb = assignments.instructor_notebook(cells, module.slug)
        else:
            nb = assignments.student_notebook(cells, module.slug)
        target = root / "assignments" / kind / module.slug / f"{module.slug}.ipynb"
        outcome = write_guarded(target, nbformat.writes(nb) + "\n", force=args.force)
        print(f"{module.slug}: {target.relative_to(root)} {outcome}")
    return 0


def cmd_generate(args) -> int:
    return _notebooks(args, "source")


def cmd_release(args) -> int:
    return _notebooks(args, "release")


def _pytest(argv: list[str]) -> int:
    print("$ pytest " + " ".join(argv), flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *argv])


def cmd_module_test(args) -> int:
    root = _root()
    module = registry.resolve(root, args.module)
    return _pytest(["--module", module.slug, "-v" if args.verbose else "-q", "-rN" if not args.verbose else "-rA"])


def cmd_autograde(args) -> int:
    root = _root()
    argv = ["--collect-submissions", "-q"]
    if not args.all:
        argv += ["--module", _modules(root, args.module, False)[0].slug]
    for student in args.student or []:
        argv += ["--student", student]
    if args.n:
        argv += ["-n", args.n]
    return _pytest(argv)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tito", description="TinyTorch course tools")
    sub = top.add_subparsers(dest="command", required=True)

    def target(p):
        p.add_argument("module", nargs="?", help="01_tensor, 01 or tensor")
        p.add_argument("--all", action="store_true", help="every module")

    p = sub.add_parser("export", help="build tinytorch/ from the modules' export cells")
    target(p)
    p.set_defaults(run=cmd_export)

    module = sub.add_parser("module", help="work on one module").add_subparsers(dest="action", required=True)
    p = module.add_parser("test", help="grade your module notebook (public tests)")
    p.add_argument("module")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_module_test)

    nbg = sub.add_parser("nbgrader", help="instructor workflow").add_subparsers(dest="action", required=True)
    for name, run, text in [("generate", cmd_generate, "instructor notebook in assignments/source/"),
                            ("release", cmd_release, "student notebook in assignments/release/")]:
        p = nbg.add_parser(name, help=text)
        target(p)
        p.add_argument("--force", action="store_true", help="replace changed files (a backup is kept)")
        p.set_defaults(run=run)
    p = nbg.add_parser("autograde", help="grade submitted/<student>/<module>/ with pytest --collect-submissions")
    target(p)
    p.add_argument("--student", action="append")
    p.add_argument("-n", help="parallel workers (pytest-xdist), e.g. 2 or auto")
    p.set_defaults(run=cmd_autograde)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (TinyTorchError, WouldOverwrite, FileNotFoundError) as err:
        print(f"tito: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
