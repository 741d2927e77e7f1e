"""Warm kernels: the cost of starting Python and importing ipykernel is paid once per grading
process, not once per notebook.

A fresh kernel spends about a second on start-up (the interpreter, IPython, ipykernel, zmq,
NumPy) before it runs a single line of the student's notebook; in a class run that is most of
each submission's cost. So each grading process starts one *template* inside the sandbox
(warm_template.py), which imports all of that once and then forks a kernel per notebook. Each
fork gets new mount, PID, network and IPC namespaces, its own /proc, /tmp and /dev/shm, sees
only its own scratch folder and package view, and runs under the notebook's resource limits
without any capability (as a fresh uid when the grader is root): the same guarantees as a
kernel launched through bubblewrap (sandbox.py), at a fraction of the cost.

How it plugs into jupyter_client: `SandboxedKernelManager` asks `plan()` whether a launch can be
warm; if so, it swaps in a `ForkProvisioner`, whose `launch_kernel` asks the template to fork
instead of calling Popen, and whose process object polls and kills through the template. The
kernel still reads the connection file jupyter_client wrote and talks over the same IPC sockets
in its scratch folder, so nothing else in the grader changes.

Both isolation modes of sandbox.py fork warm kernels. As root, each kernel becomes a fresh uid;
as an ordinary user (user-namespace mode, a laptop or a CI runner), the template holds the
capabilities of bubblewrap's user namespace and every kernel keeps the user's one uid without
any, exactly as a bwrap-launched kernel in that mode.

When a launch cannot be warm it is launched the usual way: no bubblewrap, isolation "off",
folders outside the pool, folders to hide, a kernel that is not ipykernel, or
``TINYTORCH_WARM_KERNELS=0`` in the grader's environment (to compare, or to rule the template
out when debugging).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import sandbox

# Imported once by the template: what a kernel imports while it starts (the modules new in
# sys.modules after IPKernelApp.initialize(); the debugger alone is 0.13 s), plus NumPy, which
# every module's notebook uses. None of them starts a thread on import.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
           "IPython.core.completer", "IPython.core.completerlib", "jedi", "tornado.platform.asyncio",
           "numpy", "numpy.random")
SWITCH = "TINYTORCH_WARM_KERNELS"


class TemplateProblem(RuntimeError):
    """The template could not be started or stopped answering; launches fall back to cold."""


@dataclass(frozen=True)
class Request:
    """Everything the template needs to fork one kernel (all plain data: it travels as JSON)."""

    argv: list[str]           # the kernel's arguments after `python -m ipykernel_launcher`
    scratch: str
    binds_ro: list[str]
    env: dict[str, str]
    rlimits: dict[str, tuple[int, int]]
    tmp_bytes: int
    uid: int | None


# --------------------------------------------------------------------------------------------
# The pool: one folder per grading process holding every kernel's scratch folder and package
# view, so that the template (started before any of them exists) can see them all.
# --------------------------------------------------------------------------------------------
_pool: Path | None = None
_template: "Template | None" = None
_broken: str | None = None   # why the template cannot be used in this process, once known
_lock = threading.Lock()


def _forget_in_child() -> None:
    """A process forked from a grader must not share its template (one channel, one reader)
    or delete its pool: it starts its own if it grades."""
    global _pool, _template, _broken, _lock
    _pool, _template, _broken, _lock = None, None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def enabled() -> bool:
    """Whether launches in this process may be warm (fork-from-template) at all."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "no", "false", "off") or _broken:
        return False
    ok, _ = sandbox.sandbox_available()
    return ok


def scratch_parent() -> str | None:
    """The folder to create scratch folders and package views in (``tempfile.mkdtemp(dir=...)``):
    the pool when kernels can be warm, otherwise None (the system's temporary folder)."""
    global _pool
    if not enabled():
        return None
    with _lock:
        if _pool is None:
            _pool = Path(tempfile.mkdtemp(prefix="ttk-"))
            _pool.chmod(0o711)   # other users may pass through, not list
            atexit.register(shutdown)
        return str(_pool)


def plan(cmd, *, scratch: Path, bind_ro, hide, limits: sandbox.Limits, env: dict[str, str],
         isolation: str) -> Request | None:
    """The warm launch of kernel command `cmd`, or None when it has to be launched cold."""
    if isolation == "off" or hide or not enabled() or _pool is None:
        return None
    if len(cmd) < 3 or list(cmd[1:3]) != ["-m", "ipykernel_launcher"]:
        return None
    try:
        if sandbox._resolve_executable(cmd[0]) != os.path.abspath(sys.executable):
            return None
    except sandbox.SandboxError:
        return None
    binds = [Path(p).resolve() for p in bind_ro]
    if not all(sandbox._under(p, _pool) and p != _pool for p in [scratch, *binds]):
        return None
    return Request(argv=list(cmd[3:]), scratch=str(scratch), binds_ro=[str(p) for p in binds],
                   env=env, rlimits=limits.rlimits(), tmp_bytes=limits.tmp_bytes,
                   uid=sandbox._fresh_uid() if sandbox._mode() == "root" else None)


def prestart() -> None:
    """Start this process's template now, so that its imports (about 1.5 s) overlap with
    whatever the grader does before its first kernel (collecting tests, building views)."""
    if scratch_parent() is not None:
        _get_template()


def _get_template() -> "Template":
    global _template, _broken
    with _lock:
        if _template is None:
            try:
                _template = Template(_pool)
            except (OSError, TemplateProblem) as problem:
                _broken = f"the kernel template could not be started: {problem}"
                raise TemplateProblem(_broken) from None
        return _template


