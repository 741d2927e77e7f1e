"""The kernel sandbox, proved with real ipykernels.

Each test runs code inside a sandboxed kernel and reads back only plain text (stdout), then
decides here, in pytest, what that text must be. The bwrap tests skip (with the reason) where
bubblewrap cannot run; on the project's machines it must run (apt-get install -y bubblewrap).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from pytest_tinytorch import sandbox, warm
from pytest_tinytorch.sandbox import (
    Limits,
    SandboxError,
    SandboxUnavailable,
    sandbox_available,
    wrap_kernel_command,
)

GiB, MiB = 1024**3, 1024**2
TEST_LIMITS = Limits(cpu_seconds=60, processes=32, file_size_bytes=1 * MiB)

needs_bwrap = pytest.mark.skipif(not sandbox_available()[0], reason=sandbox_available()[1])
# Every probe runs on a kernel launched through bwrap ("cold") and on one forked from the warm
# template ("warm", warm.py), which must keep the same guarantees.
LAUNCHES = ["cold", "warm"]


def base_folder(launch: str, tmp_path_factory, name: str) -> Path:
    """A fresh folder for a kernel's scratch (and the fake course around it): in the warm
    template's pool for "warm" launches (the only place a forked kernel can be given)."""
    if launch == "cold":
        return tmp_path_factory.mktemp(name)
    if not sandbox_available()[0] or not warm.enabled():
        pytest.skip("warm kernels need bubblewrap")
    folder = Path(tempfile.mkdtemp(prefix=name, dir=warm.scratch_parent()))
    folder.chmod(0o755)
    return folder


def check_launch(km, launch: str) -> None:
    """The kernel really was started the way the test says (no silent fallback: a warm launch
    that failed is started cold by the same provisioner)."""
    forked = type(getattr(km.provisioner, "process", None)).__name__ == "ForkedProcess"
    assert forked == (launch == "warm"), (type(km.provisioner), getattr(km.provisioner, "process", None))


# --------------------------------------------------------------------------------------------
# Helpers: start a kernel, run code, read back its stdout as text
# --------------------------------------------------------------------------------------------
def start_kernel(scratch: Path, **kwargs):
    km = sandbox.SandboxedKernelManager(scratch=scratch, **kwargs)
    km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


def stop_kernel(km, kc) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code: str, timeout: float = 20) -> str:
    """Execute ``code``; return what it printed, plus 'ERROR <ename>' if it raised."""
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(f"ERROR {msg['content']['ename']}\n")

    # stop_on_error=False, as the grader sends (kernel.py): ipykernel replies to a failed request
    # *before* it stops aborting queued ones, so a request sent right after an error reply is
    # sometimes answered "aborted" without running (about 1 in 150 here).
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook, stop_on_error=False)
    assert reply["content"]["status"] != "aborted", f"the kernel did not run {code!r}"
    return "".join(out).strip()


