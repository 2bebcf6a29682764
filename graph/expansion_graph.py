"""The expansion job: `--concurrency` syntheses in flight at all times, over the topic frontier.

    ┌──────────────────── a slot frees: a verdict ─────────────────────┐
    ▼                                                                  │
  pick ──start──▶ synthesize ×≤ concurrency (a checkpoint thread each) ─┘
    │ └─start──▶ scout, beside them (when untried topics run low) ──▶ new topics ──▶ pick
    └─ target reached · budget spent · frontier empty, nothing left in flight ──▶ END

`pick` runs whenever a slot frees or the scout brings topics: it refreshes the topic tallies from
the library, checks the target (counting the syntheses in flight) and the budgets, and starts the
frontier's best topic that is not in flight, until every slot is busy. Each synthesis is the
synthesis graph under its own checkpoint thread (its environment id, the job's n-th); they overlap,
bounded by the endpoint's limiter and the kernel pool. A synthesis's library row is written as it
starts, so the ones in flight are the job's `running` rows: after `kill -9`, `run_job` resumes
them first, each from its own checkpoint. As each step of a synthesis ends, its row gets the step
and the tokens of the calls it made, so its tokens so far count everywhere while it runs. What the
library cannot tell (the scout's tokens, the running time, why the job stopped) is the job's
record (`graph/job_record.py`); the scheduler mirrors the scout's tokens and the running time into
the library's jobs table on every verdict and scout call, so every surface reads one count
(`Library.job_usage`).

The scheduler is a plain asyncio loop, the job's only writer of its record and starter of work;
the nodes it runs (`synthesize_topic`, `scout_topics`) are async functions of the `ExpansionJob`.

Several workers may run one job against a shared PostgreSQL database (docs/scale.md): each is this
same loop with its own slots, kernels and embedder. What they share goes through the database
(memory/job_claims.py): a pick happens under the job's lock and counts every worker's syntheses in
flight (their `running` rows), so the target is never overshot job-wide; each synthesis is
claimed by its worker, and a worker that stops or falls silent past the expiry has its syntheses
taken up by the others, each from its checkpoint; the topic graph is read back when another worker
changed it. On SQLite there is one worker, and all of that reduces to the single-process loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from resyn.agents import scout
from resyn.agents.resilience import describe
from resyn.contract import Status
from resyn.graph.faults import result_or_fault
from resyn.graph.job_record import JobRecord, JobState
from resyn.graph.jobs import JobOptions, environment_id, event_log, job_log_path
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.synthesis import synthesize
from resyn.graph.synthesis_graph import usage_by_role
from resyn.memory.records import JobCounts
from resyn.memory.topics import TopicGraph
from resyn.memory.workspace import Workspace
from resyn.tracing import TraceEvent

Events = Callable[[str, dict[str, Any]], None]
_FRUITLESS_SCOUTS = 2  # scout calls in a row that found nothing new before the frontier counts as empty
_SCOUT_CONTEXT = 6  # frontier topics shown to the scout
INTERRUPTED_ELSEWHERE = "interrupted on another worker"


class ExpansionJob:
    """What one job's parts share: the synthesis runtime, the options, topic graph, record and log."""

    def __init__(
        self, runtime: SynthesisRuntime, options: JobOptions, on_event: Events | None = None
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.settings = runtime.settings.expansion
        self.claims = runtime.library.claims
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        runtime.worker = self.worker  # a synthesis of this job is accepted only while this worker has it
        self.job_lock = f"job:{options.name}"
        self.topics_path = Workspace.of(runtime.settings).topics
        self.topics_version = 0
        self.topics = self.load_topics()
        self.record = JobRecord(runtime.checkpointer, options.name)
        self.log = event_log(job_log_path(runtime.settings.data_dir, options.name))
        self.on_event = on_event
        self.process_started = time.time()
        self.earlier_seconds = 0.0  # running time before this process took the job on

    def load_topics(self) -> TopicGraph:
        """The workspace's topic graph: the database's copy where workers share one, else the file."""
        if not self.claims.shared:
            return TopicGraph.load(self.topics_path)
        stored = self.claims.topic_document()
        if stored is None:
            return TopicGraph()
        self.topics_version, text = stored
        return TopicGraph.from_text(text, "the database's topic graph")

    def refresh_topics(self) -> None:
        """Take up the topics other workers added since this one last read the graph."""
        if self.claims.shared and self.claims.topic_version() != self.topics_version:
            self.topics = self.load_topics()

    def save_topics(self) -> None:
        if self.claims.shared:
            self.topics_version = self.claims.save_topic_document(self.topics.to_text())
        else:
            self.topics.save(self.topics_path)

    def interrupted_elsewhere(self) -> str | None:
        """Ctrl-C on any worker stops the job: the others see its state and stop too."""
        if not self.claims.shared:
            return None
        saved = self.runtime.library.job(self.options.name)
        if saved is not None and saved.status == "interrupted" and saved.updated > self.process_started:
            return INTERRUPTED_ELSEWHERE
        return None

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
        async with self.claims.lock(self.job_lock):  # read, add, write: no other worker's topics are lost
            self.refresh_topics()
            return self._add_embedded(names, vectors, origin, parents)

    def _add_embedded(
        self, names: list[str], vectors: Any, origin: str, parents: list[str] | None
    ) -> list[str]:
        added = []
        for name, vector in zip(names, vectors, strict=True):
            if name in self.topics:  # a seed another worker of the job (or a crashed start) added
                continue
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
        self.save_topics()
        return added

    def on_endpoint(self, event: str, line: str) -> None:
        """An endpoint's outage began ("down": the job pauses) or ended ("up": it carries on)."""
        self.emit("paused" if event == "down" else "resumed", line)

    def counts(self) -> JobCounts:
        return self.runtime.library.job_counts(self.options.name)

    def tokens_used(self, counts: JobCounts) -> int:
        """The job's environments' tokens (the running ones' so far: their rows grow as their calls
        finish) and the scout's: `Library.job_usage(name).total`, without reading every row."""
        return counts.tokens + self.record.scout_tokens

    async def load_record(self) -> JobState:
        progress = await self.record.load()
        self.earlier_seconds = progress.get("active_seconds", 0.0)
        return progress

    async def write_record(self, **changes: Any) -> None:
        """Change the job's record, and mirror what every surface shows of it into the library
        (the scout's tokens, the running time), marking the job updated. One worker at a time:
        the record is one checkpoint thread that every worker of the job adds to."""
        async with self.claims.lock(self.job_lock):
            await self.record.write(**changes)
        values = self.record.values
        self.runtime.library.record_job_progress(
            self.options.name, values.get("scout_usage", {}), values.get("active_seconds", 0.0)
        )

    def resumed_line(self) -> str:
        """What the log says when a stopped job is taken up again."""
        counts = self.counts()
        return (
            f"resumed {self.options.name}: {counts.accepted} accepted, {counts.running} unfinished continue"
        )

    def active_seconds(self) -> float:
        """The job's running time, in this process and those before it (downtime excluded)."""
        return self.earlier_seconds + time.time() - self.process_started

    def stop_reason(self, counts: JobCounts) -> str | None:
        """Why no synthesis may start now and the job ends once those in flight are done, or None."""
        options = self.options
        if counts.accepted >= options.target:
            return f"target reached: {counts.accepted} accepted"
        if options.max_environments is not None and counts.tried >= options.max_environments:
            return f"environment budget spent: {counts.tried} tried"
        tokens = self.tokens_used(counts)
        if options.max_tokens is not None and tokens >= options.max_tokens:
            return f"token budget spent: {tokens:,} tokens ≥ {options.max_tokens:,}"
        hours = self.active_seconds() / 3600
        if options.max_hours is not None and hours >= options.max_hours:
            return f"time budget spent: {hours:.2f} h ≥ {options.max_hours} h"
        return None


async def run_job(job: ExpansionJob) -> str:
    """Keep `concurrency` syntheses in flight until the job stops; returns why it stopped.

    On any exit (Ctrl-C, a bug, an outage past `--max-outage`) the work in flight is cancelled and
    awaited, so the answers it already has reach its checkpoint before the error goes on."""
    syntheses: dict[asyncio.Task[None], str] = {}  # task -> the topic it synthesizes
    scouting: asyncio.Task[dict[str, Any]] | None = None
    library, name, claims = job.runtime.library, job.options.name, job.claims
    # where only one worker may run (SQLite), every synthesis left running is an orphan at once
    expiry = job.settings.worker_expiry_s if claims.shared else None
    heartbeat = job.settings.heartbeat_s if claims.shared else None

    def start(identifier: str, topic: str) -> None:
        job.emit("start", f"{identifier} {topic}", environment_id=identifier, topic=topic)
        syntheses[asyncio.create_task(synthesize_topic(job, topic, identifier))] = topic

    async def pick() -> str | None:
        """Fill the free slots, and scout beside them when untried topics run low; a reason when
        the job must stop once the work in flight is done."""
        nonlocal scouting
        stop = job.interrupted_elsewhere()
        if stop:
            return stop
        async with claims.lock(job.job_lock):
            job.refresh_topics()
            job.topics.set_counts(library.topic_tallies())
            stop = fill_slots()
        busy = library.running_topics(name)  # every worker's
        may_scout = job.record.values.get("fruitless_scouts", 0) < _FRUITLESS_SCOUTS
        low = job.topics.untried_count(exclude=busy) < job.options.concurrency
        if stop is None and scouting is None and may_scout and low:
            scouting = asyncio.create_task(scout_topics(job))
        if stop is None and not syntheses and scouting is None:
            if busy and claims.shared:
                return None  # other workers' syntheses are in flight: wait for them, or their expiry
            if busy:  # one worker per workspace: nobody else will ever finish them
                return f"syntheses left running that this run cannot take up: {', '.join(sorted(busy))}"
            return "the frontier is empty: every topic is retired"
        return stop

    def take_up_orphans() -> None:
        """Resume, each from its checkpoint, the job's syntheses whose worker is gone (a stopped
        run of the job, a worker killed or silent past the expiry), while slots are free."""
        for running in library.environments(status=Status.RUNNING):
            if len(syntheses) >= job.options.concurrency:
                return
            if running.job == name and claims.claim(running.id, job.worker, expiry):
                start(running.id, running.topic)

    def fill_slots() -> str | None:
        take_up_orphans()
        while True:
            counts = job.counts()  # the syntheses in flight, every worker's, are its running rows
            stop = job.stop_reason(counts)
            if stop or len(syntheses) >= job.options.concurrency:
                return stop
            if counts.accepted + counts.running >= job.options.target:
                return None  # never overshoot: wait for the verdicts in flight
            rule, near = job.settings.frontier, job.runtime.novelty.similarity_to_accepted
            picks = job.topics.frontier(1, rule, near, exclude=library.running_topics(name))
            if not picks:
                return None
            identifier = environment_id(name, counts.tried)  # the job's n-th synthesis
            author, solver = job.runtime.model_name("author"), job.runtime.model_name("solver")
            library.start(identifier, picks[0], author, solver, job=name, worker=job.worker)
            start(identifier, picks[0])

    claims.register(job.worker, name)
    try:
        while True:
            stop = await pick()
            if stop and not syntheses:
                return stop
            waiting = [*syntheses, *([scouting] if scouting else [])]
            if not waiting:  # only another worker's syntheses are left: look again after a beat
                await asyncio.sleep(job.settings.heartbeat_s)
                claims.beat(job.worker)
                continue
            done, _ = await asyncio.wait(waiting, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
            claims.beat(job.worker)
            for task in done:
                if task is scouting:
                    scouting = None
                    await job.write_record(**task.result(), active_seconds=job.active_seconds())
                else:
                    del syntheses[task]
                    task.result()  # an error that stops the run goes on from here
                    await job.write_record(active_seconds=job.active_seconds())
    finally:
        unfinished = [*syntheses, *([scouting] if scouting else [])]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        with contextlib.suppress(Exception):  # the running time up to the stop; a full disk may refuse it
            await job.write_record(active_seconds=job.active_seconds())
        with contextlib.suppress(Exception):  # its claims are free for the other workers from now
            claims.retire(job.worker)


async def synthesize_topic(job: ExpansionJob, topic: str, identifier: str) -> None:
    """One synthesis to its verdict (resumed from its checkpoint if it has one)."""

    def on_update(node: str, update: dict[str, Any]) -> None:
        calls = update.get("llm_calls", [])
        job.runtime.library.progress(identifier, node, usage_by_role(calls))
        if job.on_event is not None:
            tokens = job.tokens_used(job.counts()) if calls else None
            job.on_event(
                "stage", {"environment_id": identifier, "topic": topic, "node": node, "tokens": tokens}
            )

    name = job.options.name
    record = await result_or_fault(
        lambda: synthesize(job.runtime, topic, environment_id=identifier, job=name, on_update=on_update)
    )
    if isinstance(record, Exception):  # a bug on one environment must not end a job of hours
        failure = f"{type(record).__name__}: {record}"[:300]
    elif record.status == Status.RUNNING and job.claims.holds(identifier, job.worker):
        # a bug: left running, its row would hold the job back for ever
        failure = "the synthesis ended without a verdict (a bug in resyn)"
    elif record.status == Status.RUNNING:  # another worker took it over while this one seemed gone
        job.emit("lost", f"{identifier} {topic}: taken over by another worker", environment_id=identifier)
        return
    else:
        failure = None
    if failure is None:
        status, reason = Status(record.status), record.reason
    else:
        status, reason = Status.ERROR, failure
        job.runtime.library.finish(  # usage=None: it keeps the tokens of the calls it made
            identifier, status=status, reason=reason, source=None, report=None, pass_rates=None, usage=None
        )
    counts = job.counts()
    job.emit(
        status,
        f"{identifier} {topic}: {reason}",
        environment_id=identifier,
        topic=topic,
        status=status,
        counts=counts,
        tokens=job.tokens_used(counts),  # the job's, the scout's included
    )


async def scout_topics(job: ExpansionJob) -> dict[str, Any]:
    """One scout call for new topics near the frontier; returns the job record's changes."""
    fruitless = job.record.values.get("fruitless_scouts", 0)
    around = (
        job.topics.frontier(
            _SCOUT_CONTEXT, job.settings.frontier, job.runtime.novelty.similarity_to_accepted, exclude=()
        )
        or job.topics.names()[-_SCOUT_CONTEXT:]
    )
    known = set(job.topics.names())
    clock = time.perf_counter()
    scouted = await result_or_fault(
        lambda: scout.brainstorm(job.runtime.endpoint("scout"), around, job.settings.scout_batch, known)
    )
    seconds = round(time.perf_counter() - clock, 3)  # the call's, with its retries and waits
    if isinstance(scouted, Exception):  # the frontier goes on without new topics for now
        job.emit("scout", f"the scout could not be reached: {describe(scouted)}", seconds=seconds)
        return {"fruitless_scouts": fruitless + 1}
    added = await job.add_topics(scouted.topics, "scouted", parents=around)
    usage = scouted.reply.usage()
    call_tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    job.emit(
        "scout",
        f"+{len(added)} topics: {', '.join(added) or '(none new)'} · {call_tokens:,} tokens",
        added=added,
        tokens=job.tokens_used(job.counts()) + call_tokens,
        seconds=seconds,
        **usage,
    )
    return {"scout_usage": usage, "fruitless_scouts": 0 if added else fruitless + 1}
