"""The grading plugin, end to end on a tiny course, driven with `pytester` like pytest's own plugins."""

from __future__ import annotations

import csv

import pytest


def table(tiny, student):
    with open(tiny.root / "grades" / f"{student}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def points(rows):
    return sum(float(r["points"]) for r in rows), sum(float(r["max_points"]) for r in rows)


def comparable(rows):
    return [{k: v for k, v in row.items() if k != "duration_s"} for row in rows]


# --- options and markers -----------------------------------------------------------------------

def test_markers_are_registered(pytester, tiny):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.module(slug):*", "@pytest.mark.points(n):*", "@pytest.mark.hidden:*"])


@pytest.mark.parametrize("args, expected", [
    (["--module", "99_nope"], "*unknown module '99_nope'; expected one of: 01_tiny*"),
    (["--module", "01", "--notebook-timeout", "0"], "*--notebook-timeout*positive number of seconds*"),
    (["--collect-submissions", "--shard", "3/2"], "*--shard expects I/N with 1 <= I <= N*"),
    (["--module", "01", "--student", "alice"], "*--student*--collect-submissions*"),
    (["--collect-submissions", "--submissions-dir", "nowhere"], "*no submissions folder*tito nbgrader init*"),
])
def test_invalid_options_are_usage_errors(pytester, tiny, args, expected):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_plain_pytest_skips_graded_tests(pytester, tiny):
    result = pytester.runpytest("curriculum/01_tiny/test_01_tiny.py")
    result.assert_outcomes(skipped=2)


# --- student mode --------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["01_tiny", "01", "tiny"])
def test_student_mode_on_reference_scores_everything(pytester, tiny, spelling):
    result = pytester.runpytest("--module", spelling, "--strict-markers")
    result.assert_outcomes(passed=2, deselected=1)  # the hidden test is never run for a student
    result.stdout.fnmatch_lines(["*01_tiny: 3 / 3 points (100%)*"])
    assert not (tiny.root / "grades").exists(), "student mode writes no score tables"


def test_student_mode_grades_the_notebook_not_the_source(pytester, tiny):
    import nbformat
    nbformat.write(tiny.notebook("blank"), tiny.root / "curriculum" / "01_tiny" / "01_tiny.ipynb")
    result = pytester.runpytest("--module", "01_tiny")
    result.assert_outcomes(failed=2, deselected=1)  # failed, not errored inside the plugin
    result.stdout.fnmatch_lines(["*NotImplementedError: Implement double*", "*01_tiny: 0 / 3 points (0%)*"])


# --- instructor mode -----------------------------------------------------------------------------

@pytest.fixture
def tiny_class(tiny):
    tiny.submit("alice", "full")
    tiny.submit("bob", "half")
    tiny.submit("carol", "blank")
    tiny.submit("dave", raw="{this is not json")
    tiny.submit("erin", "full", extra="while True:\n    pass")
    (tiny.root / "submitted" / "frank").mkdir(parents=True)       # a student with no module folder
    tiny.submit("gina", "full", extra="import os\nos._exit(1)")    # kills its own kernel
    return tiny


EXPECTED = {"alice": (6, 6), "bob": (4, 6), "carol": (0, 6), "dave": (0, 6), "erin": (0, 6),
            "frank": (0, 6), "gina": (0, 6)}


def test_collect_submissions_grades_a_class(pytester, tiny_class):
    result = pytester.runpytest("--collect-submissions", "--notebook-timeout", "5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3 + 2, failed=7 * 3 - 5)  # alice: all 3 tests; bob: 2 of 3
    result.stdout.fnmatch_lines(["*TinyTorch grades*", "alice*6 / 6*", "bob*4 / 6*", "*score tables: 7 written*"])
    # the grade table, not 16 tracebacks: the reasons are in the score tables
    assert "= FAILURES =" not in result.stdout.str() and "short test summary" not in result.stdout.str()
    for student, expected in EXPECTED.items():
        rows = table(tiny_class, student)
        assert len(rows) == 3 and {r["module"] for r in rows} == {"01_tiny"}
        assert points(rows) == expected, student
    reasons = {s: table(tiny_class, s)[0]["message"] for s in ("dave", "erin", "frank", "gina")}
    assert "not a valid notebook" in reasons["dave"]
    assert "did not finish running within 5 s" in reasons["erin"]
    assert "no submission" in reasons["frank"]
    assert "kernel died" in reasons["gina"]
    bob = {r["test"]: r for r in table(tiny_class, "bob")}
    assert bob["test_halve"]["outcome"] == "failed" and "Implement halve" in bob["test_halve"]["message"]
    assert bob["test_double_random"]["hidden"] == "True" and bob["test_double_random"]["points"] == "3.0"


def test_hidden_failure_messages_reveal_nothing(pytester, tiny):
    tiny.submit("mallory", "full", extra="def double(x):\n    return 7")
    pytester.runpytest("--collect-submissions")
    rows = {r["test"]: r for r in table(tiny, "mallory")}
    assert rows["test_double_random"]["message"] == "hidden test failed: wrong result"
    assert "7" in rows["test_double"]["message"]  # public tests show expected and received


def test_student_and_module_narrow_by_deselection(pytester, tiny_class):
    result = pytester.runpytest("--collect-submissions", "--student", "alice", "--module", "tiny")
    result.assert_outcomes(passed=3, deselected=0)
    assert sorted(p.name for p in (tiny_class.root / "grades").glob("*.csv")) == ["alice.csv"]


def test_rerun_replaces_the_module_rows_and_keeps_others(pytester, tiny):
    tiny.submit("alice", "half")
    grades = tiny.root / "grades"
    grades.mkdir()
    (grades / "alice.csv").write_text(
        "student,module,test,points,max_points,outcome,message,duration_s,hidden\n"
        "alice,00_other,test_x,5.0,5.0,passed,,0.1,False\n"
        "alice,01_tiny,test_stale,9.0,9.0,passed,,0.1,False\n")
    pytester.runpytest("--collect-submissions")
    rows = table(tiny, "alice")
    assert [(r["module"], r["test"]) for r in rows] == [
        ("00_other", "test_x"), ("01_tiny", "test_double"), ("01_tiny", "test_halve"), ("01_tiny", "test_double_random")]


def test_parallel_and_sharded_runs_write_the_same_tables(pytester, tiny):
    for student, kind in [("ann", "full"), ("ben", "half"), ("cat", "blank"), ("dan", "full"), ("eve", "half")]:
        tiny.submit(student, kind)
    grades = tiny.root / "grades"
    students = ["ann", "ben", "cat", "dan", "eve"]

    def run(*args):
        if grades.exists():
            for path in grades.glob("*.csv"):
                path.unlink()
        result = pytester.runpytest_subprocess("--collect-submissions", *args)
        assert result.ret in (0, 1), result.stdout.str()
        return {s: comparable(table(tiny, s)) for s in students if (grades / f"{s}.csv").exists()}

    serial = run()
    assert sorted(serial) == students
    assert run("-n", "2") == serial
    first = run("--shard", "1/2")
    second = {}
    for path in grades.glob("*.csv"):
        path.unlink()
    second = run("--shard", "2/2")
    assert first and second and not set(first) & set(second)
    assert {**first, **second} == serial


def test_collect_mode_shows_failures_when_asked(pytester, tiny):
    tiny.submit("bob", "half")
    result = pytester.runpytest("--collect-submissions", "--tb=short", "-rf")
    result.stdout.fnmatch_lines(["*= FAILURES =*", "*FAILED*test_halve*bob-01_tiny*"])


def test_folders_outside_the_repository_given_without_equals_sign(pytester, tiny, tmp_path_factory):
    """`--submissions-dir /elsewhere` (a space, not '='): pytest takes that folder for its rootdir
    before the plugin's options exist; the grader still finds the repository, grades, and says
    how to write the options."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    tiny.root = elsewhere                      # submit() writes under <root>/submitted
    tiny.submit("alice")
    result = pytester.runpytest_subprocess("--collect-submissions", "--submissions-dir", str(elsewhere / "submitted"),
                                           "--grades-dir", str(elsewhere / "grades"))
    result.stdout.fnmatch_lines(["*write --submissions-dir=DIR*", "*alice*6 / 6*"])
    assert (elsewhere / "grades" / "alice.csv").is_file()


def test_a_run_without_the_sandbox_says_so_in_its_summary_also_from_xdist_workers(pytester, tiny, monkeypatch,
                                                                                   tmp_path):
    """Kernels that fell back to running unisolated (isolation "auto", no bubblewrap) must be
    reported where the instructor reads the grades, whichever process ran them."""
    tiny.submit("ann", "full")
    tiny.submit("ben", "half")
    no_bwrap = tmp_path / "bin"
    no_bwrap.mkdir()
    monkeypatch.setenv("PATH", str(no_bwrap))
    for args in ([], ["-n", "2"]):
        result = pytester.runpytest_subprocess("--collect-submissions", *args)
        assert result.ret in (0, 1), result.stdout.str()
        result.stdout.fnmatch_lines(["*warning: kernel sandbox unavailable (bwrap not found on PATH*"])
