"""The warm kernel template: the process that forks every student's kernel (see warm.py).

This file runs *inside* the sandbox, as ``python -I -c <this file's text>``: warm.py reads it
as text because the repository is not visible in there. It imports only the standard library
and, once, the modules every kernel needs (ipykernel, IPython, NumPy: about 1 s of start-up
that each kernel would otherwise repeat), then serves requests, one JSON line per request on
stdin, one JSON line per answer on stdout:

    {"op": "spawn", ...}  ->  {"pid": P}  or  {"error": "..."}
    {"op": "poll", "pid": P}  ->  {"returncode": None | int}
    {"op": "kill", "pid": P}  ->  {}

Each spawn forks three processes, so that every kernel is as isolated as a freshly launched
one (the guarantees of sandbox.py, checked by tests/test_hostile.py):

``holder``  in the template's namespaces: creates new mount, PID, network and IPC namespaces
            for its children (``unshare``), then waits and passes on the exit status.
``init``    PID 1 of the new PID namespace, still privileged but never running student code:
            mounts a fresh ``/proc`` (so only this kernel's processes exist), fresh size-capped
            ``/tmp`` and ``/dev/shm``, covers the shared pool folder with an empty read-only one
            and binds back only this kernel's scratch folder (read-write) and package view
            (read-only), brings up the loopback device; then forks the kernel, reaps orphans
            (what bwrap's own init does) and exits with the kernel's status, which kills
            everything left.
``kernel``  PID 2: sets the resource limits, drops every capability and (root mode) becomes a
            fresh unprivileged uid, with no way back (``no_new_privs``), then runs ipykernel.

The template runs in bubblewrap as root (root mode) or, when the grader is an ordinary user, as
that user with every capability *inside* bubblewrap's user namespace (``--cap-add ALL``), which
is what creating namespaces and mounting needs; the kernels keep that one uid, as bwrap-launched
kernels do in that mode, and lose the capabilities.

Threads and forking do not mix: the template never starts a thread.
"""

