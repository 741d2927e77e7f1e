"""Grading throughput: TinyTorch's grader against the floor of merely executing the notebooks.

    python benchmarks/grading.py [--students 12] [--workers 2] [--nbgrader PATH/TO/bin/nbgrader]

Makes N synthetic submissions of 01_tensor (a mix of complete and partly stubbed notebooks),
then, in one run on this machine:

1. grades them with `pytest --collect-submissions` serially and with `-n WORKERS`, as
   `tito nbgrader autograde` runs it (warm kernels forked from a template, warm.py), and again
   with every kernel started cold (TINYTORCH_WARM_KERNELS=0) to show what the template saves;
2. executes the same notebooks with nbclient (the floor: start a kernel, run every cell), serially
   and with WORKERS processes; and the same without the systems-analysis cells, which the grader
   skips (students run them; they only measure);
3. with --nbgrader: `nbgrader autograde` on the same submissions, in an nbgrader course made from
   the same module (nbgrader is never a dependency: install it in a virtualenv of its own,
   `python -m venv /tmp/nbg && /tmp/nbg/bin/pip install nbgrader`, and pass its executable).
   The module's inline check cells become nbgrader's autograder test cells (1 point each), so
   nbgrader, like our grader, checks something; its `generate_assignment` step is not timed.

Prints seconds per submission and the ratios, measured in the same run. BLAS is pinned to one
thread (OPENBLAS_NUM_THREADS=1), as the grader does for its kernels.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from pytest_tinytorch import cli, registry, source  # noqa: E402
from targets import report  # noqa: E402  (benchmarks/targets.py)


def make_class(folder: Path, students: int) -> list[Path]:
    module = registry.resolve(ROOT, "01_tensor")
    cells = source.read(module.source(ROOT))
    regions = source.solution_regions(cells)
    paths = []
    for i in range(students):
        # Every third student leaves one region unfinished: graders see partial work too.
        variant = source.without_solutions(cells, only=regions[i % len(regions)]) if i % 3 == 2 else cells
        nb = source.to_notebook(source.without_markers(variant))
        path = folder / "submitted" / f"student{i:03d}" / module.slug / f"{module.slug}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def execute(path: str, skip_analysis: bool) -> None:
    nb = nbformat.read(path, as_version=4)
    if skip_analysis:
        nb.cells = [c for c in nb.cells if "analysis" not in c.metadata.get("tags", [])]
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   shutdown_kernel="immediate", resources={"metadata": {"path": str(Path(path).parent)}},
                   extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()   # no TCP warning per kernel


def floor(paths: list[Path], workers: int, skip_analysis: bool) -> float:
    start = time.perf_counter()
    if workers == 1:
        for p in paths:
            execute(str(p), skip_analysis)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(execute, [str(p) for p in paths], [skip_analysis] * len(paths)))
    return time.perf_counter() - start


def grade(folder: Path, workers: int, warm: bool = True) -> float:
    """`tito nbgrader autograde 01_tensor [-n WORKERS]`'s pytest command, timed whole."""
    grades = folder / f"grades-{workers}-{'warm' if warm else 'cold'}"
    argv = ["--collect-submissions", "--module", "01_tensor", "-q", "--rootdir", str(ROOT),
            "-c", str(ROOT / "pyproject.toml"),
            f"--submissions-dir={folder / 'submitted'}", f"--grades-dir={grades}"]
    if workers > 1:
        argv += ["-n", str(workers)]
    command, env = cli.pytest_command(argv)
    env.update(TINYTORCH_GRADING_SECRET="benchmark", TINYTORCH_WARM_KERNELS="1" if warm else "0")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    written = len(list(grades.glob("*.csv")))
    assert written == len(list((folder / "submitted").iterdir())), done.stdout[-2000:] + done.stderr[-2000:]
    return elapsed


