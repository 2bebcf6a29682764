"""One sandboxed Jupyter kernel, and the typed result of running code in it.

A kernel starts in its own temporary directory with a scrubbed environment (an allow-list, so no
API key can cross), then gets the sandbox (`kernel_sandbox.py`): resource limits, the allowed
imports (imported before the guard is armed), and an audit hook. `execute` never raises for
anything the code does: hangs, crashes and floods come back as an `ExecutionResult` with a status,
and the process is restarted when it is dead or will not stop.
Whether a kernel is still to be trusted with another environment is for the harness client to
decide (`harness.py`); this module only runs code and reports what happened. It stays one file
(past 300 lines) because a kernel's start, execution loop, interrupt and restart all work on the one
process and its client, and read best together.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from jupyter_client import AsyncKernelManager

from resyn import tracing
from resyn.settings import KernelSettings, SandboxMode
from resyn.tools.kernel_sandbox import EVENTS_MIME, RESULT_MIME, SWALLOWED_TIMEOUT_EXIT, TRUNCATED_MIME
from resyn.tools.os_sandbox import (
    PrivateArea,
    SandboxUnavailable,
    confined_command,
    exit_signal,
    private_area,
    require_sandbox,
)

ExecutionStatus = Literal["ok", "error", "timeout", "crashed", "limit"]

KERNEL_DIR_PREFIX = "resyn-kernel-"  # in every kernel's argv (its connection file), to find strays
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LIVENESS_POLL_S = 0.25
_TRACED_CODE_CHARS = 2000  # what a trace keeps of each execution: enough to see what ran
_TRACED_OUTPUT_CHARS = 1000
_LIMIT_ERRORS = ("MemoryError", "OutputLimitExceeded")
_SANDBOX_SOURCE = resources.files("resyn.tools").joinpath("kernel_sandbox.py").read_text()


class KernelStartError(RuntimeError):
    """A kernel could not be started or sandboxed."""


class SandboxMissing(KernelStartError, SandboxUnavailable):
    """The OS sandbox cannot be made here: no kernel is started at all."""


class _ConfinedKernelManager(AsyncKernelManager):
    """jupyter-client's kernel manager, starting the kernel inside the OS sandbox (`os_sandbox.py`)."""

    def __init__(self, *, sandbox: SandboxMode, workdir: str, tmp_size_mb: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sandbox, self.workdir, self.tmp_size_mb = sandbox, workdir, tmp_size_mb
        self.kernel_spec.interrupt_mode = "message"  # a signal would reach bwrap, not the kernel

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self.sandbox == "bwrap":  # pid 1 of its namespace is its parent; bwrap dies with resyn
            command.append("--IPKernelApp.parent_handle=0")
        return confined_command(command, self.workdir, self.sandbox, self.tmp_size_mb)


@dataclass
class ExecutionResult:
    """What happened when one piece of code ran."""

    status: ExecutionStatus
    stdout: str = ""
    stderr: str = ""
    value: Any = None
    display: str | None = None
    error: str | None = None
    traceback: str | None = None
    duration: float = 0.0
    events: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Output:
    """Collects a stream up to a limit and remembers how much it dropped. (`kernel_sandbox._CappedText`
    does the same inside the kernel: that file may import nothing of resyn's, and the host imports
    only its constants, so each side keeps its own.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if self.kept < self.limit:
            piece = text[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def text(self) -> str:
        return "".join(self.parts)


def scrubbed_environment(settings: KernelSettings, area: PrivateArea, hash_seed: int) -> dict[str, str]:
    """The only environment a kernel sees: allow-listed names, a private HOME and TMPDIR, a fixed
    hash seed, and one thread for numeric libraries (a call's limit is on the process's CPU time)."""
    environment = {name: os.environ[name] for name in settings.allowed_env if name in os.environ}
    environment.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    environment.update(
        HOME=area.home,
        TMPDIR=area.tmp,
        PYTHONHASHSEED=str(hash_seed),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return environment


class Kernel:
    """A sandboxed kernel. Use through `KernelPool`, or `start()` / `shutdown()` directly."""

    def __init__(self, settings: KernelSettings, hash_seed: int | None = None) -> None:
        self.settings = settings
        self.hash_seed = hash_seed if hash_seed is not None else random.SystemRandom().randrange(1, 2**31)
        self.uses = 0
        self.dirty = False  # set by `harness.distrust`: not to be reused for another environment
        self.workdir: str | None = None
        self._manager: AsyncKernelManager | None = None
        self._client: Any = None

    @property
    def pid(self) -> int | None:
        provisioner = self._manager.provisioner if self._manager else None
        return getattr(provisioner, "pid", None)

    async def start(self) -> None:
        check_sandbox(self.settings)
        self.workdir = tempfile.mkdtemp(prefix=f"{KERNEL_DIR_PREFIX}{os.getpid()}-")
        manager = _ConfinedKernelManager(
            sandbox=self.settings.sandbox,
            workdir=self.workdir,
            tmp_size_mb=self.settings.tmp_size_mb,
            transport="ipc",
            connection_file=os.path.join(self.workdir, ".kernel.json"),
        )
        self._manager = manager
        await manager.start_kernel(
            env=scrubbed_environment(self.settings, self.area, self.hash_seed),
            cwd=self.workdir,
            extra_arguments=["--HistoryManager.enabled=False"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._client = manager.client()
        self._client.start_channels()
        try:
            await self._client.wait_for_ready(timeout=self.settings.startup_timeout_s)
        except RuntimeError as error:
            await self.shutdown()
            raise KernelStartError(f"kernel did not start: {error}") from error
        await self._install_sandbox()

    @property
    def area(self) -> PrivateArea:
        """Its HOME and TMPDIR, and where it may write without that counting as a side effect."""
        return private_area(self.workdir, self.settings.sandbox)

    async def _install_sandbox(self) -> None:
        limits = {
            "memory_mb": self.settings.memory_mb,
            "cpu_seconds": self.settings.cpu_seconds,
            "file_size_mb": self.settings.file_size_mb,
            "max_processes": self.settings.max_processes,
            "output_limit": self.settings.output_limit_bytes,
            "output_abort": self.settings.output_abort_bytes,
        }
        preload = self.settings.preload
        private = {"inside": self.area.inside, "bound": self.area.bound}
        code = (
            "import sys, types\n"
            "_resyn_sandbox = types.ModuleType('_resyn_sandbox')\n"
            f"exec(compile({_SANDBOX_SOURCE!r}, 'resyn_sandbox', 'exec'), vars(_resyn_sandbox))\n"
            "sys.modules['_resyn_sandbox'] = _resyn_sandbox\n"
            f"_resyn_sandbox.reply(_resyn_sandbox.install({json.dumps(limits)}, {json.dumps(preload)}, "
            f"{json.dumps(private)}))\n"
            "del sys, types\n"
        )
        result = await self.execute(code, timeout=self.settings.startup_timeout_s)
        if not result.ok or not (result.value or {}).get("installed"):
            await self.shutdown()
            raise KernelStartError(f"sandbox did not install: {result.error or result.stderr}")

    async def shutdown(self) -> None:
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._manager is not None:
            with contextlib.suppress(Exception):
                await self._manager.shutdown_kernel(now=True)
            self._manager = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    async def restart(self) -> None:
        """Replace the process: a fresh kernel, directory and sandbox (same hash seed)."""
        await self.shutdown()
        self.uses, self.dirty = 0, False
        await self.start()

    async def is_alive(self) -> bool:
        return self._manager is not None and await self._manager.is_alive()

    async def call(self, function: str, *args: Any, timeout: float | None = None) -> ExecutionResult:
        """Run a sandbox harness function with JSON arguments; its reply lands in `.value`.
        The transport of `harness.py`, which knows the functions and judges the results."""
        encoded = ", ".join(f"json.loads({json.dumps(arg)!r})" for arg in args)
        code = f"import json\n_resyn_sandbox.reply(_resyn_sandbox.{function}({encoded}))"
        return await self.execute(code, timeout=timeout)

    async def execute(self, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run code; wait at most `timeout` seconds (then interrupt, and restart if need be)."""
        timeout = timeout or self.settings.execution_timeout_s
        started = time.perf_counter()
        stdout = _Output(self.settings.output_limit_bytes)
        stderr = _Output(self.settings.output_limit_bytes)
        result = ExecutionResult(status="ok")
        message_id = self._client.execute(code, store_history=False, allow_stdin=False)
        deadline = started + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                result.status = "timeout"
                result.error = f"execution exceeded {timeout:g} s"
                await self._stop_execution(message_id)
                break
            if stdout.total + stderr.total > self.settings.output_abort_bytes:
                result.status = "limit"
                result.error = f"output exceeded {self.settings.output_abort_bytes} characters"
                await self._stop_execution(message_id)
                break
            try:
                message = await self._client.get_iopub_msg(timeout=min(remaining, _LIVENESS_POLL_S))
            except queue.Empty:
                if not await self.is_alive():
                    result.status = "crashed"
                    result.error = await self._cause_of_death()
                    await self.restart()
                    break
                continue
            if message["parent_header"].get("msg_id") != message_id:
                continue
            if self._absorb(message, result, stdout, stderr):
                break
        result.stdout, result.stderr = stdout.text(), stderr.text()
        result.truncated = result.truncated or stdout.truncated or stderr.truncated
        result.duration = time.perf_counter() - started
        self.uses += 1
        tracing.record("kernel", _traced_name(code), time.time() - result.duration, result.duration, {
            "code": code[:_TRACED_CODE_CHARS], "status": result.status, "error": result.error,
            "stdout": result.stdout[:_TRACED_OUTPUT_CHARS], "stderr": result.stderr[:_TRACED_OUTPUT_CHARS],
            "events": result.events, "truncated": result.truncated, "pid": self.pid,
        })  # fmt: skip
        return result

    def _absorb(self, message: dict, result: ExecutionResult, stdout: _Output, stderr: _Output) -> bool:
        """Fold one iopub message into the result; True when the execution is over."""
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            (stdout if content["name"] == "stdout" else stderr).add(content["text"])
        elif kind == "display_data":
            data = content["data"]
            if RESULT_MIME in data:
                result.value = data[RESULT_MIME]
            if EVENTS_MIME in data:
                result.events.extend(data[EVENTS_MIME])
            if TRUNCATED_MIME in data:
                result.truncated = True
        elif kind == "execute_result":
            result.display = content["data"].get("text/plain")
        elif kind == "error":
            result.status = "limit" if content["ename"] in _LIMIT_ERRORS else "error"
            result.error = f"{content['ename']}: {content['evalue']}"[:500]
            result.traceback = _ANSI.sub("", "\n".join(content["traceback"]))[-5000:]
        elif kind == "status" and content["execution_state"] == "idle":
            return True
        return False

    async def _cause_of_death(self) -> str:
        exit_status = await self._manager.provisioner.poll()
        if exit_status == SWALLOWED_TIMEOUT_EXIT:
            return "the code caught its time limit and kept running; the kernel was ended"
        killed_by = exit_signal(exit_status, self.settings.sandbox)
        if killed_by is not None:
            return f"the kernel was killed by {signal.Signals(killed_by).name}"
        return f"the kernel exited (status {exit_status})"

    async def _stop_execution(self, message_id: str) -> None:
        """Interrupt; if the kernel does not go idle within the grace period, restart it."""
        with contextlib.suppress(Exception):
            await self._manager.interrupt_kernel()
            deadline = time.perf_counter() + self.settings.interrupt_grace_s
            while time.perf_counter() < deadline:
                try:
                    message = await self._client.get_iopub_msg(timeout=0.1)
                except queue.Empty:
                    continue
                if (
                    message["parent_header"].get("msg_id") == message_id
                    and message["msg_type"] == "status"
                    and message["content"]["execution_state"] == "idle"
                ):
                    return
        await self.restart()


def _traced_name(code: str) -> str:
    """The harness function a `call` ran, else the code's first line."""
    if "_resyn_sandbox." in code:
        return code.split("_resyn_sandbox.")[-1].split("(")[0]
    return code.strip().splitlines()[0][:80] if code.strip() else "(empty)"


def check_sandbox(settings: KernelSettings) -> None:
    """Raise `SandboxMissing` (one line: why, and how to fix it) unless kernels can be confined."""
    try:
        require_sandbox(settings.sandbox)
    except SandboxUnavailable as error:
        raise SandboxMissing(str(error)) from None


def sandbox_kernel_pids(owner: int | None = None) -> list[int]:
    """PIDs of the running resyn sandbox kernels on this machine, or only of those the resyn process
    `owner` started (Linux /proc only)."""
    marker = f"{KERNEL_DIR_PREFIX}{owner}-" if owner is not None else KERNEL_DIR_PREFIX
    strays = []
    for entry in os.listdir("/proc") if sys.platform.startswith("linux") else []:
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as cmdline:
            if marker.encode() in cmdline.read():
                strays.append(int(entry))
    return strays


def remove_stale_workdirs() -> None:
    """Delete kernel directories left by resyn processes that were killed (`kill -9`)."""
    if not sys.platform.startswith("linux"):  # liveness is read from /proc
        return
    for workdir in Path(tempfile.gettempdir()).glob(f"{KERNEL_DIR_PREFIX}*-*"):
        owner = workdir.name.removeprefix(KERNEL_DIR_PREFIX).split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(workdir, ignore_errors=True)
