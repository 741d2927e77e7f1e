"""`tito`: the course's command line, a thin layer over pytest_tinytorch's functions.

Every command here is a call into the library (course.py, collect.py, assignments.py,
studentrepo.py, export.py, health.py) or into pytest: nothing it does is unavailable from Python.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from . import assignments, checkpoints, collect, course, export, health, registry, source, studentrepo
from .errors import TinyTorchError
from .reports import commands
from .reports.config import ConfigError
from .safety import WouldOverwrite, write_guarded

COLORS = {"ok": "\033[32m✓\033[0m", "warn": "\033[33m!\033[0m", "fail": "\033[31m✗\033[0m"}
PLAIN = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _root() -> Path:
    return registry.find_root(Path.cwd())


def _modules(root: Path, name: str | None, everything: bool):
    if everything:
        return [m for m in registry.assignments(root) if m.source(root).is_file() or m.notebook(root).is_file()]
    if not name:
        raise TinyTorchError("name a module (e.g. 01_tensor) or pass --all")
    return [registry.resolve(root, name)]


def pytest_command(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run pytest for grading: with the grading plugin (and
    pytest-xdist for `-n`) and none of the environment's other pytest plugins, which could
    reorder, time or skip graded tests (pytest-randomly, pytest-timeout...) and cost start-up
    time in every worker (hypothesis' plugin alone imports for 1.6 s without bytecode caching)."""
    plugins = ["-p", "pytest_tinytorch.plugin"]
    if "-n" in argv and importlib.util.find_spec("xdist"):
        plugins += ["-p", "xdist.plugin"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return [sys.executable, "-m", "pytest", *plugins, *argv], env


def _pytest(argv: list[str], cwd: Path | None = None) -> int:
    print("$ pytest " + " ".join(argv), flush=True)
    command, env = pytest_command(argv)
    return subprocess.call(command, cwd=cwd, env=env)


def _course_dir(args, root: Path) -> Path:
    """The course folder: --course DIR, else the repository itself."""
    folder = Path(args.course).resolve() if getattr(args, "course", None) else root
    if not folder.is_dir():
        raise FileNotFoundError(f"no course folder at {folder}: create one with `tito nbgrader init`")
    return folder


# --- tito export / module / system -----------------------------------------------------------

def cmd_export(args) -> int:
    root = _root()
    for module in _modules(root, args.module, args.all):
        if not module.exports:
            print(f"{module.slug}: a project, nothing to export (it runs on the modules you exported)")
            continue
        path, outcome = export.export(root, module, force=args.force)
        print(f"{module.slug} -> {path.relative_to(root)}: {outcome}")
    return 0


def cmd_module_test(args) -> int:
    module = registry.resolve(_root(), args.module)
    return _pytest(["--module", module.slug] + (["-v", "-rA", "--tb=long"] if args.verbose else ["-q", "--tb=short"]))


def cmd_module_reset(args) -> int:
    root = _root()
    module = registry.resolve(root, args.module)
    print(f"{module.notebook(root).relative_to(root)}: {studentrepo.reset_notebook(root, module)}")
    return 0


def cmd_health(args) -> int:
    root = _root()
    checks = health.run(root)
    marks = COLORS if sys.stdout.isatty() else PLAIN
    for check in checks:
        line = f"{marks[check.status]} {check.name:<28} {check.found}"
        if check.fix and check.status != "ok":
            line += f"\n    -> {check.fix}"
        print(line)
    failed = [c for c in checks if c.status == "fail"]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed" + (", see the fixes above" if failed else ""))
    return 1 if failed else 0


# --- tito nbgrader ---------------------------------------------------------------------------

def cmd_init(args) -> int:
    root = _root()
    start = dt.date.fromisoformat(args.start) if args.start else None
    for line in course.init(root, name=args.name, start=start):
        print(line)
    return 0


def _notebooks(args, kind: str) -> int:
    root = _root()
    modules = _modules(root, args.module, args.all)
    course.require(root, "assignments")
    for module in modules:
        src = module.source(root)
        if not src.is_file():
            raise TinyTorchError(f"{module.slug} has no source at {src.relative_to(root)}: generate and release run in the course repository")
        cells = source.read(src)
        make = assignments.instructor_notebook if kind == "source" else assignments.student_notebook
        target = root / "assignments" / kind / module.slug / f"{module.slug}.ipynb"
        outcome = write_guarded(target, nbformat.writes(make(cells, module.slug)) + "\n", force=args.force)
        print(f"{module.slug}: {target.relative_to(root)} {outcome}")
    return 0


def cmd_generate(args) -> int:
    return _notebooks(args, "source")


def cmd_release(args) -> int:
    if args.to:
        if not args.all:
            raise TinyTorchError("--to writes a whole student repository: use it with --all")
        log = studentrepo.release_repository(_root(), Path(args.to), force=args.force)
        changed = [line for line in log if not line.endswith("unchanged")]
        print(f"student repository in {Path(args.to).resolve()}: {len(log)} files, {len(changed)} written")
        return 0
    return _notebooks(args, "release")


def cmd_collect(args) -> int:
    root = _root()
    submitted = course.require(root, "submitted")
    module = registry.resolve(root, args.module)
    settings = course.collect_settings(root)
    where = Path(args.source or settings.get("from", "incoming"))
    where = where if where.is_absolute() else root / where
    if not where.exists():
        raise FileNotFoundError(f"nothing to collect: {where} does not exist. Put the students' repositories "
                                f"(GitHub Classroom clones), their folders or an LMS zip there, or pass --from PATH")
    lines = collect.collect(where, submitted, module, args.student, args.assignment or settings.get("assignment"))
    for line in lines:
        print(f"{line.student:<24} {line.status:<10} {line.detail}")
    missing = [l.student for l in lines if l.status in ("missing", "incomplete")]
    if missing:
        print(f"\nattention: {', '.join(sorted(set(missing)))}")
    return 0


def cmd_autograde(args) -> int:
    root = _root()
    argv = ["--collect-submissions", "-q", "--tb=no", "-rN"]  # the grade table, not every failure
    if not args.all:
        argv += ["--module", _modules(root, args.module, False)[0].slug]
    where = _course_dir(args, root)
    # The `--option=value` form: pytest picks its rootdir before it knows the plugin's options, and
    # would take a separate value (a folder outside the repository) for a path to test.
    argv += [f"--submissions-dir={course.require(where, 'submitted')}", f"--grades-dir={where / 'grades'}"]
    for student in args.student or []:
        argv += ["--student", student]
    if args.n:
        argv += ["-n", args.n]
    code = _pytest(argv, cwd=root)
    return 0 if code in (0, 1) else code  # failed tests are grades, not errors of the command


def cmd_checkpoints(args) -> int:
    root = _root()
    where = _course_dir(args, root)
    course.require(where, "submitted")
    shard = None
    if args.shard:
        first, _, count = args.shard.partition("/")
        if not (first.isdigit() and count.isdigit() and 1 <= int(first) <= int(count)):
            raise TinyTorchError(f"--shard expects I/N with 1 <= I <= N (e.g. --shard 2/8), got {args.shard!r}")
        shard = (int(first), int(count))
    chosen = checkpoints.select(root, args.milestone)
    kind = "quick" if args.quick else "full"
    print(f"checkpoints ({kind} runs): {', '.join(m.name for m in chosen)}", flush=True)
    outcomes, failures = checkpoints.grade(root, where, milestones=chosen, students=args.student, shard=shard,
                                           quick=args.quick, seed=args.seed, jobs=args.n, isolation=args.sandbox)
    achieved = sum(o.achieved for o in outcomes)
    students = len({o.student for o in outcomes})
    print(f"\n{achieved} of {len(outcomes)} checkpoints achieved, {students} student{'s' * (students != 1)} graded; "
          f"tables in {where / 'grades' / checkpoints.FOLDER}")
    if failures:
        print(f"{len(failures)} run(s) could not be graded (grader errors, nothing recorded for them); rerun:",
              file=sys.stderr)
        for failure in failures:
            print(f"  {failure.rerun()}    # {failure.error[:200]}", file=sys.stderr)
        return 1
    return 0


# --- reports (pytest_tinytorch.reports) ------------------------------------------------------

def _as_of(args):
    """--as-of: an ISO date or time; without a zone it is UTC (due dates are compared in UTC)."""
    if not getattr(args, "as_of", None):
        return None
    when = dt.datetime.fromisoformat(args.as_of)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def cmd_review(args) -> int:
    root = _root()
    module = registry.resolve(root, args.module).slug
    print(commands.review(_course_dir(args, root), module, root=root).text)
    return 0


def cmd_feedback(args) -> int:
    root = _root()
    module = registry.resolve(root, args.module).slug if args.module else None
    print(commands.feedback(_course_dir(args, root), module, args.student, root=root, as_of=_as_of(args)).text)
    return 0


def cmd_report(args) -> int:
    root = _root()
    modules = [registry.resolve(root, m).slug for m in args.module] if args.module else None
    print(commands.report(_course_dir(args, root), modules, root=root, as_of=_as_of(args)).text)
    return 0


def cmd_status(args) -> int:
    root = _root()
    export_to = Path(args.export).resolve() if args.export else None
    print(commands.status(_course_dir(args, root), args.student, export_to, root=root, as_of=_as_of(args)).text)
    return 0


def cmd_demo(args) -> int:
    """The whole job on the bundled sample class: grade it, review, feedback, gradebook."""
    root = _root()
    sample = root / "examples" / "sample_class"
    dest = Path(args.to).resolve()
    if dest.exists() and any(dest.iterdir()) and not args.force:
        raise TinyTorchError(f"{dest} is not empty: pass --to ANOTHER_DIR, or --force to grade it again")
    keep = shutil.ignore_patterns("reports", "feedback", ".secret", "*.bak")
    shutil.copytree(sample, dest, ignore=keep, dirs_exist_ok=True)
    for table in (dest / "grades").glob("*.csv"):
        if table.name not in ("projects.csv", "roster.csv"):
            table.unlink()  # graded afresh below, by the real grader
    print(f"sample class copied to {dest}\n")
    workers = ["-n", "2"] if importlib.util.find_spec("xdist") else []
    code = _pytest(["--collect-submissions", "-q", "--tb=no", "-rN", *workers,
                    f"--submissions-dir={dest / 'submitted'}", f"--grades-dir={dest / 'grades'}"], cwd=root)
    if code not in (0, 1):
        return code
    for module in ("01_tensor", "02_activations"):
        print(commands.review(dest, module, root=root).text)
    print(commands.feedback(dest, None, None, root=root, as_of=_as_of(args)).text)
    print(commands.report(dest, None, root=root, as_of=_as_of(args)).text)
    return 0


def cmd_olympics(args) -> int:
    """The Torch Olympics leaderboard of a folder of capstone submissions (module 20)."""
    folder = Path(args.submissions)
    if not folder.is_dir():
        raise TinyTorchError(f"{folder} is not a folder: expected one sub-folder per student holding "
                             f"submission.yaml and model.npz (see examples/olympics/README.md)")
    # The scorer's own command: it runs with one BLAS thread (the latencies of small models are
    # erratic when BLAS threads compete for the cores), which must be set before NumPy loads.
    command = [sys.executable, "-m", "tinytorch.olympics", str(folder)] + (["--csv", args.csv] if args.csv else [])
    return subprocess.run(command).returncode


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tito", description="TinyTorch course tools")
    sub = top.add_subparsers(dest="command", metavar="{export,module,system,nbgrader,olympics,demo}")

    def target(p):
        p.add_argument("module", nargs="?", help="01_tensor, 01 or tensor")
        p.add_argument("--all", action="store_true", help="every module")

    def course_options(p):
        p.add_argument("--course", metavar="DIR", help="the course folder (default: this repository)")
        p.add_argument("--as-of", dest="as_of", metavar="ISO-DATE", help="count modules due by then (default: now)")

    p = sub.add_parser("export", help="build tinytorch/ from the modules' export cells")
    target(p)
    p.add_argument("--force", action="store_true", help="replace a hand-edited file (a timestamped backup is kept)")
    p.set_defaults(run=cmd_export)

    module = sub.add_parser("module", help="work on one module (students)")
    msub = module.add_subparsers(dest="action", metavar="{test,reset}")
    p = msub.add_parser("test", help="grade your module notebook (public tests)")
    p.add_argument("module")
    p.add_argument("--verbose", action="store_true", help="every test and every failure in full")
    p.set_defaults(run=cmd_module_test)
    p = msub.add_parser("reset", help="restore the released notebook (your current one is backed up)")
    p.add_argument("module")
    p.set_defaults(run=cmd_module_reset)
    p = msub.add_parser("status", help="progress: submitted, passing, graded, late (instructors)")
    p.add_argument("--student", help="one student's modules")
    p.add_argument("--export", metavar="FILE", help="write the class overview CSV, e.g. class_progress.csv")
    course_options(p)
    p.set_defaults(run=cmd_status)
    module.set_defaults(run=lambda a: _help(module))

    p = sub.add_parser("olympics", help="score a folder of Torch Olympics submissions and print the leaderboard")
    p.add_argument("submissions", metavar="DIR", help="one folder per student: submission.yaml + model.npz")
    p.add_argument("--csv", metavar="FILE", help="also write the leaderboard as CSV")
    p.set_defaults(run=cmd_olympics)

    p = sub.add_parser("demo", help="grade the bundled sample class end to end and print its gradebook")
    p.add_argument("--to", default="demo-class", metavar="DIR", help="where to copy the class (default: demo-class)")
    p.add_argument("--force", action="store_true", help="grade again into a folder used before")
    p.add_argument("--as-of", dest="as_of", default="2026-12-31T00:00:00+00:00", metavar="ISO-DATE",
                   help="count modules due by then (default: the end of the sample term)")
    p.set_defaults(run=cmd_demo)

    system = sub.add_parser("system", help="this machine")
    ssub = system.add_subparsers(dest="action", metavar="{health}")
    ssub.add_parser("health", help="check Python, packages, the kernel, the sandbox and the curriculum").set_defaults(run=cmd_health)
    system.set_defaults(run=lambda a: _help(system))

    nbg = sub.add_parser("nbgrader", help="instructor workflow: init, generate, release, collect, autograde")
    nsub = nbg.add_subparsers(dest="action", metavar="{init,generate,release,collect,autograde,checkpoints,review,feedback,report}")
    p = nsub.add_parser("init", help="create the course folders and course.yaml (idempotent)")
    p.add_argument("--name", default="ML Systems Engineering with TinyTorch")
    p.add_argument("--start", help="first day of week 1, YYYY-MM-DD (due dates follow the 16-week schedule)")
    p.set_defaults(run=cmd_init)
    for name, run, text in [("generate", cmd_generate, "instructor notebook in assignments/source/"),
                            ("release", cmd_release, "student notebook in assignments/release/")]:
        p = nsub.add_parser(name, help=text)
        target(p)
        p.add_argument("--force", action="store_true", help="replace changed files (a timestamped backup is kept)")
        if name == "release":
            p.add_argument("--to", metavar="DIR", help="with --all: write a complete student repository to DIR")
        p.set_defaults(run=run)
    p = nsub.add_parser("collect", help="copy submissions into submitted/<student>/<module>/")
    p.add_argument("module")
    p.add_argument("--from", dest="source", metavar="PATH",
                   help="a folder of GitHub Classroom clones or student folders, or an LMS zip "
                        "(default: course.yaml's collect.from, else incoming/)")
    p.add_argument("--student", action="append")
    p.add_argument("--assignment", help="GitHub Classroom assignment prefix: <assignment>-<username>/")
    p.set_defaults(run=cmd_collect)
    p = nsub.add_parser("autograde", help="grade submitted/ with pytest --collect-submissions")
    target(p)
    p.add_argument("--student", action="append")
    p.add_argument("-n", help="parallel workers (pytest-xdist), e.g. 2 or auto")
    p.add_argument("--course", metavar="DIR", help="the course folder (default: this repository)")
    p.set_defaults(run=cmd_autograde)
    p = nsub.add_parser("checkpoints", help="run the milestones against each student's own package (checkpoint achievements)")
    p.add_argument("milestone", nargs="*", help="milestones to grade (default: all of curriculum/milestones/)")
    p.add_argument("--student", action="append")
    p.add_argument("--shard", metavar="I/N", help="grade only the I-th of N slices of the class (CI matrices)")
    p.add_argument("--quick", action="store_true", help="the reduced runs of a few seconds (a dry run; the full runs are the targets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-n", type=int, default=1, help="parallel runs (one kernel each), e.g. 2 on a 2-core machine")
    p.add_argument("--sandbox", choices=["auto", "require", "off"], default="auto")
    p.add_argument("--course", metavar="DIR", help="the course folder (default: this repository)")
    p.set_defaults(run=cmd_checkpoints)
    p = nsub.add_parser("review", help="score sheet + HTML review page of the ML-systems answers (replaces formgrader)")
    p.add_argument("module")
    course_options(p)
    p.set_defaults(run=cmd_review)
    p = nsub.add_parser("feedback", help="one HTML feedback page per student in feedback/<student>/<module>/")
    p.add_argument("module", nargs="?")
    p.add_argument("--student", action="append")
    course_options(p)
    p.set_defaults(run=cmd_feedback)
    p = nsub.add_parser("report", help="gradebook, long CSV, Canvas CSV, Gradescope results.json, progress page")
    p.add_argument("--module", action="append")
    course_options(p)
    p.set_defaults(run=cmd_report)
    nbg.set_defaults(run=lambda a: _help(nbg))
    top.set_defaults(run=lambda a: _help(top))
    return top


def _help(p) -> int:
    p.print_help()
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (TinyTorchError, WouldOverwrite, FileNotFoundError, ValueError, ConfigError) as err:
        print(f"tito: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
