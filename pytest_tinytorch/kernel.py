"""The student's kernel: the only place where student code runs.

`StudentKernel` starts an IPython kernel (through testbook's notebook client), executes the
student's notebook in a scratch folder, and then answers `value()` calls from the tests with
plain data (see wire.py). The kernel is a separate process that the grader limits, times and
kills; a notebook that cannot be read, runs too long or kills its kernel becomes a
`NotebookProblem` that fails each of the module's tests with a reason the student can act on.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from testbook.client import TestbookNotebookClient

from . import sandbox, warm, wire

MAX_CAPTURE = 1_000_000     # characters of stdout kept per execution; the rest is dropped
MAX_ANSWER = 64 * 2**20     # characters of the helper's answer line: a larger answer is refused
MAX_NOTEBOOK_BYTES = 256 * 2**20  # a larger notebook file is refused (its outputs, usually)
SKIP_TAGS = {"analysis"}    # systems-analysis cells: students run them, the grader does not


class NotebookProblem(AssertionError):
    """The notebook could not be graded at all (missing, unreadable, too slow, crashed)."""


class GraderProblem(NotebookProblem):
    """The grader itself could not run the notebook (no kernel, no sandbox): not the student's fault."""


class KernelTimeout(AssertionError):
    """The student's code ran past the time allowed for one test."""


class StudentError(AssertionError):
    """The student's code raised an exception; carries its type names, message and location."""

    def __init__(self, type_name: str, mro: list[str], message: str, where: list[str], hint: str = ""):
        self.type_name, self.mro, self.message, self.where = type_name, list(mro), message, list(where)
        text = f"your code raised {type_name}: {message}"
        if where:
            text += f" (at {where[-1]})"
        if hint:
            text += f"; {hint}"
        super().__init__(text)

    def is_a(self, name: str) -> bool:
        """Whether the student's exception is `name` or a subclass of it (by class name)."""
        return name in self.mro


@dataclass
class Execution:
    stdout: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)   # (ename, evalue)
    answer: str | None = None   # the last stdout line starting with the call's nonce, if any


