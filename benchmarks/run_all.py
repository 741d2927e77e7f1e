"""Run every benchmark, one after the other, and print a summary of the issue's targets.

    python benchmarks/run_all.py [--torch-python PATH] [--nbgrader PATH] [--quick]

Runs each script of benchmarks/ as a subprocess from the repository root, in sequence (never in
parallel: they time things), streams its output under a header naming the script and the command,
and collects the lines it prints with `targets.report` (``TARGET | name | measured | target |
verdict``). At the end it prints one table of every target and exits with status 1 if any target
is NOT MET or any script failed, 0 otherwise ("not measured" is listed but does not fail the run).

- grading.py and reports.py run with this Python (they need the project's dependencies);
  grading.py gets ``--students 24`` (16 with --quick: with fewer, its fixed start-up weighs too
  much per submission) and ``--nbgrader PATH`` when given.
- The framework scripts (autograd_overhead, mlp_epoch, conv2d, gpt_forward, kv_cache, quantization,
  acceleration) run with --torch-python when given, with PYTHONPATH set to the repository root so
  that ``import tinytorch`` works there; else with this Python, and their PyTorch comparisons
  are then "not measured".
- --quick passes each script's smaller or faster options where it has them (fewer rounds,
  repeats or submissions); the targets are still measured, on noisier figures.

Neither nbgrader nor PyTorch is a dependency of the project; install each in a venv of its own:

    python -m venv /tmp/nbg && /tmp/nbg/bin/pip install nbgrader
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install -q numpy torch==2.13.0
    python benchmarks/run_all.py --nbgrader /tmp/nbg/bin/nbgrader --torch-python /tmp/torchenv/bin/python

Times move with the machine's load: on a shared machine a verdict near its threshold can change
from run to run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from targets import parse  # noqa: E402  (benchmarks/targets.py)

# The framework scripts (run with --torch-python when given) and their options under --quick.
FRAMEWORK = [
    ("autograd_overhead.py", ["--ops", "5000"]),
    ("mlp_epoch.py", ["--rounds", "5"]),
    ("conv2d.py", ["--rounds", "10", "--loop-batch", "1"]),
    ("gpt_forward.py", []),                                  # no options
    ("kv_cache.py", ["--lengths", "32", "256", "--repeats", "2"]),   # keeps 256: the target's length
    ("quantization.py", ["--repeats", "10"]),
    ("acceleration.py", ["--quick", "--repeats", "5"]),
]


def executable(path: str) -> str:
    """A path given on the command line, made absolute: the scripts run from the repository root."""
    return str(Path(path).absolute()) if os.sep in path else path


def commands(args) -> list[tuple[str, list[str], dict]]:
    """(script, command, environment) of every benchmark, in the order they run."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")      # stream the scripts' output as it comes
    grading = [sys.executable, "benchmarks/grading.py", "--students", "16" if args.quick else "24"]
    if args.nbgrader:
        grading += ["--nbgrader", executable(args.nbgrader)]
    runs = [("grading.py", grading, env), ("reports.py", [sys.executable, "benchmarks/reports.py"], env)]
    framework_env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    python = executable(args.torch_python) if args.torch_python else sys.executable
    for script, quick in FRAMEWORK:
        runs.append((script, [python, f"benchmarks/{script}"] + (quick if args.quick else []), framework_env))
    return runs


def run(script: str, command: list[str], env: dict) -> tuple[list[tuple[str, ...]], int]:
    """Run one benchmark, echoing its output; return its TARGET lines, parsed, and its exit status."""
    print(f"\n===== {script}: {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    found = []
    try:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
    except OSError as error:                    # e.g. a --torch-python that does not exist
        print(f"===== {script}: could not start: {error}", flush=True)
        return found, 127
    with process:
        for line in process.stdout:
            print(line, end="", flush=True)
            target = parse(line.rstrip("\n"))
            if target is not None:
                found.append(target)
    print(f"===== {script}: exit {process.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
    return found, process.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch-python", metavar="PATH",
                        help="a Python with torch installed, for the framework scripts")
    parser.add_argument("--nbgrader", metavar="PATH", help="nbgrader's executable, passed to grading.py")
    parser.add_argument("--quick", action="store_true", help="each script's smaller or faster options")
    args = parser.parse_args(argv)

    rows = []
    for script, command, env in commands(args):
        found, status = run(script, command, env)
        rows += [(script, name, measured, goal, verdict) for name, measured, goal, verdict in found]
        if status != 0:
            rows.append((script, "(the script itself)", f"script failed (exit {status})", "runs to the end", "NOT MET"))
        elif not found:
            rows.append((script, "(the script itself)", "printed no TARGET line", "one line per target",
                         "not measured"))

    print("\n\nSummary of the targets (" + ("--quick; " if args.quick else "")
          + f"framework scripts run with {args.torch_python or sys.executable})\n")
    print(tabulate(rows, headers=["script", "target", "measured", "goal", "verdict"], tablefmt="github"))
    counts = {verdict: sum(row[-1] == verdict for row in rows) for verdict in ("met", "NOT MET", "not measured")}
    print("\n" + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    return 1 if counts["NOT MET"] else 0


if __name__ == "__main__":
    sys.exit(main())
