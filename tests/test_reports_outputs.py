"""Feedback, exports (gradebook, long CSV, Canvas, Gradescope), progress and review pages:
formats validated against schemas written from the specs, hidden tests never leak, student
text always escaped. Tables are built directly (no kernels)."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import shutil

import jsonschema  # a dependency of nbformat
import pandas as pd
import pytest
import yaml

from pytest_tinytorch import reports
from pytest_tinytorch.reports import exports, feedback, progress, review
from pytest_tinytorch.reports.data import Computed

from test_reports import M1, M2, ROOT, course  # noqa: F401  (fixture)

UTC = dt.timezone.utc
SAMPLE = ROOT / "examples" / "sample_class"
AS_OF = dt.datetime(2026, 10, 1, tzinfo=UTC)

# Gradescope autograder results, from https://gradescope-autograders.readthedocs.io/en/latest/specs/
# ("Output format"): score is optional when every test has one; visibility one of hidden,
# after_due_date, after_published, visible; number is a string ("1.1").
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tests"],
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"}, "output_format": FORMAT, "test_output_format": FORMAT,
        "test_name_format": FORMAT, "visibility": VISIBILITY, "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"}, "leaderboard": {"type": "array"},
        "tests": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "max_score", "score"],
            "properties": {
                "score": {"type": "number"}, "max_score": {"type": "number"},
                "status": {"enum": ["passed", "failed"]}, "name": {"type": "string"}, "name_format": FORMAT,
                "number": {"type": "string"}, "output": {"type": "string"}, "output_format": FORMAT,
                "tags": {"type": "array", "items": {"type": "string"}}, "visibility": VISIBILITY,
                "extra_data": {"type": "object"}}}},
    },
}
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
SECRET = "expected 3.14159265 at index (2, 7) with seed 8675309"


def computed_of(course):
    config, rubrics, scores, sheet, subs, grades = course
    from pytest_tinytorch.reports import grades as g
    graded = g.graded_modules(config, [M1, M2], AS_OF)
    return Computed(grades, g.course_grades(grades, config, graded), graded, g.apply_overrides(scores, sheet.overrides))


def test_hidden_message_only_neutral_forms():
    assert feedback.hidden_message("failed", "hidden test failed: wrong result") == "hidden test failed: wrong result"
    assert feedback.hidden_message("error", "hidden test failed: the result could not be checked (KeyError)") \
        .endswith("(KeyError)")
    assert feedback.hidden_message("failed", f"AssertionError: {SECRET}") == feedback.HIDDEN_FALLBACK
    assert feedback.hidden_message("failed", "hidden test failed: wrong result " + SECRET) == feedback.HIDDEN_FALLBACK
    assert feedback.hidden_message("passed", SECRET) == ""


def test_feedback_hides_hidden_messages_and_escapes_everything(course):
    config, rubrics, scores, sheet, subs, grades = course
    computed = computed_of(course)
    tests = computed.scores[(computed.scores["student"] == "alice") & (computed.scores["module"] == M2)].copy()
    tests.loc[tests["hidden"], "message"] = f"AssertionError: {SECRET}"     # a table that leaks
    tests.loc[~tests["hidden"], "message"] = "<img src=x onerror=alert(1)> & friends"
    questions = sheet.questions[(sheet.questions["student"] == "alice") & (sheet.questions["module"] == M2)].copy()
    questions["comment"] = "<script>alert('ta')</script>"
    grade = grades.set_index(["student", "module"]).loc[("alice", M2)]
    html = feedback.render("alice<b>", M2, tests, grade, questions, "Course & co")
    assert SECRET not in html and "3.14159265" not in html
    assert "<script>" not in html and "<img" not in html and "alice<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; friends" in html
    assert "&lt;script&gt;alert(&#x27;ta&#x27;)&lt;/script&gt;" in html
    assert "test_h" in html and feedback.HIDDEN_FALLBACK in html           # name and neutral message
    assert "2 day(s) late" in html and "-20%" in html and "20%" in html   # penalty shown; 25 * 0.8 = 20
    assert "not graded yet" in html                                        # q2 has no score yet
    assert "capped at 6" in html                                           # code quality 9, tests fail
    assert not re.search(r"<(link|script|img)\b|https?://", html)          # self-contained


def test_gradescope_results_validate_and_hide(course):
    computed = computed_of(course)
    s = computed.scores
    tests = s[(s["student"] == "bob") & (s["module"] == M1)].copy()
    tests.loc[tests["hidden"], ["outcome", "points", "message"]] = ["failed", 0.0, SECRET]
    result = exports.gradescope_results(tests, computed.modules.set_index(["student", "module"]).loc[("bob", M1)])
    jsonschema.validate(result, GRADESCOPE_SCHEMA)
    json.dumps(result)
    # bob 01: test_a 2 + test_b 2 (override) + test_h 0 (made to fail here) = 4
    assert result["score"] == 4 and [t["max_score"] for t in result["tests"]] == [2, 3, 5]
    hidden = [t for t in result["tests"] if t["name"] == "test_h"][0]
    assert hidden["visibility"] == "after_published" and SECRET not in json.dumps(result)
    assert "Adjusted by a TA: regrade" in result["tests"][1]["output"]
    assert "1 day(s) late" in result["output"]


def test_canvas_csv_format_and_points_possible(course, tmp_path):
    computed = computed_of(course)
    roster = pd.DataFrame([{"student": "alice", "name": "Alice, A.", "canvas_id": "101", "sis_user_id": "S1",
                            "sis_login_id": "alice@uni", "section": "A"}]).reindex(columns=reports.data.ROSTER_COLUMNS)
    data = type("D", (), {"roster": roster, "modules": [M1, M2],
                          "projects": pd.DataFrame(columns=["student", "checkpoints", "midterm", "final"])})()
    text = exports.canvas_csv(exports.canvas_frame(data, computed))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CANVAS_IDENTITY + [f"TinyTorch {M1}", f"TinyTorch {M2}"]
    assert rows[1] == ["Points Possible", "", "", "", "", "100", "100"]
    body = {r[3]: r for r in rows[2:]}
    assert body["alice@uni"][:5] == ["Alice, A.", "101", "S1", "alice@uni", "A"]   # a comma in a name survives
    assert body["bob"][:5] == ["bob", "", "", "bob", ""]                             # no roster: login = student id
    assert float(body["alice@uni"][5]) == 97 and float(body["alice@uni"][6]) == 20
    assert all(float(v) >= 0 for r in rows[2:] for v in r[5:])


def test_gradebook_and_long_csv(course):
    computed = computed_of(course)
    book = exports.gradebook(computed).set_index("student")
    assert list(book.columns[:4]) == [f"{M1}_auto", f"{M1}_manual", f"{M1}_late_days", f"{M1}_pct"]
    assert book.loc["alice", f"{M1}_pct"] == pytest.approx(97) and book.loc["bob", f"{M1}_late_days"] == 1
    assert book.loc["alice", "total_pct"] == pytest.approx(0.64 * 58.5)   # no projects: 37.44
    table = exports.gradebook_table(exports.gradebook(computed))
    assert "alice" in table and "letter" in table
    long = pd.read_csv(io.StringIO(exports.long_csv(computed)), keep_default_na=False)
    assert len(long) == 15 and list(long.columns) == exports.LONG_COLUMNS
    assert long[(long["student"] == "bob") & (long["test"] == "test_b") & (long["module"] == M1)]["points"].item() == 2


def test_progress_csv_and_heatmap(course):
    *_, grades = course
    st = pd.read_csv(io.StringIO(progress.class_csv(grades)))
    assert list(st.columns) == progress.STATUS_COLUMNS and len(st) == 6
    svg = progress.heatmap_svg(grades)
    assert svg.startswith("<svg") and svg.count("<rect") == 6 and "<title>carol 01_tensor" in svg
    html = progress.render(grades, progress.needs_attention(grades, [M1, M2]))
    assert "<svg" in html and "missing module" in html and "<script" not in html


# --- the sample class, end to end ------------------------------------------------------------

@pytest.fixture
def sample(tmp_path):
    if not (SAMPLE / "grades" / "alice.csv").is_file():
        pytest.skip("examples/sample_class has no score tables; run examples/make_sample_class.py --grade")
    folder = tmp_path / "sample_class"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("reports", "feedback"))
    return folder


def test_sample_class_reports(sample):
    # a hidden test whose stored message says more than the neutral forms (an older or tampered
    # table): it must reach neither feedback pages nor Gradescope files
    table = pd.read_csv(sample / "grades" / "grace.csv", dtype=str, keep_default_na=False)
    leaky = (table["hidden"] == "True") & (table["outcome"] != "passed")
    assert leaky.any()
    table.loc[leaky, "message"] = f"AssertionError: {SECRET}"
    table.to_csv(sample / "grades" / "grace.csv", index=False)
    data = reports.load_course(sample, root=ROOT, as_of=AS_OF)
    computed = reports.compute(data)
    paths = reports.write_reports(data, computed)
    m = computed.modules.set_index(["student", "module"])
    assert m.loc[("alice", M1), "days_late"] == 0                            # 11 minutes: within grace
    assert m.loc[("heidi", M1), "days_late"] == 0                            # 2-day extension
    assert m.loc[("bob", M1), "days_late"] == 2                              # 1 d 20 h 01 min late
    assert m.loc[("frank", M2), "score_pct"] == 0                            # 7 days late
    assert not m.loc[("judy", M1), "has_timestamp"] and any("judy/01_tensor" in w for w in data.warnings)
    assert not m.loc[("ivan", M1), "submitted"] and not m.loc[("ivan", M2), "submitted"]   # roster only
    assert m.loc[("erin", M1), "auto_points"] == 0 and m.loc[("mallory", M2), "auto_points"] == 0  # broken
    assert m.loc[("carol", M1), "code_quality_capped"] == 6                  # 8, capped: matmul fails
    # every module percent follows the rule: (0.7 auto% + 0.3 manual%) (1 - penalty)
    expect = (0.7 * 100 * m["auto_points"] / m["auto_max"].where(m["auto_max"] > 0).fillna(1)
              + 0.3 * 100 * m["manual_points"] / 30) * (1 - m["late_penalty"])
    assert (m["score_pct"] - expect.where(m["submitted"], 0)).abs().max() < 1e-9
    # Canvas and Gradescope outputs validate
    rows = list(csv.reader(open(paths["canvas"], newline="")))
    assert rows[0][:5] == CANVAS_IDENTITY and rows[1][0] == "Points Possible" and len(rows) == 2 + 12
    results = sorted((sample / "reports" / "gradescope").rglob("results.json"))
    assert len(results) == int(computed.modules["submitted"].sum())
    for path in results:
        jsonschema.validate(json.loads(path.read_text()), GRADESCOPE_SCHEMA)
        assert SECRET not in path.read_text()
    # no feedback page shows a hidden test's stored message (unless neutral) or a line of its code
    hidden_code = [line.strip() for m_ in (M1, M2)
                   for line in (ROOT / "curriculum" / m_ / f"test_{m_}_hidden.py").read_text().splitlines()
                   if len(line.strip()) > 30 and not line.strip().startswith(("#", "def test_", "@pytest"))]
    pages = sorted((sample / "feedback").rglob("feedback.html"))
    assert len(pages) == len(results)
    s = computed.scores
    for page in pages:
        text = page.read_text()
        student, module = page.parent.parent.name, page.parent.name
        rows = s[(s["student"] == student) & (s["module"] == module)]
        public = set(rows.loc[~rows["hidden"], "message"])
        # what only a hidden test said (public tests may fail with the same notebook-level reason)
        leaks = {m for m in rows.loc[rows["hidden"], "message"]
                 if m and m not in public and not feedback.NEUTRAL_HIDDEN.match(m)}
        assert not any(line in text for line in hidden_code), page
        assert SECRET not in text and "8675309" not in text
        assert not any(html.escape(m) in text or m in text for m in leaks), page
    assert (sample / "reports" / "progress.html").read_text().count("<rect") == 24


def test_review_prefills_keeps_scores_and_escapes(sample):
    sheet_file = sample / "grades" / "manual" / "02_activations.yaml"
    before = yaml.safe_load(sheet_file.read_text())
    # a new submission arrives; a TA had already scored alice
    new = sample / "submitted" / "zoe" / "02_activations"
    shutil.copytree(sample / "submitted" / "alice" / "02_activations", new)
    result = review.review(sample, "02", root=ROOT)
    after = yaml.safe_load(sheet_file.read_text())
    assert result.added == ["zoe"] and after["students"]["alice"] == before["students"]["alice"]
    assert after["students"]["zoe"]["questions"]["q1"] == {"score": None, "comment": "", "grader": ""}
    assert set(after["students"]) == set(before["students"]) | {"zoe"}
    html = (sample / "reports" / "review" / "02_activations.html").read_text()
    assert "look_for" not in html and "Overflow and precision" in html and "9-10" in html
    r1 = review.review(sample, "01_tensor", root=ROOT)
    page = r1.page.read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;grade me 10&quot;)" in page   # mallory
    assert "Calibration examples" in page and "self.data.nbytes" in page and "Assumes float32" in page
    # each student's memory_footprint beside the examples: niaj's is the released stub
    assert "Each student&#x27;s <code>memory_footprint</code>" in page or "Each student's <code>memory_footprint</code>" in page
    assert 'raise NotImplementedError(&quot;Implement Tensor.memory_footprint&quot;)' in page
    assert "code quality 9 / 10" in page                                     # alice's entered score
    assert "One billion parameters take 4 GB" in page                       # alice's excellent answer
    assert "could not be read" in page                                      # erin's broken notebook


def test_review_refuses_a_sheet_naming_a_student_who_did_not_submit(sample):
    sheet_file = sample / "grades" / "manual" / "02_activations.yaml"
    sheet = yaml.safe_load(sheet_file.read_text())
    sheet["students"]["ivan"] = {"questions": {"q1": {"score": 3}}}
    sheet_file.write_text(yaml.safe_dump(sheet))
    with pytest.raises(reports.ScoreSheetError, match=r"students\.ivan: this student did not submit 02_activations"):
        review.review(sample, "02_activations", root=ROOT)
    with pytest.raises(reports.ScoreSheetError, match="students.ivan"):
        reports.load_course(sample, root=ROOT, as_of=AS_OF)


def test_commands_print_and_write(sample, tmp_path):
    from pytest_tinytorch.reports import commands
    out = commands.report(sample, root=ROOT, as_of=AS_OF)
    assert "alice" in out.text and "letter" in out.text and all(p.is_file() for p in out.paths)
    assert "judy/01_tensor/timestamp.txt" in out.text                    # the warning is printed
    st = commands.status(sample, export=tmp_path / "class_progress.csv", root=ROOT, as_of=AS_OF)
    assert "needs attention" in st.text and "ivan" in st.text
    rows = pd.read_csv(tmp_path / "class_progress.csv")
    assert len(rows) == 24 and list(rows.columns) == progress.STATUS_COLUMNS
    one = commands.status(sample, student="frank", root=ROOT, as_of=AS_OF)
    assert "02_activations" in one.text and "ivan" not in one.text
    fb = commands.feedback(sample, "01", students=["alice"], root=ROOT, as_of=AS_OF)
    assert fb.paths == [sample / "feedback" / "alice" / M1 / "feedback.html"]
    rv = commands.review(sample, "tensor", root=ROOT)
    assert "11 submissions" in rv.text


def test_report_from_score_tables_only(sample):
    """A CI report job that has the shards' grades/ but no submitted/ folders."""
    full = reports.compute(reports.load_course(sample, root=ROOT, as_of=AS_OF)).modules.set_index(["student", "module"])
    shutil.rmtree(sample / "submitted")
    data = reports.load_course(sample, root=ROOT, as_of=AS_OF)
    assert any("no submitted/ folder" in w for w in data.warnings)
    m = reports.compute(data).modules.set_index(["student", "module"])
    pd.testing.assert_series_equal(m["submitted"], full["submitted"])    # inferred from the rows
    assert (m["days_late"] == 0).all() and not m["time_checked"].any()
    on_time = full["days_late"] == 0
    assert (m.loc[on_time, "score_pct"] - full.loc[on_time, "score_pct"]).abs().max() < 1e-9
    att = progress.needs_attention(m.reset_index(), [M1, M2])
    assert "no submission time" not in set(att["reason"])
