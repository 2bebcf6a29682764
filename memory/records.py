"""What the library hands back: typed records of its rows, and the tallies it counts from them.

`Library` (memory/library.py) stores and queries; these are the values it returns. A record is
built from its SQLite row with `from_row`, which decodes the columns `Library` stores as JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from resyn.contract import Status, ValidationReport
from resyn.memory.job_claims import WorkerRecord

RoleUsage = dict[str, dict[str, int]]  # role -> {"input_tokens": n, "output_tokens": n}
ROLES = ("author", "solver", "scout")
UNATTRIBUTED = "unattributed"  # tokens of rows written before resyn kept usage by role


class EnvironmentRecord(BaseModel):
    id: str
    topic: str
    name: str | None
    description: str | None
    status: str  # a Status value, kept a plain str: model_dump() and graph state hold plain text
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
    step: str | None = None  # the synthesis's last finished step (draft, validate, solve, …)
    role_usage: RoleUsage | None = None  # the tokens above by role; None in rows of an older resyn
    created: float
    updated: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EnvironmentRecord:
        values: dict[str, Any] = dict(row)
        values.pop("embedding", None)
        values["report"] = _report(values["report"])
        values["pass_rates"] = json.loads(values["pass_rates"]) if values["pass_rates"] else None
        values["contamination"] = json.loads(values["contamination"]) if values.get("contamination") else None
        values["role_usage"] = json.loads(values["role_usage"]) if values.get("role_usage") else None
        return cls(**values)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class JobRecord(BaseModel):
    name: str
    options: dict[str, Any]
    status: str  # running, interrupted, failed (resyn's own fault; resumable), finished
    stop_reason: str
    pid: int | None
    scout_input_tokens: int = 0  # mirrored from the job's own record (graph/job_record.py)
    scout_output_tokens: int = 0
    active_seconds: float = 0.0  # running time over every process that ran it, downtime excluded
    created: float
    updated: float  # the last verdict, scout call or change of state
    workers: list[WorkerRecord] = []  # on a shared database: every worker that ran it

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        values: dict[str, Any] = dict(row)
        values["options"] = json.loads(values["options"])
        return cls(**values)

    @property
    def state(self) -> str:
        """The status, except that a job marked running whose process is gone shows as `stopped`
        (killed, or the machine went down): resumable. On a shared database it runs while any of
        its workers beats (they may be on other machines: their pids say nothing here)."""
        if self.status == "running" and self.workers:
            return "running" if any(worker.alive for worker in self.workers) else "stopped"
        if self.status != "running" or self.pid is None:
            return self.status
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return "stopped"
        except PermissionError:
            pass  # alive, under another user
        return self.status


class AttemptRecord(BaseModel):
    number: int
    kind: str
    source: str | None
    report: ValidationReport | None
    problem: str | None
    created: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AttemptRecord:
        return cls(
            number=row["number"],
            kind=row["kind"],
            source=row["source"],
            report=_report(row["report"]),
            problem=row["problem"],
            created=row["created"],
        )


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


@dataclass(frozen=True)
class JobCounts:
    """One job's environments by status and the tokens they used (`Library.job_counts`)."""

    by_status: Mapping[Status, int] = field(default_factory=dict)  # a status absent here has none
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def accepted(self) -> int:
        return self.by_status.get(Status.ACCEPTED, 0)

    @property
    def tried(self) -> int:
        """Every environment the job has started, the ones in flight (`running`) included: the
        `--max-environments` budget counts syntheses started, and so does a listing."""
        return sum(self.present().values())

    @property
    def running(self) -> int:
        """Syntheses in flight, or, for a job that is not running, left unfinished for `--resume`."""
        return self.by_status.get(Status.RUNNING, 0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def present(self) -> dict[Status, int]:
        """The statuses the job has environments in, with how many, in Status order."""
        return {status: count for status in Status if (count := self.by_status.get(status, 0))}

    def as_dict(self) -> dict[str, int]:
        """The flat form JSON output carries: every status (zeros too) in order, then the tokens."""
        counts = {status.value: self.by_status.get(status, 0) for status in Status}
        return counts | {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class TokenCount:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class JobUsage:
    """One job's LLM tokens (`Library.job_usage`): the one count every surface shows.

    Its environments' tokens (the finished ones', and what the running ones used so far) and its
    scout's. `by_role` has author, solver and scout, and `unattributed` only when the job has rows
    from a resyn older than usage by role; its values sum to `total`. `rejected` is the tokens of
    its finished environments that were not accepted. `cost_usd` is estimated from the price
    settings, None when a role that used tokens has no price (shown as "—")."""

    by_role: Mapping[str, TokenCount]
    rejected: int = 0
    cost_usd: float | None = None

    @property
    def input_tokens(self) -> int:
        return sum(count.input_tokens for count in self.by_role.values())

    @property
    def output_tokens(self) -> int:
        return sum(count.output_tokens for count in self.by_role.values())

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: totals, tokens by role (input, output, total), rejected, cost."""
        roles = {
            role: {"input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "total": c.total}
            for role, c in self.by_role.items()
        }
        return {
            "total": self.total,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "by_role": roles,
            "rejected": self.rejected,
            "cost_usd": self.cost_usd,
        }


def add_role_usage(total: RoleUsage, more: RoleUsage) -> RoleUsage:
    """Tokens by role, added up role by role."""
    roles = dict.fromkeys([*total, *more])
    return {
        role: {
            key: total.get(role, {}).get(key, 0) + more.get(role, {}).get(key, 0)
            for key in ("input_tokens", "output_tokens")
        }
        for role in roles
    }


def usage_totals(role_usage: RoleUsage) -> dict[str, int]:
    """Input and output tokens over every role."""
    return {
        key: sum(usage.get(key, 0) for usage in role_usage.values())
        for key in ("input_tokens", "output_tokens")
    }


def _report(text: str | None) -> ValidationReport | None:
    return ValidationReport.model_validate_json(text) if text else None
