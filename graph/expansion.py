"""The expansion job: many topics to a library of accepted environments, unattended and resumable.

    plan ──Send×k──▶ synthesize ──▶ record ──▶ plan …      (k ≤ --concurrency environments)
      │ └─Send──▶ scout ──────────▶ record                  (when the frontier runs low)
      └─ target reached · budget spent · frontier empty ──▶ END

`plan` refreshes the topic tallies from the library, checks the budgets, and picks the frontier's
best topics (see `TopicGraph.frontier`); it also sends the scout when fewer than `concurrency`
topics are left to try. Each `synthesize` task runs the synthesis graph for one topic under its
own checkpoint thread (its environment id, derived from the job, round and slot), so the tasks of a
round overlap: LLM calls, validations and probes of different environments run at once, bounded
by the endpoint's limiter and the kernel pool.

Durability: the job's own state is small (the round, its batch, budgets used) and is checkpointed
after every step in the same SQLite file as the syntheses. After `kill -9`, resuming re-runs the
round that was in flight: each synthesis finds its own checkpoint (or its finished library row)
and continues, so no finished LLM call is repeated and no environment is accepted twice. Counts
and token totals are always read back from the library, never accumulated, so a replayed step
cannot count anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import hashlib
import logging
import operator
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field

from resyn.agents import scout
from resyn.agents.resilience import EndpointDown, describe
from resyn.graph.runtime import SynthesisRuntime, checkpoint_path
from resyn.graph.synthesis import add_usage, synthesize
from resyn.memory.library import STATUSES
from resyn.memory.topics import TopicGraph
from resyn.memory.workspace import WorkspaceDamaged
from resyn.tracing import TraceEvent

T = TypeVar("T")
Events = Callable[[str, dict[str, Any]], None]
_FRUITLESS_SCOUTS = 2  # scout calls in a row that found nothing new before the frontier counts as empty
_SCOUT_CONTEXT = 6  # frontier topics shown to the scout


class JobOptions(BaseModel):
    """What `resyn expand` was asked; saved with the job so `--resume` needs only its name."""

    name: str
    seed_topics: list[str]
    target: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_hours: float | None = Field(None, gt=0)
    max_environments: int | None = Field(None, ge=1)


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


def environment_id(job: str, round_number: int, slot: int) -> str:
    """Deterministic, so a replayed round resumes the same syntheses instead of starting new ones."""
    return hashlib.sha256(f"{job}/{round_number}/{slot}".encode()).hexdigest()[:12]


async def isolated(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a nested graph in a fresh context: it must not inherit this node's LangGraph config
    (its checkpoint namespace would turn it into a subgraph of the job's thread)."""
    task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
    return await task  # cancelling the caller cancels the task too


