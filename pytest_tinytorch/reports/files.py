"""Writing report files: whole-file replace (a reader sees the old page or the new one), and
grouping score rows per submission without building a DataFrame per group."""

from __future__ import annotations

import csv
import io
import os
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd


def write(path: Path, text: str) -> Path:
    """Replace `path` with `text` atomically (no fsync: reports are regenerated at will)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def records(df: pd.DataFrame) -> list:
    """The rows of `df` as namedtuples of plain Python values (attribute access, no pandas or
    NumPy scalar per cell: several times faster than DataFrame.itertuples)."""
    row = namedtuple("Row", [str(c) for c in df.columns], rename=True)
    return list(map(row._make, zip(*[df[c].tolist() for c in df.columns])))


def to_csv(df: pd.DataFrame) -> str:
    """CSV text of `df` through the csv module (faster than DataFrame.to_csv on text columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(df.columns)
    writer.writerows(zip(*[df[c].tolist() for c in df.columns]))
    return out.getvalue()


def by_submission(df: pd.DataFrame) -> dict[tuple[str, str], list]:
    """(student, module) -> that submission's rows as namedtuples, in table order: one stable
    sort and one pass, instead of one DataFrame per group."""
    if not len(df):
        return {}
    df = df.sort_values(["student", "module"], kind="stable")
    rows = records(df)
    s, m = df["student"].to_numpy(), df["module"].to_numpy()
    change = np.flatnonzero(np.r_[True, (s[1:] != s[:-1]) | (m[1:] != m[:-1])]).tolist()
    bounds = [*change, len(rows)]
    return {(s[b], m[b]): rows[b:e] for b, e in zip(bounds[:-1], bounds[1:])}
