"""The environment library: every synthesis, its attempts and its verdict, in one SQLite file.

One file per workspace (`<data_dir>/library.sqlite`). Writes are small and idempotent (an attempt
is keyed by environment and number), so a resumed synthesis that replays a step never duplicates
a row. Accepted environments are also written as `.py` files a person can open. Commands that only
read open it read-only: they work in a read-only workspace and create nothing. A damaged or lost
library is WorkspaceDamaged (see memory/workspace.py), never silently replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from resyn.contract import ValidationReport
from resyn.memory.workspace import WorkspaceDamaged, open_library, remedy, reported

STATUSES = (
    "running",
    "accepted",
    "invalid",
    "unsolvable",
    "too_easy",
    "inverted",
    "duplicate",
    "llm_failure",
    "error",  # resyn itself failed on this environment (a bug, not the author's fault); the reason says why
)
FINISHED = tuple(status for status in STATUSES if status != "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS environments (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    name TEXT,
    description TEXT,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    source TEXT,
    source_hash TEXT,
    report TEXT,
    pass_rates TEXT,
    author_model TEXT,
    solver_model TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    path TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    stop_reason TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    environment_id TEXT NOT NULL REFERENCES environments(id),
    number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source TEXT,
    report TEXT,
    problem TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (environment_id, number)
);
CREATE INDEX IF NOT EXISTS environments_by_status ON environments(status);
"""

# Columns added after the first release; older libraries get them on open.
_ADDED_COLUMNS = {
    "job": "TEXT",  # the expansion job that made it, if any
    "embedding": "BLOB",  # novelty vector (float32) of an accepted environment; FAISS is rebuilt from it
    "contamination": "TEXT",  # JSON of the benchmark question it nearly duplicates, if flagged
}


class EnvironmentRecord(BaseModel):
    id: str
    topic: str
    name: str | None
    description: str | None
    status: str
    reason: str
    source: str | None
    source_hash: str | None
    report: ValidationReport | None
    pass_rates: dict[str, float] | None
    author_model: str | None
    solver_model: str | None
    input_tokens: int
    output_tokens: int
    path: str | None
    job: str | None = None
    contamination: dict[str, Any] | None = None
    created: float
    updated: float


class JobRecord(BaseModel):
    name: str
    options: dict[str, Any]
    status: str  # running, interrupted, failed (resyn's own fault; resumable), finished
    stop_reason: str
    pid: int | None
    created: float
    updated: float

    @property
    def state(self) -> str:
        """The status, except that a job marked running whose process is gone shows as `stopped`
        (killed, or the machine went down): resumable."""
        if self.status != "running" or self.pid is None:
            return self.status
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return "stopped"
        except PermissionError:
            pass  # alive, under another user
        return self.status


@dataclass
class TopicCounts:
    """Per-topic tallies of synthesized environments, read back from the library
    (`Library.topic_tallies`) for the topic graph's frontier."""

    attempts: int = 0
    accepted: int = 0
    rejections: dict[str, int] = field(default_factory=dict)  # status -> count
    failure_streak: int = 0  # failed attempts in a row, most recent last

    @property
    def failed(self) -> int:
        return sum(self.rejections.values())


class AttemptRecord(BaseModel):
    number: int
    kind: str
    source: str | None
    report: ValidationReport | None
    problem: str | None
    created: float


