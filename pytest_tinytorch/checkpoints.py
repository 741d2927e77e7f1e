"""Checkpoint achievements: the milestones, run against each student's own package.

A milestone (curriculum/milestones/<name>.py) trains something real with the tinytorch package:
the perceptron, XOR, the digits MLP, the CNN, the tiny GPT. As a *checkpoint* it is graded per
student: the modules it `REQUIRES` come from that student's submitted notebooks (their export
cells, exactly what `tito export` builds in the student's repository), every other module from
the course's package. So a checkpoint is achieved when the student's own tensor, autograd,
optimizer... train the model to the milestone's target, and a student who skipped one required
task does not achieve it (tests/test_milestones.py proves each knock-out fails).

The trust boundary is the modules' one (DESIGN.md): the milestone runs in the sandboxed kernel
(sandbox.py) with that package first on its path; only its `run()` result crosses back, as plain
data checked by wire.py, and the verdict is the milestone's `check()` called *here*, in the
grader's process, with the course's code. One kernel per (student, milestone); runs are spread
over worker processes like `pytest -n`.

Results land in ``grades/checkpoints/<student>.csv`` (one file per student, written atomically,
so shards of a class and reruns of one milestone merge by themselves); the gradebook turns them
into the course's "checkpoint achievements" percent (reports/grades.py).
"""

from __future__ import annotations

import ast
import concurrent.futures
import importlib.util
import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import pandas as pd

from . import packageview, registry, sandbox, submissions, warm
from .errors import TinyTorchError
from .kernel import KernelTimeout, NotebookProblem, StudentError, StudentKernel
from .safety import atomic_write
from .wire import NotPlainData, WireError

MILESTONES = Path("curriculum") / "milestones"
FOLDER = "checkpoints"                    # grades/checkpoints/<student>.csv
COLUMNS = ["student", "milestone", "title", "achieved", "problems", "run", "seed", "seconds"]
# A full run of the slowest milestone (the tiny GPT) needs about a minute of CPU; a busy
# grading machine stretches wall-clock time, not CPU time.
LIMITS = sandbox.Limits(cpu_seconds=600, memory_bytes=3 * sandbox.GiB)
CALL_TIMEOUT = 1200.0

# Runs in the kernel: the milestone's source becomes a module (its `__main__` block does not
# run), then its `run` is called. The source is the course's own, not secret: it ships to students.
RUNNER = """\
import types as __tt_types
__tt_milestone = __tt_types.ModuleType({module!r})
exec(compile({text!r}, {filename!r}, "exec"), __tt_milestone.__dict__)
__tt_milestone.run(quick={quick!r}, seed={seed!r})
"""