def nbgrader_course(folder: Path, paths: list[Path], nbgrader: str) -> Path:
    """An nbgrader course of 01_tensor holding the same submissions, assignment generated."""
    from pytest_tinytorch import assignments
    course = folder / "nbgrader"
    module = registry.resolve(ROOT, "01_tensor")
    nb = assignments.instructor_notebook(source.read(module.source(ROOT)), module.slug)
    for cell in nb.cells:
        meta = cell.metadata["nbgrader"]
        if cell.cell_type == "code" and not meta["solution"] and "assert" in cell.source \
                and "analysis" not in cell.metadata.get("tags", []):
            meta.update(grade=True, points=1, locked=True)
    (course / "source" / module.slug).mkdir(parents=True)
    nbformat.write(nb, course / "source" / module.slug / f"{module.slug}.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'benchmark'\nc.ExecutePreprocessor.timeout = 600\n")
    env = _nbgrader_env(nbgrader)
    subprocess.run([nbgrader, "generate_assignment", module.slug, "--force"], cwd=course, env=env,
                   capture_output=True, check=True)
    for path in paths:   # the same notebooks, with the source's nbgrader cell metadata
        sub = nbformat.read(path, as_version=4)
        for cell, meta_cell in zip(sub.cells, nb.cells):
            cell.metadata = meta_cell.metadata
        target = course / "submitted" / path.parents[1].name / module.slug / path.name
        target.parent.mkdir(parents=True)
        nbformat.write(sub, target)
    return course


def _nbgrader_env(nbgrader: str) -> dict:
    # nbgrader runs helpers (alembic) from its own environment's bin folder.
    return {**os.environ, "PATH": str(Path(nbgrader).parent) + os.pathsep + os.environ["PATH"]}


def nbgrader_autograde(course: Path, nbgrader: str, n: int) -> float:
    start = time.perf_counter()
    subprocess.run([nbgrader, "autograde", "01_tensor", "--force"], cwd=course, env=_nbgrader_env(nbgrader),
                   capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    graded = list((course / "autograded").glob("*/01_tensor/01_tensor.ipynb"))
    assert len(graded) == n, f"nbgrader autograded {len(graded)} of {n} submissions"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nbgrader", metavar="EXECUTABLE", help="nbgrader's executable, in a virtualenv of its own")
    args = parser.parse_args()
    nbgrader_seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_class(folder, args.students)
        n = len(paths)
        rows = []
        for workers in (1, args.workers):
            g = grade(folder, workers)
            cold = grade(folder, workers, warm=False)
            f_all = floor(paths, workers, skip_analysis=False)
            f_graded = floor(paths, workers, skip_analysis=True)
            rows.append((workers, g / n, cold / n, f_all / n, f_graded / n))
        if args.nbgrader:
            nbgrader_seconds = nbgrader_autograde(nbgrader_course(folder, paths, args.nbgrader), args.nbgrader, n)
    print(f"01_tensor, {n} submissions, 19 graded tests each (public + hidden)\n")
    print(f"{'workers':>7} {'grader s/sub':>13} {'cold kernels':>13} {'floor s/sub':>12} "
          f"{'floor w/o analysis':>19} {'grader/floor':>13} {'grader/floor w/o analysis':>26}")
    for workers, g, cold, fa, fg in rows:
        print(f"{workers:>7} {g:>13.3f} {cold:>13.3f} {fa:>12.3f} {fg:>19.3f} {g / fa:>13.2f} {g / fg:>26.2f}")
    if nbgrader_seconds is not None:
        per = nbgrader_seconds / n
        print(f"\nnbgrader autograde (serial, the whole command): {per:.3f} s/sub; "
              f"TinyTorch is {per / rows[0][1]:.2f}x faster serially, {per / rows[-1][1]:.2f}x with "
              f"{rows[-1][0]} workers")
    workers, g, _, fa, _ = rows[-1]
    if nbgrader_seconds is None:
        report(f"grading vs nbgrader autograde, -n {workers}", "nbgrader not given (--nbgrader)",
               "at least 2x faster", None)
    else:
        speedup = nbgrader_seconds / n / g
        report(f"grading vs nbgrader autograde, -n {workers}", f"{speedup:.2f}x faster",
               "at least 2x faster", speedup >= 2)
    report(f"grading vs the nbclient floor, -n {workers}", f"{g / fa:.2f}x the floor",
           "within 1.5x", g / fa <= 1.5)


if __name__ == "__main__":
    main()
