"""The live display of `resyn expand`: counts, tokens, rate, what is in flight, recent events.

It is fed the job's events (the same ones written to the job's log file). On a terminal it
redraws in place with rich's `Live`; elsewhere (CI, a pipe) it prints each event as a line. Its
token count is the job's (`Library.job_usage`), moved by every event that carries it: each finished
LLM call's step, each verdict, each scout call. Its clock is the job's running time over every
process that ran it, so a resumed job's elapsed time goes on from where it stopped.
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
_RATE_AFTER_S = 300  # an hourly rate from a shorter run is an extrapolation, not a measurement


class Dashboard:
    def __init__(
        self,
        console: Console,
        job: str,
        models: str,
        target: int,
        counts: JobCounts,
        tokens: int | None = None,
        active_seconds: float = 0.0,
    ) -> None:
        """`tokens`: the job's so far (`Library.job_usage(job).total`; default: its environments');
        `active_seconds`: its running time before this process."""
        self.console = console
        self.job, self.models, self.target = job, models, target
        self.by_status: dict[str, int] = dict(counts.by_status)  # as of the last verdict
        self.earlier_seconds = active_seconds
        self.started = time.monotonic()
        self.in_flight: dict[str, tuple[str, str]] = {}  # environment id -> (topic, stage)
        self.recent: deque[Text] = deque(maxlen=_RECENT)
        self.tokens = counts.tokens if tokens is None else tokens  # scouting included, per LLM call
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

    def elapsed(self) -> float:
        """The job's running time, this process's included."""
        return self.earlier_seconds + time.monotonic() - self.started

    def rate_per_hour(self) -> float | None:
        """Accepted environments per hour of running time; None while the job is too young to say."""
        elapsed = self.elapsed()
        if elapsed < _RATE_AFTER_S:
            return None
        return self.by_status.get(Status.ACCEPTED, 0) / (elapsed / 3600)

    def header(self) -> Text:
        return Text(f"expand {self.job} · {self.models}", style="bold")

    def render(self) -> Group:
        counts = Text()
        counts.append(f"accepted {self.by_status.get(Status.ACCEPTED, 0)}/{self.target}", style="bold green")
        for status in _SHOWN_STATUSES:
            counts.append(f" · {status.replace('_', ' ')} {self.by_status.get(status, 0)}")
        elapsed, rate = self.elapsed(), self.rate_per_hour()
        status_line = Text(
            f"tokens {self.tokens:,} · {'—' if rate is None else f'{rate:.1f}'} accepted/h · "
            f"{_clock(elapsed)} elapsed · in flight {len(self.in_flight)}",
            style="dim",
        )
        flight = Table(box=None, show_header=False, padding=(0, 1))
        for identifier, (topic, stage) in list(self.in_flight.items()):
            flight.add_row(identifier, Text(topic, overflow="ellipsis"), Text(stage, style="cyan"))
        paused = [Text(f"PAUSED: {self.paused}", style="bold yellow")] if self.paused else []
        return Group(self.header(), counts, status_line, *paused, flight, *self.recent)


def _clock(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
