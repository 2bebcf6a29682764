"""Benchmark: accepted environments per minute with 1, 2 and 4 workers on one PostgreSQL job.

    python -m resyn.evals.bench_workers [--latency 6.0] [--spread 0.3] [--per-worker 20] [--concurrency 4]

Each run is `resyn expand` processes as users start them, each with its own workspace folder (as on
separate machines: its own kernels and embedder) and, for the PostgreSQL runs, one database of a
throwaway cluster (resyn/testing/postgres.py) in common. The endpoint is the scripted world behind a
loopback OpenAI-compatible server that waits about `--latency` seconds per call, with room for every
call at once: the work is latency-bound, as against a real model's server, so it scales on two
cores. The target grows with the workers (`--per-worker` each). Each call's latency is drawn from
a lognormal around `--latency` (`--spread` is the log's sigma; seeded, so repeatable), as a real
server's replies spread with their length. `--spread 0` fixes it: then every synthesis of every
worker runs in lockstep, so their CPU work between two calls (validation in the kernels, the
embedder) comes in bursts of all of them at once, the worst case for workers sharing cores.

The rate is the job's accepted environments over the span of its environments (the first
`created` to the last `updated`), so the first worker's start (the embedder's load, the kernels'
start) is left out but the later workers' is not: on one machine they load while the first
already works. Beside it, as diagnostics: the mean time of one synthesis (it grows when the
workers' kernels and embedders contend for this machine's two cores), and the rate and the share
of busy slots while every worker was at work (from the last worker's first synthesis to the first
worker's last verdict; counted in whole verdicts, so it moves by a wave of them).

Goal (issue 18): N workers reach ≥ 0.9 × N × the single worker's rate up to 4, and one worker on
PostgreSQL is no slower than on SQLite by more than 10 %. As in bench_expansion, each topic is
tried once and near-duplicates are judged at 0.99: the scripted author writes one of a few puzzles
per topic, and the benchmark measures the scheduling, not the fake's repetitiveness. For the same
reason the job starts with 150 seed topics, so the scripted scout's supply never limits a run.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from resyn.memory.workspace import Workspace
from resyn.testing.fake_openai import FakeOpenAI, LognormalLatency, scripted_world_reply
from resyn.testing.jobs import job_environment, start_resyn
from resyn.testing.postgres import fresh_database, server_binaries, throwaway_cluster
from resyn.testing.scripted_world import topic_vocabulary

# seed topics enough for every run's target: the scout's supply is not what is measured
SEEDS = ", ".join(topic_vocabulary()[::2])


@dataclass(frozen=True)
class Run:
    workers: int
    accepted: int
    tried: int
    span_s: float
    steady_accepted: int  # accepted while every worker was at work
    steady_s: float
    busy_slot_s: float  # seconds of syntheses in flight within the steady window, all slots together
    mean_synthesis_s: float

    @property
    def per_minute(self) -> float:
        return 60 * self.accepted / self.span_s

    @property
    def steady_per_minute(self) -> float:
        return 60 * self.steady_accepted / self.steady_s


def measured(rows: list[Any], workers: int) -> Run:
    """A run's figures from its environments' rows (worker, status, created, updated)."""
    by_worker: dict[str, list[Any]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"], []).append(row)
    if len(by_worker) != workers:
        raise SystemExit(f"{len(by_worker)} of {workers} workers synthesized: raise --per-worker")
    first = min(row["created"] for row in rows)
    last = max(row["updated"] for row in rows)
    all_at_work = max(min(row["created"] for row in mine) for mine in by_worker.values())
    one_done = min(max(row["updated"] for row in mine) for mine in by_worker.values())
    accepted = [row for row in rows if row["status"] == "accepted"]
    steady = [row for row in accepted if all_at_work <= row["updated"] <= one_done]
    if one_done <= all_at_work or not steady:
        raise SystemExit("the workers were never all at work at once: raise --per-worker")
    busy = sum(max(0.0, min(row["updated"], one_done) - max(row["created"], all_at_work)) for row in rows)
    mean = sum(row["updated"] - row["created"] for row in rows) / len(rows)
    return Run(
        workers, len(accepted), len(rows), last - first, len(steady), one_done - all_at_work, busy, mean
    )


def run_workers(server: FakeOpenAI, folder: Path, workers: int, target: int, concurrency: int,
                database_url: str | None) -> Run:  # fmt: skip
    """`workers` processes of one job to its target; its figures, read back from the library."""
    settings = {
        "RESYN_LLM_MAX_CONCURRENCY": "256",
        "RESYN_EXPANSION_DUPLICATE_THRESHOLD": "0.99",
        "RESYN_EXPANSION_FRONTIER": '{"max_topic_attempts": 1}',
        **({"RESYN_DATABASE_URL": database_url} if database_url else {}),
    }
    job = ["expand", "--job", "scale", "--seed-topics", SEEDS, "--target", str(target),
           "--concurrency", str(concurrency)]  # fmt: skip
    processes = [
        start_resyn(job_environment(server, folder / f"worker-{number}", **settings), *job)
        for number in range(workers)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise SystemExit(f"resyn expand failed ({process.returncode}): {stderr.strip()[-400:]}")
    database = Workspace(folder / "worker-0", database_url).open_library(read_only=True)
    try:
        query = "SELECT worker, status, created, updated FROM environments WHERE job = ?"
        rows = database.execute(query, ("scale",))
    finally:
        database.close()
    figures = measured(rows, workers)
    if figures.accepted < target:
        raise SystemExit(f"the job stopped short: {figures.accepted} of its target {target} accepted")
    return figures


def latency(median_s: float, spread: float) -> Callable[[dict[str, Any]], float]:
    if not spread:
        return lambda _request: median_s
    return LognormalLatency({role: median_s for role in ("author", "solver", "scout")}, sigma=spread)


def share_of_n_singles(figures: Run, single_per_minute: float) -> float:
    return figures.per_minute / (figures.workers * single_per_minute)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=6.0, help="seconds per LLM call")
    parser.add_argument("--spread", type=float, default=0.3, help="lognormal sigma of the latency (0: fixed)")
    parser.add_argument("--per-worker", type=int, default=20, help="accepted environments per worker")
    parser.add_argument("--concurrency", type=int, default=4, help="syntheses in flight per worker")
    parser.add_argument("--workers", default="1,2,4", help="worker counts on PostgreSQL")
    arguments = parser.parse_args()
    binaries = server_binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL is not installed (initdb not found): apt-get install postgresql")
    counts = sorted({1, *(int(count) for count in arguments.workers.split(","))})  # 1: the baseline
    with (
        tempfile.TemporaryDirectory() as folder,
        throwaway_cluster(binaries) as server_url,
        FakeOpenAI(scripted_world_reply, latency=latency(arguments.latency, arguments.spread)) as server,
    ):
        target = arguments.per_worker

        def run(workers: int, database_url: str | None) -> Run:
            where = Path(folder) / f"{'postgres' if database_url else 'sqlite'}-{workers}"
            return run_workers(server, where, workers, target * workers, arguments.concurrency, database_url)

        sqlite = run(1, None)
        postgres = [run(workers, fresh_database(server_url)) for workers in counts]
    single = postgres[0].per_minute
    table = Table(
        title=f"workers on one job: {arguments.concurrency} in flight each, {arguments.latency} s per call"
        f"{f' (lognormal, sigma {arguments.spread})' if arguments.spread else ''};"
        " goal: ≥ 0.9 × N × one worker's rate"
    )
    columns = ("storage", "workers", "accepted", "tried", "span s", "accepted/min", "÷ (N × one)",
               "s/synthesis", "all at work: acc./min", "slots busy")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for storage, figures in [("SQLite", sqlite), *(("PostgreSQL", figures) for figures in postgres)]:
        busy = figures.busy_slot_s / (figures.steady_s * figures.workers * arguments.concurrency)
        table.add_row(
            storage, str(figures.workers), str(figures.accepted), str(figures.tried),
            f"{figures.span_s:.1f}", f"{figures.per_minute:.1f}",
            f"{share_of_n_singles(figures, single):.2f}", f"{figures.mean_synthesis_s:.1f}",
            f"{figures.steady_per_minute:.1f}", f"{busy:.0%}",
        )  # fmt: skip
    Console(width=140).print(table)
    for figures in postgres[1:]:
        share = share_of_n_singles(figures, single)
        workers = figures.workers
        print(f"{workers} workers: {share:.0%} of {workers} × one worker's rate (goal ≥ 90 %)")
    print(f"one worker on PostgreSQL: {single / sqlite.per_minute:.0%} of SQLite's rate (goal ≥ 90 %)")


if __name__ == "__main__":
    main()
