"""The expansion job's own durable record: what the library cannot tell about a job.

The library holds each environment of the job (its row is written when the synthesis starts, so
the ones in flight are its `running` rows), and each synthesis has its own checkpoint thread. What
is left is small: the scout's tokens, its fruitless calls in a row, the running time, and why the
job stopped. It lives in a LangGraph thread of its own (`job:NAME`) in the same checkpoint file,
written with `aupdate_state` whenever it changes: a one-node graph whose state is the record, its
reducers adding the scout's usage up.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from resyn.graph.synthesis_graph import add_usage


class JobState(TypedDict, total=False):
    scout_usage: Annotated[dict[str, int], add_usage]
    fruitless_scouts: int  # scout calls in a row that found nothing new
    active_seconds: float  # the job's running time, as of its last change
    stop_reason: str | None  # set when the job stopped: a finished job


def _keep(state: JobState) -> dict[str, Any]:
    return {}


def _build() -> CompiledStateGraph:
    graph = StateGraph(JobState)
    graph.add_node("record", _keep)
    graph.add_edge(START, "record")
    graph.add_edge("record", END)
    return graph.compile()


_RECORD_GRAPH = _build()


class JobRecord:
    """One job's record, read once and written through on every change (the job's only writer)."""

    def __init__(self, checkpointer: BaseCheckpointSaver, job: str) -> None:
        self._app = _RECORD_GRAPH.copy(update={"checkpointer": checkpointer})
        self._config: RunnableConfig = {"configurable": {"thread_id": f"job:{job}"}}
        self.values: JobState = {}

    async def load(self) -> JobState:
        self.values = (await self._app.aget_state(self._config)).values
        return self.values

    async def write(self, **changes: Any) -> None:
        await self._app.aupdate_state(self._config, changes, as_node="record")
        await self.load()

    @property
    def scout_tokens(self) -> int:
        usage = self.values.get("scout_usage", {})
        return usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
