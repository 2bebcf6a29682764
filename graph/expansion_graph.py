"""The expansion graph: rounds of syntheses over the topic frontier, until a budget says stop.

    plan ──Send×k──▶ synthesize ──▶ record ──▶ plan …      (k ≤ --concurrency environments)
      │ └─Send──▶ scout ──────────▶ record                  (when the frontier runs low)
      └─ target reached · budget spent · frontier empty ──▶ END

`plan` refreshes the topic tallies from the library, checks the budgets, and picks the frontier's
best topics (see `TopicGraph.frontier`); it also sends the scout when fewer than `concurrency`
topics are left to try. Each `synthesize` task runs the synthesis graph for one topic under its
own checkpoint thread (its environment id, derived from the job, round and slot), so the tasks of a
round overlap: LLM calls, validations and probes of different environments run at once, bounded
by the endpoint's limiter and the kernel pool.

Every node is a plain async function of the state and LangGraph's `Runtime`, whose context is the
`ExpansionJob`: the synthesis runtime, the job's options, its topic graph and event log. The graph
is compiled once, here; `graph/expansion.py` runs and resumes it.
"""

from __future__ import annotations

import asyncio
import contextvars
import operator
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypedDict, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from resyn.agents import scout
from resyn.agents.resilience import describe
from resyn.contract import Status
from resyn.graph.faults import result_or_fault
from resyn.graph.jobs import JobOptions, environment_id, event_log, job_log_path
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.synthesis import synthesize
from resyn.graph.synthesis_graph import add_usage
from resyn.memory.records import JobCounts
from resyn.memory.topics import TopicGraph
from resyn.memory.workspace import Workspace
from resyn.tracing import TraceEvent

T = TypeVar("T")
Events = Callable[[str, dict[str, Any]], None]
_FRUITLESS_SCOUTS = 2  # scout calls in a row that found nothing new before the frontier counts as empty
_SCOUT_CONTEXT = 6  # frontier topics shown to the scout