def spawn(request: Request) -> "ForkedProcess":
    """Fork a kernel from this process's template (started on first use). A template that
    fails to start, dies or cannot set up a kernel (a mount this system refuses, say) is not
    used again in this process: later kernels start cold, without trying it first."""
    global _broken
    template = _get_template()
    if request.uid is not None:
        sandbox._give_to(Path(request.scratch), request.uid)
    try:
        answer = template.ask({"op": "spawn", "pool": str(_pool), "system_ro": template.roots,
                               **request.__dict__})
    except TemplateProblem as problem:
        _broken = str(problem)
        raise
    if "error" in answer:
        _broken = f"the kernel template could not fork a kernel: {answer['error']}"
        raise TemplateProblem(_broken)
    return ForkedProcess(template, int(answer["pid"]))


def shutdown() -> None:
    """Stop the template and delete the pool (registered with atexit)."""
    global _template, _pool
    with _lock:
        if _template is not None:
            _template.close()
            _template = None
        if _pool is not None:
            shutil.rmtree(_pool, ignore_errors=True)
            _pool = None


class Template:
    """The template process, running in bubblewrap, and the JSON-lines channel to it."""

    def __init__(self, pool: Path, roots: list[Path] | None = None):
        limits = sandbox.Limits()
        env = sandbox.kernel_env(pool)
        binds = [Path(p).resolve() for p in (sandbox.python_roots() if roots is None else roots)]
        self.roots = [str(p) for p in binds]   # what each kernel must see of the installation
        # bwrap as in sandbox._bwrap_argv, but the template keeps its privileges inside (it needs
        # to create namespaces, mount and, as root, change uid for each kernel): root stays root;
        # an ordinary user gets every capability of bwrap's user namespace (and none outside
        # it). The kernels drop them all; the template never runs student code.
        mode = sandbox._mode()
        argv = [shutil.which("bwrap") or "bwrap", *sandbox._namespace_flags(mode),
                *(["--cap-add", "ALL"] if mode == "userns" else []),
                *sandbox._system_mounts(limits), *sandbox._bind_mounts(binds, pool),
                "--chdir", str(pool), "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        code = (Path(__file__).with_name("warm_template.py")).read_text(encoding="utf-8")
        argv += [sys.executable, "-I", "-c", code, ",".join(PRELOAD)]
        self._errors = tempfile.TemporaryFile()
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._errors, cwd=pool, env={"PATH": env["PATH"]})
        self._lock = threading.Lock()
        self._ready = False   # the template says so once its imports are done (see ask)

    def ask(self, message: dict) -> dict:
        with self._lock:
            if not self._ready:
                if self._read(timeout=120) != {"ready": True}:
                    raise TemplateProblem(f"the kernel template did not start: {self._stderr()}")
                self._ready = True
            try:
                self._process.stdin.write(json.dumps(message).encode() + b"\n")
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                raise TemplateProblem(f"the kernel template is gone: {self._stderr()}") from None
            answer = self._read(timeout=60)
        if answer is None:
            raise TemplateProblem(f"the kernel template stopped answering: {self._stderr()}")
        return answer

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else b""
        try:
            return json.loads(line) if line else None
        except json.JSONDecodeError:
            return None

    def _stderr(self) -> str:
        self._errors.seek(0)
        text = self._errors.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else f"exit status {self._process.poll()}"

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        self._errors.close()


class ForkedProcess:
    """A kernel forked by the template, with the slice of `subprocess.Popen` jupyter_client
    uses. `returncode` is the kernel's exit code, or 128 + n after signal n (see
    sandbox.describe_exit). Every signal ends the kernel: interrupts go by message."""

    stdin = stdout = stderr = None

    def __init__(self, template: Template, pid: int):
        self._template, self.pid, self.returncode = template, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self._template.ask({"op": "poll", "pid": self.pid})["returncode"]
            except TemplateProblem:
                self.returncode = -9   # the template (and with it every kernel) is gone
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("kernel", timeout)
            time.sleep(0.02)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                self._template.ask({"op": "kill", "pid": self.pid})
            except TemplateProblem:
                pass

    def send_signal(self, signum: int) -> None:
        self.kill()

    terminate = kill


def provisioner_class():
    """`ForkProvisioner`, built on first use (importing jupyter_client is slow)."""
    import asyncio

    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    from traitlets import Any

    class ForkProvisioner(LocalProvisioner):
        """A LocalProvisioner whose kernel is forked by the template instead of Popen'ed, at
        the moment LocalProvisioner would launch it (after jupyter_client wrote the connection
        file, before it reconciles it with the provisioner's). `pre_launch` is inherited."""

        request = Any(None, help="the warm.Request of this launch")

        async def launch_kernel(self, cmd, **kwargs):
            try:
                self.process = spawn(self.request)
            except TemplateProblem as problem:
                self.log.warning("%s; starting this kernel cold", problem)
                cold = self.parent._wrap(cmd)
                return await super().launch_kernel(cold.argv, **{**kwargs, "env": dict(cold.env),
                                                                 "cwd": str(cold.cwd)})
            self.pid, self.pgid = self.process.pid, None   # a pid in the sandbox: never signalled
            self.cwd = kwargs.get("cwd")
            return self.connection_info

        async def wait(self):
            if not isinstance(self.process, ForkedProcess):
                return await super().wait()
            # LocalProvisioner polls every 0.1 s; a killed fork is gone within milliseconds.
            while self.process.poll() is None:
                await asyncio.sleep(0.005)
            code, self.process = self.process.returncode, None
            return code

        async def send_signal(self, signum: int) -> None:
            if isinstance(self.process, ForkedProcess):
                self.process.kill()   # every signal ends a forked kernel: interrupts go by message
            else:
                await super().send_signal(signum)

    return ForkProvisioner
