"""The environment library: every synthesis, its attempts and its verdict, in one database.

One SQLite file per workspace (`<data_dir>/library.sqlite`), or a PostgreSQL database that many
workers share (memory/postgres.py); the statements are the same, and so is the schema (Alembic's
revisions in memory/migrations, run when a writable opening finds the library behind). Writes are
small and idempotent (an attempt is keyed by environment and number), so a resumed synthesis that
replays a step never duplicates a row. Accepted environments are also written as `.py` files a
person can open. Commands that only read open it read-only: they work in a read-only workspace and
create nothing. A damaged or lost library is WorkspaceDamaged (see memory/damage.py), never
silently replaced. The records it hands back are in memory/records.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from resyn.contract import Status, ValidationReport
from resyn.memory import schema
from resyn.memory.damage import WorkspaceDamaged, remedy, reported
from resyn.memory.database import Row
from resyn.memory.job_claims import JobClaims
from resyn.memory.records import (
    ROLES,
    UNATTRIBUTED,
    AttemptRecord,
    EnvironmentRecord,
    JobCounts,
    JobRecord,
    JobUsage,
    RoleUsage,
    TokenCount,
    TopicCounts,
    add_role_usage,
    usage_totals,
)
from resyn.memory.workspace import Workspace
from resyn.settings import ExpansionSettings, PriceSettings, Settings


class UnknownEnvironment(KeyError):
    """No environment with that id (or id prefix) is in the library."""


class AmbiguousEnvironment(UnknownEnvironment):
    """An id prefix that more than one environment's id starts with."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        super().__init__(prefix)
        self.prefix = prefix
        self.matches = matches

    def __str__(self) -> str:
        shown = ", ".join(self.matches[:3]) + (", …" if len(self.matches) > 3 else "")
        return f"ambiguous: {len(self.matches)} environments start with {self.prefix!r} ({shown})"


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class Library:
    """`Library(data_dir)` or `Library.of(settings)`: open (and create) the workspace's library;
    `read_only=True` for commands that only read it."""

    def __init__(self, data_dir: Path, *, read_only: bool = False, database_url: str | None = None) -> None:
        self._workspace = Workspace(data_dir, database_url)
        self.data_dir = self._workspace.data_dir
        self.files_dir = self._workspace.environments
        self._db = self._workspace.open_library(read_only=read_only)
        self.claims = JobClaims(self._db)
        self.worker_expiry_s = ExpansionSettings().worker_expiry_s  # when a silent worker counts as gone
        if not self._db.read_only:
            schema.upgrade(self._db)
            return
        path = self._db.path
        if not {"environments", "jobs", "attempts"} <= self._db.tables():
            self._db.close()
            if database_url:  # a server database resyn has not used yet: set it up, then read it
                Library(data_dir, database_url=database_url).close()
                self._db = self._workspace.open_library(read_only=True)
                self.claims = JobClaims(self._db)
                return
            raise WorkspaceDamaged(path, "damaged (it has no library tables)", remedy("damaged", Path(path)))
        if not schema.is_current(self._db):  # written by an older resyn: upgraded once, by a writable opening
            self._db.close()
            try:
                Library(self.data_dir, database_url=database_url).close()
            except WorkspaceDamaged:
                raise WorkspaceDamaged(
                    path,
                    "written by an older resyn, and cannot be upgraded here",
                    f"make {self.data_dir} writable once, then run the command again",
                ) from None
            self._db = self._workspace.open_library(read_only=True)
            self.claims = JobClaims(self._db)

    @classmethod
    def of(cls, settings: Settings, *, read_only: bool = False) -> Library:
        library = cls(settings.data_dir, read_only=read_only, database_url=settings.database_url_value)
        library.worker_expiry_s = settings.expansion.worker_expiry_s
        return library

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.close()

    def start(
        self,
        environment_id: str,
        topic: str,
        author_model: str,
        solver_model: str | None,
        job: str | None = None,
        worker: str | None = None,
    ) -> None:
        """Record a synthesis that has begun, claimed by `worker` (a resumed one keeps its row)."""
        now = time.time()
        self._db.execute(
            "INSERT INTO environments"
            " (id, topic, status, author_model, solver_model, job, worker, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (environment_id, topic, Status.RUNNING, author_model, solver_model, job, worker, now, now),
        )

    def progress(self, environment_id: str, step: str, role_usage: RoleUsage) -> None:
        """A running synthesis finished `step`: note it, and add the tokens of the LLM calls it made
        (by role) to the row, so a synthesis in flight shows its step and tokens so far everywhere.
        A row that has its verdict is left alone: its tokens are the synthesis's own total."""
        row = self._db.one(
            "SELECT role_usage FROM environments WHERE id = ? AND status = ?",
            (environment_id, Status.RUNNING),
        )
        if row is None:
            return
        usage = add_role_usage(json.loads(row["role_usage"]) if row["role_usage"] else {}, role_usage)
        added = usage_totals(role_usage)
        self._db.execute(
            "UPDATE environments SET step=?, role_usage=?, input_tokens=input_tokens+?,"
            " output_tokens=output_tokens+?, updated=? WHERE id=?",
            (
                step,
                json.dumps(usage),
                added["input_tokens"],
                added["output_tokens"],
                time.time(),
                environment_id,
            ),
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
            "INSERT INTO attempts (environment_id, number, kind, source, report, problem, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (environment_id, number) DO UPDATE SET"
            " kind=excluded.kind, source=excluded.source, report=excluded.report,"
            " problem=excluded.problem, created=excluded.created",
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
        status: Status | str,
        reason: str,
        source: str | None,
        report: ValidationReport | None,
        pass_rates: dict[str, float] | None,
        usage: dict[str, int] | None,
        role_usage: RoleUsage | None = None,
        name: str | None = None,
        description: str | None = None,
        embedding: bytes | None = None,
        contamination: dict[str, Any] | None = None,
    ) -> EnvironmentRecord:
        """Store the verdict; an accepted environment is also written out as a `.py` file.

        `usage` is the synthesis's total and `role_usage` the same by role; `usage=None` keeps the
        tokens its steps recorded (`progress`), as for a synthesis that ended in an error."""
        if status not in tuple(Status):  # `in Status` itself needs Python 3.12
            raise ValueError(f"unknown status {status!r}")
        path = None
        if status == Status.ACCEPTED and source:
            file = self.files_dir / f"{(name or 'environment')}-{environment_id[:8]}.py"
            with reported(file):
                self.files_dir.mkdir(exist_ok=True)
                file.write_text(source)
            path = str(file)
        if usage is not None:
            self._db.execute(
                "UPDATE environments SET input_tokens=?, output_tokens=?, role_usage=? WHERE id=?",
                (
                    usage.get("input_tokens", 0),
                    usage.get("output_tokens", 0),
                    json.dumps(role_usage) if role_usage is not None else None,
                    environment_id,
                ),
            )
        self._db.execute(
            "UPDATE environments SET status=?, reason=?, source=?, source_hash=?, report=?, pass_rates=?,"
            " name=?, description=?, path=?, embedding=?, contamination=?, updated=? WHERE id=?",
            (
                status,
                reason,
                source,
                source_hash(source) if source else None,
                report.model_dump_json() if report else None,
                json.dumps(pass_rates) if pass_rates is not None else None,
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
        """An environment by id, or by a unique prefix of its id (as `resyn library show` takes it);
        a prefix of several ids raises `AmbiguousEnvironment`, which names some of them."""
        row = self._db.one("SELECT * FROM environments WHERE id = ?", (environment_id,))
        if row is None:
            rows = self._db.execute(
                "SELECT id FROM environments WHERE id LIKE ? ORDER BY id",
                (environment_id.replace("%", "") + "%",),
            )
            matches = [match["id"] for match in rows]
            if len(matches) > 1:
                raise AmbiguousEnvironment(environment_id, matches)
            if not matches:
                raise UnknownEnvironment(environment_id)
            row = self._db.one("SELECT * FROM environments WHERE id = ?", (matches[0],))
        return EnvironmentRecord.from_row(row)

    def environments(self, status: str | None = None) -> list[EnvironmentRecord]:
        query, arguments = "SELECT * FROM environments", ()
        if status:
            query, arguments = query + " WHERE status = ?", (status,)
        rows = self._db.execute(query + " ORDER BY created", arguments)
        return [EnvironmentRecord.from_row(row) for row in rows]

    def accepted_embeddings(self) -> list[tuple[int, str, bytes]]:
        """(row number, id, vector bytes) of every accepted environment with a novelty vector."""
        rows = self._db.execute(
            "SELECT rowid, id, embedding FROM environments WHERE status = ? AND embedding IS NOT NULL",
            (Status.ACCEPTED,),
        )
        return [(row["rowid"], row["id"], row["embedding"]) for row in rows]

    def accepted_rows(self) -> set[int]:
        """The row numbers of every accepted environment with a novelty vector (no vectors read)."""
        rows = self._db.execute(
            "SELECT rowid FROM environments WHERE status = ? AND embedding IS NOT NULL", (Status.ACCEPTED,)
        )
        return {row["rowid"] for row in rows}

    def running_topics(self, job: str) -> list[str]:
        """The topics of the job's syntheses in flight, whichever worker runs them."""
        rows = self._db.execute(
            "SELECT topic FROM environments WHERE job = ? AND status = ? ORDER BY created",
            (job, Status.RUNNING),
        )
        return [row["topic"] for row in rows]

    def id_of_row(self, rowid: int) -> str:
        return self._db.one("SELECT id FROM environments WHERE rowid = ?", (rowid,))["id"]

    def row_of(self, environment_id: str) -> int:
        return self._db.one("SELECT rowid FROM environments WHERE id = ?", (environment_id,))["rowid"]

    def topic_tallies(self) -> dict[str, TopicCounts]:
        """Per topic, over every finished environment in the workspace (all jobs)."""
        tallies: dict[str, TopicCounts] = {}
        rows = self._db.execute(
            "SELECT topic, status FROM environments WHERE status != ? ORDER BY created, rowid",
            (Status.RUNNING,),
        )
        for row in rows:
            tally = tallies.setdefault(row["topic"], TopicCounts())
            tally.attempts += 1
            if row["status"] == Status.ACCEPTED:
                tally.accepted += 1
                tally.failure_streak = 0
            else:
                tally.rejections[row["status"]] = tally.rejections.get(row["status"], 0) + 1
                tally.failure_streak += 1
        return tallies

    def job_counts(self, job: str) -> JobCounts:
        """Environments of one job by status, and the tokens they used."""
        rows = self._db.execute(
            "SELECT status, COUNT(*) AS n, CAST(SUM(input_tokens) AS BIGINT) AS i,"
            " CAST(SUM(output_tokens) AS BIGINT) AS o"
            " FROM environments WHERE job = ? GROUP BY status",
            (job,),
        )
        return JobCounts(
            by_status={Status(row["status"]): row["n"] for row in rows},
            input_tokens=sum(row["i"] or 0 for row in rows),
            output_tokens=sum(row["o"] or 0 for row in rows),
        )

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

    def record_job_progress(self, name: str, scout_usage: dict[str, int], active_seconds: float) -> None:
        """Mirror what the job's own record holds that every surface shows (the scout's tokens, the
        running time), and mark the job updated: written on every verdict and scout call."""
        self._db.execute(
            "UPDATE jobs SET scout_input_tokens=?, scout_output_tokens=?, active_seconds=?, updated=?"
            " WHERE name=?",
            (
                scout_usage.get("input_tokens", 0),
                scout_usage.get("output_tokens", 0),
                active_seconds,
                time.time(),
                name,
            ),
        )

    def job_usage(self, name: str, prices: PriceSettings | None = None) -> JobUsage:
        """The job's tokens: its environments' (finished, and the running ones' so far) by role, its
        scout's, those spent on environments it did not accept, and their cost at `prices`."""
        return self.usage(name, prices)

    def usage(self, job: str | None = None, prices: PriceSettings | None = None) -> JobUsage:
        """`job_usage` of one job, or (`job=None`) of the whole workspace: every environment, every
        job's scout."""
        by_role: RoleUsage = {role: {"input_tokens": 0, "output_tokens": 0} for role in ROLES}
        rejected = 0
        query = "SELECT status, input_tokens, output_tokens, role_usage FROM environments"
        rows = self._db.execute(query + " WHERE job = ?", (job,)) if job else self._db.execute(query)
        for row in rows:
            usage = json.loads(row["role_usage"]) if row["role_usage"] else {}
            attributed = usage_totals(usage)
            unattributed = {key: row[key] - attributed[key] for key in ("input_tokens", "output_tokens")}
            if any(unattributed.values()):  # a row written before usage by role
                usage = add_role_usage(usage, {UNATTRIBUTED: unattributed})
            by_role = add_role_usage(by_role, usage)
            if row["status"] not in (Status.ACCEPTED, Status.RUNNING):
                rejected += row["input_tokens"] + row["output_tokens"]
        for record in [self.job(job)] if job else self.jobs():
            if record is not None:
                scout = {
                    "input_tokens": record.scout_input_tokens,
                    "output_tokens": record.scout_output_tokens,
                }
                by_role = add_role_usage(by_role, {"scout": scout})
        counts = {role: TokenCount(u["input_tokens"], u["output_tokens"]) for role, u in by_role.items()}
        cost = None
        if prices is not None and prices.configured:
            costs = [prices.cost(role, c.input_tokens, c.output_tokens) for role, c in counts.items()]
            cost = None if None in costs else sum(costs)
        return JobUsage(by_role=counts, rejected=rejected, cost_usd=cost)

    def job(self, name: str) -> JobRecord | None:
        row = self._db.one("SELECT * FROM jobs WHERE name = ?", (name,))
        return self._job_record(row) if row else None

    def jobs(self) -> list[JobRecord]:
        return [self._job_record(row) for row in self._db.execute("SELECT * FROM jobs ORDER BY created")]

    def _job_record(self, row: Row) -> JobRecord:
        record = JobRecord.from_row(row)
        if self.claims.shared:  # its workers say whether it runs
            record.workers = self.claims.workers(record.name, self.worker_expiry_s)
        return record

    def attempts(self, environment_id: str) -> list[AttemptRecord]:
        rows = self._db.execute(
            "SELECT * FROM attempts WHERE environment_id = ? ORDER BY number", (environment_id,)
        )
        return [AttemptRecord.from_row(row) for row in rows]
