"""The kernel sandbox: student code runs where it can compute, and nowhere else.

The grader starts one Jupyter kernel per notebook. This module turns the kernel's command line
into one that runs it inside bubblewrap (``bwrap``), so that the student's code

* sees only a read-only Python installation, ``/usr``, and the folders the caller binds
  read-only (for example the ``tinytorch`` package), plus its own read-write scratch folder;
  the repository, its tests, rubrics, grades and other students' work do not exist in there;
* has no network: its own network namespace holds nothing but a loopback device;
* has its own PID namespace (it cannot see or signal the grader), its own ``/tmp``, ``/proc``
  and a minimal ``/dev``;
* is limited in CPU time, address space, processes, file size and open files (``setrlimit``).

The grader still talks to the kernel: Jupyter's IPC transport uses Unix sockets, which are
files, so when the connection file and the socket paths live in the bound scratch folder both
sides reach them. (TCP would not: the kernel's loopback is not the grader's.)

Two isolation modes, chosen automatically:

``root``     The grader runs as root (CI containers, the course machines). bwrap creates the
             namespaces without a user namespace and ``setpriv`` drops the kernel to a fresh,
             unprivileged uid. Why not a user namespace: inside one, the kernel's uid maps back to
             root outside, and Linux never enforces ``RLIMIT_NPROC`` for root, so a fork bomb
             would not be stopped (measured: 200 of 200 forks succeeded under a limit of 20).
``userns``   The grader is an ordinary user (a student's laptop). bwrap creates a user namespace
             as well; the process limit then counts the sandbox's own processes.

In both modes, a kernel whose scratch folder and package view are in the warm pool
(``warm.scratch_parent()``) is not launched through bwrap at all but forked from a template
that already imported ipykernel and NumPy, inside namespaces and limits of its own (warm.py,
about 0.2 s instead of 1.3 s per kernel); everything above holds for it too.

Where bwrap cannot run (macOS, bwrap not installed, user namespaces disabled) the fallback
still applies the resource limits, a new session, the scratch working directory and a clean
environment, and :attr:`SandboxedCommand.warning` says that the files are not protected.

Typical use (the grading plugin)::

    scratch = Path(tempfile.mkdtemp(prefix="tt-"))          # short: Unix socket paths are
    km = SandboxedKernelManager(scratch=scratch, limits=Limits(),   # at most 107 bytes
                                bind_ro=[package_dir], hide=[...], isolation="require")
    client = NotebookClient(nb, km=km, shutdown_kernel="immediate")
    ...
    reason = describe_exit(km.provisioner.process.returncode)   # after a crash

or, for any other launcher, :func:`wrap_kernel_command`. The module imports only the standard
library; :class:`SandboxedKernelManager` imports jupyter_client on first use.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

Isolation = Literal["auto", "require", "off"]

GiB = 1024**3
MiB = 1024**2

# Unix socket paths are limited to 108 bytes (sun_path) on Linux, including the trailing NUL.
_SUN_PATH_MAX = 107
CONNECTION_FILE = "kernel.json"


class SandboxError(RuntimeError):
    """The sandbox cannot be set up as asked; the message says what was expected and what to do."""


class SandboxUnavailable(SandboxError):
    """Isolation was required (``isolation="require"``) but bubblewrap cannot run here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for the kernel process and everything it starts.

    Each becomes a ``setrlimit`` whose hard limit the student's code cannot raise. The kernel
    itself needs part of the budget (measured: ipykernel 7 with NumPy imported maps about
    0.85 GiB of address space, runs 12 threads, which count as processes, and holds about 64
    file descriptors), so do not go much below the defaults.
    """

    cpu_seconds: int = 120
    """RLIMIT_CPU: CPU seconds of the kernel process, start-up (about 1 s) included; then
    SIGXCPU kills it (SIGKILL a second later if it catches that). Wall-clock timeouts are the
    client's job (nbclient ``timeout``)."""
    memory_bytes: int = 2 * GiB
    """RLIMIT_AS: address space; a larger allocation raises MemoryError inside the kernel."""
    processes: int = 64
    """RLIMIT_NPROC: processes *and threads* of the sandbox's uid; stops fork bombs."""
    file_size_bytes: int = 64 * MiB
    """RLIMIT_FSIZE: largest file the kernel may write; beyond it write() fails with EFBIG."""
    open_files: int = 256
    """RLIMIT_NOFILE: open file descriptors (sockets included)."""
    tmp_bytes: int = 64 * MiB
    """Size of each private in-memory /tmp and /dev/shm (bwrap only); tmpfs pages are not
    counted in RLIMIT_AS, so this caps them separately."""

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_bytes", "processes", "file_size_bytes",
                     "open_files", "tmp_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise SandboxError(f"Limits.{name} must be a positive int, got {value!r}")

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """``resource.RLIMIT_<NAME>`` -> (soft, hard), core dumps disabled. The CPU hard limit
        is one second above the soft one, so the kernel first gets SIGXCPU, which names the
        cause in its exit status (see :func:`describe_exit`), then SIGKILL."""
        same = {"AS": self.memory_bytes, "NPROC": self.processes,
                "FSIZE": self.file_size_bytes, "NOFILE": self.open_files, "CORE": 0}
        return {"CPU": (self.cpu_seconds, self.cpu_seconds + 1),
                **{name: (value, value) for name, value in same.items()}}


