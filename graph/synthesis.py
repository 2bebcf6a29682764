"""One synthesis, run or resumed: a topic through the synthesis graph (`graph/synthesis_graph.py`,
diagram there) to a verdict in the library.

Transient LLM faults are retried, and outages waited out, inside each call
(`agents/resilience.py`). An outage longer than `llm.max_outage_s` raises `EndpointDown` through
the graph: the synthesis stops unjudged, to be resumed. A SQLite checkpointer saves every step
(durability "sync"), so an interrupted synthesis resumes where it stopped: the finished LLM calls,
including each finished solver probe, are not made again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from resyn import tracing
from resyn.graph.runtime import SynthesisRuntime, open_checkpointer
from resyn.graph.steps import step_outcome
from resyn.graph.synthesis_graph import SYNTHESIS_GRAPH
from resyn.graph.verdict import missing_answers_allowed
from resyn.memory.records import EnvironmentRecord
from resyn.tools.validator import parent_secrets

__all__ = ["NothingToResume", "missing_answers_allowed", "step_outcome", "synthesize"]

Updates = Callable[[str, dict[str, Any]], None]
FROM_FILE = "none (a given file)"  # the author model of an environment no author wrote


class NothingToResume(LookupError):
    """`--resume ID` named a synthesis with no saved progress."""


async def synthesize(
    runtime: SynthesisRuntime,
    topic: str | None,
    *,
    environment_id: str | None = None,
    probe: bool = True,
    max_repairs: int | None = None,
    on_update: Updates | None = None,
    job: str | None = None,
    source: str | None = None,
) -> EnvironmentRecord:
    """Run one synthesis to its verdict, or resume the one with `environment_id` where it stopped.

    With `source`, the environment is that file's code instead of an author's draft (one you
    wrote, or a third-party task wrapped as a contract file): no author is asked, it is not
    repaired, and its verdict is the same validation, novelty check and solver probe's.
    `on_update(node, update)` is called after every step (the CLI's live progress).
    """
    environment_id = environment_id or uuid.uuid4().hex[:12]
    async with _checkpointer(runtime) as saver, _recording(runtime, environment_id, job):
        app = SYNTHESIS_GRAPH.copy(update={"checkpointer": saver})  # compiled once, saving here
        config: RunnableConfig = {"configurable": {"thread_id": environment_id}}
        saved = await app.aget_state(config)
        # finished: no step left to run. A step whose tasks all wrote their answers before the
        # stop also has no `next`, but it still has its tasks: resuming applies their writes.
        if saved.values and not saved.next and not saved.tasks:
            return runtime.library.get(environment_id)
        if saved.values:
            start: dict[str, Any] | None = None  # resume from the last saved step
        elif topic is None:
            raise NothingToResume(f"no synthesis {environment_id!r} to resume")
        else:
            runtime.library.start(
                environment_id,
                topic,
                runtime.model_name("author") if source is None else FROM_FILE,
                runtime.model_name("solver") if probe else None,
                job=job,
            )
            start = {
                "environment_id": environment_id,
                "topic": topic,
                "probe": probe,
                "max_repairs": runtime.settings.synthesis.max_repairs if max_repairs is None else max_repairs,
                "attempts": 0,
            }
            if source is not None:
                runtime.library.record_attempt(environment_id, 1, "file", source, None, None)
                start |= {"source": source, "from_file": True, "attempts": 1, "max_repairs": 0}
        # closed on any exit, so the answers already in flight are written before the saver closes
        updates = app.astream(start, config, context=runtime, stream_mode="updates", durability="sync")
        async with contextlib.aclosing(updates):
            async for chunk in updates:
                for node, update in chunk.items():
                    if on_update is not None:
                        on_update(node, update or {})
    return runtime.library.get(environment_id)


@contextlib.asynccontextmanager
async def _recording(runtime: SynthesisRuntime, environment_id: str, job: str | None) -> AsyncIterator[None]:
    """Trace this environment's steps, LLM calls and kernel runs into the runtime's trace store."""
    if runtime.traces is None:
        yield
        return
    recorder = tracing.Recorder(runtime.traces.add, environment_id, job, parent_secrets())
    with tracing.recording(recorder):
        yield


@contextlib.asynccontextmanager
async def _checkpointer(runtime: SynthesisRuntime) -> AsyncIterator[BaseCheckpointSaver]:
    """The runtime's shared checkpointer, or one of its own for a runtime built without one."""
    if runtime.checkpointer is not None:
        yield runtime.checkpointer
        return
    async with open_checkpointer(runtime.settings) as saver:
        yield saver
