"""Warm kernels (warm.py): forked from a template, and still as isolated as cold ones.

Every probe of tests/test_sandbox.py also runs on a warm kernel (its LAUNCHES). These are the
guarantees only forking could break: what a kernel inherits from the template it was forked
from, what two kernels forked from one template can see of each other, and that the grader
falls back to cold kernels when the template cannot be used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from pytest_tinytorch import sandbox, warm
from pytest_tinytorch.kernel import StudentKernel
from test_sandbox import TEST_LIMITS, host_processes, run, start_kernel, stop_kernel

needs_warm = pytest.mark.skipif(not (sandbox.sandbox_available()[0] and warm.enabled()),
                                reason="warm kernels need bubblewrap")


def in_pool(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=warm.scratch_parent()))
    folder.chmod(0o755)
    return folder


def warm_kernel(view: Path | None = None):
    km, kc = start_kernel(in_pool("tt-"), bind_ro=[view] if view else [], limits=TEST_LIMITS,
                          isolation="require")
    assert isinstance(getattr(km.provisioner, "process", None), warm.ForkedProcess), "the kernel was not forked"
    return km, kc


@pytest.fixture(scope="module")
def pair():
    """Two kernels alive at once, each with a package view of its own (as two students')."""
    kernels = []
    for name in ("a", "b"):
        view = in_pool(f"tt-view-{name}-")
        (view / f"secret_{name}.py").write_text(f"WHO = {name!r}\n")
        kernels.append((view, *warm_kernel(view)))
    yield kernels
    for _, km, kc in kernels:
        stop_kernel(km, kc)


@needs_warm
def test_two_kernels_see_neither_each_other_nor_the_pool(pair):
    (view_a, km_a, kc_a), (view_b, km_b, kc_b) = pair
    run(kc_a, "open('mine.txt', 'w').write('a'); open('/tmp/left-by-a', 'w').write('a')")
    pool = warm.scratch_parent()
    probe = ("import os, sys\n"
             f"sys.path.insert(0, {str(view_b)!r}); import secret_b; print(secret_b.WHO)\n"
             f"for path in {[str(view_a), str(km_a.scratch), '/tmp/left-by-a']!r}:\n"
             "    print(os.path.exists(path))\n"
             f"print(sorted(os.listdir({pool!r})))")
    lines = run(kc_b, probe).splitlines()
    assert lines[0] == "b"
    assert lines[1:4] == ["False", "False", "False"], lines
    assert lines[4] == str(sorted([Path(km_b.scratch).name, view_b.name])), lines
    assert (Path(km_a.scratch) / "mine.txt").read_text() == "a"   # A's write landed, for A only


def forked_kernel_processes() -> list[int]:
    """Host PIDs of the processes a warm kernel runs (the kernel and its children): three PID
    namespaces deep (the host's, the template's, the kernel's) and not the init of the last
    one, whether the grader is root or not (processes_of(uid) needs root mode's own uid)."""
    return host_processes(lambda fields: len(fields.get("NSpid", [])) == 3 and fields["NSpid"][-1] != "1")


@needs_warm
def test_each_fork_is_its_own_unprivileged_user_with_its_own_random_state(pair):
    status = ("import os, random, numpy as np\n"
              "fields = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines())\n"
              "print(os.getuid(), fields['CapEff'].strip(), fields['CapBnd'].strip(), fields['NoNewPrivs'].strip())\n"
              "print(random.random(), np.random.rand())")
    seen = [run(kc, status).splitlines() for _, _, kc in pair]
    for ids, _ in seen:
        uid, effective, bounding, no_new_privs = ids.split()
        if os.geteuid() == 0:
            assert int(uid) >= 200_000        # root mode: a fresh uid...
        else:
            assert int(uid) == os.getuid()   # user-namespace mode: the grader's one uid
        assert (effective, bounding, no_new_privs) == ("0000000000000000", "0000000000000000", "1")
    if os.geteuid() == 0:
        assert seen[0][0].split()[0] != seen[1][0].split()[0]   # ...per kernel
    a, b = (draws.split() for _, draws in seen)
    assert a[0] != b[0] and a[1] != b[1], (a, b)   # NumPy's global state is reseeded per fork


@needs_warm
def test_a_fork_holds_no_channel_to_the_template(pair):
    """The template's stdin and stdout carry the grader's requests; a kernel holding either
    could forge them. From the host: no process of the kernel's uid has either pipe open."""
    _, km, kc = pair[0]
    run(kc, "import subprocess; child = subprocess.Popen(['sleep', '30'])")
    template = warm._template._process
    pipes = {f"pipe:[{os.fstat(f.fileno()).st_ino}]" for f in (template.stdin, template.stdout)}
    processes = forked_kernel_processes()
    assert len(processes) >= 2   # the kernel and its child
    for pid in processes:
        fds = Path(f"/proc/{pid}/fd")
        try:
            links = {os.readlink(fd) for fd in fds.iterdir()}
            stdin = os.readlink(fds / "0")
        except FileNotFoundError:
            continue                 # another test's process, just gone
        assert not links & pipes, (pid, links)
        assert stdin == "/dev/null"
    run(kc, "child.kill(); child.wait()")


@needs_warm
def test_a_template_that_cannot_start_leaves_cold_kernels(monkeypatch):
    def broken(self, pool):
        raise OSError("simulated: no template today")
    monkeypatch.setattr(warm, "_template", None)
    monkeypatch.setattr(warm, "_broken", None)
    monkeypatch.setattr(warm.Template, "__init__", broken)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7")])
    kernel = StudentKernel(nb, label="fallback", isolation="require")
    try:
        assert kernel.value("x") == 42
        assert not isinstance(kernel._km.provisioner.process, warm.ForkedProcess)
        assert kernel._km.sandbox.isolated   # cold, still in bubblewrap
    finally:
        kernel.close()
    assert "simulated: no template today" in warm._broken
    assert not warm.enabled() and warm.scratch_parent() is None   # not retried per kernel


@needs_warm
def test_the_switch_turns_warm_kernels_off(monkeypatch):
    monkeypatch.setenv(warm.SWITCH, "0")
    assert not warm.enabled() and warm.scratch_parent() is None
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    kernel = StudentKernel(nb, label="switch", isolation="require")
    try:
        assert kernel.value("x") == 1
        assert type(kernel._km.provisioner).__name__ == "LocalProvisioner"
    finally:
        kernel.close()


@needs_warm
def test_an_installation_under_tmp_stays_visible_read_only(monkeypatch):
    """A virtualenv in /tmp (CI makes one) is part of what the template binds; each kernel's
    fresh /tmp must not hide it, and nothing else of the host's /tmp may show."""
    installation = Path(tempfile.mkdtemp(prefix="tt-venv-"))
    neighbour = Path(tempfile.mkdtemp(prefix="tt-neighbour-"))
    (installation / "venv_marker.py").write_text("WHERE = 'venv'\n")
    (neighbour / "secret.txt").write_text("not yours\n")
    for folder in (installation, neighbour):
        folder.chmod(0o755)
    roots = sandbox.python_roots()
    monkeypatch.setattr(sandbox, "python_roots", lambda: [*roots, installation])
    monkeypatch.setattr(warm, "_template", None)
    try:
        km, kc = warm_kernel()
        try:
            probe = ("import errno, os, sys\n"
                     f"sys.path.insert(0, {str(installation)!r}); import venv_marker; print(venv_marker.WHERE)\n"
                     "try:\n"
                     f"    open({str(installation / 'evil.py')!r}, 'w')\n"
                     "except OSError as e:\n"
                     "    print(errno.errorcode[e.errno])\n"
                     f"print(os.path.exists({str(neighbour / 'secret.txt')!r}))")
            assert run(kc, probe).splitlines() == ["venv", "EROFS", "False"]
        finally:
            stop_kernel(km, kc)
    finally:
        if warm._template is not None:
            warm._template.close()   # this test's template; the process's own comes back
        for folder in (installation, neighbour):
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()


USERNS_PROBE = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from pytest_tinytorch import sandbox, warm
from test_sandbox import TEST_LIMITS, host_processes, run, start_kernel, stop_kernel
km, kc = start_kernel(Path(tempfile.mkdtemp(prefix="tt-userns-", dir=warm.scratch_parent())),
                      limits=TEST_LIMITS, isolation="require")
try:
    probe = ("import os\\n"
             "fields = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines())\\n"
             "print(*(fields[k].strip() for k in ('CapEff', 'CapPrm', 'CapInh', 'CapBnd', 'CapAmb', 'NoNewPrivs')))\\n"
             "print(os.getuid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\\n"
             "print(os.path.exists(os.path.dirname(os.getcwd()) + '/..'), sorted(os.listdir(os.path.dirname(os.getcwd()))))")
    print(json.dumps({"mode": sandbox._mode(), "forked": isinstance(km.provisioner.process, warm.ForkedProcess),
                      "scratch": Path(km.scratch).name, "probe": run(kc, probe).splitlines(),
                      "still_warm": warm.enabled(), "broken": warm._broken}))
finally:
    stop_kernel(km, kc)
    warm.shutdown()
"""


@needs_warm
def test_a_grader_that_is_an_ordinary_user_gets_kernels_without_any_capability():
    """User-namespace mode (a laptop, a CI runner): the template holds the capabilities of
    bubblewrap's user namespace (--cap-add ALL) and each forked kernel must lose them all; where
    the system refuses a kernel's set-up, that kernel and every later one start cold (bwrap),
    with the same guarantees. As root, the grader is made uid 65534 in a user namespace of its
    own. On this machine that nesting makes the kernel refuse the fresh /proc mount, so this
    checks the fallback; as a real uid 65534 (no nesting) the kernels fork, and this file,
    test_sandbox.py and test_hostile.py pass with them."""
    if os.geteuid() != 0:
        pytest.skip("this session already runs as an ordinary user: the other tests are the check")
    if not shutil.which("unshare"):
        pytest.skip("needs util-linux's unshare")
    tests = Path(__file__).resolve().parent
    done = subprocess.run(["unshare", "--user", "--map-user=65534", "--map-group=65534",
                           sys.executable, "-c", USERNS_PROBE, str(tests)],
                          capture_output=True, text=True, timeout=120, cwd=tests.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["mode"] == "userns", got
    caps, ids, pool = got["probe"]
    assert caps.split() == ["0000000000000000"] * 5 + ["1"], caps   # no capability, no way back
    assert ids == "65534 [1, 2]", ids                                # the grader's uid; own /proc
    assert pool == f"True ['{got['scratch']}']", pool                 # only its own folder there
    if got["forked"]:
        assert got["still_warm"] and not got["broken"], got
    else:   # refused once: later kernels start cold without trying again
        assert not got["still_warm"] and got["broken"].startswith("the kernel template could not"), got
