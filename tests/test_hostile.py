"""Hostile submissions: each attack scores exactly what its honest twin scores.

One class is graded once (module scope, `-n 2`, in a subprocess) on the tiny course: honest
bystanders, honest "twins" (a wrong `double`, or answers hard-coded to 42) and one student per
attack. An attack appends code to the full notebook that makes `double` wrong (or hard-codes
42, for forgers) and then tries to get `double`'s tests passed anyway: patch the runner, rewrite the grader's calls, forge the
answer line, return objects that equal everything, read or write what it must not see, crash,
hang or flood the kernel. Each attacker's rows must equal its twin's, test by test; the
bystanders' rows must be exactly right; and no file outside grades/ may change.

Forging is possible and harmless: a notebook can rebind the randomly named helper (it is in
user_ns), patch json.dumps or sys.stdout, or rewrite the grader's calls with an input or AST
transformer, and so answer each call with any plain data it likes, as a function of the test's
code and inputs. Student code has that power anyway (its functions get the inputs, and can read
the calling frame), so forgers score exactly what hard-coding 42 scores: the public test whose
input is known, never a hidden test with inputs drawn at grading time.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
import subprocess
import textwrap
import time
import uuid

import pytest

from conftest import grade_class, once_per_run, read_grades, tiny_course_at, tree_hashes

SECRET = "hostile-suite-secret"
MARKER = "tt-hostile-" + uuid.uuid4().hex[:8]   # argv marker of processes a notebook leaves behind

WRONG = "def double(x):\n    return x + 1\n"          # the honest wrong answer
CONST = "def double(x):\n    return 42\n\ndef halve(x):\n    return 42\n"  # honest hard-coding

# A forger answers every call of the grader with {"ok": 42}: the most any forgery can do without
# computing the function, so it must score what hard-coding 42 scores.
FORGED = "'{\"ok\": 42}'"

ATTACKS = {
    # --- patching the test runner from the kernel ---------------------------------------------
    "runner_monkeypatch": ("wrong", WRONG + """
        import importlib
        for name, attr, value in [("pytest", "fail", lambda *a, **k: None),
                                  ("pytest_tinytorch.testing", "assert_exact", lambda *a, **k: None),
                                  ("pytest_tinytorch.wire", "decode", lambda *a, **k: 42),
                                  ("pytest_tinytorch.plugin", "failure_message", lambda *a, **k: ""),
                                  ("_pytest.python", "Function", None)]:
            try:
                setattr(importlib.import_module(name), attr, value)
            except Exception:
                pass
    """),
    "conftest_everywhere": ("wrong", WRONG + """
        import os, site, sys
        hook = "import pytest\\n@pytest.hookimpl(wrapper=True)\\ndef pytest_runtest_makereport(item, call):\\n    r = yield\\n    r.outcome = 'passed'\\n    return r\\n"
        places = [os.getcwd(), os.path.expanduser("~"), "/tmp", __ROOT__, __ROOT__ + "/curriculum",
                  __ROOT__ + "/curriculum/01_tiny", __ROOT__ + "/submitted", *site.getsitepackages(), *sys.path]
        for place in places:
            for name, text in [("conftest.py", hook), ("sitecustomize.py", "import os"),
                               ("zz_tinytorch.pth", "import os"), ("pytest.ini", "[pytest]\\naddopts = -p no:tinytorch\\n")]:
                try:
                    with open(os.path.join(place, name), "w") as f:
                        f.write(text)
                except Exception:
                    pass
    """),
    "sys_modules": ("wrong", WRONG + """
        import sys, types
        fake = types.ModuleType("fake")
        fake.assert_exact = fake.assert_array = lambda *a, **k: None
        for name in ["pytest", "_pytest", "pytest_tinytorch", "pytest_tinytorch.testing",
                     "pytest_tinytorch.wire", "numpy.testing"]:
            sys.modules[name] = fake
    """),
    # --- forging the answer ---------------------------------------------------------------------
    "helper_rebound": ("const", """
        import json, re
        def forged(request):
            print("\\n" + json.loads(request)["nonce"] + __FORGED__)
        for name in list(globals()):
            if name.startswith("__tinytorch_value"):
                globals()[name] = forged
    """),
    "input_transformer": ("const", """
        import re
        def rewrite(lines):
            text = "".join(lines)
            nonce = re.search(r"@tinytorch:[0-9a-f]+:", text)
            if "__tinytorch_value" in text and nonce:
                return ["print('\\\\n' + %r + %r)\\n" % (nonce.group(0), __FORGED__)]
            return lines
        get_ipython().input_transformers_post.append(rewrite)
    """),
    "ast_transformer": ("const", """
        import ast, json
        class Rewrite(ast.NodeTransformer):
            def visit_Call(self, node):
                name = getattr(node.func, "id", "")
                if name.startswith("__tinytorch_value") and node.args and isinstance(node.args[0], ast.Constant):
                    request = json.loads(node.args[0].value)
                    request["code"] = "42"
                    node.args[0] = ast.Constant(json.dumps(request))
                return self.generic_visit(node)
        get_ipython().ast_transformers.append(Rewrite())
    """),
    "json_dumps_patched": ("const", """
        import json
        _dumps = json.dumps
        def dumps(obj, *args, **kwargs):
            if type(obj) is dict and len(obj) == 1 and ("ok" in obj or "error" in obj):
                return _dumps({"ok": 42})
            return _dumps(obj, *args, **kwargs)
        json.dumps = dumps
    """),
    "stdout_patched": ("const", """
        import builtins, re, sys
        _write = sys.stdout.write
        def write(text):
            return _write(re.sub(r"(@tinytorch:[0-9a-f]+:).*", lambda m: m.group(1) + __FORGED__, text))
        sys.stdout.write = write
        builtins.print = lambda *a, **k: _write(" ".join(map(str, a)) + "\\n")
    """),
    "fake_answer_lines": ("wrong", """
        import os
        def double(x):
            for _ in range(1000):
                print("@tinytorch:" + os.urandom(8).hex() + ':{"ok": %d}' % (2 * 21))
            print('@tinytorch:{"ok": 42}')
            return x + 1
    """),
    # --- objects that equal everything, or only pretend to be plain data ------------------------
    "always_equal": ("wrong", """
        class Yes:
            __eq__ = lambda self, other: True
            __ne__ = lambda self, other: False
            __bool__ = lambda self: True
            __hash__ = object.__hash__
        def double(x):
            return Yes()
    """),
    "int_subclass": ("wrong", """
        class Int(int):
            __eq__ = lambda self, other: True
            __ne__ = lambda self, other: False
            __hash__ = int.__hash__
        def double(x):
            return Int(x + 1)
    """),
    "float_list_dict_str_subclasses": ("wrong", """
        class F(float):
            __eq__ = lambda self, other: True
        class L(list):
            __eq__ = lambda self, other: True
        class D(dict):
            __eq__ = lambda self, other: True
        class S(str):
            __eq__ = lambda self, other: True
        def double(x):
            return [F(1.0), L([1]), D(a=1), S("s")][x % 4]
    """),
    "ndarray_subclass": ("wrong", """
        import numpy as np
        class A(np.ndarray):
            def __eq__(self, other):
                return True
        def double(x):
            return np.array(x + 1).view(A)
    """),
    "numpy_scalar_subclass": ("wrong", """
        import numpy as np
        class S(np.int64):
            __eq__ = lambda self, other: True
        def double(x):
            return S(x + 1)      # arrives as the plain int x + 1
    """),
    "lying_class": ("wrong", """
        import numpy as np
        class Yes:
            __eq__ = lambda self, other: True
        class Liar:
            __class__ = property(lambda self: np.int64)
            dtype = np.dtype("i8")
            def item(self):
                return Yes()
        def double(x):
            return Liar()
    """),
    "object_array_and_containers": ("wrong", """
        import numpy as np
        class Yes:
            __eq__ = lambda self, other: True
        def double(x):
            return [np.array([Yes()], dtype=object), [Yes()], (Yes(),), {"a": Yes()}, {1: 2}][x % 5]
    """),
    "deep_and_cyclic": ("wrong", """
        def double(x):
            deep = []
            for _ in range(10_000):
                deep = [deep]
            cyclic = []
            cyclic.append(cyclic)
            return [deep, cyclic][x % 2]
    """),
    "huge_int_and_nan": ("wrong", """
        def double(x):
            return [10 ** 5000, float("nan"), float("inf"), 10 ** 4000][x % 4]
    """),
    "hostile_names_and_messages": ("wrong", """
        Evil = type("\\x1b[2J\\x1b[31mPWNED\\r\\n=cmd|' /C calc'!A0" * 20, (), {})
        class Boom(Exception):
            def __str__(self):
                raise RuntimeError("no message for you")
        def double(x):
            if x == 21:
                return Evil()
            raise Boom()
    """),
    # --- reading and writing what the kernel must not see ---------------------------------------
    "read_secrets": ("wrong", WRONG + """
        import glob, os
        found = []
        if "TINYTORCH_GRADING_SECRET" in os.environ or __SECRET__ in str(os.environ):
            found.append("env")
        for path in [__ROOT__ + "/grades/.secret", __ROOT__ + "/curriculum/01_tiny/test_01_tiny_hidden.py",
                     __ROOT__ + "/submitted/alice/01_tiny/01_tiny.ipynb", __ROOT__ + "/tinytorch/core/tiny.py",
                     __ROOT__ + "/pytest.ini", "/proc/1/environ", "/proc/1/cmdline"]:
            try:
                text = open(path, errors="replace").read()
                if path.startswith("/proc"):
                    if "TINYTORCH" in text or "pytest" in text:
                        found.append(path)
                else:
                    found.append(path)
            except Exception:
                pass
        for pattern in ["/proc/*/environ", "/proc/*/cmdline"]:
            for path in glob.glob(pattern):
                try:
                    text = open(path, errors="replace").read()
                except Exception:
                    continue
                if "TINYTORCH" in text or __SECRET__ in text or "collect-submissions" in text:
                    found.append(path)
        for folder in ["/", "/tmp", "/work", os.path.dirname(__ROOT__)]:
            try:
                for name in os.listdir(folder):
                    if name in ("grades", "submitted", "curriculum") or "test_01_tiny" in name:
                        found.append(folder + "/" + name)
            except Exception:
                pass
        if found:
            def double(x):
                return 2 * x
            def halve(x):
                return found
    """),
    "import_reference": ("wrong", WRONG + """
        import importlib, importlib.util, sys
        try:
            from tinytorch.core.tiny import double
        except Exception:
            pass
        try:
            import tinytorch
            tinytorch.__path__.append(__ROOT__ + "/tinytorch")
            sys.path.insert(0, __ROOT__)
            from tinytorch.core.tiny import double
        except Exception:
            pass
        try:
            spec = importlib.util.spec_from_file_location("ref", __ROOT__ + "/tinytorch/core/tiny.py")
            ref = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(ref)
            double = ref.double
        except Exception:
            pass
    """),
    "write_everywhere": ("wrong", WRONG + """
        import os
        good = "student,module,test,points,max_points,outcome,message,duration_s,hidden\\n"
        for path, text in [(__ROOT__ + "/grades/write_everywhere.csv", good), (__ROOT__ + "/grades/alice.csv", good),
                           (__ROOT__ + "/grades/.secret", "known"), (__ROOT__ + "/grades/evil.csv", good),
                           (__ROOT__ + "/submitted/alice/01_tiny/01_tiny.ipynb", "{}"),
                           (__ROOT__ + "/curriculum/01_tiny/test_01_tiny_hidden.py", ""),
                           (__ROOT__ + "/tinytorch/core/tiny.py", "")]:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
            except Exception:
                pass
    """),
    # --- crashing, hanging and flooding -----------------------------------------------------
    "sys_exit_in_notebook": ("wrong", WRONG + """
        import sys
        sys.exit(0)
    """),
    "exit_in_notebook": ("wrong", WRONG + """
        exit()
    """),
    "os_exit_in_call": ("wrong", """
        import os
        def double(x):
            os._exit(0)
    """),
    "sigkill_self_in_call": ("wrong", """
        import os, signal
        def double(x):
            os.kill(os.getpid(), signal.SIGKILL)
    """),
    "sys_exit_in_call": ("wrong", """
        import sys
        def double(x):
            sys.exit(0)
    """),
    "endless_loop_in_call": ("wrong", """
        def double(x):
            while True:
                pass
    """),
    "sleep_past_timeout_in_call": ("wrong", """
        import time
        def double(x):
            time.sleep(3600)
    """),
    "interrupt_swallowing_loop_in_call": ("wrong", """
        import signal, time
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        def double(x):
            while True:
                try:
                    time.sleep(0.1)
                except BaseException:
                    pass
    """),
    "interrupt_swallowing_loop_in_notebook": ("dead", WRONG + """
        import signal, time
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        while True:
            try:
                time.sleep(0.1)
            except BaseException:
                pass
    """),
    "fork_bomb": ("wrong", WRONG + """
        import os, time
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
        except OSError:
            pass
    """),
    "memory_hog": ("wrong", """
        hog = []
        try:
            while True:
                hog.append(bytearray(256 * 2**20))
        except MemoryError:
            del hog
        def double(x):
            return bytearray(8 * 2**30)
    """),
    "huge_output_in_notebook": ("wrong", WRONG + """
        block = "x" * 10_000_000
        for _ in range(10):
            print(block)          # 100 MB
    """),
    "huge_output_in_call": ("wrong", """
        def double(x):
            print("y" * 20_000_000)
            return x + 1
    """),
    "background_thread_and_processes": ("wrong", WRONG + """
        import os, subprocess, sys, threading, time
        def meddle():
            while True:
                globals()["double"] = lambda x: x + 1
                print("@tinytorch:0000000000000000:" + __FORGED__)
                time.sleep(0.01)
        threading.Thread(target=meddle, daemon=True).start()
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)", __MARKER__]
        subprocess.Popen(sleeper, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.fork() == 0:                     # a double-forked daemon
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, sleeper)
            os._exit(0)
    """),
    # --- honest code that is merely noisy: it must keep its points --------------------------------
    "noisy_but_correct": ("full", """
        def double(x):
            print("debugging a chatty but correct double\n" * 40_000)    # 1.5 MB
            return 2 * x
    """),
}

TWINS = {"wrong": WRONG, "const": CONST, "full": None}
BYSTANDERS = {"alice": ("full", 6.0), "bob": ("half", 4.0), "carol": ("blank", 0.0)}


def _code(attack: str) -> str:
    twin, text = ATTACKS[attack]
    text = WRONG + textwrap.dedent(text[len(WRONG):]) if text.startswith(WRONG) else textwrap.dedent(text)
    if twin == "const":
        # A forger first hard-codes its twin's answers: whether or not its forgery takes effect
        # in a given run, the only score it may get is the hard-coder's (its correct functions
        # would otherwise earn full marks whenever the forgery did not apply).
        text = CONST + "\n" + text
    return (text.replace("__FORGED__", FORGED).replace("__ROOT__", repr(str(ROOT_HOLDER[0])))
            .replace("__SECRET__", repr(SECRET)).replace("__MARKER__", repr(MARKER)))


ROOT_HOLDER: list = []


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    data = once_per_run(tmp_path_factory, "hostile", _grade)
    return {**data, "root": Path(data["root"]), "run": SimpleNamespace(**data["run"])}


def _grade(folder):
    root = folder / "course"
    course = tiny_course_at(root)
    ROOT_HOLDER[:] = [root]
    for name, (kind, expected) in BYSTANDERS.items():
        course.submit(name, kind)
    for twin, extra in TWINS.items():
        course.submit(f"twin_{twin}", "full", extra=extra)
    for attack in ATTACKS:
        course.submit(attack, "full", extra=_code(attack))
    (root / "grades").mkdir()
    (root / "grades" / ".secret").write_text("file-secret-unused-while-the-env-var-is-set\n")
    before = tree_hashes(root, skip=("grades",))
    grades_before = tree_hashes(root / "grades")
    start = time.monotonic()
    done = grade_class(root, "-n", "2", "--notebook-timeout", "20", "--test-timeout", "3",
                       "--sandbox", "require", env={"TINYTORCH_GRADING_SECRET": SECRET})
    elapsed = time.monotonic() - start
    print(f"graded {len(ATTACKS) + len(TWINS) + len(BYSTANDERS)} hostile-suite submissions in {elapsed:.0f} s")
    return {"root": str(root), "run": {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr},
            "tables": read_grades(root), "before": before,
            "after": tree_hashes(root, skip=("grades",)), "grades_before": grades_before, "marker": MARKER}


def _by_test(rows):
    return {r["test"]: (float(r["points"]), r["outcome"]) for r in rows}


def test_the_run_completes_and_writes_every_table(graded):
    run = graded["run"]
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    expected = set(ATTACKS) | {f"twin_{t}" for t in TWINS} | set(BYSTANDERS)
    assert set(graded["tables"]) == expected
    for name, rows in graded["tables"].items():
        assert sorted(r["test"] for r in rows) == ["test_double", "test_double_random", "test_halve"], name


def test_twins_score_as_designed(graded):
    tables = graded["tables"]
    assert _by_test(tables["twin_wrong"]) == {"test_double": (0, "failed"), "test_halve": (2, "passed"),
                                              "test_double_random": (0, "failed")}
    assert _by_test(tables["twin_const"]) == {"test_double": (1, "passed"), "test_halve": (0, "failed"),
                                              "test_double_random": (0, "failed")}
    assert {r["outcome"] for r in tables["twin_full"]} == {"passed"}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_scores_exactly_what_its_honest_twin_scores(graded, attack):
    twin = ATTACKS[attack][0]
    rows = graded["tables"][attack]
    got = {r["test"]: float(r["points"]) for r in rows}
    if twin == "dead":
        assert got == {"test_double": 0, "test_halve": 0, "test_double_random": 0}
        assert all(r["message"] for r in rows), rows
    else:
        expected = {r["test"]: float(r["points"]) for r in graded["tables"][f"twin_{twin}"]}
        assert got == expected, rows
    for row in rows:  # a reason for every lost point, and nothing a terminal or a spreadsheet would run
        assert (row["outcome"] == "passed") != bool(row["message"]), row
        assert all(c.isprintable() for c in row["message"]), row["message"]


@pytest.mark.parametrize("name", sorted(BYSTANDERS))
def test_bystanders_are_unaffected(graded, name):
    rows = graded["tables"][name]
    assert sum(float(r["points"]) for r in rows) == BYSTANDERS[name][1], rows
    if name == "alice":
        assert all(r["outcome"] == "passed" and r["message"] == "" for r in rows)


def test_no_file_outside_grades_changed_and_no_table_was_forged(graded):
    assert graded["after"] == graded["before"]
    root = graded["root"]
    assert sorted(p.name for p in (root / "grades").iterdir() if not p.name.endswith(".csv")) == [".secret"]
    assert (root / "grades" / ".secret").read_text().startswith("file-secret-unused")
    assert not (root / "grades" / "evil.csv").exists()


def test_nothing_the_notebooks_started_is_still_running(graded):
    for _ in range(20):
        left = subprocess.run(["pgrep", "-f", graded["marker"]], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"processes left behind: {left}"


def test_kill_reasons_are_clear(graded):
    tables = graded["tables"]
    reason = {a: {r["test"]: r["message"] for r in tables[a]} for a in ATTACKS}
    assert "kernel died" in reason["os_exit_in_call"]["test_double"]
    assert "kernel died" in reason["sigkill_self_in_call"]["test_double"]
    assert "longer than 3 s" in reason["endless_loop_in_call"]["test_double"]
    assert "longer than 3 s" in reason["interrupt_swallowing_loop_in_call"]["test_double"]
    assert "did not finish running within 20 s" in reason["interrupt_swallowing_loop_in_notebook"]["test_halve"]
    assert "SystemExit" in reason["sys_exit_in_call"]["test_double"]
    assert "MemoryError" in reason["memory_hog"]["test_double"]
    assert "plain data" in reason["always_equal"]["test_double"]
    assert "plain data" in reason["int_subclass"]["test_double"]
    assert "plain data" in reason["ndarray_subclass"]["test_double"]


def test_an_answer_too_large_is_refused_with_a_reason(monkeypatch):
    import nbformat

    from pytest_tinytorch import kernel, wire
    monkeypatch.setattr(kernel, "MAX_ANSWER", 10_000)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(n):\n    return 'z' * n")])
    student = kernel.StudentKernel(nb, label="big", isolation="require")
    try:
        assert student.value("f(n)", n=9_000) == "z" * 9_000
        with pytest.raises(wire.WireError, match="the answer is too large"):
            student.value("f(n)", n=20_000)
    finally:
        student.close()
