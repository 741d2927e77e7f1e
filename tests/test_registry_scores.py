"""The module registry and the score tables."""

from pathlib import Path

import pytest

from pytest_tinytorch import registry, scores, submissions
from pytest_tinytorch.errors import UnknownModuleError

ROOT = Path(__file__).resolve().parents[1]


def test_registry_lists_twenty_modules_in_order():
    modules = registry.load(ROOT)
    assert [m.number for m in modules] == [f"{i:02d}" for i in range(1, 21)]
    assert len({m.slug for m in modules}) == 20


@pytest.mark.parametrize("name", ["01_tensor", "01", "1", "tensor", " Tensor "])
def test_resolve_accepts_every_spelling(name):
    assert registry.resolve(ROOT, name).slug == "01_tensor"


def test_unknown_module_lists_the_valid_ones():
    with pytest.raises(UnknownModuleError, match="expected one of: 01_tensor, 02_activations"):
        registry.resolve(ROOT, "tensors")


def row(student, module, test, pts=1.0):
    return {"student": student, "module": module, "test": test, "points": pts, "max_points": 1.0,
            "outcome": "passed", "message": "", "duration_s": 0.1, "hidden": False}


def test_write_tables_is_atomic_and_merges(tmp_path):
    scores.write_tables(tmp_path, [row("a", "01_x", "t1"), row("a", "02_y", "t2")])
    scores.write_tables(tmp_path, [row("a", "02_y", "t3", 0.0)])
    rows = scores.read_table(tmp_path / "a.csv")
    assert [(r["module"], r["test"], r["points"]) for r in rows] == [("01_x", "t1", "1.0"), ("02_y", "t3", "0.0")]
    assert not list(tmp_path.glob("*.tmp")), "no temporary file is left behind"


def test_summary_table_totals():
    text = scores.summary_table([row("a", "01_x", "t1"), row("a", "01_x", "t2", 0.0), row("b", "01_x", "t1")])
    assert "1 / 2" in text and "50%" in text and "100%" in text


def test_shards_are_stable_and_cover_everyone():
    names = [f"student{i}" for i in range(100)]
    shards = [submissions.shard_of(n, 4) for n in names]
    assert set(shards) == {1, 2, 3, 4}
    assert shards == [submissions.shard_of(n, 4) for n in names]


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    from pytest_tinytorch.safety import _umask, atomic_write
    fresh = tmp_path / "fresh.txt"
    atomic_write(fresh, "a")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write(kept, "new")
    assert kept.read_text() == "new" and kept.stat().st_mode & 0o777 == 0o640