def collect_round(finished: list[dict[str, Any]], more: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The round's finished environments; `record` writes None to start the next round empty."""
    return [] if more is None else finished + more


class ExpansionState(TypedDict, total=False):
    round: int
    batch: list[dict[str, str]]  # this round's {"topic", "environment_id"}
    finished: Annotated[list[dict[str, Any]], collect_round]
    scout_usage: Annotated[dict[str, int], add_usage]
    scout_calls: Annotated[int, operator.add]
    scouting: bool  # this round also asks the scout for topics
    fruitless_scouts: int
    active_seconds: float
    round_started: float
    stop_reason: str


class ExpansionJob:
    """What one job's nodes share: the synthesis runtime, the options, topic graph and event log."""

    def __init__(
        self, runtime: SynthesisRuntime, options: JobOptions, on_event: Events | None = None
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.settings = runtime.settings.expansion
        self.topics_path = Workspace.of(runtime.settings).topics
        self.topics = TopicGraph.load(self.topics_path)
        self.log = event_log(job_log_path(runtime.settings.data_dir, options.name))
        self.on_event = on_event
        self.process_started = time.time()

    def emit(self, kind: str, line: str, **data: Any) -> None:
        """One event: a line in the job's log file and its trace, and a callback for the live display."""
        self.log.info("%-8s %s", kind, line)
        if self.runtime.traces is not None:
            traced = {"line": line, **{key: value for key, value in data.items() if key != "counts"}}
            self.runtime.traces.add(TraceEvent("job", kind, time.time(), 0.0, traced, job=self.options.name))
        if self.on_event is not None:
            self.on_event(kind, {"line": line, **data})

    async def add_topics(self, names: list[str], origin: str, parents: list[str] | None = None) -> list[str]:
        """Embed and add topics, dropping any too close to a known one; returns those added."""
        if not names:
            return []
        vectors = await asyncio.to_thread(self.runtime.embedder.embed, names)
        added = []
        for name, vector in zip(names, vectors, strict=True):
            found = self.topics.nearest(vector)
            if found and found[0][1] >= self.settings.topic_duplicate_threshold:
                [(nearest, similarity)] = found
                self.emit("dropped", f"{name!r} is a near-duplicate of {nearest!r} ({similarity:.2f})")
                continue
            closest = self.topics.nearest(vector, among=parents) if parents else []
            parent = closest[0][0] if closest else None
            if self.topics.add_topic(
                name,
                vector,
                origin=origin,
                parent=parent,
                similar_threshold=self.settings.similar_topic_threshold,
            ):
                added.append(name)
        self.topics.save(self.topics_path)
        return added

    def on_endpoint(self, event: str, line: str) -> None:
        """An endpoint's outage began ("down": the job pauses) or ended ("up": it carries on)."""
        self.emit("paused" if event == "down" else "resumed", line)

    def counts(self) -> JobCounts:
        return self.runtime.library.job_counts(self.options.name)

    @staticmethod
    def tokens_used(state: ExpansionState, counts: JobCounts) -> int:
        """The job's environments' tokens (from the library) plus the scout's (from the state)."""
        scouting = state.get("scout_usage", {})
        return counts.tokens + scouting.get("input_tokens", 0) + scouting.get("output_tokens", 0)

    def stop_reason(self, state: ExpansionState, counts: JobCounts) -> str | None:
        options = self.options
        if counts.accepted >= options.target:
            return f"target reached: {counts.accepted} accepted"
        if options.max_environments is not None and counts.tried >= options.max_environments:
            return f"environment budget spent: {counts.tried} tried"
        tokens = self.tokens_used(state, counts)
        if options.max_tokens is not None and tokens >= options.max_tokens:
            return f"token budget spent: {tokens:,} tokens ≥ {options.max_tokens:,}"
        hours = state.get("active_seconds", 0.0) / 3600
        if options.max_hours is not None and hours >= options.max_hours:
            return f"time budget spent: {hours:.2f} h ≥ {options.max_hours} h"
        return None


async def plan(state: ExpansionState, runtime: Runtime[ExpansionJob]) -> dict[str, Any]:
    job = runtime.context
    options = job.options
    job.topics.set_counts(job.runtime.library.topic_tallies())
    counts = job.counts()
    stop = job.stop_reason(state, counts)
    if stop:
        return {"stop_reason": stop, "batch": []}
    wanted = min(options.concurrency, options.target - counts.accepted)
    if options.max_environments is not None:
        wanted = min(wanted, options.max_environments - counts.tried)
    picks = job.topics.frontier(wanted, job.settings.frontier, job.runtime.novelty.similarity_to_accepted)
    number = state.get("round", 0) + 1
    batch = [
        {"topic": topic, "environment_id": environment_id(options.name, number, slot)}
        for slot, topic in enumerate(picks)
    ]
    may_scout = state.get("fruitless_scouts", 0) < _FRUITLESS_SCOUTS
    if len(picks) < wanted and may_scout:
        batch = []  # scout first: a round at full width beats a thin one now
    elif not batch:
        return {"stop_reason": "the frontier is empty: every topic is retired", "batch": []}
    # scout alongside this round when the next one could not be filled with untried topics
    untried = job.topics.untried_count(exclude=picks)
    scouting = may_scout and untried < options.concurrency
    return {"round": number, "batch": batch, "round_started": time.time(), "scouting": scouting}


def fan_out(state: ExpansionState) -> list[Send] | str:
    if state.get("stop_reason"):
        return END
    sends = [Send("synthesize", item) for item in state["batch"]]
    if state.get("scouting"):
        sends.append(Send("scout", {"fruitless_scouts": state.get("fruitless_scouts", 0)}))
    return sends


async def synthesize_topic(task: dict[str, str], runtime: Runtime[ExpansionJob]) -> dict[str, Any]:
    job = runtime.context
    topic, identifier = task["topic"], task["environment_id"]
    job.emit("start", f"{identifier} {topic}", environment_id=identifier, topic=topic)

    def on_update(node: str, _update: dict[str, Any]) -> None:
        if job.on_event is not None:
            job.on_event("stage", {"environment_id": identifier, "topic": topic, "node": node})

    name = job.options.name
    record = await result_or_fault(
        lambda: isolated(
            synthesize(job.runtime, topic, environment_id=identifier, job=name, on_update=on_update)
        )
    )
    if isinstance(record, Exception):  # a bug on one environment must not end a job of hours
        status, reason = Status.ERROR, f"{type(record).__name__}: {record}"[:300]
        library = job.runtime.library
        library.start(identifier, topic, "?", None, job=name)
        library.finish(
            identifier, status=status, reason=reason, source=None, report=None, pass_rates=None, usage={}
        )
    else:
        status, reason = Status(record.status), record.reason
    job.emit(status, f"{identifier} {topic}: {reason}", environment_id=identifier, topic=topic, status=status)
    # a plain string in the state: the checkpoint would store a Status member as a typed extension
    return {"finished": [{"environment_id": identifier, "topic": topic, "status": status.value}]}


async def scout_topics(task: dict[str, Any], runtime: Runtime[ExpansionJob]) -> dict[str, Any]:
    job = runtime.context
    around = (
        job.topics.frontier(
            _SCOUT_CONTEXT, job.settings.frontier, job.runtime.novelty.similarity_to_accepted, exclude=()
        )
        or job.topics.names()[-_SCOUT_CONTEXT:]
    )
    known = set(job.topics.names())
    scouted = await result_or_fault(
        lambda: scout.brainstorm(job.runtime.endpoint("scout"), around, job.settings.scout_batch, known)
    )
    if isinstance(scouted, Exception):  # the frontier goes on without new topics this round
        job.emit("scout", f"the scout could not be reached: {describe(scouted)}")
        return {"scout_calls": 1, "fruitless_scouts": task["fruitless_scouts"] + 1}
    added = await job.add_topics(scouted.topics, "scouted", parents=around)
    job.emit("scout", f"+{len(added)} topics: {', '.join(added) or '(none new)'}", added=added)
    return {
        "scout_usage": scouted.reply.usage(),
        "scout_calls": 1,
        "fruitless_scouts": 0 if added else task["fruitless_scouts"] + 1,
    }


async def record(state: ExpansionState, runtime: Runtime[ExpansionJob]) -> dict[str, Any]:
    job = runtime.context
    now = time.time()
    started = max(state.get("round_started", now), job.process_started)
    counts = job.counts()
    tokens = job.tokens_used(state, counts)
    job.emit(
        "round",
        f"#{state.get('round', 0)} done: {counts.accepted}/{job.options.target} accepted, {tokens:,} tokens",
        counts=counts,
        tokens=tokens,  # the scout's included
    )
    return {"finished": None, "active_seconds": state.get("active_seconds", 0.0) + (now - started)}


async def isolated(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a nested graph in a fresh context: it must not inherit this node's LangGraph config
    (its checkpoint namespace would turn it into a subgraph of the job's thread)."""
    task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
    return await task  # cancelling the caller cancels the task too


def _build() -> CompiledStateGraph:
    graph = StateGraph(ExpansionState, context_schema=ExpansionJob)
    graph.add_node("plan", plan)
    graph.add_node("synthesize", synthesize_topic)
    graph.add_node("scout", scout_topics)
    graph.add_node("record", record)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["synthesize", "scout", END])
    graph.add_edge("synthesize", "record")
    graph.add_edge("scout", "record")
    graph.add_edge("record", "plan")
    return graph.compile()  # without a checkpointer: the job binds the runtime's (graph/expansion.py)


EXPANSION_GRAPH = _build()