@dataclass(frozen=True)
class SandboxedCommand:
    """What to launch: pass ``argv``, ``env`` and ``cwd`` to ``subprocess.Popen``."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    mode: Literal["root", "userns", "fallback"]
    uid: int | None = None
    """The kernel's uid in root mode (fresh per sandbox, so the process limit is its own)."""
    warning: str | None = None
    """Set when the kernel runs without file-system and network isolation."""

    @property
    def isolated(self) -> bool:
        return self.mode != "fallback"


# --------------------------------------------------------------------------------------------
# Resource limits: a few lines of Python that run just before the kernel, in the same process.
# Passed with ``-c`` so nothing from the repository has to be visible inside the sandbox; run
# with ``-I -S`` so no PYTHONPATH, user site or .pth file can run code before the limits hold.
# --------------------------------------------------------------------------------------------
_APPLY_LIMITS_AND_EXEC = """\
import os, resource, sys
sep = sys.argv.index("--")
for item in sys.argv[1:sep]:
    name, soft, hard = item.replace("=", ":").split(":")
    which = getattr(resource, "RLIMIT_" + name, None)
    if which is None:
        continue  # not on this OS (the fallback on macOS lacks some)
    soft, hard, now = int(soft), int(hard), resource.getrlimit(which)[1]
    if now != resource.RLIM_INFINITY:  # never ask to raise a hard limit: that needs root
        soft, hard = min(soft, now), min(hard, now)
    resource.setrlimit(which, (soft, hard))
try:
    os.setsid()  # own session and process group, so the grader can kill the whole group
except OSError:
    pass  # already a session leader (bwrap --new-session, Popen start_new_session)
os.execvp(sys.argv[sep + 1], sys.argv[sep + 1:])
"""


def limits_prefix(limits: Limits, python: str = sys.executable) -> list[str]:
    """Command prefix that applies ``limits`` to itself, then execs the command after it."""
    settings = [f"{name}={soft}:{hard}" for name, (soft, hard) in limits.rlimits().items()]
    return [python, "-I", "-S", "-c", _APPLY_LIMITS_AND_EXEC, *settings, "--"]


# --------------------------------------------------------------------------------------------
# Is bubblewrap usable here?
# --------------------------------------------------------------------------------------------
def _mode() -> Literal["root", "userns"]:
    return "root" if os.geteuid() == 0 else "userns"


