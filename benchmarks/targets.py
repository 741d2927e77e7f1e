"""One line per target, in a form `run_all.py` collects into its summary table.

    report("grading vs nbgrader, -n 2", "3.09x faster", "at least 2x faster", met=True)

prints ``TARGET | grading vs nbgrader, -n 2 | 3.09x faster | at least 2x faster | met``.
A benchmark that could not measure a target (PyTorch not installed, nbgrader not given) says so
with ``met=None``: the summary lists it as not measured, never as met.
"""

from __future__ import annotations

PREFIX = "TARGET | "


def report(name: str, measured: str, target: str, met: bool | None) -> None:
    verdict = "not measured" if met is None else "met" if met else "NOT MET"
    print(f"{PREFIX}{name} | {measured} | {target} | {verdict}", flush=True)


def parse(line: str) -> tuple[str, str, str, str] | None:
    """(name, measured, target, verdict) of a line printed by `report`, else None."""
    if not line.startswith(PREFIX):
        return None
    parts = [part.strip() for part in line[len(PREFIX):].split(" | ")]
    return tuple(parts) if len(parts) == 4 else None
