"""The live display of `resyn expand`: counts, tokens, rate, what is in flight, recent events.

It is fed the job's events (the same ones written to the job's log file). On a terminal it
redraws in place with rich's `Live`; elsewhere (CI, a pipe) it prints each event as a line.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from resyn.contract import Status
from resyn.memory.records import JobCounts
from resyn.views import status_text

_SHOWN_STATUSES = [status for status in Status if status.finished and status is not Status.ACCEPTED]
_RECENT = 6


class Dashboard:
    def __init__(self, console: Console, job: str, models: str, target: int, counts: JobCounts) -> None:
        self.console = console
        self.job, self.models, self.target = job, models, target
        self.by_status: dict[str, int] = dict(counts.by_status)  # as of the last verdict
        self.accepted_at_start = counts.accepted
        self.started = time.monotonic()
        self.in_flight: dict[str, tuple[str, str]] = {}  # environment id -> (topic, stage)
        self.recent: deque[Text] = deque(maxlen=_RECENT)
        self.tokens = counts.tokens  # the job's, scouting included, as each LLM call finishes
        self.paused: str | None = None  # why the job waits: an endpoint that does not answer
        self.live = Live(console=console, refresh_per_second=4, auto_refresh=True, transient=False)

    def __enter__(self) -> Dashboard:
        if self.console.is_terminal:
            self.live.update(self.render())
            self.live.__enter__()
        else:
            self.console.print(self.header(), soft_wrap=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.console.is_terminal:
            self.live.update(self.render())
            self.live.__exit__(*exc_info)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        identifier = data.get("environment_id")
        if data.get("tokens") is not None:
            self.tokens = data["tokens"]
        if kind == "start":
            self.in_flight[identifier] = (data["topic"], "draft")
        elif kind == "stage" and identifier in self.in_flight:
            self.in_flight[identifier] = (data["topic"], data["node"])
        elif kind in ("paused", "resumed"):
            self.paused = data["line"] if kind == "paused" else None
        elif "status" in data:
            self.in_flight.pop(identifier, None)
            self.by_status = dict(data["counts"].by_status)
        if kind == "stage":
            if self.console.is_terminal:
                self.live.update(self.render())
            return
        line = Text.assemble((f"{time.strftime('%H:%M:%S')} ", "dim"), status_text(kind), f" {data['line']}")
        self.recent.append(line)
        if self.console.is_terminal:
            self.live.update(self.render())
        else:
            self.console.print(line, soft_wrap=True, highlight=False)

    def rate_per_hour(self) -> float:
        hours = (time.monotonic() - self.started) / 3600
        return (self.by_status.get(Status.ACCEPTED, 0) - self.accepted_at_start) / hours if hours > 0 else 0.0

    def header(self) -> Text:
        return Text(f"expand {self.job} · {self.models}", style="bold")

    def render(self) -> Group:
        counts = Text()
        counts.append(f"accepted {self.by_status.get(Status.ACCEPTED, 0)}/{self.target}", style="bold green")
        for status in _SHOWN_STATUSES:
            counts.append(f" · {status.replace('_', ' ')} {self.by_status.get(status, 0)}")
        elapsed = time.monotonic() - self.started
        status_line = Text(
            f"tokens {self.tokens:,} · {self.rate_per_hour():.1f} accepted/h · "
            f"{int(elapsed // 60)}:{int(elapsed % 60):02d} elapsed · in flight {len(self.in_flight)}",
            style="dim",
        )
        flight = Table(box=None, show_header=False, padding=(0, 1))
        for identifier, (topic, stage) in list(self.in_flight.items()):
            flight.add_row(identifier, Text(topic, overflow="ellipsis"), Text(stage, style="cyan"))
        paused = [Text(f"PAUSED: {self.paused}", style="bold yellow")] if self.paused else []
        return Group(self.header(), counts, status_line, *paused, flight, *self.recent)
