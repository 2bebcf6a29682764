"""One trace step per run of a synthesis node: when, how long, and what it decided."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.runtime import Runtime

from resyn import tracing

Node = Callable[[Any, Runtime[Any]], Awaitable[dict[str, Any]]]
_BULKY = ("source", "novelty_vector", "probe_instances", "report")


def traced(name: str, node: Node) -> Node:
    """The node, recording one trace step around each run (the error, when it raises)."""

    @functools.wraps(node)  # LangGraph reads the node's signature through the wrapper
    async def run(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        with tracing.in_step(name):
            started, clock = tracing.now(), time.perf_counter()
            try:
                update = await node(state, runtime)
            except Exception as error:
                outcome = {"error": f"{type(error).__name__}: {error}"[:500]}
                tracing.record("step", name, started, time.perf_counter() - clock, outcome)
                raise
            tracing.record("step", name, started, time.perf_counter() - clock, step_outcome(update))
            return update

    return run


def step_outcome(update: dict[str, Any]) -> dict[str, Any]:
    """What a trace keeps of a step's update: the decision, not the bulk (sources live in attempts)."""
    outcome = {key: value for key, value in update.items() if key not in _BULKY}
    report = update.get("report")
    if report is not None:
        outcome["report"] = {
            "valid": report.valid,
            "seconds": report.seconds,
            "failed": [{"name": check.name, "detail": check.detail} for check in report.failures()],
        }
    if update.get("probe_instances"):
        outcome["instances"] = [
            {key: instance[key] for key in ("seed", "difficulty", "question", "witness")}
            for instance in update["probe_instances"]
        ]
    return outcome
