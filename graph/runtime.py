"""What a synthesis runs on: settings, the kernel pool and validator, the models, the library,
the embedding model, the novelty memory, the contamination guard and one shared checkpointer.

`open_runtime(settings)` starts and later stops all of it; tests pass scripted endpoints instead
of the model factory's. Heavy parts (the embedding model, the benchmark index) load on first use.
The synthesis graph takes the runtime as its LangGraph context (`context=runtime`): its compiled
form does not depend on it, so it is compiled once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from resyn.agents.exemplars import Exemplar, load_exemplars
from resyn.agents.llm import ChatEndpoint
from resyn.agents.resilience import Listener
from resyn.contract import ValidationReport
from resyn.memory.damage import reported
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.memory.novelty import NoveltyMemory
from resyn.memory.traces import TraceStore
from resyn.memory.workspace import Workspace
from resyn.models import ModelFactory
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator

if TYPE_CHECKING:
    from resyn.memory.contamination import ContaminationGuard


@dataclass
class SynthesisRuntime:
    settings: Settings
    pool: KernelPool
    validator: Validator
    library: Library
    exemplars: list[Exemplar]
    models: ModelFactory | None = None
    endpoints: dict[str, ChatEndpoint] = field(default_factory=dict)
    embedder: Embedder | None = None  # embeds topics; the novelty memory and contamination guard share it
    novelty: NoveltyMemory | None = None
    contamination: ContaminationGuard | None = None
    checkpointer: BaseCheckpointSaver | None = None
    traces: TraceStore | None = None
    worker: str | None = None  # the expansion worker running these syntheses (memory/job_claims.py)

    endpoint_listeners: list[Listener] = field(default_factory=list)

    def endpoint(self, role: str) -> ChatEndpoint:
        """The role's endpoint, its retries and outage handling following this runtime's settings."""
        if role not in self.endpoints:
            if self.models is None:
                raise LookupError(f"no endpoint for the role {role!r}")
            self.endpoints[role] = self.models.endpoint(role)
        endpoint = self.endpoints[role]
        endpoint.health.settings = self.settings.llm
        for listener in self.endpoint_listeners:
            if listener not in endpoint.health.listeners:
                endpoint.health.listeners.append(listener)
        return endpoint

    def watch_endpoints(self, listener: Listener) -> None:
        """Hear every endpoint's outages (start and end), those made later included."""
        self.endpoint_listeners.append(listener)
        for role in list(self.endpoints):
            self.endpoint(role)

    def model_name(self, role: str) -> str:
        """The model a role talks to, without starting it."""
        if role in self.endpoints or self.models is None:
            return self.endpoint(role).model_name
        return self.models.model_name(role)


# The classes the graphs' states hold (beyond plain data): saved as such, loaded back as such.
# Naming them keeps LangGraph from warning about, and one day refusing, an unregistered type.
CHECKPOINTED_TYPES = (ValidationReport,)


@contextlib.asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """The workspace's checkpoints: in the job's PostgreSQL database when it has one (every worker
    resumes every synthesis from there), else in `checkpoints.sqlite`."""
    if settings.database_url_value:
        async with _postgres_checkpointer(settings.database_url_value) as saver:
            yield saver
    else:
        async with _sqlite_checkpointer(settings) as saver:
            yield saver


@contextlib.asynccontextmanager
async def _postgres_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """The saver's tables are set up under an advisory lock: workers starting at once on a new
    database would otherwise each insert the same migration row, and all but one fail. The lock is
    tried, not waited for: the setup creates an index CONCURRENTLY, which waits for every open
    transaction, a waiting lock request included."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from resyn.memory.postgres import reachable, shown_url

    serde = JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)
    with reachable(shown_url(url)):
        async with AsyncPostgresSaver.from_conn_string(url, serde=serde) as saver:
            while not await _took_lock(saver, _CHECKPOINT_SETUP_LOCK):
                await asyncio.sleep(0.1)
            try:
                await saver.setup()
            finally:
                await saver.conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_CHECKPOINT_SETUP_LOCK,))
            yield saver


_CHECKPOINT_SETUP_LOCK = "resyn:checkpoint-setup"


async def _took_lock(saver: BaseCheckpointSaver, name: str) -> bool:
    cursor = await saver.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS taken", (name,))
    return (await cursor.fetchone())["taken"]


@contextlib.asynccontextmanager
async def _sqlite_checkpointer(settings: Settings) -> AsyncIterator[AsyncSqliteSaver]:
    """WAL with synchronous=NORMAL: a commit survives the process being killed (what resuming
    relies on) without an fsync per step, which would cost more than a step; only a power cut can
    lose the last commits."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = Workspace.of(settings).checkpoints
    serde = JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)
    connection = await aiosqlite.connect(str(path))
    saver = AsyncSqliteSaver(connection, serde=serde)
    try:
        with reported(path):
            await saver.setup()
            await saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver
    finally:
        await _close_after_late_writes(saver)


# Loop turns that the writes LangGraph submits while a run stops need to reach the saver's lock.
LATE_WRITE_TURNS = 3


async def _close_after_late_writes(saver: AsyncSqliteSaver) -> None:
    """Close the connection between two writes, never in the middle of one.

    When a run stops early (Ctrl-C, a failing `on_update`), LangGraph records each task it
    cancelled in a write it submits after it has stopped waiting for its own tasks, so such a write
    can still be under way when the run has returned. A connection closed between a write's insert
    and its commit keeps the write lock: every other connection to the file then finds the
    database locked until this process exits. Every write holds the saver's lock from insert to
    commit, so the close waits for the lock once those writes have had their turn to take it; a
    write that comes even later finds the connection closed and stores nothing."""
    for _ in range(LATE_WRITE_TURNS):
        await asyncio.sleep(0)
    async with saver.lock:
        await saver.conn.close()


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, endpoints: dict[str, ChatEndpoint] | None = None, embedder: Embedder | None = None
) -> AsyncIterator[SynthesisRuntime]:
    exemplars = load_exemplars()  # a broken installation fails here, before any kernel starts
    embedder = embedder or Embedder()
    contamination = None
    if settings.expansion.benchmark_dir is not None:
        from resyn.memory.contamination import ContaminationGuard

        contamination = await asyncio.to_thread(  # embeds the benchmarks on first use: minutes, once
            ContaminationGuard,
            settings.expansion.benchmark_dir,
            threshold=settings.expansion.contamination_threshold,
            cache_dir=Workspace.of(settings).benchmark_index,
            embedder=embedder,
        )
    library = Library.of(settings)
    models = None if endpoints else ModelFactory(settings)
    novelty = NoveltyMemory(library, embedder)
    traces = TraceStore.of(settings)
    try:
        async with (
            KernelPool(settings.kernel) as pool,
            open_checkpointer(settings) as checkpointer,
        ):
            yield SynthesisRuntime(
                settings=settings,
                pool=pool,
                validator=Validator(pool, settings),
                library=library,
                exemplars=exemplars,
                models=models,
                endpoints=dict(endpoints or {}),
                embedder=embedder,
                novelty=novelty,
                contamination=contamination,
                checkpointer=checkpointer,
                traces=traces,
            )
    finally:
        novelty.save()
        traces.close()
        if models is not None:
            models.close()
        library.close()