import ctypes
import errno
import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import traceback

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SETUP_FAILED = 125   # exit status of a holder or init whose set-up failed (the reason goes to the pipe)

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def prctl(option, value):
    _check(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def remount_readonly(path):
    """Make the bind mount at `path` read-only (and nosuid, nodev), keeping the flags it has:
    in a user namespace, noexec and the atime flags of a mount made outside it are locked, and
    a remount that would drop one is refused."""
    have = os.statvfs(path).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    for st, ms in ((os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                   (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)):
        if have & st:
            flags |= ms
    mount(None, path, None, flags)


def drop_bounding_set():
    """No capability can come back through exec (needs CAP_SETPCAP: before changing uid)."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl ambient")


def clear_capabilities():
    """Empty the effective, permitted and inheritable sets (capset). Becoming a non-root uid
    does that by itself; in user-namespace mode the uid stays, so this is what drops them."""
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()   # two {effective, permitted, inheritable} words, all zero
    _check(libc.capset(header, data), "capset")


def tmpfs(target, size, mode):
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")


def loopback_up():
    """A new network namespace has a loopback device that is down; bring it up (as bwrap does)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def exit_code(status):
    """A wait status as one exit code, death by signal n as 128 + n (as a shell and bwrap do)."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def in_tmp(path):
    return (path + "/").startswith("/tmp/")


def relay_exit(child):
    """Wait (reaping every other child: PID 1 adopts orphans) until `child` ends, then exit
    with its status; a holder's or init's exit takes everything below it along."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(SETUP_FAILED)
        if pid == child:
            os._exit(exit_code(status))


def fail(pipe, stage):
    try:
        os.write(pipe, f"error: {stage}: {traceback.format_exc(limit=2).strip().splitlines()[-1]}\n".encode())
    finally:
        os._exit(SETUP_FAILED)


# --- the three stages of one kernel ----------------------------------------------------------
def holder(req, pipe):
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
        first = os.fork()
    except BaseException:
        fail(pipe, "namespaces")
    if first == 0:
        init(req, pipe)
    os.close(pipe)
    relay_exit(first)


def init(req, pipe):
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        mount(None, "/", None, MS_REC | MS_PRIVATE)   # nothing below propagates back out
        # The fresh /tmp below would hide whatever the template sees under /tmp: a Python
        # installation there (a virtualenv in /tmp, as CI makes) is bound back, read-only.
        under_tmp = [path for path in req["system_ro"] if in_tmp(path)]
        own = {path: os.open(path, os.O_PATH | os.O_DIRECTORY)
               for path in (*under_tmp, *req["binds_ro"], req["scratch"])}
        size = req["tmp_bytes"]
        tmpfs("/tmp", size, "1777")
        tmpfs("/dev/shm", size, "1777")
        pool, cover_pool = req["pool"], not in_tmp(req["pool"])   # the fresh /tmp covers it
        if cover_pool:
            tmpfs(pool, 4096, "0755")   # hides every other kernel's scratch folder and view
        for path, fd in own.items():
            os.makedirs(path, mode=0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            if path != req["scratch"]:
                remount_readonly(path)
            os.close(fd)
        if cover_pool:
            mount(None, pool, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        loopback_up()
        kernel_pid = os.fork()
    except BaseException:
        fail(pipe, "mounts")
    if kernel_pid == 0:
        kernel(req, pipe)
    os.close(pipe)
    relay_exit(kernel_pid)   # the kernel's exit ends the namespace


def kernel(req, pipe):
    try:
        os.setsid()
        for name, (soft, hard) in req["rlimits"].items():
            which = getattr(resource, "RLIMIT_" + name, None)
            if which is not None:
                resource.setrlimit(which, (soft, hard))
        uid = req["uid"]
        drop_bounding_set()
        if uid is not None:   # root mode: a fresh uid of its own (user-namespace mode has one uid)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        clear_capabilities()
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.chdir(req["scratch"])
        os.environ.clear()
        os.environ.update(req["env"])
        extra = [p for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:0] = [req["scratch"], *extra]   # what `python -m` with PYTHONPATH gives
        if "numpy.random" in sys.modules:   # the template's random state is every fork's: reseed
            sys.modules["numpy.random"].seed()
        sys.argv = ["ipykernel_launcher", *req["argv"]]
        os.write(pipe, b"ok\n")
        os.close(pipe)
    except BaseException:
        fail(pipe, "limits and privileges")
    code = 0
    try:
        from ipykernel import kernelapp
        kernelapp.launch_new_instance()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        code = 1
    os._exit(code)


# --- the template's loop ---------------------------------------------------------------------
def spawn(req):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):   # the template's stdin and stdout are the grader's channel
            os.dup2(null, fd)
        keep = sorted({write, 0, 1, 2})
        for low, high in zip(keep, [*keep[1:], 65536]):
            os.closerange(low + 1, high)
        holder(req, write)
    os.close(write)
    answer = b""
    while not answer.endswith(b"\n"):
        ready, _, _ = select.select([read], [], [], 30)
        chunk = os.read(read, 4096) if ready else b""
        if not chunk:
            break
        answer += chunk
    os.close(read)
    answer = answer.decode(errors="replace").strip()
    if answer == "ok":
        return {"pid": pid}
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    return {"error": answer.removeprefix("error: ") or "the kernel's set-up ended without a word"}


def serve():
    finished = {}

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            finished[pid] = exit_code(status)

    for modules in sys.argv[1:]:
        for name in modules.split(","):
            __import__(name)
    channel_in, channel_out = sys.stdin.buffer, sys.stdout.buffer
    channel_out.write(b'{"ready": true}\n')
    channel_out.flush()
    for line in channel_in:
        req = json.loads(line)
        reap()
        if req["op"] == "spawn":
            answer = spawn(req)
        elif req["op"] == "poll":
            answer = {"returncode": finished.get(req["pid"])}
        elif req["op"] == "kill":
            try:
                os.kill(req["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            answer = {}
        else:
            answer = {"error": f"unknown request {req['op']!r}"}
        channel_out.write(json.dumps(answer).encode() + b"\n")
        channel_out.flush()


if __name__ == "__main__":
    serve()
