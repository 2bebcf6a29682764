"""Several workers on one job, with no coordinator: the database is where they meet.

- Each worker (`resyn expand` process) has a row in `workers` and beats its heartbeat there.
- Each synthesis in flight is claimed by the worker that runs it (`environments.worker`). A claim
  is free when its worker stopped cleanly or has been silent past the expiry; another worker then
  takes it with one conditional UPDATE (so exactly one of them gets it) and resumes the synthesis
  from its checkpoint.
- A pick (count, check the target, choose a topic, insert its row) and an acceptance (the final
  novelty check and the verdict) each run under a lock, so two workers never overshoot the target
  together nor accept near-duplicates of each other. On PostgreSQL these are session advisory
  locks; on SQLite one worker runs per workspace (its flock), so they are no-ops.
- The topic graph is one document in `topic_graph`, read back whenever its version moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from resyn.contract import Status
from resyn.memory.database import Database

# a held lock is polled for from 2 ms up to 50 ms: the holds (a pick, a verdict) last milliseconds
_FIRST_LOCK_POLL_S = 0.002
_LAST_LOCK_POLL_S = 0.05


@dataclass(frozen=True)
class WorkerRecord:
    id: str  # host:pid:random
    job: str
    host: str
    pid: int
    started: float
    heartbeat: float
    stopped: float | None  # when it stopped cleanly
    alive: bool  # beating: not stopped, and heard from within the expiry


class JobClaims:
    """The claims, workers and locks of the library's database (`Library.claims`)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self.shared = database.dialect == "postgresql"  # several workers may share the database
        self._local_locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """One holder at a time of the block keyed by `name`: one coroutine of this process (an
        asyncio lock, since the session's advisory lock is re-entrant) and one worker across
        processes and machines (a PostgreSQL advisory lock). Waiting for another worker's hold
        polls `pg_try_advisory_lock` with asyncio sleeps, so this worker's other syntheses go on
        meanwhile instead of the whole event loop blocking on the server."""
        if not self.shared:
            yield
            return
        async with self._local_locks.setdefault(name, asyncio.Lock()):
            pause = _FIRST_LOCK_POLL_S
            while not self._db.one("SELECT pg_try_advisory_lock(hashtext(?)) AS taken", (name,))["taken"]:
                await asyncio.sleep(pause)
                pause = min(2 * pause, _LAST_LOCK_POLL_S)
            try:
                yield
            finally:
                self._db.execute("SELECT pg_advisory_unlock(hashtext(?))", (name,))

    def register(self, worker: str, job: str) -> None:
        now = time.time()
        self._db.execute(
            "INSERT INTO workers (id, job, host, pid, started, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
            (worker, job, socket.gethostname(), os.getpid(), now, now),
        )

    def beat(self, worker: str) -> None:
        self._db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (time.time(), worker))

    def retire(self, worker: str) -> None:
        """The worker stopped: its claims are free for the others at once."""
        now = time.time()
        self._db.execute("UPDATE workers SET stopped = ?, heartbeat = ? WHERE id = ?", (now, now, worker))

    def workers(self, job: str, expiry_s: float) -> list[WorkerRecord]:
        """Every worker that has run the job, the first to start first."""
        rows = self._db.execute("SELECT * FROM workers WHERE job = ? ORDER BY started, id", (job,))
        heard_since = time.time() - expiry_s
        return [
            WorkerRecord(**dict(row), alive=row["stopped"] is None and row["heartbeat"] >= heard_since)
            for row in rows
        ]

    def claim(self, environment_id: str, worker: str, expiry_s: float | None) -> bool:
        """Take a running synthesis whose worker is gone: stopped, or silent for `expiry_s` (None:
        every other worker counts as gone, as where only one may run). True if this worker has it."""
        alive_since = time.time() - expiry_s if expiry_s is not None else math.inf
        rows = self._db.execute(
            "UPDATE environments SET worker = ? WHERE id = ? AND status = ? AND (worker IS NULL OR"
            " (worker != ? AND worker NOT IN"
            " (SELECT id FROM workers WHERE stopped IS NULL AND heartbeat >= ?)))"
            " RETURNING id",
            (worker, environment_id, Status.RUNNING, worker, alive_since),
        )
        return bool(rows)

    def holds(self, environment_id: str, worker: str) -> bool:
        """Whether the synthesis is still this worker's (a worker thought dead may have lost it)."""
        row = self._db.one("SELECT worker FROM environments WHERE id = ?", (environment_id,))
        return row is not None and row["worker"] == worker

    def topic_document(self) -> tuple[int, str] | None:
        """The shared topic graph (its version and text), or None before the first topic."""
        row = self._db.one("SELECT version, document FROM topic_graph WHERE id = 1")
        return (row["version"], row["document"]) if row else None

    def topic_version(self) -> int:
        row = self._db.one("SELECT version FROM topic_graph WHERE id = 1")
        return row["version"] if row else 0

    def save_topic_document(self, document: str) -> int:
        """Store the topic graph (under the job's lock); returns its new version."""
        rows = self._db.execute(
            "INSERT INTO topic_graph (id, version, document) VALUES (1, 1, ?) ON CONFLICT (id)"
            " DO UPDATE SET version = topic_graph.version + 1, document = excluded.document"
            " RETURNING version",
            (document,),
        )
        return rows[0]["version"]