def host_processes(wanted) -> list[int]:
    """PIDs (as the host sees them) of the processes whose /proc/PID/status fields (a dict of
    field name to its values split on whitespace) satisfy ``wanted``."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            status = Path("/proc", entry, "status").read_text()
        except (OSError, ValueError):
            continue   # not a process, or gone
        fields = {name: rest.split() for name, _, rest in (line.partition(":") for line in status.splitlines())}
        if wanted(fields):
            pids.append(int(entry))
    return pids


def processes_of(uid: int) -> list[int]:
    """PIDs (as the host sees them) of processes running as ``uid``."""
    return host_processes(lambda fields: int(fields["Uid"][0]) == uid)


def installed_tinytorch() -> list[Path]:
    """The tinytorch package folder, if the project is installed (``pip install -e .``)."""
    try:
        import tinytorch
    except ImportError:
        return []
    return [Path(tinytorch.__file__).parent]


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --------------------------------------------------------------------------------------------
# A fake course checkout around the kernel's scratch folder
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=LAUNCHES)
def course(request, tmp_path_factory) -> dict[str, Path]:
    """repo/ with hidden tests, rubrics, grades, another student's work and the package; the
    kernel's scratch folder is inside it, as the grader would place it."""
    repo = base_folder(request.param, tmp_path_factory, "r")
    files = {
        "hidden_test": repo / "curriculum/01_tensor/test_hidden_01.py",
        "rubric": repo / "rubrics/01_tensor.yaml",
        "grades": repo / "grades/alice.csv",
        "other_student": repo / "submitted/bob/01_tensor/01_tensor.ipynb",
        "package": repo / "coursepkg/__init__.py",
        "solution": repo / "coursepkg/core/solution.py",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("VALUE = 42\n" if name == "package" else f"secret {name}\n")
    scratch = repo / "submitted/alice/01_tensor/w"
    scratch.mkdir(parents=True)
    return {"repo": repo, "scratch": scratch, "launch": request.param, **files}


@pytest.fixture(scope="module")
def kernel(course):
    """One sandboxed kernel shared by the probes (each test leaves it usable). It sees the
    fake course package and, as the grader will bind it, the installed tinytorch package.
    (A warm kernel is only given folders in the pool and hides nothing: see warm.plan.)"""
    cold = course["launch"] == "cold"
    km, kc = start_kernel(course["scratch"], bind_ro=[course["package"].parent,
                                                      *(installed_tinytorch() if cold else [])],
                          hide=[course["solution"].parent] if cold else [], limits=TEST_LIMITS,
                          isolation="require")
    check_launch(km, course["launch"])
    yield km, kc
    stop_kernel(km, kc)


# --------------------------------------------------------------------------------------------
# Availability, errors, fallback (no bwrap needed)
# --------------------------------------------------------------------------------------------
def test_sandbox_available_answers_with_a_reason():
    ok, reason = sandbox_available()
    assert type(ok) is bool and reason
    if sys.platform.startswith("linux") and shutil.which("bwrap"):
        assert ok, reason  # the project's machines must be able to sandbox


def test_missing_bwrap_is_reported_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without bwrap
    sandbox_available.cache_clear()
    try:
        ok, reason = sandbox_available()
        assert not ok
        assert "apt-get install -y bubblewrap" in reason or "needs Linux" in reason
        with pytest.raises(SandboxUnavailable, match="required but unavailable"):
            wrap_kernel_command(["python"], scratch=tmp_path, isolation="require")
        auto = wrap_kernel_command([sys.executable, "-V"], scratch=tmp_path)
        assert auto.mode == "fallback" and "Do not grade untrusted" in auto.warning
    finally:
        sandbox_available.cache_clear()


def test_exit_statuses_are_explained():
    assert sandbox.describe_exit(128 + 24) == "kernel CPU time limit exceeded"  # via bwrap
    assert sandbox.describe_exit(-24) == "kernel CPU time limit exceeded"  # via Popen
    assert sandbox.describe_exit(-9).startswith("kernel killed (SIGKILL")
    assert sandbox.describe_exit(3) == "exited with status 3"
    assert sandbox.describe_exit(None) == "still running"


def test_bad_requests_fail_with_a_message_that_says_what_to_do(tmp_path):
    with pytest.raises(SandboxError, match="positive int"):
        Limits(processes=0)
    with pytest.raises(SandboxError, match="does not exist; create it"):
        wrap_kernel_command(["python"], scratch=tmp_path / "missing")
    with pytest.raises(SandboxError, match="empty"):
        wrap_kernel_command([], scratch=tmp_path)
    with pytest.raises(SandboxError, match="'auto', 'require' or 'off', got 'required'"):
        wrap_kernel_command(["python"], scratch=tmp_path, isolation="required")
    with pytest.raises(SandboxError, match="shorter scratch folder"):
        sandbox.check_socket_room(tmp_path / ("x" * 100) / "kernel-ipc")
    with pytest.raises(SandboxError, match="transport='ipc'"):
        start_kernel(tmp_path, transport="tcp")
    with pytest.raises(SandboxError, match="connection file .* must be directly in scratch"):
        start_kernel(tmp_path, connection_file=str(tmp_path.parent / "kernel.json"))
    with pytest.raises(SandboxError, match="socket prefix .* must be directly in scratch"):
        start_kernel(tmp_path, ip=str(tmp_path.parent / "kernel"))


def test_fallback_applies_limits_session_cwd_and_a_clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_GRADER_SECRET", "s3cret")
    probe = ("import os, resource as r, json; print(json.dumps([r.getrlimit(r.RLIMIT_NPROC), "
             "r.getrlimit(r.RLIMIT_FSIZE), r.getrlimit(r.RLIMIT_CORE), r.getrlimit(r.RLIMIT_CPU), "
             "os.getsid(0) == os.getpid(), os.getcwd(), 'TT_GRADER_SECRET' in os.environ, "
             "os.environ['HOME']]))")
    cmd = wrap_kernel_command([sys.executable, "-c", probe], scratch=tmp_path,
                              limits=TEST_LIMITS, isolation="off")
    assert cmd.mode == "fallback" and not cmd.isolated and "bwrap" not in cmd.argv[0]
    assert "can read and write every file" in cmd.warning
    done = subprocess.run(cmd.argv, env=cmd.env, cwd=cmd.cwd, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f'[[32, 32], [{MiB}, {MiB}], [0, 0], [60, 61], true, '
                                   f'"{tmp_path.resolve()}", false, '
                                   f'"{tmp_path.resolve()}"]')


def test_fallback_kernel_runs_numpy_under_the_limits(tmp_path):
    km, kc = start_kernel(tmp_path, limits=TEST_LIMITS, isolation="off")
    try:
        assert km.sandbox.mode == "fallback"
        got = run(kc, "import numpy as np, os, resource\n"
                      "print(int(np.arange(10).sum()),"
                      " resource.getrlimit(resource.RLIMIT_NPROC)[0],"
                      " os.getcwd())")
        assert got == f"45 32 {tmp_path.resolve()}"
    finally:
        stop_kernel(km, kc)


# --------------------------------------------------------------------------------------------
# The sandbox, with real kernels
# --------------------------------------------------------------------------------------------
@needs_bwrap
def test_kernel_computes_with_numpy_in_its_own_pid_namespace(kernel, course):
    km, kc = kernel
    assert km.sandbox.isolated
    got = run(kc, "import numpy as np, os\n"
                  "print(int((np.arange(12).reshape(3, 4) @ np.ones(4)).sum()))\n"
                  "print(os.getpid(), len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
                  "print(os.getcwd(), os.environ['HOME'], 'JPY_PARENT_PID' in os.environ)")
    numbers, pids, where = got.splitlines()
    assert numbers == "66"
    pid, visible = map(int, pids.split())
    assert pid < 10 and visible < 10, got  # its own PID namespace: the grader is not there
    assert where == f"{course['scratch']} {course['scratch']} False"


@needs_bwrap
def test_network_is_cut(kernel):
    km, kc = kernel
    listener = socket.create_server(("0.0.0.0", 0))  # reachable from anywhere on this host
    listener.setblocking(False)
    port = listener.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # sends nothing
        try:
            probe.connect(("192.0.2.1", 9))
            host_ip = probe.getsockname()[0]
        except OSError:
            host_ip = "127.0.0.1"
    targets = [("127.0.0.1", port), (host_ip, port), ("1.1.1.1", 53), ("192.0.2.1", 80)]
    code = ("import socket, errno\n"
            f"for host, port in {targets!r}:\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=2).close()\n"
            "        print('CONNECTED')\n"
            "    except OSError as e:\n"
            "        print(errno.errorcode.get(e.errno, type(e).__name__))\n"
            "print(sorted(name for _, name in socket.if_nameindex()))")
    try:
        lines = run(kc, code).splitlines()
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody got through
    finally:
        listener.close()
    assert "CONNECTED" not in lines
    assert lines[0] == "ECONNREFUSED"  # its loopback is its own: nothing listens there
    unreachable = {"ENETUNREACH", "EHOSTUNREACH"}
    if host_ip.startswith("127."):  # no outside address found: the probe used loopback
        unreachable.add("ECONNREFUSED")
    assert set(lines[1:4]) <= unreachable, lines  # no route out of the sandbox
    assert lines[4] == "['lo']"


@needs_bwrap
def test_course_files_outside_scratch_are_invisible(kernel, course):
    km, kc = kernel
    secrets = [str(course[k]) for k in ("hidden_test", "rubric", "grades", "other_student")]
    secrets += ["/work/main/conftest.py", "/root/.bashrc", "/etc/passwd"]
    code = ("import os\n"
            f"for path in {secrets!r}:\n"
            "    try:\n"
            "        open(path).read(); print('READABLE', path)\n"
            "    except OSError as e:\n"
            "        print(type(e).__name__)\n"
            f"print(sorted(os.listdir({str(course['repo'])!r})))\n"
            f"print(sorted(os.listdir({str(course['repo'] / 'submitted')!r})))")
    lines = run(kc, code).splitlines()
    assert lines[:7] == ["FileNotFoundError"] * 7, lines
    assert lines[7:] == ["['coursepkg', 'submitted']", "['alice']"]


@needs_bwrap
def test_bound_package_is_importable_and_read_only(kernel, course):
    km, kc = kernel
    package = course["package"].parent
    code = (f"import sys, errno; sys.path.insert(0, {str(course['repo'])!r})\n"
            "import coursepkg; print(coursepkg.VALUE)\n"
            "try:\n"
            f"    open({str(package / 'evil.py')!r}, 'w')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])")
    assert run(kc, code).splitlines() == ["42", "EROFS"]
    assert not (package / "evil.py").exists()


@needs_bwrap
def test_installed_tinytorch_is_importable_but_not_its_repository(kernel):
    """An editable install maps ``tinytorch`` to <repo>/tinytorch (setuptools' finder in
    site-packages); binding that one folder makes it importable, and the rest of the
    repository (tests, rubrics, pyproject.toml) stays out of sight."""
    if not installed_tinytorch():
        pytest.skip("tinytorch is not installed (pip install -e .)")
    if type(kernel[0].provisioner).__name__ == "ForkProvisioner":
        pytest.skip("the grader gives warm kernels a package view in the pool instead")
    km, kc = kernel
    package = installed_tinytorch()[0]
    code = ("import os, tinytorch\n"
            "print(tinytorch.__file__)\n"
            f"print(sorted(os.listdir({str(package.parent)!r})))")
    file, siblings = run(kc, code).splitlines()
    assert file == str(package / "__init__.py")
    if not any(sandbox._under(package, root) for root in sandbox.python_roots()):
        assert siblings == "['tinytorch']"  # editable: the repository shows nothing else


@needs_bwrap
def test_hidden_folder_is_empty_and_read_only(kernel, course):
    if course["launch"] == "warm":
        pytest.skip("warm kernels see only their scratch folder and view: nothing to hide")
    km, kc = kernel
    hidden = course["solution"].parent
    code = ("import os, errno\n"
            f"print(os.listdir({str(hidden)!r}))\n"
            "try:\n"
            f"    open({str(hidden / 'x.py')!r}, 'w')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])")
    assert run(kc, code).splitlines() == ["[]", "EROFS"]
    with pytest.raises(SandboxError, match="scratch folder .* is inside it"):
        wrap_kernel_command([sys.executable], scratch=course["scratch"], hide=[course["repo"]],
                            isolation="require")


@needs_bwrap
def test_writes_land_only_in_scratch(kernel, course):
    km, kc = kernel
    name = f"tt-{uuid.uuid4().hex}"
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    outside = [f"{site_packages}/{name}.py", f"{course['repo']}/{name}", f"/{name}",
               f"/usr/{name}"]
    code = ("import errno\n"
            f"for path in {outside + ['/tmp/' + name, name]!r}:\n"
            "    try:\n"
            "        open(path, 'w').write('x'); print('WROTE')\n"
            "    except OSError as e:\n"
            "        print(errno.errorcode[e.errno])")
    lines = run(kc, code).splitlines()
    for path in outside:
        assert not Path(path).exists(), f"the kernel wrote {path}"
    assert lines[0] in {"EROFS", "EACCES"} and lines[3] in {"EROFS", "EACCES"}, lines
    # The repository folder and / in there are bwrap's in-memory stand-ins: a write may be
    # refused (root mode: owned by root) or land in memory (userns mode), never outside.
    assert all(line in {"EROFS", "EACCES", "WROTE"} for line in lines[1:3]), lines
    assert lines[4:] == ["WROTE", "WROTE"]
    assert not Path("/tmp", name).exists()  # its /tmp is private
    assert (course["scratch"] / name).read_text() == "x"


@needs_bwrap
def test_file_size_limit(kernel):
    km, kc = kernel
    code = ("import errno\n"
            "try:\n"
            "    with open('big.bin', 'wb') as f: f.write(b'0' * (2 * 1024 * 1024))\n"
            "    print('WROTE')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])")
    assert run(kc, code) == "EFBIG"


@needs_bwrap
def test_memory_limit_raises_memory_error_and_the_kernel_survives(kernel):
    km, kc = kernel
    code = ("import numpy as np\n"
            "for make in (lambda: bytearray(3 * 1024**3), lambda: np.ones(2**30)):\n"
            "    try:\n"
            "        make(); print('ALLOCATED')\n"
            "    except MemoryError:\n"
            "        print('MemoryError')\n"
            "print('alive')")
    assert run(kc, code).splitlines() == ["MemoryError", "MemoryError", "alive"]


@needs_bwrap
def test_fork_bomb_hits_the_process_limit(kernel):
    km, kc = kernel
    code = ("import os, time, errno\n"
            "kids, stopped = [], 'never'\n"
            "try:\n"
            "    for _ in range(500):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            time.sleep(30); os._exit(0)\n"
            "        kids.append(pid)\n"
            "except OSError as e:\n"
            "    stopped = errno.errorcode[e.errno]\n"
            "for pid in kids:\n"
            "    os.kill(pid, 9); os.waitpid(pid, 0)\n"
            "print(len(kids), stopped)")
    forked, stopped = run(kc, code).split()
    assert stopped == "EAGAIN" and int(forked) < TEST_LIMITS.processes


@needs_bwrap
def test_multiprocessing_primitives_work_inside(kernel):
    km, kc = kernel
    code = ("import multiprocessing as mp\n"
            "lock = mp.Lock(); queue = mp.Queue(); queue.put(7); print(queue.get(timeout=5))")
    assert run(kc, code) == "7"  # needs a writable /dev/shm


@needs_bwrap
def test_interrupt_reaches_the_kernel(kernel):
    km, kc = kernel
    msg_id = kc.execute("import time; time.sleep(30)", stop_on_error=False)  # see run()
    time.sleep(0.5)
    started = time.monotonic()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert (reply["content"]["status"], reply["content"]["ename"]) == ("error", "KeyboardInterrupt")
    assert time.monotonic() - started < 5
    assert run(kc, "print('alive')") == "alive"


@needs_bwrap
@pytest.mark.parametrize("launch", LAUNCHES)
def test_cpu_limit_kills_a_spinning_kernel_and_everything_it_started(tmp_path_factory, launch):
    scratch = base_folder(launch, tmp_path_factory, "c")
    km, kc = start_kernel(scratch, limits=Limits(cpu_seconds=3), isolation="require")
    check_launch(km, launch)
    try:
        uid = km.sandbox.uid
        run(kc, "import subprocess; kids = [subprocess.Popen(['sleep', '60']) for _ in range(3)]")
        if uid is not None:
            assert len(processes_of(uid)) >= 4
        kc.execute("while True: pass")
        assert wait_until(lambda: not km.is_alive(), 15), "the CPU limit did not stop the kernel"
        assert sandbox.describe_exit(km.provisioner.process.returncode) == \
            "kernel CPU time limit exceeded"
        if uid is not None:  # root mode: the uid is the sandbox's alone
            assert wait_until(lambda: not processes_of(uid), 5), processes_of(uid)
    finally:
        stop_kernel(km, kc)


@needs_bwrap
@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_ready_kernel_has_no_reply_left_in_flight(tmp_path_factory, launch):
    """wait_for_ready (sandbox._ready_client_class) may ask several times before IOPub is
    connected; a late reply to an earlier request would be taken by the next caller of
    get_shell_msg() for the answer to its own request."""
    km, kc = start_kernel(base_folder(launch, tmp_path_factory, "w"), limits=TEST_LIMITS,
                          isolation="require")
    try:
        check_launch(km, launch)
        time.sleep(0.5)
        assert not kc.shell_channel.msg_ready()
        msg_id = kc.execute("1")
        assert kc.get_shell_msg(timeout=10)["parent_header"]["msg_id"] == msg_id
    finally:
        stop_kernel(km, kc)


@needs_bwrap
@pytest.mark.parametrize("launch", LAUNCHES)
def test_shutdown_leaves_no_process_behind(tmp_path_factory, launch):
    scratch = base_folder(launch, tmp_path_factory, "s")
    km, kc = start_kernel(scratch, limits=TEST_LIMITS, isolation="require")
    check_launch(km, launch)
    uid = km.sandbox.uid
    run(kc, "import subprocess; kids = [subprocess.Popen(['sleep', '60']) for _ in range(3)]")
    process = km.provisioner.process
    stop_kernel(km, kc)
    if launch == "cold":
        assert wait_until(lambda: not Path(f"/proc/{process.pid}").exists(), 5)  # bwrap
    else:
        assert wait_until(lambda: process.poll() is not None, 5)  # reaped by the template
    if uid is not None:
        assert wait_until(lambda: not processes_of(uid), 5), processes_of(uid)


@needs_bwrap
@pytest.mark.parametrize("launch", LAUNCHES)
def test_testbook_client_runs_a_notebook_in_the_sandbox(tmp_path_factory, launch):
    """The way the grading plugin plugs it in: nbclient/testbook create the manager from
    ``kernel_manager_class``; the sandbox settings are set on it before the kernel starts."""
    nbformat = pytest.importorskip("nbformat")
    testbook_client = pytest.importorskip("testbook.client")
    scratch = base_folder(launch, tmp_path_factory, "t")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nanswer = 6 * 7\nprint(answer, 'GRADER_TOKEN' in os.environ, os.getpid())")])
    client = testbook_client.TestbookNotebookClient(
        nb, kernel_name="python3", kernel_manager_class=sandbox.SandboxedKernelManager,
        shutdown_kernel="immediate", resources={"metadata": {"path": str(scratch)}})
    km = client.create_kernel_manager()
    km.scratch, km.limits, km.isolation = scratch, TEST_LIMITS, "require"
    km.connection_file = str(scratch / "connection.json")
    km.ip = str(scratch / "kernel")
    km.extra_env = {"TT_SEED_HINT": "none"}
    client.start_new_kernel(env={**os.environ, "GRADER_TOKEN": "s3cret"})  # env is dropped
    client.start_new_kernel_client()
    try:
        check_launch(km, launch)
        cell = client.execute_cell(0)
        answer, leaked, pid = cell.outputs[0]["text"].split()
        assert (answer, leaked) == ("42", "False") and int(pid) < 10
        assert km.sandbox.isolated and km.sandbox.env["TT_SEED_HINT"] == "none"
    finally:
        client.kc.stop_channels()
        km.shutdown_kernel(now=True)