@dataclass(frozen=True)
class Milestone:
    name: str              # "xor", the file's stem
    title: str
    requires: tuple[str, ...]
    path: Path

    def check(self, result: dict, quick: bool) -> list[str]:
        """The milestone's own `check`, imported from the course repository (trusted code; its
        imports resolve to the course's reference package, first on the path of this worker)."""
        root = str(self.path.parents[2])
        if sys.path[:1] != [root]:
            sys.path.insert(0, root)
        spec = importlib.util.spec_from_file_location(f"tinytorch_milestone_{self.name}", self.path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return [str(problem) for problem in module.check(result, quick=quick)]


def metadata(path: Path) -> dict:
    """A milestone's module-level TITLE, REQUIRES and SABOTAGE literals and the names of its
    functions, read with `ast`: nothing is imported or run."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    found = {"functions": {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("TITLE", "REQUIRES", "SABOTAGE"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def discover(root: Path) -> list[Milestone]:
    """The milestones of the repository at `root`, ordered by the last module they require."""
    order = {m.slug: i for i, m in enumerate(registry.load(root))}
    found = []
    for path in sorted((Path(root) / MILESTONES).glob("*.py")):
        if path.name.startswith("_"):
            continue
        meta = metadata(path)
        requires = tuple(meta.get("REQUIRES") or ())
        unknown = [slug for slug in requires if slug not in order]
        if not requires or unknown:
            raise TinyTorchError(f"{path}: REQUIRES must list module slugs of curriculum/modules.yaml "
                                 f"(unknown: {unknown or 'none listed'})")
        found.append(Milestone(path.stem, str(meta.get("TITLE", path.stem)), requires, path))
    return sorted(found, key=lambda m: (max(order[s] for s in m.requires), m.name))


def select(root: Path, names: list[str] | None) -> list[Milestone]:
    """The milestones named (all when `names` is empty), or an error listing the known ones."""
    known = discover(root)
    if not names:
        return known
    by_name = {m.name: m for m in known}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise TinyTorchError(f"unknown milestone(s) {', '.join(unknown)}; the milestones are "
                             f"{', '.join(by_name)} (curriculum/milestones/)")
    return [by_name[n] for n in names]


# --- one run ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    student: str
    milestone: str
    title: str
    achieved: bool
    problems: str          # the unmet targets or why it could not run, "; "-separated
    run: str               # "full" or "quick"
    seed: int
    seconds: float         # wall-clock time of the run, start-up included


def grade_one(root: Path, submitted: Path, student: str, milestone: Milestone, *, quick: bool = False,
              seed: int = 0, isolation: str = "auto", limits: sandbox.Limits = LIMITS,
              call_timeout: float = CALL_TIMEOUT) -> Outcome:
    """Run one milestone against one student's package and judge it here."""
    start = time.perf_counter()

    def outcome(problems: list[str]) -> Outcome:
        return Outcome(student, milestone.name, milestone.title, not problems, "; ".join(problems),
                       "quick" if quick else "full", seed, round(time.perf_counter() - start, 2))

    notebooks, missing = {}, []
    for slug in milestone.requires:
        notebook, problem = submissions.find_notebook(submitted / student / slug, registry.resolve(root, slug))
        if notebook is None:
            missing.append(problem)
        notebooks[slug] = notebook
    if missing:
        return outcome(missing)
    scratch = Path(tempfile.mkdtemp(prefix="tt-checkpoint-", dir=warm.scratch_parent()))
    kernel = None
    try:
        try:
            view = packageview.from_notebooks(root, Path(root) / "tinytorch", scratch, notebooks)
        except NotebookProblem as problem:
            return outcome([str(problem)])
        kernel = StudentKernel(nbformat.v4.new_notebook(), label=f"{student}/{milestone.name}", timeout=120,
                               call_timeout=call_timeout, isolation=isolation, package_view=view, limits=limits)
        code = RUNNER.format(module=f"milestone_{milestone.name}", filename=milestone.path.name,
                             text=milestone.path.read_text(encoding="utf-8"), quick=quick, seed=seed)
        try:
            result = kernel.value(code)
        except (NotebookProblem, KernelTimeout, StudentError, NotPlainData, WireError) as err:
            return outcome([f"the milestone could not run with your package: {str(err)[:500]}"])
        if type(result) is not dict:
            return outcome([f"the milestone's run returned a {type(result).__name__}, not a dict of measurements"])
        try:
            return outcome(milestone.check(result, quick))
        except Exception as err:  # the measurements are the student's data: any shape can come back
            return outcome([f"the run's measurements could not be checked: {type(err).__name__}: {err}"])
    finally:
        if kernel is not None:
            kernel.close()
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Failure:
    """A run the grader could not complete (its own error, not the student's): nothing is
    recorded for it, so the student's table keeps what it had and a rerun fills it in."""
    student: str
    milestone: str
    error: str

    def rerun(self) -> str:
        return f"tito nbgrader checkpoints {self.milestone} --student {self.student}"


def _grade_job(job: dict) -> dict:
    """Worker-process entry: plain arguments in, a plain row out (an Outcome's fields, or
    {"error": ...} when grading itself failed: that costs this run, never the rest of the class)."""
    job = dict(job)
    try:
        root, submitted, student = Path(job.pop("root")), Path(job.pop("submitted")), job.pop("student")
        milestone = Milestone(**job.pop("milestone"))
        return asdict(grade_one(root, submitted, student, milestone, **job))
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"}


# --- a class ----------------------------------------------------------------------------------

def _in_processes(jobs_list: list[dict], workers: int):
    """(job, row) for each job as its worker finishes it; when a worker process dies, every job
    it took down with its pool comes back as {"error": ..., "lost": True}."""
    # spawn: each worker starts clean (no inherited event loops or ZeroMQ contexts).
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        futures = {pool.submit(_grade_job, job): job for job in jobs_list}
        for future in concurrent.futures.as_completed(futures):
            try:
                row = future.result()
            except BrokenProcessPool as err:
                row = {"error": f"{type(err).__name__}: {err}", "lost": True}
            except Exception as err:   # e.g. a row that could not come back: this run only
                row = {"error": f"{type(err).__name__}: {err}"}
            yield futures[future], row


def grade(root: Path, course_dir: Path, *, milestones: list[Milestone], students: list[str] | None = None,
          shard: tuple[int, int] | None = None, quick: bool = False, seed: int = 0, jobs: int = 1,
          isolation: str = "auto", progress=print) -> tuple[list[Outcome], list[Failure]]:
    """Grade the checkpoints of every student in `course_dir/submitted` (or those named, or one
    shard) and write each student's grades/checkpoints/<student>.csv as soon as their runs are
    done (an interrupted class keeps the students finished). Returns the outcomes, in student
    then milestone order, and the runs the grader could not complete."""
    submitted = Path(course_dir) / "submitted"
    if not submitted.is_dir():
        raise TinyTorchError(f"no submitted/ folder in {course_dir}: collect the module notebooks first "
                             f"(`tito nbgrader collect MODULE`)")
    everyone = [s for s in submissions.students(submitted) if submissions.SAFE_ID.match(s)]
    unknown = sorted(set(students or ()) - set(everyone))
    if unknown:
        raise TinyTorchError(f"no submissions of {', '.join(unknown)} in {submitted}")
    chosen = [s for s in everyone if (not students or s in students)
              and (shard is None or submissions.shard_of(s, shard[1]) == shard[0])]
    jobs_list = [{"root": str(root), "submitted": str(submitted), "student": s,
                  "milestone": asdict(m), "quick": quick, "seed": seed, "isolation": isolation}
                 for s in chosen for m in milestones]
    warning = sandbox.isolation_warning(isolation)
    if warning:
        progress(f"warning: {warning}")
    runs_left = {s: len(milestones) for s in chosen}
    finished: dict[str, list[Outcome]] = {s: [] for s in chosen}
    outcomes: list[Outcome] = []
    failures: list[Failure] = []

    def record(job: dict, row: dict) -> None:
        student, milestone = job["student"], job["milestone"]["name"]
        if "error" in row:
            failure = Failure(student, milestone, row["error"])
            failures.append(failure)
            progress(f"{student:<16} {milestone:<12} NOT GRADED (grader error, nothing recorded): "
                     f"{failure.error[:300]}; rerun: {failure.rerun()}")
        else:
            outcome = Outcome(**row)
            outcomes.append(outcome)
            finished[student].append(outcome)
            mark = "achieved" if outcome.achieved else f"NOT achieved: {outcome.problems}"
            progress(f"{student:<16} {milestone:<12} {mark}  ({outcome.seconds:.1f} s)")
        runs_left[student] -= 1
        if runs_left[student] == 0 and finished[student]:
            write_student(Path(course_dir) / "grades" / FOLDER, student, finished[student])

    lost = []
    for job, row in _in_processes(jobs_list, jobs):
        if row.get("lost"):
            lost.append(job)
        else:
            record(job, row)
    # A grading process died (killed by the OOM killer, say) and took the runs it and its pool
    # still had. Each runs again alone, so a run that kills its process costs only itself.
    for job in lost:
        for _, row in _in_processes([job], 1):
            record(job, row)
    rank = {(job["student"], job["milestone"]["name"]): i for i, job in enumerate(jobs_list)}
    outcomes.sort(key=lambda o: rank[o.student, o.milestone])
    return outcomes, failures


def write_student(folder: Path, student: str, outcomes: list[Outcome]):
    """Merge new outcomes into the student's table (other milestones' rows are kept) atomically."""
    path = folder / f"{student}.csv"
    new = pd.DataFrame([asdict(o) for o in outcomes], columns=COLUMNS)
    if path.is_file():
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
        old = old[~old["milestone"].isin(new["milestone"])]
        new = pd.concat([old.reindex(columns=COLUMNS), new.astype(str)], ignore_index=True)
    atomic_write(path, new.to_csv(index=False))


def read(grades_dir: Path) -> pd.DataFrame:
    """Every grades/checkpoints/<student>.csv as one table (empty with COLUMNS when none)."""
    paths = sorted((Path(grades_dir) / FOLDER).glob("*.csv"))
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths if not p.name.startswith(".")]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True).reindex(columns=COLUMNS)
    table["achieved"] = table["achieved"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    return table.drop_duplicates(["student", "milestone"], keep="last").reset_index(drop=True)
