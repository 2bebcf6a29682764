"""The workspace: one folder (`RESYN_DATA_DIR`) and every file resyn keeps in it.

`library.sqlite` (environments, attempts, jobs, trace events), `checkpoints.sqlite` (LangGraph's),
`topics.json`, the accepted sources in `environments/`, job logs in `jobs/`, evaluation runs in
`evals/`, the expansion job's `expand.lock`, and caches rebuilt when lost (`novelty.faiss`,
`benchmark-index/`). `Workspace` names each of them (the names are in memory/layout.py) and opens
the library; every module that needs one of those paths asks it. With a database URL
(`RESYN_DATABASE_URL=postgresql://…`, docs/scale.md) the library lives on that server instead of
`library.sqlite`, shared by every worker that names it; the other files stay in the folder.

A damaged, unreadable or unwritable file is `WorkspaceDamaged` (memory/damage.py), and a missing
or empty library beside the sources of an existing one is reported too, never replaced by an
empty library. How a SQLite file is opened (cheap checks, read-only without writing) is in
memory/database.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from resyn.memory.damage import WorkspaceDamaged, reported
from resyn.memory.database import Database, SqliteDatabase, Synchronous, open_database
from resyn.memory.layout import (
    BENCHMARK_INDEX,
    CHECKPOINTS,
    ENVIRONMENTS,
    EVALS,
    EXPAND_LOCK,
    JOBS,
    LIBRARY,
    NOVELTY,
    TOPICS,
)

if TYPE_CHECKING:
    from resyn.settings import Settings

__all__ = ["Workspace", "WorkspaceDamaged"]


class Workspace:
    """`Workspace(data_dir)`, or `Workspace.of(settings)`: the paths of a workspace's files, and
    its library opened (from `database_url` when one is given). Naming a path creates nothing."""

    def __init__(self, data_dir: Path | str, database_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.library = self.data_dir / LIBRARY
        self.checkpoints = self.data_dir / CHECKPOINTS
        self.topics = self.data_dir / TOPICS
        self.environments = self.data_dir / ENVIRONMENTS  # the accepted environments' sources
        self.jobs = self.data_dir / JOBS  # the expansion jobs' logs
        self.evals = self.data_dir / EVALS  # the benchmark evaluation runs
        self.expand_lock = self.data_dir / EXPAND_LOCK
        self.novelty_index = self.data_dir / NOVELTY
        self.benchmark_index = self.data_dir / BENCHMARK_INDEX  # the embedded benchmark questions

    @classmethod
    def of(cls, settings: Settings) -> Workspace:
        return cls(settings.data_dir, settings.database_url_value)

    def has_library(self) -> bool:
        """Whether there is a library to read: a database server always has one (maybe empty)."""
        return self.database_url is not None or self.library.is_file()

    def open_library(self, *, read_only: bool, synchronous: Synchronous = "FULL") -> Database:
        """The library database: `Library` and `TraceStore` each open their connection here.

        Writable, it is in WAL mode, and `synchronous` says how durable a commit is: FULL (the
        default, what `Library` keeps) puts each record on disk before it returns, so the library
        is never behind the checkpoints written after it; NORMAL (`TraceStore`) survives a killed
        process without an fsync per trace event. Where no library exists yet, a read-only opening
        gets an empty one in memory, so reading a new workspace creates nothing; a library lost
        from a workspace that had one (its sources, checkpoints or topics are still there) is
        WorkspaceDamaged. With a database URL, the server's database (`synchronous` is the
        server's business there)."""
        if self.database_url:
            from resyn.memory.postgres import PostgresDatabase

            return PostgresDatabase(self.database_url, read_only=read_only)
        path = self.library
        with reported(path):
            missing = not path.exists()
            empty = not missing and path.is_file() and path.stat().st_size == 0
        if missing or empty:
            self._refuse_a_lost_library("missing" if missing else "empty (0 bytes)")
            if read_only:
                empty = sqlite3.connect(":memory:", isolation_level=None)
                return SqliteDatabase(path, empty, read_only=False)
        return open_database(path, read_only=read_only, synchronous=synchronous)

    def _refuse_a_lost_library(self, state: str) -> None:
        folder = self.data_dir
        with reported(folder):
            sources = len(list(self.environments.glob("*.py")))
            others = [path.name for path in (self.checkpoints, self.topics) if path.is_file()]
        found = ([f"{sources} sources in {ENVIRONMENTS}/"] if sources else []) + others
        if found:
            listing = " and ".join([", ".join(found[:-1]), found[-1]] if len(found) > 1 else found)
            raise WorkspaceDamaged(
                self.library,
                f"{state}, yet {folder} holds {listing} of a library that existed",
                f"restore it from a backup, or move {folder} aside to start afresh"
                " (resyn will not put an empty library in its place)",
            )
