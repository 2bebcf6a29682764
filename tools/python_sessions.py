"""Where `run_python` runs code: a clean pool kernel per call, or a named session's own kernel.

A call without a session id leases a kernel from the pool; the pool resets it afterwards (fresh
namespace, no leftover modules) or replaces it when it cannot be trusted, so calls never see each
other's state. A call with a session id runs in that session's own kernel, started on first use, so
variables and imports persist from call to call. Both kinds are the same sandboxed `Kernel`: the
validator's limits, audit hook and scrubbed environment.

Sessions are bounded so that a chatty agent cannot exhaust the machine:
- at most `max_sessions` at once: a new one closes the least recently used idle session (refusing
  would leave an agent stuck until a timeout; the closed session's next call says what happened);
- a session unused for `session_idle_s` is closed by a reaper task;
- each session's kernel keeps the kernel's CPU budget for its whole life (`cpu_seconds`), and a
  crash or a hang that ignores the interrupt restarts it: the next result's `note` says the state is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from resyn.settings import KernelSettings, ToolSettings
from resyn.tools import harness
from resyn.tools.kernel import ExecutionResult, Kernel
from resyn.tools.kernel_pool import KernelPool

_TRACEBACK_CHARS = 3000
_REMEMBERED_CLOSED = 64  # closed session ids kept, to tell a returning caller why its state is gone


class PythonResult(BaseModel):
    """What one `run_python` call returns."""

    status: Literal["ok", "error", "timeout", "crashed", "limit"] = Field(
        description="ok; error (an exception, see `error`); timeout; crashed (the kernel died); "
        "limit (memory or output limit)"
    )
    stdout: str = ""
    stderr: str = ""
    result: str | None = Field(None, description="repr of the value of the last expression, if any")
    error: str | None = Field(None, description="one line: the exception or the limit that stopped the code")
    traceback: str | None = None
    truncated: bool = Field(False, description="output or result was longer than the limit and was cut")
    seconds: float = 0.0
    session_id: str | None = None
    note: str | None = Field(None, description="news about the session, e.g. that its earlier state is gone")


class SessionsBusy(Exception):
    """Every session slot is running code right now, so none can make room for a new session."""


@dataclass
class _Session:
    kernel: Kernel
    last_used: float
    users: int = 0  # calls holding this session; a session in use is never closed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one execution at a time per kernel


class PythonSessions:
    """`await sessions.run(code, session_id, timeout_s)`; `await sessions.close()` ends every session."""

    def __init__(self, pool: KernelPool, kernel_settings: KernelSettings, settings: ToolSettings) -> None:
        self.pool = pool
        self.kernel_settings = kernel_settings
        self.settings = settings
        self._sessions: dict[str, _Session] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()  # id -> why it was closed
        self._table = asyncio.Lock()
        self._reaper: asyncio.Task | None = None

    def open_sessions(self) -> list[str]:
        return list(self._sessions)

    async def run(self, code: str, session_id: str | None, timeout_s: float) -> PythonResult:
        if session_id is None:
            async with self.pool.lease() as kernel:
                executed = await harness.run_code(kernel, code, timeout_s)
            return _result(executed, None, None, self.kernel_settings)
        session, note = await self._acquire(session_id)
        try:
            async with session.lock:
                pid = session.kernel.pid
                executed = await harness.run_code(session.kernel, code, timeout_s)
                if session.kernel.pid != pid:
                    note = (
                        f"the session's kernel was restarted ({executed.status}): "
                        "its earlier variables and imports are gone"
                    )
        except asyncio.CancelledError:
            # the code may still be running in the kernel: the session cannot be trusted to be idle
            await self._close(session_id, "its call was cancelled")
            raise
        finally:
            session.users -= 1
            session.last_used = time.monotonic()
        return _result(executed, session_id, note, self.kernel_settings)

    async def _acquire(self, session_id: str) -> tuple[_Session, str | None]:
        """The session's entry, marked in use; started (after making room) when it does not exist."""
        async with self._table:
            session = self._sessions.get(session_id)
            note = None
            if session is None:
                if len(self._sessions) >= self.settings.max_sessions:
                    await self._make_room()
                why = self._closed.pop(session_id, None)
                if why:
                    note = f"session {session_id!r} was closed ({why}); it starts again with nothing defined"
                kernel = Kernel(self.kernel_settings)
                await kernel.start()
                session = self._sessions[session_id] = _Session(kernel, time.monotonic())
                self._start_reaper()
            session.users += 1
            return session, note

    async def _make_room(self) -> None:
        idle = [(session.last_used, name) for name, session in self._sessions.items() if not session.users]
        if not idle:
            raise SessionsBusy(
                f"all {self.settings.max_sessions} python sessions are running code; "
                "try again when one finishes, or call without session_id"
            )
        _, oldest = min(idle)
        limit = self.settings.max_sessions
        await self._close(oldest, f"closed to make room: at most {limit} sessions are kept")

    async def _close(self, session_id: str, why: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        self._closed[session_id] = why
        while len(self._closed) > _REMEMBERED_CLOSED:
            self._closed.popitem(last=False)
        await session.kernel.shutdown()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        idle_s = self.settings.session_idle_s
        interval = min(max(idle_s / 4, 0.25), 30.0)
        while self._sessions:
            await asyncio.sleep(interval)
            async with self._table:
                now = time.monotonic()
                expired = [
                    name
                    for name, session in self._sessions.items()
                    if not session.users and now - session.last_used >= idle_s
                ]
                for name in expired:
                    await self._close(name, f"idle for more than {idle_s:g} s")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.kernel.shutdown() for session in sessions), return_exceptions=True)


def _result(
    executed: ExecutionResult, session_id: str | None, note: str | None, limits: KernelSettings
) -> PythonResult:
    shown, truncated, error = executed.display, executed.truncated, executed.error
    if shown is not None and len(shown) > limits.output_limit_bytes:
        shown, truncated = shown[: limits.output_limit_bytes], True
    if error and error.startswith("MemoryError") and executed.status == "limit":
        error = f"MemoryError: the code went over the kernel's memory limit ({limits.memory_mb} MB)"
    return PythonResult(
        status=executed.status,
        stdout=executed.stdout,
        stderr=executed.stderr,
        result=shown,
        error=error,
        traceback=executed.traceback[-_TRACEBACK_CHARS:] if executed.traceback else None,
        truncated=truncated,
        seconds=round(executed.duration, 3),
        session_id=session_id,
        note=note,
    )
