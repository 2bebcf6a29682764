"""What the jobs and environments pages show, as plain data: the server renders it, the tests read it.

No HTML is built here (the templates' autoescaping is the one place untrusted text meets the
page). A job's state comes from its record; an environment whose row still says `running` is
shown as `unfinished` once its job no longer runs: resuming the job continues it. One
environment's own page is in story.py, the charts' geometry in charts.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from resyn.contract import Status
from resyn.memory.library import Library
from resyn.memory.records import EnvironmentRecord, JobRecord
from resyn.settings import PriceSettings
from resyn.ui.charts import Verdict, progress_chart
from resyn.ui.story import linked_reason

PAGE_SIZE = 50  # rows on one page of an environments list
REFRESH_S = 5  # how often a page of something still running reloads itself
UNFINISHED = "unfinished"  # how a `running` row of a job that no longer runs is shown

_STATUS_ORDER = {status.value: position for position, status in enumerate(Status)}
SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "created": lambda row: row["created"],
    "updated": lambda row: row["updated"],
    "topic": lambda row: row["topic"].casefold(),
    "status": lambda row: _STATUS_ORDER.get(row["status"], len(_STATUS_ORDER)),
    "tokens": lambda row: row["tokens"],
}
FIRST_ORDER = {"created": "desc", "updated": "desc", "topic": "asc", "status": "asc", "tokens": "desc"}
DEFAULT_SORT = "created"  # newest first, as experiment trackers list their runs


class BadQuery(ValueError):
    """A list's query names a sort, order or page that does not exist (a 400, in one line)."""


@dataclass(frozen=True)
class Filters:
    """The environments list's query: filters (text fields match case-insensitively), its sort and
    the page shown."""

    status: str = ""
    topic: str = ""
    reason: str = ""
    job: str = ""
    job_in_path: bool = False  # on a job's page the job is in the path, not in the query
    sort: str = DEFAULT_SORT
    order: str = FIRST_ORDER[DEFAULT_SORT]
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str], job: str, job_in_path: bool) -> Filters:
        sort = query.get("sort") or DEFAULT_SORT
        if sort not in SORTS:
            raise BadQuery(f"unknown sort {sort!r}: sort by one of {', '.join(SORTS)}")
        order = query.get("order") or FIRST_ORDER[sort]
        if order not in ("asc", "desc"):
            raise BadQuery(f"unknown order {order!r}: asc or desc")
        page = query.get("page") or "1"
        if not page.isdigit() or int(page) < 1:
            raise BadQuery(f"page {page!r} is not a page number (1, 2, …)")
        return cls(
            status=query.get("status", ""),
            topic=query.get("topic", "").strip(),
            reason=query.get("reason", "").strip(),
            job=job,
            job_in_path=job_in_path,
            sort=sort,
            order=order,
            page=int(page),
        )

    def matches(self, record: EnvironmentRecord) -> bool:
        return (
            (not self.status or record.status == self.status)
            and (not self.job or record.job == self.job)
            and self.topic.casefold() in record.topic.casefold()
            and self.reason.casefold() in record.reason.casefold()
        )

    @property
    def narrowed(self) -> bool:
        return bool(self.status or self.topic or self.reason)

    def query(self, **changes: str | int) -> str:
        """The query string of this list with some fields changed. Defaults are left out, and any
        change but the page's goes back to page 1."""
        fields: dict[str, str | int] = {"status": self.status, "topic": self.topic, "reason": self.reason}
        if not self.job_in_path:
            fields["job"] = self.job
        fields |= {"sort": self.sort, "order": self.order, "page": self.page if "page" in changes else 1}
        fields |= changes
        if fields["order"] == FIRST_ORDER[str(fields["sort"])]:
            fields["order"] = ""
        if fields["sort"] == DEFAULT_SORT:
            fields["sort"] = ""
        if fields["page"] == 1:
            fields["page"] = ""
        return "&".join(f"{key}={quote(str(value), safe='')}" for key, value in fields.items() if value)

    def sort_query(self, column: str) -> str:
        """The query that sorts by `column`: the other way round when it is the sort already."""
        if column == self.sort:
            return self.query(sort=column, order="asc" if self.order == "desc" else "desc")
        return self.query(sort=column, order=FIRST_ORDER[column])

    def arrow(self, column: str) -> str:
        return ("▲" if self.order == "asc" else "▼") if column == self.sort else ""