@functools.cache
def sandbox_available() -> tuple[bool, str]:
    """Whether bubblewrap isolation works on this machine, and why (not).

    Runs ``true`` inside a sandbox built exactly the way kernels are, because bwrap being on
    PATH proves little: containers and some distributions forbid the namespaces it needs.
    Cached; call ``sandbox_available.cache_clear()`` after installing bubblewrap.
    """
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux namespaces; this is {sys.platform}"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, ("bwrap not found on PATH; install bubblewrap (Debian/Ubuntu: "
                       "apt-get install -y bubblewrap; Fedora: dnf install bubblewrap)")
    mode = _mode()
    if mode == "root" and shutil.which("setpriv") is None:
        return False, ("running as root needs setpriv (util-linux) to drop privileges; "
                       "install util-linux")
    true = shutil.which("true") or "/bin/true"
    with tempfile.TemporaryDirectory(prefix="tt-probe-") as scratch:
        argv = _bwrap_argv(bwrap, mode, Path(scratch), [], [], Limits(), {}, uid=_fresh_uid())
        argv += [true]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"{bwrap} could not be run: {error}"
    if done.returncode != 0:
        return False, (f"{bwrap} cannot create the sandbox here ({done.stderr.strip()}). "
                       "User namespaces may be disabled (sysctl "
                       "kernel.unprivileged_userns_clone=1; Ubuntu 24.04: "
                       "kernel.apparmor_restrict_unprivileged_userns=0) or a container forbids "
                       "them (e.g. docker's default seccomp profile)")
    return True, f"{bwrap} works here ({mode} mode)"


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
def wrap_kernel_command(
    cmd: Sequence[str],
    *,
    scratch: Path | str,
    bind_ro: Iterable[Path | str] = (),
    hide: Iterable[Path | str] = (),
    limits: Limits = Limits(),
    extra_env: dict[str, str] | None = None,
    isolation: Isolation = "auto",
) -> SandboxedCommand:
    """Return the command that runs the kernel command ``cmd`` sandboxed.

    ``scratch``    existing folder: the kernel's working directory, HOME, IPYTHONDIR, and the
                   only place it can write. Put the connection file (and so the IPC sockets)
                   here. Use a fresh, short temporary folder (``tempfile.mkdtemp(prefix="tt-")``)
                   with a copy of the notebook: in root mode it and its contents are chowned
                   to the kernel's fresh uid, and the names of its parent folders are visible.
    ``bind_ro``    extra folders visible read-only at the same path, e.g. the ``tinytorch``
                   package folder of an editable install (``Path(tinytorch.__file__).parent``):
                   the editable finder in site-packages points at that path.
    ``hide``       folders inside the bound ones to cover with an empty read-only folder, e.g.
                   a regular (non-editable) install's ``site-packages/tinytorch``, which holds
                   the reference solutions: everything importable by the grader's interpreter
                   is readable by the kernel unless hidden.
    ``isolation``  "auto": bwrap when :func:`sandbox_available`, else the fallback with a
                   warning; "require": raise :class:`SandboxUnavailable` instead; "off": always
                   the fallback (limits, own session, scratch cwd, clean env, no isolation).
    """
    if not cmd:
        raise SandboxError("wrap_kernel_command needs the kernel's command line, got an empty one")
    if isolation not in ("auto", "require", "off"):
        raise SandboxError(f"isolation must be 'auto', 'require' or 'off', got {isolation!r}")
    scratch = Path(scratch).resolve()
    if not scratch.is_dir():
        raise SandboxError(f"scratch folder {scratch} does not exist; create it before launching")
    env = kernel_env(scratch, extra_env)
    reason = _unisolated_because(isolation)
    if reason is not None:
        if isolation == "require":
            raise SandboxUnavailable(f"kernel isolation is required but unavailable: {reason}")
        return _fallback(cmd, scratch, limits, env, reason)
    mode = _mode()
    executable = _resolve_executable(cmd[0])
    binds = [Path(p).resolve() for p in (*python_roots(), *bind_ro)]
    _check_visible(executable, binds)
    uid = _fresh_uid() if mode == "root" else None
    hidden = [Path(p).resolve() for p in hide]
    argv = _bwrap_argv(shutil.which("bwrap") or "bwrap", mode, scratch, binds, hidden, limits,
                       env, uid)
    argv += limits_prefix(limits, python=executable if _is_python(executable) else sys.executable)
    argv += [executable, *cmd[1:]]
    if uid is not None:  # last, once nothing can fail: one scratch folder per kernel
        _give_to(scratch, uid)
    return SandboxedCommand(argv=argv, env=env, cwd=scratch, mode=mode, uid=uid)