class Expansion:
    """One job's graph and the things its nodes share: runtime, topic graph, event log."""

    def __init__(
        self, runtime: SynthesisRuntime, options: JobOptions, on_event: Events | None = None
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.settings = runtime.settings.expansion
        self.topics_path = runtime.settings.data_dir / "topics.json"
        self.topics = TopicGraph.load(self.topics_path)
        self.log = _event_log(job_log_path(runtime.settings.data_dir, options.name))
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
        vectors = await asyncio.to_thread(self.runtime.novelty.embedder.embed, names)
        added = []
        for name, vector in zip(names, vectors, strict=True):
            [(nearest, similarity)] = self.topics.most_similar(vector.reshape(1, -1))
            if nearest is not None and similarity >= self.settings.topic_duplicate_threshold:
                self.emit("dropped", f"{name!r} is a near-duplicate of {nearest!r} ({similarity:.2f})")
                continue
            parent = _closest(self.topics, vector, parents) if parents else None
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

    def counts(self) -> dict[str, int]:
        return self.runtime.library.job_counts(self.options.name)

    @staticmethod
    def tokens_used(state: ExpansionState, counts: dict[str, int]) -> int:
        """The job's environments' tokens (from the library) plus the scout's (from the state)."""
        scouting = state.get("scout_usage", {})
        return (
            counts["input_tokens"]
            + counts["output_tokens"]
            + scouting.get("input_tokens", 0)
            + scouting.get("output_tokens", 0)
        )

    def stop_reason(self, state: ExpansionState, counts: dict[str, int]) -> str | None:
        options = self.options
        tried = _tried(counts)
        if counts["accepted"] >= options.target:
            return f"target reached: {counts['accepted']} accepted"
        if options.max_environments is not None and tried >= options.max_environments:
            return f"environment budget spent: {tried} tried"
        tokens = self.tokens_used(state, counts)
        if options.max_tokens is not None and tokens >= options.max_tokens:
            return f"token budget spent: {tokens:,} tokens ≥ {options.max_tokens:,}"
        hours = state.get("active_seconds", 0.0) / 3600
        if options.max_hours is not None and hours >= options.max_hours:
            return f"time budget spent: {hours:.2f} h ≥ {options.max_hours} h"
        return None

    def build(self) -> StateGraph:
        options, rule = self.options, self.settings.frontier
        library = self.runtime.library

        async def plan(state: ExpansionState) -> dict[str, Any]:
            self.topics.set_counts(library.topic_tallies())
            counts = self.counts()
            stop = self.stop_reason(state, counts)
            if stop:
                return {"stop_reason": stop, "batch": []}
            wanted = min(options.concurrency, options.target - counts["accepted"])
            if options.max_environments is not None:
                wanted = min(wanted, options.max_environments - _tried(counts))
            picks = self.topics.frontier(wanted, rule, self.runtime.novelty.similarity_to_accepted)
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
            untried = self.topics.untried_count(exclude=picks)
            scouting = may_scout and untried < options.concurrency
            return {"round": number, "batch": batch, "round_started": time.time(), "scouting": scouting}

        def fan_out(state: ExpansionState) -> list[Send] | str:
            if state.get("stop_reason"):
                return END
            sends = [Send("synthesize", item) for item in state["batch"]]
            if state.get("scouting"):
                sends.append(Send("scout", {"fruitless_scouts": state.get("fruitless_scouts", 0)}))
            return sends

        async def synthesize_topic(task: dict[str, str]) -> dict[str, Any]:
            topic, identifier = task["topic"], task["environment_id"]
            self.emit("start", f"{identifier} {topic}", environment_id=identifier, topic=topic)

            def on_update(node: str, _update: dict[str, Any]) -> None:
                if self.on_event is not None:
                    self.on_event("stage", {"environment_id": identifier, "topic": topic, "node": node})

            try:
                record = await isolated(
                    synthesize(
                        self.runtime, topic, environment_id=identifier, job=options.name, on_update=on_update
                    )
                )
                status, reason = record.status, record.reason
            except (EndpointDown, WorkspaceDamaged):
                raise  # an outage past its limit, or a damaged or full workspace, stops the job
            except Exception as error:  # a bug on one environment must not end a job of hours
                status, reason = "error", f"{type(error).__name__}: {error}"[:300]
                library.start(identifier, topic, "?", None, job=options.name)
                library.finish(
                    identifier,
                    status=status,
                    reason=reason,
                    source=None,
                    report=None,
                    pass_rates=None,
                    usage={},
                )
            self.emit(
                status,
                f"{identifier} {topic}: {reason}",
                environment_id=identifier,
                topic=topic,
                status=status,
            )
            return {"finished": [{"environment_id": identifier, "topic": topic, "status": status}]}

        async def scout_topics(task: dict[str, Any]) -> dict[str, Any]:
            around = (
                self.topics.frontier(
                    _SCOUT_CONTEXT, rule, self.runtime.novelty.similarity_to_accepted, exclude=()
                )
                or self.topics.names()[-_SCOUT_CONTEXT:]
            )
            known = set(self.topics.names())
            try:
                scouted = await scout.brainstorm(
                    self.runtime.endpoint("scout"), around, self.settings.scout_batch, known
                )
            except EndpointDown:
                raise
            except Exception as error:  # the frontier goes on without new topics this round
                self.emit("scout", f"the scout could not be reached: {describe(error)}")
                return {"scout_calls": 1, "fruitless_scouts": task["fruitless_scouts"] + 1}
            added = await self.add_topics(scouted.topics, "scouted", parents=around)
            self.emit("scout", f"+{len(added)} topics: {', '.join(added) or '(none new)'}", added=added)
            return {
                "scout_usage": scouted.reply.usage(),
                "scout_calls": 1,
                "fruitless_scouts": 0 if added else task["fruitless_scouts"] + 1,
            }

        async def record(state: ExpansionState) -> dict[str, Any]:
            now = time.time()
            started = max(state.get("round_started", now), self.process_started)
            counts = self.counts()
            tokens = self.tokens_used(state, counts)
            self.emit(
                "round",
                f"#{state.get('round', 0)} done: {counts['accepted']}/{options.target} accepted, "
                f"{tokens:,} tokens",
                counts=counts,
                tokens=tokens,  # the scout's included
            )
            return {"finished": None, "active_seconds": state.get("active_seconds", 0.0) + (now - started)}

        graph = StateGraph(ExpansionState)
        graph.add_node("plan", plan)
        graph.add_node("synthesize", synthesize_topic)
        graph.add_node("scout", scout_topics)
        graph.add_node("record", record)
        graph.add_edge(START, "plan")
        graph.add_conditional_edges("plan", fan_out, ["synthesize", "scout", END])
        graph.add_edge("synthesize", "record")
        graph.add_edge("scout", "record")
        graph.add_edge("record", "plan")
        return graph


def _tried(counts: dict[str, int]) -> int:
    return sum(counts[status] for status in STATUSES)


def _closest(topics: TopicGraph, vector: Any, candidates: list[str]) -> str | None:
    known = [name for name in candidates if name in topics]
    if not known:
        return None
    rows = [topics.names().index(name) for name in known]
    similarities = topics.vectors[rows] @ vector
    return known[int(similarities.argmax())]


def job_log_path(data_dir: Path, job: str) -> Path:
    return data_dir / "jobs" / f"{job}.log"


def _event_log(path: Path) -> logging.Logger:
    """A logger that appends one line per event to the job's log file (and nowhere else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"resyn.job.{path.stem}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not any(getattr(handler, "baseFilename", None) == str(path.resolve()) for handler in logger.handlers):
        handler = _StrictFileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
    return logger


class _StrictFileHandler(logging.FileHandler):
    """A log write that fails (a full disk) raises, to end the job in one line, instead of
    logging's own traceback on stderr and a job that goes on without its log."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise


class WorkspaceBusy(RuntimeError):
    """Another expansion job runs in this workspace (they would both write its topic graph)."""


@contextlib.contextmanager
def workspace_lock(data_dir: Path) -> Iterator[None]:
    """Held while a job runs; the OS releases it when the process dies, even by kill -9."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "expand.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkspaceBusy(
                f"another resyn expand is running in {data_dir}; wait for it or stop it"
            ) from None
        yield


class JobFailed(RuntimeError):
    """resyn's own machinery failed (a bug, a full disk): the job is marked failed, resumable."""


class JobExists(ValueError):
    """A new job was given the name of an existing one."""


class UnknownJob(LookupError):
    """`--resume` named no job of this workspace."""


async def expand(
    runtime: SynthesisRuntime,
    options: JobOptions | None,
    *,
    resume: str | None = None,
    changes: dict[str, Any] | None = None,
    on_event: Events | None = None,
) -> tuple[JobOptions, str]:
    """Run a new job (`options`) or resume one by name; returns its options and why it stopped.

    `changes` (with `resume`) replaces budgets of the saved job — a higher target, more hours — and
    a finished job that the new budgets leave room for carries on from where it stopped."""
    with workspace_lock(runtime.settings.data_dir):
        return await _expand(runtime, options, resume, changes or {}, on_event)


async def _expand(
    runtime: SynthesisRuntime,
    options: JobOptions | None,
    resume: str | None,
    changes: dict[str, Any],
    on_event: Events | None,
) -> tuple[JobOptions, str]:
    library = runtime.library
    if resume is not None:
        saved = library.job(resume)
        if saved is None:
            raise UnknownJob(f"no job {resume!r} in {runtime.settings.data_dir}")
        options = JobOptions.model_validate({**saved.options, **changes})
    elif library.job(options.name) is not None:
        raise JobExists(f"a job named {options.name!r} exists; resume it with --resume {options.name}")
    expansion = Expansion(runtime, options, on_event)
    runtime.watch_endpoints(expansion.on_endpoint)
    config: RunnableConfig = {
        "configurable": {"thread_id": f"job:{options.name}"},
        "recursion_limit": 1_000_000,
    }
    app = expansion.build().compile(checkpointer=runtime.checkpointer)
    saved_state = await app.aget_state(config)
    if resume is not None and not saved_state.values and _tried(expansion.counts()):
        raise WorkspaceDamaged(
            checkpoint_path(runtime.settings),
            f"holds no progress of job {resume!r}, whose environments are in the library",
            "restore it from a backup, or start a new job",
        )
    if saved_state.values and not saved_state.next:
        still_stopped = expansion.stop_reason(saved_state.values, expansion.counts()) if changes else None
        if not changes or still_stopped:
            reason = still_stopped or saved_state.values["stop_reason"]
            library.save_job(options.name, options.model_dump(), "finished", reason)
            return options, reason
        # new budgets leave room: clear the stop, as if the last round had just been recorded
        await app.aupdate_state(config, {"stop_reason": None}, as_node="record")
    library.save_job(options.name, options.model_dump(), "running")
    try:
        if saved_state.values:
            expansion.emit("job", f"resumed {options.name} at round {saved_state.values.get('round', 0)}")
            start: dict[str, Any] | None = None
        else:
            added = await expansion.add_topics(options.seed_topics, "seed")
            expansion.emit(
                "job", f"started {options.name}: target {options.target}, seeds: {', '.join(added)}"
            )
            start = {"round": 0, "active_seconds": 0.0, "fruitless_scouts": 0}
        async for _chunk in app.astream(start, config, stream_mode="updates", durability="sync"):
            pass
    except EndpointDown as error:
        _stopped(expansion, "interrupted", f"paused: {error}")
        raise
    except WorkspaceDamaged as error:
        _stopped(expansion, "interrupted", str(error))  # as far as the damage lets it be written
        raise
    except Exception as error:
        expansion.log.exception("failed  %s", describe(error))  # the traceback, for whoever fixes it
        _stopped(expansion, "failed", describe(error))
        log = job_log_path(runtime.settings.data_dir, options.name)
        raise JobFailed(
            f"job {options.name} failed: {describe(error)} (traceback in {log}); "
            f"after fixing the cause: resyn expand --resume {options.name}"
        ) from error
    except BaseException:
        _stopped(expansion, "interrupted", "")
        raise
    final = await app.aget_state(config)
    reason = final.values.get("stop_reason", "finished")
    library.save_job(options.name, options.model_dump(), "finished", reason)
    expansion.emit("stop", reason)
    return options, reason


def _stopped(expansion: Expansion, status: str, reason: str) -> None:
    """Record why the job stopped, as far as the workspace lets it: when the disk is what failed,
    this may fail too, and must not hide the first error."""
    with contextlib.suppress(Exception):
        expansion.runtime.library.save_job(
            expansion.options.name, expansion.options.model_dump(), status, reason
        )
    if reason:
        with contextlib.suppress(Exception):
            expansion.emit("stop", reason)
