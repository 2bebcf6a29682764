"""Trace recording, decoupled from storage: the code that acts reports, whoever listens stores.

The graph sets a `Recorder` for the environment it runs (a context variable, so each asyncio
task — each graph node, each parallel probe — sees the right one). Agents report their LLM calls,
kernels their executions, the graph its steps, through `record(...)`; with no recorder set (the
validate CLI, the MCP tools) nothing is recorded. The recorder scrubs secret values before
anything is written.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

Sink = Callable[["TraceEvent"], None]


@dataclass
class TraceEvent:
    kind: str  # "step" | "llm_call" | "kernel" | "job"
    name: str  # the node, the role, the kernel function, the job event
    started: float  # unix time
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)
    environment_id: str | None = None
    job: str | None = None
    step: str | None = None  # the graph step this happened in
    span: str | None = None  # which run of that step (parallel probes are runs of one step)


@dataclass
class Recorder:
    sink: Sink
    environment_id: str | None = None
    job: str | None = None
    secrets: list[str] = field(default_factory=list)

    def record(self, kind: str, name: str, started: float, seconds: float, data: dict[str, Any]) -> None:
        step, span = current_step.get() or (None, None)
        event = TraceEvent(
            kind, name, started, round(seconds, 4), scrub(data, self.secrets), self.environment_id, self.job,
            step, span,
        )  # fmt: skip
        self.sink(event)


current_recorder: ContextVar[Recorder | None] = ContextVar("resyn_trace_recorder", default=None)
current_step: ContextVar[tuple[str, str] | None] = ContextVar("resyn_trace_step", default=None)


def record(kind: str, name: str, started: float, seconds: float, data: dict[str, Any]) -> None:
    """Report one event to the recorder of this context, if there is one."""
    recorder = current_recorder.get()
    if recorder is not None:
        recorder.record(kind, name, started, seconds, data)


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    token = current_recorder.set(recorder)
    try:
        yield
    finally:
        current_recorder.reset(token)


@contextlib.contextmanager
def in_step(name: str) -> Iterator[None]:
    """Attribute what happens inside to one run of the step `name` (a span of its own)."""
    token = current_step.set((name, uuid.uuid4().hex[:10]))
    try:
        yield
    finally:
        current_step.reset(token)


def now() -> float:
    return time.time()


def scrub(value: Any, secrets: list[str]) -> Any:
    """`value` with every secret string replaced, however deep it sits."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[secret removed]")
        return value
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value