def kernel_env(scratch: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's whole environment: nothing inherited, so no token or secret of the grader's
    environment reaches student code. HOME and IPYTHONDIR point into scratch (IPython writes its
    profile and history there); BLAS/OpenMP get one thread, which keeps memory and CPU
    predictable under the limits."""
    python_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join([python_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "TMPDIR": "/tmp",
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # site-packages is read-only in there
        "JUPYTER_PLATFORM_DIRS": "1",  # silences jupyter_core's path-migration warning
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # silences debugpy's frozen-modules warning
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.update(extra or {})
    return env


def python_roots() -> list[Path]:
    """Folders of the running interpreter the kernel needs: its installation (stdlib,
    lib-dynload, site-packages) and, in a virtualenv, the venv too. ``/usr`` is always bound,
    so system interpreters need nothing extra."""
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                         sys.base_exec_prefix)}
    return sorted(r for r in roots if not _under(r, Path("/usr")))


def _bwrap_argv(bwrap: str, mode: str, scratch: Path, binds: Sequence[Path],
                hide: Sequence[Path], limits: Limits, env: dict[str, str],
                uid: int | None) -> list[str]:
    """bwrap's options, in mount order (later mounts go on top of earlier ones)."""
    argv = [bwrap, *_namespace_flags(mode), *_system_mounts(limits)]
    argv += _bind_mounts(binds, scratch)
    argv += _hide_mounts(hide, scratch)
    argv += ["--chdir", str(scratch), "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    if mode == "root":
        argv += _drop_to(uid)
    return argv


def _namespace_flags(mode: str) -> list[str]:
    """``--unshare-*``: own PID (cannot see or signal the grader), network (only a loopback
    of its own), IPC, UTS and cgroup namespaces. A user namespace only when not root: see the
    module docstring on RLIMIT_NPROC. ``--die-with-parent``: the sandbox dies with bwrap's
    parent (the grader). ``--new-session``: no TIOCSTI keystroke injection into the grader's
    terminal."""
    flags = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--hostname", "tinytorch-sandbox",
             "--die-with-parent", "--new-session"]
    if mode == "userns":
        flags = ["--unshare-user", "--disable-userns", *flags]
    return flags


def _system_mounts(limits: Limits) -> list[str]:
    """A read-only /usr (with the /bin, /lib... links of merged-/usr systems or binds of the
    real folders otherwise), the dynamic loader's cache, a fresh /proc for the new PID
    namespace, a minimal /dev (null, zero, random, tty...) and a private, size-capped /tmp and
    /dev/shm, world-writable with the sticky bit like the real ones."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--perms", "0755", "--dir", "/etc"]  # bwrap makes it 0700: unreadable in root mode
    for name in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(name):
            argv += ["--ro-bind", name, name]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for tmp in ("/tmp", "/dev/shm"):  # /dev/shm: multiprocessing's locks and queues live there
        argv += ["--size", str(limits.tmp_bytes), "--perms", "1777", "--tmpfs", tmp]
    return argv


def _bind_mounts(binds: Sequence[Path], scratch: Path) -> list[str]:
    """Read-only binds, then scratch read-write, each at its own path (the Python prefix is
    compiled into the interpreter; the connection file names absolute socket paths). Missing
    parent folders are created world-traversable (0755), because bwrap would make them 0700
    and the kernel's unprivileged uid could not walk through them."""
    argv: list[str] = []
    made = {Path("/"), Path("/usr"), Path("/tmp"), Path("/proc"), Path("/dev"), Path("/etc")}
    mounted: list[Path] = []
    plan = [(p, "--ro-bind") for p in sorted(set(binds), key=lambda p: len(p.parts))]
    plan.append((scratch, "--bind"))
    for path, how in plan:
        if how == "--ro-bind" and any(_under(path, m) for m in mounted):
            continue  # already visible through a bind of a parent folder
        if not path.exists():
            raise SandboxError(f"cannot bind {path} into the sandbox: it does not exist")
        for parent in reversed(path.parents):
            if parent in made or any(_under(parent, m) for m in mounted):
                continue
            argv += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
        argv += [how, str(path), str(path)]
        mounted.append(path)
    return argv


def _hide_mounts(paths: Sequence[Path], scratch: Path) -> list[str]:
    """An empty, read-only tmpfs over each hidden folder (after the binds, so it lands on top)."""
    argv: list[str] = []
    for path in paths:
        if _under(scratch, path):
            raise SandboxError(f"cannot hide {path}: the scratch folder {scratch} is inside it")
        argv += ["--tmpfs", str(path), "--remount-ro", str(path)]
    return argv


def _drop_to(uid: int | None) -> list[str]:
    """Root mode: become a fresh unprivileged uid/gid with no capabilities and no way back
    (no_new_privs: setuid binaries do nothing), before any student code runs."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _fallback_warning(reason: str) -> str:
    return (f"kernel sandbox unavailable ({reason}); the kernel runs with resource limits "
            "only and can read and write every file this user can and use the network. "
            "Do not grade untrusted submissions this way.")


def _unisolated_because(isolation: str) -> str | None:
    """Why kernels launched with `isolation` will not run in bubblewrap, or None if they will."""
    if isolation == "off":
        return "isolation='off' was asked for"
    ok, reason = sandbox_available()
    return None if ok else reason


def isolation_warning(isolation: str) -> str | None:
    """The warning every kernel launched with `isolation` will carry, or None when they will be
    isolated (or refuse to start: "require"). Lets a command say it once, before its kernels
    start in processes whose warnings nobody reads."""
    reason = _unisolated_because(isolation)
    return None if reason is None or isolation == "require" else _fallback_warning(reason)


def _fallback(cmd: Sequence[str], scratch: Path, limits: Limits, env: dict[str, str],
              reason: str) -> SandboxedCommand:
    return SandboxedCommand(argv=[*limits_prefix(limits), *cmd], env=env, cwd=scratch,
                            mode="fallback", warning=_fallback_warning(reason))


_EXIT_REASONS = {
    "SIGXCPU": "CPU time limit exceeded",
    "SIGKILL": "killed (SIGKILL: by the grader, the CPU limit's hard stop, or out of memory)",
    "SIGSEGV": "crashed (segmentation fault)",
    "SIGABRT": "crashed (aborted)",
    "SIGXFSZ": "file size limit exceeded",
}


def describe_exit(returncode: int | None) -> str:
    """A human reason for the launched process's exit status, for the score table.

    Popen reports death by signal n as -n; bwrap reports its child's death by signal n as
    128 + n (like a shell)."""
    if returncode is None:
        return "still running"
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        name = signal.Signals(number).name if number else None
    except ValueError:
        name = None
    if name is None:
        return f"exited with status {returncode}"
    return f"kernel {_EXIT_REASONS.get(name, f'killed by {name}')}"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _fresh_uid() -> int:
    """A uid no account uses, so RLIMIT_NPROC (counted per uid) counts only this sandbox."""
    return 200_000 + secrets.randbelow(2_000_000_000)


def _give_to(scratch: Path, uid: int) -> None:
    """Hand the scratch folder (and the connection file already in it) to the kernel's uid."""
    os.chown(scratch, uid, uid)
    for folder, dirs, files in os.walk(scratch):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _resolve_executable(program: str) -> str:
    """Absolute path of the kernel's program, *not* symlink-resolved: a virtualenv's
    bin/python is a symlink, and Python finds its venv (pyvenv.cfg) from the link's path."""
    found = shutil.which(program)
    if found is None:
        raise SandboxError(f"kernel executable {program!r} not found on PATH")
    return os.path.abspath(found)


def _check_visible(executable: str, binds: Sequence[Path]) -> None:
    """The program and the file its symlinks lead to must both be inside the sandbox. (A
    pyenv shim is a shell script that cannot work in there; give the real interpreter.)"""
    for path in {Path(executable), Path(os.path.realpath(executable))}:
        if not (_under(path, Path("/usr")) or any(_under(path, b) for b in binds)):
            raise SandboxError(f"the kernel executable {path} would not be visible in the "
                               "sandbox; add its installation folder to bind_ro")


def _is_python(executable: str) -> bool:
    return Path(executable).name.startswith("python")


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_socket_room(ipc_prefix: str | Path) -> None:
    """Jupyter's IPC sockets are ``<ip>-<port>`` files, and a Unix socket path holds at most
    107 bytes: fail early, with the fix, instead of a cryptic zmq error at start-up."""
    longest = f"{ipc_prefix}-99999"
    if len(longest.encode()) > _SUN_PATH_MAX:
        raise SandboxError(f"scratch path too long for Jupyter IPC sockets ({len(longest)} > "
                           f"{_SUN_PATH_MAX} bytes: {longest}); use a shorter scratch folder, "
                           "e.g. tempfile.mkdtemp(prefix='tt-')")


# --------------------------------------------------------------------------------------------
# jupyter_client integration
# --------------------------------------------------------------------------------------------
def _kernel_manager_class():  # built lazily: importing jupyter_client costs 0.3-0.7 s
    from jupyter_client.manager import KernelManager
    from traitlets import Any, List, Unicode, default

    class SandboxedKernelManager(KernelManager):
        """A KernelManager whose kernel runs in the sandbox, over the IPC transport.

        ``SandboxedKernelManager(scratch=..., bind_ro=[...], limits=Limits(),
        isolation="auto")`` (paths as str or Path), then use it like any KernelManager, e.g.
        ``NotebookClient(nb, km=km)`` (testbook forwards extra keyword arguments there).
        The connection file defaults to ``<scratch>/kernel.json``, so the IPC sockets
        (``<scratch>/kernel-ipc-<n>``) are in the one folder both sides see.

        The hook is ``_async_pre_start_kernel``, which jupyter_client calls on every start and
        restart right after writing the connection file: we wrap the command it built and
        replace the Popen environment and working directory. So an ``env=`` given to
        ``start_kernel`` is dropped (it would carry the grader's secrets): put the variables the
        kernel needs in ``extra_env``.
        """

        scratch = Any(None, help="the kernel's scratch folder (str or Path; must exist)")
        bind_ro = List(help="extra read-only folders (str or Path)")
        hide = List(help="folders to cover with an empty read-only folder (str or Path)")
        limits = Any(Limits(), help="a sandbox.Limits")
        isolation = Unicode("auto", help="auto | require | off")
        extra_env = Any(None, help="extra environment variables for the kernel")
        sandbox = Any(None, help="the SandboxedCommand of the last launch (mode, uid, warning)")

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"  # Unix sockets in scratch cross into the sandbox; TCP does not

        @default("client_factory")
        def _default_client_factory(self):
            return _ready_client_class()

        @default("connection_file")
        def _default_connection_file(self) -> str:
            return str(self._scratch() / CONNECTION_FILE)

        def _scratch(self) -> Path:
            if self.scratch is None:
                raise SandboxError("SandboxedKernelManager needs scratch=<existing folder>")
            return Path(self.scratch).resolve()

        def _check_request(self) -> None:
            if self.transport != "ipc":
                raise SandboxError("sandboxed kernels need transport='ipc', "
                                   f"got {self.transport!r}")
            if not isinstance(self.limits, Limits):
                raise SandboxError(f"limits must be a sandbox.Limits, got {self.limits!r}")
            connection_file = Path(self.connection_file).resolve()
            if connection_file.parent != self._scratch():
                raise SandboxError(f"the connection file {connection_file} must be directly in "
                                   f"scratch {self._scratch()}, or the kernel cannot reach it")
            sockets = Path(self.ip).resolve()
            if sockets.parent != self._scratch():
                raise SandboxError(f"the IPC socket prefix ip={self.ip!r} must be directly in "
                                   f"scratch {self._scratch()}, or the kernel cannot reach it")
            check_socket_room(sockets)

        async def _async_pre_start_kernel(self, **kw):
            self._check_request()
            cmd, kw = await super()._async_pre_start_kernel(**kw)   # writes the connection file
            if self._start_warm(cmd):
                kw["env"] = dict(self.sandbox.env)
                kw["cwd"] = str(self.sandbox.cwd)
                return cmd, kw
            self._wrap(cmd)
            if self.sandbox.isolated and self.kernel_spec is not None:
                # SIGINT would reach bwrap, not the kernel: interrupt by control message.
                self.kernel_spec.interrupt_mode = "message"
            kw["env"] = dict(self.sandbox.env)
            kw["cwd"] = str(self.sandbox.cwd)
            if self.sandbox.warning:
                self.log.warning(self.sandbox.warning)
            return self.sandbox.argv, kw

        def _start_warm(self, cmd) -> bool:
            """Arrange for the kernel to be forked from the warm template (warm.py) when this
            launch allows it; False to launch it cold. A provisioner that forks is swapped in;
            if the template fails at launch, it launches cold after all (``_wrap``)."""
            from . import warm
            env = kernel_env(self._scratch(), self.extra_env)
            request = warm.plan(cmd, scratch=self._scratch(), bind_ro=self.bind_ro, hide=self.hide,
                                limits=self.limits, env=env, isolation=self.isolation)
            if request is None:
                return False
            old = self.provisioner
            self.provisioner = warm.provisioner_class()(
                kernel_id=old.kernel_id, kernel_spec=old.kernel_spec, parent=self, request=request)
            self.provisioner.connection_info = old.connection_info
            self.provisioner.ports_cached = old.ports_cached
            self.sandbox = SandboxedCommand(argv=[], env=env, cwd=self._scratch(), mode=_mode(),
                                            uid=request.uid)
            if self.kernel_spec is not None:
                self.kernel_spec.interrupt_mode = "message"
            return True

        def _wrap(self, cmd) -> SandboxedCommand:
            """The cold launch of `cmd`: through bwrap (or the fallback), also after a warm
            launch failed."""
            self.sandbox = wrap_kernel_command(
                cmd, scratch=self._scratch(), bind_ro=self.bind_ro, hide=self.hide,
                limits=self.limits, extra_env=self.extra_env,
                isolation=self.isolation)  # type: ignore[arg-type]
            return self.sandbox

    return SandboxedKernelManager


@functools.cache
def _ready_client_class():
    """jupyter_client's BlockingKernelClient, with a `wait_for_ready` that does not sleep.

    Upstream's waits up to 0.2 s for an IOPub message after each kernel_info reply, to be sure
    the subscription is live (a PUB socket drops what it sends before a subscriber has joined).
    A kernel forked from the warm template is ready in about 20 ms, so that wait was most of its
    start-up. Same check here, polled every 20 ms: every kernel_info request makes the kernel
    publish its busy/idle status, so the first IOPub message proves the subscription."""
    import time
    from queue import Empty

    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.utils import run_sync
    from jupyter_core.utils import ensure_async

    class ReadyClient(BlockingKernelClient):
        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.time() + (float("inf") if timeout is None else timeout)
            self.kernel_info()   # queued by zmq until the kernel's socket is there
            while True:
                try:
                    reply = await ensure_async(self.shell_channel.get_msg(timeout=0.2))
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:
                        await ensure_async(self.iopub_channel.get_msg(timeout=0.02))
                    except Empty:
                        # Asked again only once answered: no request is left in flight whose
                        # late reply a caller of get_shell_msg() would mistake for its own.
                        self.kernel_info()
                    else:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.time() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

        wait_for_ready = run_sync(_async_wait_for_ready)

    return ReadyClient


def __getattr__(name: str):
    if name == "SandboxedKernelManager":
        cls = _kernel_manager_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
