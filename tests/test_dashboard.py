"""The live display of `resyn expand`: what a person watching the job sees of an outage."""

from __future__ import annotations

import io

from rich.console import Console

from resyn.contract import Status
from resyn.dashboard import Dashboard
from resyn.memory.records import JobCounts

DOWN = "http://127.0.0.1:8000/v1 is not answering (APIConnectionError: Connection error.): paused"


def rendered(dashboard: Dashboard) -> str:
    screen = Console(file=io.StringIO(), width=120)
    screen.print(dashboard.render())
    return screen.file.getvalue()


def test_an_outage_shows_as_paused_until_the_endpoint_answers_again() -> None:
    log = Console(file=io.StringIO(), width=200)  # not a terminal: one line per event
    counts = JobCounts({Status.ACCEPTED: 2})
    with Dashboard(log, "night", "author: m · solver: m · scout: m", 10, counts) as dashboard:
        dashboard.on_event("paused", {"line": DOWN})
        assert f"PAUSED: {DOWN}" in rendered(dashboard)
        dashboard.on_event("resumed", {"line": "http://127.0.0.1:8000/v1 answers again after 20 s: resumed"})
        assert "PAUSED" not in rendered(dashboard)
    lines = log.file.getvalue().splitlines()
    assert lines[1].endswith(f"paused {DOWN}") and lines[2].endswith("answers again after 20 s: resumed")


def test_tokens_move_as_calls_finish_and_counts_as_verdicts_arrive() -> None:
    log = Console(file=io.StringIO(), width=200)
    with Dashboard(log, "night", "author: m", 10, JobCounts({Status.ACCEPTED: 2}, 500, 100)) as dashboard:
        assert "tokens 600 ·" in rendered(dashboard)
        dashboard.on_event("start", {"line": "e1 sorting", "environment_id": "e1", "topic": "sorting"})
        dashboard.on_event(
            "stage", {"environment_id": "e1", "topic": "sorting", "node": "draft", "tokens": 1_200}
        )
        screen = rendered(dashboard)
        assert "tokens 1,200 ·" in screen and "in flight 1" in screen and "draft" in screen
        dashboard.on_event(
            "stage", {"environment_id": "e1", "topic": "sorting", "node": "validate", "tokens": None}
        )
        assert "tokens 1,200 ·" in rendered(dashboard)  # a step without an LLM call leaves it
        verdict = {
            "line": "e1 sorting: valid",
            "environment_id": "e1",
            "topic": "sorting",
            "status": Status.ACCEPTED,
            "counts": JobCounts({Status.ACCEPTED: 3}, 1_000, 400),
            "tokens": 1_400,
        }
        dashboard.on_event(Status.ACCEPTED, verdict)
        screen = rendered(dashboard)
        assert "accepted 3/10" in screen and "tokens 1,400 ·" in screen and "in flight 0" in screen


def test_no_hourly_rate_until_the_job_has_run_five_minutes() -> None:
    log = Console(file=io.StringIO(), width=200)
    with Dashboard(log, "night", "author: m", 10, JobCounts({Status.ACCEPTED: 8})) as dashboard:
        assert "tokens 0 · — accepted/h · 0:0" in rendered(dashboard)  # 8 accepted in seconds says nothing


def test_a_resumed_jobs_clock_and_rate_go_on_from_its_running_time() -> None:
    log = Console(file=io.StringIO(), width=200)
    counts = JobCounts({Status.ACCEPTED: 3}, 900, 100)
    with Dashboard(log, "night", "author: m", 10, counts, tokens=1_250, active_seconds=3_600) as dashboard:
        screen = rendered(dashboard)
        assert "tokens 1,250 · 3.0 accepted/h · 1:00:0" in screen  # the scout's tokens too; an hour run