@dataclass(frozen=True)
class Pagination:
    number: int  # the page shown, from 1
    size: int
    total: int  # rows that match, on every page

    @property
    def last(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_row(self) -> int:
        return min(self.total, (self.number - 1) * self.size + 1)

    @property
    def last_row(self) -> int:
        return min(self.total, self.number * self.size)

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.last else None


def paginate(rows: list[dict[str, Any]], page: int, size: int = PAGE_SIZE) -> tuple[list[dict], Pagination]:
    """One page of the rows; a page past the last shows the last."""
    last = max(1, math.ceil(len(rows) / size))
    shown = Pagination(min(page, last), size, len(rows))
    return rows[shown.first_row - 1 : shown.last_row], shown


# ---- jobs -------------------------------------------------------------------------------------------


def job_rows(library: Library, prices: PriceSettings | None = None) -> list[dict[str, Any]]:
    environments = library.environments()
    return [job_row(library, record, environments, prices) for record in library.jobs()]


def job_row(
    library: Library,
    record: JobRecord,
    environments: list[EnvironmentRecord],
    prices: PriceSettings | None = None,
) -> dict[str, Any]:
    """A job's state, counts and tokens (`Library.job_usage`: the numbers `resyn jobs` prints).
    Its syntheses in flight are `running` while it runs and `unfinished` once it stopped; its last
    update is its latest news (a verdict, a scout call, a step of a synthesis in flight)."""
    counts, usage = library.job_counts(record.name), library.job_usage(record.name, prices)
    state = record.state
    by_status = counts.present()
    by_status.pop(Status.RUNNING, None)
    mine = [environment for environment in environments if environment.job == record.name]
    return {
        "name": record.name,
        "state": state,
        "live": state == "running",
        "accepted": counts.accepted,
        "target": record.options.get("target"),
        "tried": counts.tried,
        "by_status": by_status,
        "running": counts.running if state == "running" else 0,
        "unfinished": 0 if state == "running" else counts.running,
        "tokens": usage.total,
        "tokens_by_role": {role: count.total for role, count in usage.by_role.items() if count.total},
        "rejected_tokens": usage.rejected,
        "cost_usd": usage.cost_usd,
        "priced": prices is not None and prices.configured,
        "seeds": record.options.get("seed_topics", []),
        "stop_reason": record.stop_reason,
        "created": record.created,
        "updated": max([record.updated, *(environment.updated for environment in mine)]),
    }


def job_log(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's own events (start, scout, verdicts, stop) as lines with their time."""
    first = events[0]["started"] if events else 0.0
    return [
        {
            "offset": event["started"] - first,
            "name": event["name"],
            "line": event["data"].get("line", ""),
            "environment_id": event["data"].get("environment_id"),
        }
        for event in events
    ]


def job_progress(
    job: dict[str, Any], events: list[dict[str, Any]], environments: list[EnvironmentRecord], now: float
) -> dict[str, Any] | None:
    """The job's progress chart, from its start to its latest news (to now while it runs): each
    verdict at its environment's last update; the job's tokens as its verdict and scout events
    counted them, up to its total now; its resumes marked."""
    verdicts = [
        Verdict(record.id, record.status, record.updated)
        for record in environments
        if record.job == job["name"] and record.status != Status.RUNNING
    ]
    end = now if job["live"] else job["updated"]
    tokens = [(event["started"], event["data"]["tokens"]) for event in events if "tokens" in event["data"]]
    resumes = [
        event["started"]
        for event in events
        if event["name"] == "job" and event["data"].get("line", "").startswith("resumed")
    ]
    return progress_chart(
        verdicts, [*tokens, (end, job["tokens"])], job["created"], end, resumes, job["target"]
    )


# ---- environments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentList:
    rows: list[dict[str, Any]]  # the environments that match, sorted
    counts: dict[str, int]  # per shown status, in the scope (all, or one job's), unfinished apart
    in_progress: list[dict[str, Any]]  # the scope's running or unfinished ones, oldest first


def environment_list(library: Library, filters: Filters) -> EnvironmentList:
    states = {record.name: record.state for record in library.jobs()}
    scope = [record for record in library.environments() if not filters.job or record.job == filters.job]
    rows = [environment_row(record, states) for record in scope]
    counts = Counter(row["shown_status"] for row in rows)
    shown_order = [Status.RUNNING.value, UNFINISHED, *(status.value for status in Status)]
    matched = [row for row, record in zip(rows, scope, strict=True) if filters.matches(record)]
    matched.sort(key=SORTS[filters.sort], reverse=filters.order == "desc")
    return EnvironmentList(
        rows=matched,
        counts={status: counts[status] for status in dict.fromkeys(shown_order) if counts[status]},
        in_progress=[row for row in rows if row["status"] == Status.RUNNING],
    )


def environment_row(record: EnvironmentRecord, job_states: dict[str, str]) -> dict[str, Any]:
    """One environment's row. A synthesis in flight shows the last step it finished and its tokens
    so far (its library row grows as its steps end)."""
    running = record.status == Status.RUNNING
    live = running and job_states.get(record.job or "", "running") == "running"
    return {
        "id": record.id,
        "name": record.name or "",
        "topic": record.topic,
        "status": record.status,
        "shown_status": UNFINISHED if running and not live else record.status,
        "live": live,
        "step": f"after {record.step}" if running and record.step else "",
        "reason_parts": linked_reason(record.reason),
        "job": record.job,
        "tokens": record.tokens,
        "created": record.created,
        "updated": record.updated,
    }


def status_filter(shown_status: str) -> str:
    """The `status=` value that lists the rows shown with this status."""
    return Status.RUNNING.value if shown_status == UNFINISHED else shown_status