def load_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook, turning every kind of damage into a NotebookProblem."""
    path = Path(path)
    if not path.is_file():
        raise NotebookProblem(f"no notebook found: expected {path.name} in {path.parent}")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookProblem(f"{path.name} is {size / 2**20:.0f} MiB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MiB "
                              f"a notebook may have; clear its outputs (Edit > Clear All Outputs) and save it again")
    if size == 0:
        raise NotebookProblem(f"{path.name} is empty (0 bytes); save your notebook again from Jupyter")
    try:
        nb = nbformat.read(path, as_version=4)
    except UnicodeDecodeError:
        raise NotebookProblem(f"{path.name} is not UTF-8 text; save it again from Jupyter") from None
    except nbformat.reader.NotJSONError:  # its message quotes the file: give the position only
        raise NotebookProblem(
            f"{path.name} is not a valid notebook (not JSON: {_json_error(path)}); open it in Jupyter "
            f"and save it again, or start over from the released notebook"
        ) from None
    except Exception as err:  # nbformat raises several types for damaged JSON
        raise NotebookProblem(
            f"{path.name} is not a valid notebook ({type(err).__name__}: {str(err)[:200]}); open it "
            f"in Jupyter and save it again, or start over from the released notebook"
        ) from None
    if nb.get("nbformat") != 4:
        raise NotebookProblem(f"{path.name} uses notebook format {nb.get('nbformat')}; expected format 4")
    try:
        nbformat.validate(nb)
    except Exception as err:
        raise NotebookProblem(f"{path.name} does not follow the notebook format: {str(err).splitlines()[0][:200]}") from None
    return nb


class StudentKernel:
    """One kernel for one (student, module) submission, shared by that module's tests."""

    def __init__(self, notebook, *, label: str, timeout: float = 120, call_timeout: float = 30,
                 env: dict | None = None, max_restarts: int = 2, package_view: Path | None = None,
                 isolation: str = "auto", limits: sandbox.Limits | None = None):
        self.notebook = notebook          # a path, or an nbformat notebook already in memory
        self.label = label                # "alice/01_tensor", for messages
        self.timeout = timeout            # seconds for the whole notebook
        self.call_timeout = call_timeout  # seconds for one value() call
        self.env = env or {}
        self.max_restarts = max_restarts
        self.package_view = package_view  # the folder holding the tinytorch this kernel may import
        self.isolation = isolation        # sandbox: "auto", "require" or "off"
        self.limits = limits or sandbox.Limits()
        self.problem: str | None = None   # why this notebook cannot be graded, once known
        self.sandbox_warning: str | None = None  # set when the kernel runs without isolation
        self.cell_errors: list[tuple[int, str, str]] = []
        self._client = None
        self._km = None
        self._kc = None
        self._workdir: Path | None = None
        self._helper = "__tinytorch_value_" + secrets.token_hex(6) + "__"
        self._starts = 0

    # --- lifecycle ------------------------------------------------------------------------
    def start(self):
        """Start the kernel and run the notebook; records `problem` instead of raising."""
        if self.problem is not None or self._kc is not None:
            return
        if self._starts > self.max_restarts:
            self.problem = "the kernel had to be restarted too many times; earlier tests timed out or crashed it"
            return
        self._starts += 1
        try:
            nb = self.notebook if isinstance(self.notebook, nbformat.NotebookNode) else load_notebook(self.notebook)
            self._launch(nb)
            self._run_notebook(nb)
        except NotebookProblem as problem:
            self.problem = str(problem)
            self.close()

    def _launch(self, nb):
        # A short path: Unix socket paths are limited to 107 bytes.
        self._workdir = Path(tempfile.mkdtemp(prefix="tt-", dir=warm.scratch_parent()))
        nbformat.write(nb, self._workdir / "submission.ipynb")
        client = TestbookNotebookClient(
            nb,
            kernel_name="python3",
            kernel_manager_class=sandbox.SandboxedKernelManager,
            shutdown_kernel="immediate",   # graceful shutdowns stall about 6% of the time
            startup_timeout=60,
            resources={"metadata": {"path": str(self._workdir)}},
        )
        km = client.create_kernel_manager()
        # IPC sockets in the scratch folder: the only channel into the sandbox, no TCP port to
        # find or collide on, and no kernel reachable from the network.
        km.scratch = str(self._workdir)
        km.ip = str(self._workdir / "kernel")
        km.isolation = self.isolation
        km.limits = self.limits
        env = {"MPLBACKEND": "Agg", **self.env}
        if self.package_view is not None:
            km.bind_ro = [str(self.package_view)]
            env["PYTHONPATH"] = str(self.package_view)
        km.extra_env = env
        try:
            client.start_new_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client.start_new_kernel_client()
        except sandbox.SandboxUnavailable as err:
            raise GraderProblem(f"the kernel sandbox is required but unavailable: {err}") from None
        except Exception as err:
            raise GraderProblem(f"the grader could not start a Python kernel ({type(err).__name__}: {err})") from None
        self._client, self._km, self._kc = client, km, client.kc
        self.sandbox_warning = km.sandbox.warning if km.sandbox is not None else None
        self._execute(wire.KERNEL_HELPER.replace("__tinytorch_value__", self._helper), timeout=60)

    def _run_notebook(self, nb):
        deadline = time.monotonic() + self.timeout
        number = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            number += 1
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])) or not cell.source.strip():
                continue
            remaining = deadline - time.monotonic()
            try:
                result = self._execute(cell.source, timeout=remaining, store_history=True)
            except KernelTimeout:
                raise NotebookProblem(
                    f"your notebook did not finish running within {self.timeout:g} s (stopped in code "
                    f"cell {number}: {_first_line(cell.source)!r}); look for an endless loop or a slow "
                    f"experiment, and tag long experiments as analysis cells"
                ) from None
            except _KernelDied as died:
                raise NotebookProblem(
                    f"the kernel died while running code cell {number} ({_first_line(cell.source)!r}): "
                    f"{died}"
                ) from None
            for ename, evalue in result.errors:
                self.cell_errors.append((number, ename, evalue))

    def close(self):
        """Kill the kernel (immediately) and delete the scratch folder."""
        if self._kc is not None:
            try:
                self._kc.stop_channels()
            except Exception:
                pass
        if self._km is not None:
            try:
                if self._km.has_kernel:
                    self._km.shutdown_kernel(now=True)
            except Exception:
                pass
            try:
                self._km.cleanup_resources()
            except Exception:
                pass
        self._client = self._km = self._kc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # --- talking to the kernel ------------------------------------------------------------
    def _execute(self, code: str, timeout: float, store_history: bool = False, nonce: str | None = None) -> Execution:
        """Run code in the kernel; collect stdout and errors until it is idle again. The answer
        line (the one starting with `nonce`) is kept apart, however much the code printed."""
        if timeout <= 0:
            raise KernelTimeout()
        kc, km = self._kc, self._km
        msg_id = kc.execute(code, store_history=store_history, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        result, size = Execution(), 0
        chunks = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise KernelTimeout()
            try:
                msg = kc.get_iopub_msg(timeout=min(remaining, 0.5))
            except queue.Empty:
                if not km.is_alive():
                    reason = self._death_reason()
                    self.close()
                    raise _KernelDied(reason) from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout" and type(content.get("text")) is str:
                text = content["text"]
                # The helper writes "\n" + nonce + answer in one write, so one message holds it.
                start = text.rfind("\n" + nonce) if nonce else -1
                if start >= 0:
                    result.answer = text[start + 1:].split("\n", 1)[0]
                if size < MAX_CAPTURE:
                    chunks.append(text[: MAX_CAPTURE - size])
                    size += len(chunks[-1])
            elif kind == "error":
                result.errors.append((content.get("ename", "?"), content.get("evalue", "")))
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        result.stdout = "".join(chunks)
        return result

    def value(self, code: str, **inputs):
        """Run `code` against the executed notebook and return its last expression as plain data."""
        self.start()
        if self.problem is not None:
            raise NotebookProblem(self.problem)
        nonce = "@tinytorch:" + secrets.token_hex(8) + ":"
        request = wire.json.dumps({"code": code, "inputs": {k: wire.encode(v) for k, v in inputs.items()}, "nonce": nonce})
        try:
            result = self._execute(f"{self._helper}({request!r})", timeout=self.call_timeout, nonce=nonce)
        except KernelTimeout:
            raise KernelTimeout(
                f"your code took longer than {self.call_timeout:g} s in this test and was stopped"
            ) from None
        except _KernelDied as died:
            raise NotebookProblem(f"the kernel died during this test: {died}") from None
        if result.answer is not None and len(result.answer) > MAX_ANSWER:
            raise wire.WireError(f"the answer is too large ({len(result.answer) / 2**20:.0f} MiB of text); "
                                 f"tests expect results of at most {MAX_ANSWER // 2**20} MiB")
        answer = wire.parse_answer(result.answer or "", nonce)
        if type(answer) is not dict:
            detail = f" ({result.errors[0][0]}: {result.errors[0][1]})" if result.errors else ""
            raise wire.WireError(f"the kernel gave no answer to the test{detail}")
        if "error" in answer and type(answer["error"]) is dict:
            err = answer["error"]
            hint = self._hint(err)
            raise StudentError(str(err.get("type")), [str(x) for x in err.get("mro", []) if type(x) is str],
                               str(err.get("message", "")), [str(x) for x in err.get("where", [])], hint)
        if "ok" not in answer:
            raise wire.WireError("the kernel's answer has neither a value nor an error")
        return wire.decode(answer["ok"])

    def _death_reason(self) -> str:
        """Why the kernel process ended, in words (a limit it hit, a signal, an exit code)."""
        process = getattr(getattr(self._km, "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        detail = sandbox.describe_exit(code) if code is not None else "it ended"
        return f"{detail} (the code exited the process, crashed Python or hit a resource limit)"

    def _hint(self, err) -> str:
        """Point at the notebook cell that failed when the student's names are missing."""
        if err.get("type") in ("NameError", "ImportError", "AttributeError") and self.cell_errors:
            number, ename, evalue = self.cell_errors[0]
            return f"note that code cell {number} of your notebook raised {ename}: {evalue[:200]}"
        return ""


def _json_error(path: Path) -> str:
    """Where a file stops being JSON, without quoting it (it may not be the student's file)."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return f"{err.msg} at line {err.lineno} column {err.colno}"
    except Exception as err:
        return type(err).__name__
    return "unreadable"


class _KernelDied(Exception):
    pass


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:80]
    return ""