class UnknownEnvironment(KeyError):
    """No environment with that id (or id prefix) is in the library."""


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class Library:
    """`Library(data_dir)`: open (and create) the workspace's library; `read_only=True` for
    commands that only read it."""

    def __init__(self, data_dir: Path, *, read_only: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.files_dir = self.data_dir / "environments"
        self._db = open_library(self.data_dir, read_only=read_only)
        if not self._db.read_only:
            self._db.script(_SCHEMA)
            for column in self._missing_columns():
                self._db.execute(f"ALTER TABLE environments ADD COLUMN {column} {_ADDED_COLUMNS[column]}")
            return
        path = self._db.path
        if not {"environments", "jobs", "attempts"} <= self._db.tables():
            self._db.close()
            raise WorkspaceDamaged(path, "damaged (it has no library tables)", remedy("damaged", path))
        if self._missing_columns():  # written by an older resyn: upgraded once, by a writable opening
            self._db.close()
            try:
                Library(self.data_dir).close()
            except WorkspaceDamaged:
                raise WorkspaceDamaged(
                    path,
                    "written by an older resyn, and cannot be upgraded here",
                    f"make {self.data_dir} writable once, then run the command again",
                ) from None
            self._db = open_library(self.data_dir, read_only=True)

    def _missing_columns(self) -> list[str]:
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(environments)")}
        return [column for column in _ADDED_COLUMNS if column not in present]

    def close(self) -> None:
        self._db.close()

    def start(
        self,
        environment_id: str,
        topic: str,
        author_model: str,
        solver_model: str | None,
        job: str | None = None,
    ) -> None:
        """Record a synthesis that has begun (a resumed one keeps its row)."""
        now = time.time()
        self._db.execute(
            "INSERT OR IGNORE INTO environments"
            " (id, topic, status, author_model, solver_model, job, created, updated)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
            (environment_id, topic, author_model, solver_model, job, now, now),
        )

    def record_attempt(
        self,
        environment_id: str,
        number: int,
        kind: str,
        source: str | None,
        report: ValidationReport | None,
        problem: str | None,
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                environment_id,
                number,
                kind,
                source,
                report.model_dump_json() if report else None,
                problem,
                time.time(),
            ),
        )

    def finish(
        self,
        environment_id: str,
        *,
        status: str,
        reason: str,
        source: str | None,
        report: ValidationReport | None,
        pass_rates: dict[str, float] | None,
        usage: dict[str, int],
        name: str | None = None,
        description: str | None = None,
        embedding: bytes | None = None,
        contamination: dict[str, Any] | None = None,
    ) -> EnvironmentRecord:
        """Store the verdict; an accepted environment is also written out as a `.py` file."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        path = None
        if status == "accepted" and source:
            file = self.files_dir / f"{(name or 'environment')}-{environment_id[:8]}.py"
            with reported(file):
                self.files_dir.mkdir(exist_ok=True)
                file.write_text(source)
            path = str(file)
        self._db.execute(
            "UPDATE environments SET status=?, reason=?, source=?, source_hash=?, report=?, pass_rates=?,"
            " input_tokens=?, output_tokens=?, name=?, description=?, path=?, embedding=?, contamination=?,"
            " updated=? WHERE id=?",
            (
                status,
                reason,
                source,
                source_hash(source) if source else None,
                report.model_dump_json() if report else None,
                json.dumps(pass_rates) if pass_rates is not None else None,
                usage.get("input_tokens", 0),
                usage.get("output_tokens", 0),
                name,
                description,
                path,
                embedding,
                json.dumps(contamination) if contamination else None,
                time.time(),
                environment_id,
            ),
        )
        return self.get(environment_id)

    def get(self, environment_id: str) -> EnvironmentRecord:
        """An environment by id, or by a unique prefix of its id (as `resyn library show` takes it)."""
        rows = self._db.execute(
            "SELECT * FROM environments WHERE id = ? OR id LIKE ? LIMIT 2",
            (environment_id, environment_id.replace("%", "") + "%"),
        )
        exact = [row for row in rows if row["id"] == environment_id]
        if exact:
            return _environment(exact[0])
        if len(rows) != 1:
            raise UnknownEnvironment(environment_id)
        return _environment(rows[0])

    def environments(self, status: str | None = None) -> list[EnvironmentRecord]:
        query, arguments = "SELECT * FROM environments", ()
        if status:
            query, arguments = query + " WHERE status = ?", (status,)
        rows = self._db.execute(query + " ORDER BY created", arguments)
        return [_environment(row) for row in rows]

    def accepted_embeddings(self) -> list[tuple[int, str, bytes]]:
        """(row number, id, vector bytes) of every accepted environment with a novelty vector."""
        rows = self._db.execute(
            "SELECT rowid, id, embedding FROM environments"
            " WHERE status = 'accepted' AND embedding IS NOT NULL"
        )
        return [(row["rowid"], row["id"], row["embedding"]) for row in rows]

    def id_of_row(self, rowid: int) -> str:
        return self._db.one("SELECT id FROM environments WHERE rowid = ?", (rowid,))["id"]

    def row_of(self, environment_id: str) -> int:
        return self._db.one("SELECT rowid FROM environments WHERE id = ?", (environment_id,))[0]

    def topic_tallies(self) -> dict[str, TopicCounts]:
        """Per topic, over every finished environment in the workspace (all jobs)."""
        tallies: dict[str, TopicCounts] = {}
        rows = self._db.execute(
            "SELECT topic, status FROM environments WHERE status != 'running' ORDER BY created, rowid"
        )
        for row in rows:
            tally = tallies.setdefault(row["topic"], TopicCounts())
            tally.attempts += 1
            if row["status"] == "accepted":
                tally.accepted += 1
                tally.failure_streak = 0
            else:
                tally.rejections[row["status"]] = tally.rejections.get(row["status"], 0) + 1
                tally.failure_streak += 1
        return tallies

    def job_counts(self, job: str) -> dict[str, int]:
        """Environments of one job by status, plus the tokens they used."""
        counts = {status: 0 for status in STATUSES}
        rows = self._db.execute(
            "SELECT status, COUNT(*) AS n, SUM(input_tokens) AS i, SUM(output_tokens) AS o"
            " FROM environments WHERE job = ? GROUP BY status",
            (job,),
        )
        counts["input_tokens"] = counts["output_tokens"] = 0
        for row in rows:
            counts[row["status"]] = row["n"]
            counts["input_tokens"] += row["i"] or 0
            counts["output_tokens"] += row["o"] or 0
        return counts

    def save_job(self, name: str, options: dict[str, Any], status: str, stop_reason: str = "") -> None:
        """Create or update a job's record; the pid says which process runs it now."""
        now = time.time()
        self._db.execute(
            "INSERT INTO jobs (name, options, status, stop_reason, pid, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
            " options=excluded.options, status=excluded.status, stop_reason=excluded.stop_reason,"
            " pid=excluded.pid, updated=excluded.updated",
            (name, json.dumps(options), status, stop_reason, os.getpid(), now, now),
        )

    def job(self, name: str) -> JobRecord | None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        return _job(row) if row else None

    def jobs(self) -> list[JobRecord]:
        return [_job(row) for row in self._db.execute("SELECT * FROM jobs ORDER BY created")]

    def attempts(self, environment_id: str) -> list[AttemptRecord]:
        rows = self._db.execute(
            "SELECT * FROM attempts WHERE environment_id = ? ORDER BY number", (environment_id,)
        )
        return [
            AttemptRecord(
                number=row["number"],
                kind=row["kind"],
                source=row["source"],
                report=_report(row["report"]),
                problem=row["problem"],
                created=row["created"],
            )
            for row in rows
        ]


def _report(text: str | None) -> ValidationReport | None:
    return ValidationReport.model_validate_json(text) if text else None


def _environment(row: sqlite3.Row) -> EnvironmentRecord:
    values: dict[str, Any] = dict(row)
    values.pop("embedding", None)
    values["report"] = _report(values["report"])
    values["pass_rates"] = json.loads(values["pass_rates"]) if values["pass_rates"] else None
    values["contamination"] = json.loads(values["contamination"]) if values.get("contamination") else None
    return EnvironmentRecord(**values)


def _job(row: sqlite3.Row) -> JobRecord:
    values: dict[str, Any] = dict(row)
    values["options"] = json.loads(values["options"])
    return JobRecord(**values)
