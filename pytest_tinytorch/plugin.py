"""The TinyTorch grading plugin for pytest.

Student:     pytest --module 01_tensor            (public tests against your notebook)
Instructor:  pytest --collect-submissions [--module M] [--student S] [-n 2] [--shard i/n]

Anatomy, like pytest's own plugins: module-level hooks add the options and register the
`Grader`; the grader keeps its state on itself (one per process, in `config.stash`), decides
verdicts from plain data in this process, and only the controlling process writes score tables.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from . import packageview, registry, sandbox, scores, source, submissions, warm
from .errors import UnknownModuleError
from .kernel import KernelTimeout, NotebookProblem, StudentError, StudentKernel
from .submissions import LOCAL, Submission
from .wire import NotPlainData, WireError

GRADER_KEY = pytest.StashKey["Grader"]()
INFO = "tinytorch"          # user_properties key: who, what, how many points (set at collection)
RESULT = "tinytorch_result"  # user_properties key: the message of a failed test (set at run time)
NOTE = "tinytorch_note"      # user_properties key: a note for the run's summary (e.g. course code used)
WARNING = "tinytorch_warning"  # user_properties key: a sandbox warning for the summary (xdist workers too)
SHARD = re.compile(r"^(\d+)/(\d+)$")
MAX_LISTED = 20            # unwritten score tables named one by one in the summary


# --- options and markers ---------------------------------------------------------------------

def pytest_addoption(parser):
    group = parser.getgroup("tinytorch", "TinyTorch grading")
    group.addoption("--module", action="append", dest="tt_modules", default=[], metavar="MODULE",
                    help="grade this module (01_tensor, 01 or tensor); repeatable")
    group.addoption("--student", action="append", dest="tt_students", default=[], metavar="ID",
                    help="with --collect-submissions: grade only this student; repeatable")
    group.addoption("--collect-submissions", action="store_true", dest="tt_collect",
                    help="grade every submitted/<student>/<module>/ notebook, public and hidden tests")
    group.addoption("--submissions-dir", dest="tt_submissions_dir", metavar="DIR",
                    help="where submissions live (default: ini tinytorch_submissions_dir, 'submitted')")
    group.addoption("--grades-dir", dest="tt_grades_dir", metavar="DIR",
                    help="where score tables are written (default: ini tinytorch_grades_dir, 'grades')")
    group.addoption("--notebook-timeout", dest="tt_notebook_timeout", type=float, metavar="SECONDS",
                    help="time allowed to run a whole notebook (default: ini tinytorch_notebook_timeout, 120)")
    group.addoption("--test-timeout", dest="tt_test_timeout", type=float, metavar="SECONDS",
                    help="time allowed for the student's code in one test (default: ini tinytorch_test_timeout, 30)")
    group.addoption("--sandbox", dest="tt_sandbox", choices=("auto", "require", "off"),
                    help="isolate student kernels with bubblewrap: auto (when available, else warn), "
                         "require (refuse to grade without it), off (default: ini tinytorch_sandbox, auto)")
    group.addoption("--shard", dest="tt_shard", metavar="I/N",
                    help="grade only shard I of N of the students (a stable split by student id)")
    parser.addini("tinytorch_submissions_dir", "folder of submissions", default="submitted")
    parser.addini("tinytorch_grades_dir", "folder of score tables", default="grades")
    parser.addini("tinytorch_notebook_timeout", "seconds to run a whole notebook", default="120")
    parser.addini("tinytorch_test_timeout", "seconds for the student's code in one test", default="30")
    parser.addini("tinytorch_sandbox", "kernel isolation: auto, require or off", default="auto")


def pytest_configure(config):
    config.addinivalue_line("markers", "module(slug): the curriculum module a graded test belongs to, e.g. module('01_tensor')")
    config.addinivalue_line("markers", "points(n): the points a graded test is worth when it passes")
    config.addinivalue_line("markers", "hidden: a graded test run only by instructors, never shipped to students")
    grader = Grader(config)
    config.stash[GRADER_KEY] = grader
    config.pluginmanager.register(grader, "tinytorch-grader")


# --- the grader ------------------------------------------------------------------------------

class Grader:
    """One per pytest process: finds submissions, owns kernels, records and writes scores."""

    def __init__(self, config):
        self.config = config
        self.collect_mode = bool(config.getoption("tt_collect"))
        self.requested = list(config.getoption("tt_modules") or [])
        self.grading = self.collect_mode or bool(self.requested)
        self.is_worker = hasattr(config, "workerinput")
        if self.collect_mode:
            # A class has thousands of failing tests: their reasons are in the score tables, and
            # pytest's failure summary grows with failures x reports (minutes for a big class).
            # Unless asked for (--tb=short, -rf), print the grade table only.
            if config.option.tbstyle == "auto":
                config.option.tbstyle = "no"
            if config.option.reportchars == "fE":
                config.option.reportchars = "N"
        self.rows: list[dict] = []
        self._pending: dict[str, dict] = {}
        self._kernel: StudentKernel | None = None
        self._kernel_key: str | None = None
        self._views: dict[str, Path] = {}
        self._views_dir: Path | None = None
        self.sandbox_warnings: set[str] = set()
        self.view_notes: dict[str, list[str]] = {}   # submission key -> notes about its package view
        self.notes: set[str] = set()                 # those notes, as reported by the tests (any worker)
        self.not_graded: list[tuple[str, str]] = []   # (submission folder, why it was not graded)
        if not self.grading:
            if config.getoption("tt_students") or config.getoption("tt_shard"):
                raise pytest.UsageError("--student and --shard select submissions: use them with --collect-submissions")
            return
        self._read_options()

    # --- configuration ------------------------------------------------------------------
    def _read_options(self):
        config = self.config
        try:
            self.root = registry.find_root(config.rootpath)
        except FileNotFoundError as err:
            # `pytest --submissions-dir /elsewhere` from the repository: pytest chose its rootdir
            # before it knew this plugin's options, from that folder. The repository is where
            # pytest was started; say how to keep its configuration too.
            try:
                self.root = registry.find_root(config.invocation_params.dir)
            except FileNotFoundError:
                raise pytest.UsageError(str(err)) from None
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"pytest took {config.rootpath} for its rootdir (a folder given after an option); "
                f"grading with the repository at {self.root}, but write --submissions-dir=DIR and "
                f"--grades-dir=DIR (with '=') so that pytest also reads the repository's configuration"), stacklevel=2)
        try:
            self.modules = [registry.resolve(self.root, name) for name in self.requested]
        except UnknownModuleError as err:
            raise pytest.UsageError(f"--module: {err}") from None
        self.students = list(config.getoption("tt_students") or [])
        if self.students and not self.collect_mode:
            raise pytest.UsageError("--student selects submissions to grade: add --collect-submissions")
        self.notebook_timeout = self._positive("tt_notebook_timeout", "tinytorch_notebook_timeout")
        self.test_timeout = self._positive("tt_test_timeout", "tinytorch_test_timeout")
        self.shard = None
        shard = config.getoption("tt_shard")
        if shard is not None:
            match = SHARD.match(shard.strip())
            if not match or not 1 <= int(match[1]) <= int(match[2]):
                raise pytest.UsageError(f"--shard expects I/N with 1 <= I <= N (e.g. --shard 2/8), got {shard!r}")
            if not self.collect_mode:
                raise pytest.UsageError("--shard splits a class: use it with --collect-submissions")
            self.shard = (int(match[1]), int(match[2]))
        self.isolation = config.getoption("tt_sandbox") or config.getini("tinytorch_sandbox")
        if self.isolation not in ("auto", "require", "off"):
            raise pytest.UsageError(f"ini tinytorch_sandbox expects auto, require or off, got {self.isolation!r}")
        self.submissions_dir = self._path("tt_submissions_dir", "tinytorch_submissions_dir")
        self.grades_dir = self._path("tt_grades_dir", "tinytorch_grades_dir")
        if self.collect_mode and not self.submissions_dir.is_dir():
            raise pytest.UsageError(
                f"--collect-submissions: no submissions folder at {self.submissions_dir}; create it with "
                f"`tito nbgrader init` and fill it with `tito nbgrader collect MODULE`, or pass --submissions-dir"
            )
        self.submissions = self._find_submissions()
        if self.config.args_source != pytest.Config.ArgsSource.ARGS:
            # No paths given: collect the test folders of the modules being graded. (Collecting
            # every module's and deselecting most would import, and assertion-rewrite, some forty
            # test files per process: seconds, when Python may not cache bytecode.)
            graded = [m for m in registry.assignments(self.root) if m.folder(self.root).is_dir()]
            if self.grading and self.submissions:
                graded = [m for m in graded if m.slug in self.submissions]
            self.config.args[:] = sorted({str(m.folder(self.root)) for m in graded})
        # A submission's tests share one kernel: send them all to the same xdist worker. The
        # controller schedules by group; workers re-parse the command line (where `-n 2` alone
        # means --dist load), so they are told here to tag test ids with their group.
        if getattr(config.option, "dist", "no") == "load":
            config.option.dist = "loadgroup"
        if self.is_worker:
            config.option.loadgroup = True

    def _positive(self, option, ini):
        value = self.config.getoption(option)
        raw = value if value is not None else self.config.getini(ini)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = -1
        if number <= 0:
            name = "--" + option[3:].replace("_", "-")
            raise pytest.UsageError(f"{name} (or ini {ini}) expects a positive number of seconds, got {raw!r}")
        return number

    def _path(self, option, ini) -> Path:
        value = self.config.getoption(option) or self.config.getini(ini)
        path = Path(value)
        return path if path.is_absolute() else Path(self.config.invocation_params.dir) / path

    def _find_submissions(self) -> dict[str, list[Submission]]:
        """module slug -> its submissions (one per student; the local notebook in student mode)."""
        found: dict[str, list[Submission]] = {}
        if not self.collect_mode:
            for module in self.modules:
                found[module.slug] = [submissions.local(self.root, module)]
            return found
        modules = self.modules
        names = submissions.students(self.submissions_dir)
        if not modules:
            present = {p.name for s in names for p in (self.submissions_dir / s).iterdir() if p.is_dir()}
            modules = [m for m in registry.assignments(self.root) if m.slug in present]
        # A folder whose name cannot name a score table is not graded; the summary lists it.
        self.not_graded = [(name, submissions.UNSAFE_ID_REASON) for name in names if not submissions.SAFE_ID.match(name)]
        for name, reason in self.not_graded:
            self.config.issue_config_time_warning(pytest.PytestWarning(
                f"not grading {self.submissions_dir.name}/{name!r}: {reason}"), stacklevel=2)
        wanted = self.students
        for sub in submissions.collect(self.submissions_dir, modules, wanted):
            if self.shard and submissions.shard_of(sub.student, self.shard[1]) != self.shard[0]:
                continue
            found.setdefault(sub.module, []).append(sub)
        return found

    def pytest_sessionstart(self, session):
        """Start the warm kernel template (warm.py) while the tests are collected, in every
        process that will run kernels (not an xdist controller)."""
        controller = bool(getattr(self.config.option, "numprocesses", None)) and not self.is_worker
        if not self.grading or not self.submissions or controller or self.isolation == "off":
            return
        try:
            warm.prestart()
        except warm.TemplateProblem as problem:
            self.sandbox_warnings.add(f"{problem}; kernels start cold (slower, same isolation)")

    # --- collection -----------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc):
        if "student" not in metafunc.fixturenames:
            return
        marker = metafunc.definition.get_closest_marker("module")
        if marker is None or not marker.args:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: a graded test (one that uses the `student` fixture) needs "
                f"@pytest.mark.module('NN_name'), usually as `pytestmark` at the top of its file")
        if not self.grading:
            return
        slug = marker.args[0]
        subs = self.submissions.get(slug, [])
        metafunc.parametrize("_tinytorch_submission", subs, ids=[s.test_id for s in subs])

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        slugs = {m.slug for m in self.modules} if self.grading else set()
        for item in items:
            if "student" not in getattr(item, "fixturenames", ()):
                (drop if self.grading else keep).append(item)  # project tests do not run while grading
                continue
            if not self.grading:
                item.add_marker(pytest.mark.skip(reason="graded test: run it with `pytest --module MODULE`"))
                keep.append(item)
                continue
            sub = _submission(item)
            selected = sub is not None and (not slugs or sub.module in slugs)
            if selected and not self.collect_mode and item.get_closest_marker("hidden"):
                selected = False  # students never run hidden tests
            (keep if selected else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        if not self.grading:
            items[:] = keep
            return
        # Group each submission's tests together (one live kernel at a time), in file order.
        keep = sorted(keep, key=lambda item: _submission(item).key)  # stable: keeps file order
        counts: dict[str, int] = {}
        for item in keep:
            counts[_submission(item).key] = counts.get(_submission(item).key, 0) + 1
        for position, item in enumerate(keep):
            sub = _submission(item)
            points = item.get_closest_marker("points")
            item.user_properties.append((INFO, {
                "student": sub.student, "module": sub.module, "test": item.originalname,
                "max_points": float(points.args[0]) if points and points.args else 0.0,
                "hidden": bool(item.get_closest_marker("hidden")),
                "order": position, "expected": counts[sub.key],
            }))
            if _has_xdist(config):  # pytest-xdist is optional
                item.add_marker(pytest.mark.xdist_group(sub.key))
        items[:] = keep

    # --- fixtures' backend ----------------------------------------------------------------
    def kernel_for(self, sub: Submission):
        """The live kernel of a submission; at most one per process, started on first use."""
        if self._kernel_key == sub.key and self._kernel is not None:
            return self._kernel
        self.close_kernel()
        if sub.problem:
            kernel = _Unusable(sub.problem)
        else:
            notebook = sub.notebook
            if notebook is None:  # course repository: the reference notebook, built from its source
                notebook = source.to_notebook(source.without_markers(source.read(sub.source)))
            module = registry.resolve(self.root, sub.module)
            limits = sandbox.Limits(cpu_seconds=module.cpu_seconds) if module.cpu_seconds else None
            try:
                view = self.package_view(sub)
            except NotebookProblem as problem:
                kernel = _Unusable(f"your package could not be built from your module notebooks: {problem}")
            else:
                kernel = StudentKernel(notebook, label=sub.key, timeout=module.notebook_timeout or self.notebook_timeout,
                                       call_timeout=module.test_timeout or self.test_timeout,
                                       isolation=self.isolation, package_view=view, limits=limits)
        self._kernel, self._kernel_key = kernel, sub.key
        return kernel

    def close_kernel(self):
        if self._kernel is not None:
            if getattr(self._kernel, "sandbox_warning", None):
                self.sandbox_warnings.add(self._kernel.sandbox_warning)
            self._kernel.close()
        self._kernel = self._kernel_key = None

    def package_view(self, sub: Submission) -> Path | None:
        """The tinytorch a kernel grading `sub` may import (packageview.py): for a module, the
        course's package with that module and later ones left out (one view per module); for a
        project in class mode, the student's own package: the modules it requires rendered from
        the student's submitted notebooks (the released stubs for any not submitted)."""
        package = self.root / "tinytorch"
        if not package.is_dir():
            return None
        module = registry.resolve(self.root, sub.module)
        key = sub.key if module.is_project and self.collect_mode else sub.module
        if key in self._views:
            return self._views[key]
        if module.is_project and self.collect_mode:
            # One student's package at a time: the previous student's is no longer needed.
            for old in [k for k in self._views if k not in registry_slugs(self.root)]:
                shutil.rmtree(self._views.pop(old), ignore_errors=True)
        if self._views_dir is None:
            self._views_dir = Path(tempfile.mkdtemp(prefix="tt-views-", dir=warm.scratch_parent()))
            self._views_dir.chmod(0o755)
        into = self._views_dir / key
        into.mkdir()
        if not module.is_project:
            view = packageview.build(self.root, module, package, into)
        elif not self.collect_mode:
            view = packageview.build_with(package, into)   # the student's (or course's) whole package
        else:
            notebooks = {}
            for slug in module.requires:
                notebook, _ = submissions.find_notebook(self.submissions_dir / sub.student / slug,
                                                        registry.resolve(self.root, slug))
                notebooks[slug] = notebook
                if notebook is None:
                    self.view_notes.setdefault(sub.key, []).append(
                        f"{sub.student}/{sub.module} ran with the released stubs of {slug} (no {slug} notebook submitted)")
            view = packageview.from_notebooks(self.root, package, into, notebooks)
        self._views[key] = view
        return view

    def seed_for(self, request, shared: bool = False) -> int:
        """Public tests: a fixed seed per test. Hidden tests: a secret per class, per student.
        `shared`: the same seed for every test of the submission (not per test)."""
        name = "(shared)" if shared else request.node.originalname
        module = request.node.get_closest_marker("module").args[0]
        if request.node.get_closest_marker("hidden"):
            sub = request.node.callspec.params["_tinytorch_submission"]
            text = f"{self.secret()}:{sub.student}:{module}:{name}"
        else:
            text = f"public:{module}:{name}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")

    def secret(self) -> str:
        """The grading secret behind hidden inputs: $TINYTORCH_GRADING_SECRET, or grades/.secret."""
        if os.environ.get("TINYTORCH_GRADING_SECRET"):
            return os.environ["TINYTORCH_GRADING_SECRET"]
        path = self.grades_dir / ".secret"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
            except FileExistsError:
                pass  # another worker made it first
        return path.read_text().strip()

    # --- recording results ----------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        info = dict(item.user_properties).get(INFO)
        if info is not None and report.failed:
            message = failure_message(call.excinfo, hidden=info["hidden"], when=report.when)
            report.user_properties = [*report.user_properties, (RESULT, message)]
        return report

    def pytest_runtest_logreport(self, report):
        self.notes.update(value for key, value in report.user_properties if key == NOTE)
        self.sandbox_warnings.update(value for key, value in report.user_properties if key == WARNING)
        props = dict(report.user_properties)
        info = props.get(INFO)
        if info is None:
            return
        row = self._pending.setdefault(report.nodeid, {**info, "outcome": None, "message": "", "duration_s": 0.0})
        row["duration_s"] += report.duration
        if report.when in ("setup", "call") and report.failed:
            row["outcome"] = "failed" if report.when == "call" else "error"
            row["message"] = props.get(RESULT, "")
        elif report.when == "call" and report.passed:
            row["outcome"] = "passed"
        elif report.when == "teardown":
            del self._pending[report.nodeid]
            if row["outcome"] is None:
                return  # skipped: not a graded result
            if report.failed and row["outcome"] == "passed":
                row["outcome"], row["message"] = "error", props.get(RESULT, "error after the test")
            row["points"] = row["max_points"] if row["outcome"] == "passed" else 0.0
            row["duration_s"] = round(row["duration_s"], 3)
            self.rows.append(row)

    def pytest_runtest_teardown(self, item, nextitem):
        # Close the kernel as soon as the next test belongs to another submission. Under xdist,
        # nextitem is None whenever the worker's queue is momentarily empty, so None does not
        # close it: kernel_for() and pytest_sessionfinish do.
        if nextitem is not None and _sub_key(nextitem) != _sub_key(item):
            self.close_kernel()

    def pytest_sessionfinish(self, session, exitstatus):
        self.close_kernel()
        if self._views_dir is not None:
            shutil.rmtree(self._views_dir, ignore_errors=True)
        if self.is_worker or not self.grading or not self.collect_mode:
            return
        complete, incomplete = _complete_groups(self.rows)
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            # Submissions that never started have no rows at all: name them too, so the
            # instructor knows whose old table (if any) is still the one on disk.
            done = {(row["student"], row["module"]) for row in complete}
            incomplete = sorted({(sub.student, sub.module) for subs in self.submissions.values()
                                 for sub in subs} - done)
            self.unwritten_reason = "run interrupted before all its tests ran"
        else:
            self.unwritten_reason = "not all of its tests ran: -k or --deselect chose only some, or a worker stopped"
        self.incomplete = incomplete
        self.written = scores.write_tables(self.grades_dir, complete) if complete else []

    def pytest_terminal_summary(self, terminalreporter):
        if self.is_worker or not self.grading or not (self.rows or self.not_graded):
            return
        tr = terminalreporter
        tr.section("TinyTorch grades")
        for warning in sorted(self.sandbox_warnings):
            tr.line(f"warning: {warning}", yellow=True)
        for name, reason in self.not_graded:
            tr.line(f"not graded: {self.submissions_dir.name}/{name!r}: {reason}", red=True)
        for note in sorted(self.notes):
            tr.line(f"note: {note}", yellow=True)
        if self.collect_mode:
            if self.rows:
                tr.line(scores.summary_table(self.rows))
            written = getattr(self, "written", [])
            tr.line(f"\nscore tables: {len(written)} written to {self.grades_dir}")
            incomplete = getattr(self, "incomplete", [])
            for student, module in incomplete[:MAX_LISTED]:
                tr.line(f"not written ({self.unwritten_reason}): {student} {module}", yellow=True)
            if len(incomplete) > MAX_LISTED:
                tr.line(f"not written ({self.unwritten_reason}): {len(incomplete) - MAX_LISTED} more "
                        f"submissions; rerun the same command to grade them", yellow=True)
            return
        for module in sorted({row["module"] for row in self.rows}):
            rows = [row for row in self.rows if row["module"] == module]
            got = sum(float(r["points"]) for r in rows)
            most = sum(float(r["max_points"]) for r in rows)
            tr.line(scores.tests_table(rows))
            percent = 100 * got / most if most else 0
            tr.line(f"\n{module}: {got:g} / {most:g} points ({percent:.0f}%)", bold=True,
                    green=got == most, red=got < most)


