"""One count of a job's tokens everywhere: the live dashboard, `resyn jobs`, `Library.job_usage`
and `resyn report --job` agree, move as each LLM call finishes, and split by role into the total.
A job stopped as by Ctrl-C says so, with what `--resume` will continue."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from resyn.agents.llm import ChatEndpoint
from resyn.commands.expand import job_rows, jobs_view
from resyn.contract import Status
from resyn.dashboard import Dashboard
from resyn.evals.report import build_report
from resyn.graph.expansion import JobOptions, expand
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.settings import PriceSettings, Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel

SEEDS = ["logic puzzles", "graph algorithms", "scheduling"]
PROBES = 3 * 5  # probe instances per difficulty × difficulties


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def job_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": tmp_path, "synthesis": SynthesisSettings(max_repairs=0, probe_instances=3)}
    )


def endpoints() -> dict[str, ChatEndpoint]:
    limiter = asyncio.Semaphore(8)
    return {
        role: ChatEndpoint(
            role, f"scripted-{role}", ScriptedChatModel(script=scripted_world.reply_for(role)), limiter
        )
        for role in ("author", "solver", "scout")
    }


def screen(renderable: Any, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(renderable)
    return console.file.getvalue()


async def test_every_surface_shows_the_same_tokens_as_each_call_finishes(
    job_settings: Settings, embedder: Embedder
) -> None:
    stages: list[tuple[str, str, int | None]] = []  # (environment id, node, the job's tokens then)
    updated: list[float] = []
    quiet = Console(file=io.StringIO(), width=120)
    options = JobOptions(name="job-20261202-164100", seed_topics=SEEDS, target=3, concurrency=2)
    async with open_runtime(job_settings, endpoints(), embedder) as runtime:
        library = runtime.library
        with Dashboard(quiet, options.name, "scripted", 3, library.job_counts(options.name)) as dashboard:

            def on_event(kind: str, data: dict[str, Any]) -> None:
                dashboard.on_event(kind, data)
                if kind == "stage":
                    stages.append((data["environment_id"], data["node"], data["tokens"]))
                    row = library.get(data["environment_id"])
                    if row.status == Status.RUNNING:  # the running row shows its step and tokens so far
                        assert row.step == data["node"]
                if "counts" in data:
                    updated.append(library.job(options.name).updated)

            _options, reason = await expand(runtime, options, on_event=on_event)
        usage = library.job_usage(options.name)
        [listed] = job_rows(library, PriceSettings())
        reported = build_report(library, job=options.name)
        rejected = [row.tokens for row in library.environments() if row.status != Status.ACCEPTED]
    assert reason == "target reached: 3 accepted"

    assert dashboard.tokens == usage.total == listed["tokens"] == reported.tokens["total"]
    assert listed["usage"]["total"] == usage.total and listed["usage"]["cost_usd"] is None
    assert set(usage.by_role) == {"author", "solver", "scout"}  # nothing written by an older resyn
    assert sum(count.total for count in usage.by_role.values()) == usage.total
    assert all(count.total > 0 for count in usage.by_role.values())
    assert reported.tokens["scout"] == usage.by_role["scout"].total
    assert usage.rejected == sum(rejected)

    # one synthesis's probe: the job's count moved with each answer, not once for the probe
    first = stages[0][0]
    solved = [tokens for identifier, node, tokens in stages if identifier == first and node == "solve"]
    assert len(solved) == PROBES and None not in solved
    assert len(set(solved)) == PROBES
    assert updated == sorted(updated) and len(set(updated)) > 1  # it moves while the job runs


async def test_prices_give_a_cost_and_a_missing_price_gives_none(tmp_path: Path) -> None:
    library = Library(tmp_path)
    library.save_job("j", {"target": 1}, "running")
    library.start("e1", "sorting", "m", "m", job="j")
    library.progress("e1", "draft", {"author": {"input_tokens": 1_000_000, "output_tokens": 500_000}})
    library.record_job_progress("j", {"input_tokens": 2_000_000, "output_tokens": 0}, 10.0)
    priced = PriceSettings(author_input=1.0, author_output=4.0, scout_input=0.5)
    assert library.job_usage("j", priced).cost_usd == pytest.approx(1.0 + 2.0 + 1.0)
    assert library.job_usage("j", PriceSettings(author_input=1.0)).cost_usd is None  # outputs unpriced
    assert library.job_usage("j").total == 3_500_000 and library.job("j").active_seconds == 10.0


async def test_a_job_stopped_as_by_ctrl_c_is_interrupted_with_its_unfinished_work(
    job_settings: Settings, embedder: Embedder
) -> None:
    name = "job-20261202-170000"
    options = JobOptions(name=name, seed_topics=SEEDS, target=6, concurrency=3)
    first_verdict = asyncio.Event()

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if "counts" in data:
            first_verdict.set()

    async with open_runtime(job_settings, endpoints(), embedder) as runtime:
        job = asyncio.create_task(expand(runtime, options, on_event=on_event))
        await first_verdict.wait()
        job.cancel()  # what Ctrl-C does to the running job
        with pytest.raises(asyncio.CancelledError):
            await job
        library = runtime.library
        [row] = job_rows(library, PriceSettings())
        running = library.environments(status=Status.RUNNING)
        assert library.job_usage(name).total == row["tokens"]
    assert row["state"] == "interrupted" and row["unfinished"] == len(running) > 0
    assert all(environment.step for environment in running)  # each shows the step it got to
    assert row["active_seconds"] > 0

    shown = screen(jobs_view([row], 80))
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert f"{name}: interrupted; {len(running)} unfinished, resumed by --resume" in shown
    assert f"  resyn expand --resume {name}" in shown
    assert "running" not in shown


def test_the_jobs_table_fits_80_columns_by_dropping_columns_not_names() -> None:
    usage = {"total": 1_234_567, "cost_usd": 12.5}
    rows = [
        {"job": f"nightly-expansion-of-logic-puzzles-{n}", "state": "finished", "accepted": 500,
         "target": 500, "tried": 1_234, "unfinished": 0, "tokens": 123_456_789, "usage": usage,
         "stop_reason": "target reached: 500 accepted", "updated": 1.8e9, "workers": []}
        for n in range(2)
    ]  # fmt: skip
    narrow, wide = screen(jobs_view(rows, 80)), screen(jobs_view(rows, 160), 160)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "nightly-expansion-of-logic-puzzles-1" in narrow and "500/500" in narrow
    assert "$12.50" not in narrow and "$12.50" in wide  # what a narrow terminal goes without
    assert "nightly-expansion-of-logic-puzzles-0: target reached: 500 accepted" in narrow


def test_a_library_of_an_older_resyn_is_upgraded_and_its_tokens_kept_unattributed(tmp_path: Path) -> None:
    library = Library(tmp_path)
    library.save_job("old", {"target": 1}, "finished", "target reached: 1 accepted")
    library.start("e1", "sorting", "m", "m", job="old")
    library.finish(
        "e1", status="accepted", reason="ok", source=None, report=None, pass_rates=None,
        usage={"input_tokens": 300, "output_tokens": 100},
    )  # fmt: skip
    library.close()
    with sqlite3.connect(tmp_path / "library.sqlite") as db:  # as a resyn before usage by role wrote it
        for table, column in [("environments", "step"), ("environments", "role_usage"),
                              ("jobs", "scout_input_tokens"), ("jobs", "scout_output_tokens"),
                              ("jobs", "active_seconds")]:  # fmt: skip
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("ALTER TABLE environments DROP COLUMN worker")
        for table in ("alembic_version", "workers", "topic_graph"):  # that resyn had no migrations
            db.execute(f"DROP TABLE {table}")
    upgraded = Library(tmp_path, read_only=True)
    usage = upgraded.job_usage("old")
    assert usage.total == 400 and usage.by_role["unattributed"].total == 400
    assert upgraded.job("old").active_seconds == 0.0 and upgraded.get("e1").step is None