class _Unusable:
    """Stands in for the kernel of a submission that cannot be graded."""

    def __init__(self, problem):
        self.problem = problem

    def value(self, code, **inputs):
        raise NotebookProblem(self.problem)

    def close(self):
        pass


def _submission(item) -> Submission | None:
    """The submission a collected graded test is parametrized with, if any."""
    callspec = getattr(item, "callspec", None)
    sub = callspec.params.get("_tinytorch_submission") if callspec else None
    return sub if isinstance(sub, Submission) else None


def _sub_key(item):
    sub = _submission(item)
    return sub.key if sub is not None else None


def registry_slugs(root) -> set[str]:
    return {m.slug for m in registry.assignments(root)}


def _complete_groups(rows):
    """Rows of the (student, module) groups whose every test ran; and the other groups."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["student"], row["module"]), []).append(row)
    complete, incomplete = [], []
    for key, group in sorted(groups.items()):
        if len(group) == group[0]["expected"]:
            complete.extend(group)
        else:
            incomplete.append(key)
    return complete, incomplete


def failure_message(excinfo, *, hidden: bool, when: str) -> str:
    """What a student reads about a failed test; hidden tests never reveal expected values."""
    if excinfo is None:
        return "failed"
    err = excinfo.value
    if when != "call":
        return f"grader error during {when}: {type(err).__name__}: {str(err)[:300]}"
    if isinstance(err, (NotebookProblem, KernelTimeout, StudentError, NotPlainData, WireError)):
        return _clip(str(err))  # about the student's own code, safe to show
    if hidden:
        kind = "wrong result" if isinstance(err, AssertionError) else f"the result could not be checked ({type(err).__name__})"
        return f"hidden test failed: {kind}"
    text = str(err) or type(err).__name__
    if isinstance(err, AssertionError):
        # pytest's assertion rewriting appends "assert False / + where ..." lines: keep the
        # test's own message when it has one.
        head = text.split("\nassert ")[0]
        return _clip(head if head.strip() else text)
    return _clip(f"{type(err).__name__}: {text}")


def _clip(text: str, limit: int = 500) -> str:
    # One line of printable text: a student's exception message or type name must not carry
    # terminal escape sequences into the instructor's terminal or the score table.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def student(request, _tinytorch_submission):
    """This test's handle on the student's executed notebook: `student.value(code, **inputs)`."""
    grader = request.config.stash[GRADER_KEY]
    kernel = grader.kernel_for(_tinytorch_submission)
    for note in grader.view_notes.get(_tinytorch_submission.key, []):
        request.node.user_properties.append((NOTE, note))
    # Under xdist the summary is printed by the controller, which sees only the reports: a
    # kernel that ran without isolation (or started cold) must say so through them.
    if getattr(kernel, "sandbox_warning", None):
        grader.sandbox_warnings.add(kernel.sandbox_warning)
    request.node.user_properties.extend((WARNING, warning) for warning in sorted(grader.sandbox_warnings))
    return kernel


@pytest.fixture
def grading_seed(request) -> int:
    """An int shared by every test of one submission: fixed in public tests, a grading-time
    secret (per class, per student) in hidden tests. For work several tests share, such as a
    model trained once and then judged by several tests."""
    return request.config.stash[GRADER_KEY].seed_for(request, shared=True) % 2**31


@pytest.fixture
def rng(request):
    """A NumPy Generator: fixed seed in public tests, a grading-time secret seed in hidden ones."""
    grader = request.config.stash[GRADER_KEY]
    return np.random.default_rng(grader.seed_for(request))


def _has_xdist(config) -> bool:
    """pytest-xdist is loaded: by its entry point ("xdist") or by `-p xdist.plugin` (tito)."""
    return any(config.pluginmanager.hasplugin(name) for name in ("xdist", "xdist.plugin"))
