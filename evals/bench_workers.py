"""Benchmark: accepted environments per minute with 1, 2 and 4 workers on one PostgreSQL job.

    python -m resyn.evals.bench_workers [--latency 2.0] [--per-worker 16] [--concurrency 4]

Each run is `resyn expand` processes as users start them, each with its own workspace folder (as on
separate machines: its own kernels and embedder) and, for the PostgreSQL runs, one database of a
throwaway cluster (resyn/testing/postgres.py) in common. The endpoint is the scripted world behind a
loopback OpenAI-compatible server that waits `--latency` seconds per call, with room for every
call at once: the work is latency-bound, as against a real model's server, so it scales on two
cores. The target grows with the workers (`--per-worker` each). A run's rate is its accepted
environments over the span of its environments (the first `created` to the last `updated`), so the
workers' start (the embedder's load, the kernels' start) is left out. Beside them, the same job on
the SQLite workspace with one worker.

Goal (issue 18): N workers reach ≥ 0.9 × N × the single worker's rate up to 4, and one worker on
PostgreSQL is no slower than on SQLite by more than 10 %. As in bench_expansion, each topic is tried
once and near-duplicates are judged at 0.99: the scripted author writes one of a few puzzles per
topic, and the benchmark measures the scheduling, not the fake's repetitiveness.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resyn.memory.library import Library
from resyn.testing.fake_openai import FakeOpenAI, scripted_world_reply
from resyn.testing.jobs import job_environment, start_resyn
from resyn.testing.postgres import fresh_database, server_binaries, throwaway_cluster

SEEDS = "logic puzzles, graph algorithms, scheduling"


@dataclass(frozen=True)
class Run:
    workers: int
    accepted: int
    tried: int
    span_s: float

    @property
    def per_minute(self) -> float:
        return 60 * self.accepted / self.span_s


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
    library = Library(folder / "worker-0", read_only=True, database_url=database_url)
    try:
        counts = library.job_counts("scale")
        spans = [(e.created, e.updated) for e in library.environments() if e.job == "scale"]
    finally:
        library.close()
    span = max(end for _, end in spans) - min(start for start, _ in spans)
    return Run(workers, counts.accepted, counts.tried, span)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per LLM call")
    parser.add_argument("--per-worker", type=int, default=16, help="accepted environments per worker")
    parser.add_argument("--concurrency", type=int, default=4, help="syntheses in flight per worker")
    parser.add_argument("--workers", default="1,2,4", help="worker counts on PostgreSQL")
    arguments = parser.parse_args()
    binaries = server_binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL is not installed (initdb not found): apt-get install postgresql")
    counts = [int(count) for count in arguments.workers.split(",")]
    with (
        tempfile.TemporaryDirectory() as folder,
        throwaway_cluster(binaries) as server_url,
        FakeOpenAI(scripted_world_reply, latency_s=arguments.latency) as server,
    ):
        target = arguments.per_worker

        def run(workers: int, database_url: str | None) -> Run:
            where = Path(folder) / f"{'postgres' if database_url else 'sqlite'}-{workers}"
            return run_workers(server, where, workers, target * workers, arguments.concurrency, database_url)

        sqlite = run(1, None)
        postgres = [run(workers, fresh_database(server_url)) for workers in counts]
    single = postgres[0].per_minute
    table = Table(
        title=f"workers on one job: {arguments.concurrency} in flight each, {arguments.latency} s per call;"
        " goal: ≥ 0.9 × N × one worker's rate"
    )
    for column in ("storage", "workers", "accepted", "tried", "span s", "accepted/min", "× one worker"):
        table.add_column(column, justify="right")
    table.add_row("SQLite", "1", str(sqlite.accepted), str(sqlite.tried), f"{sqlite.span_s:.1f}",
                  f"{sqlite.per_minute:.1f}", f"{sqlite.per_minute / single:.2f}")  # fmt: skip
    for figures in postgres:
        table.add_row("PostgreSQL", str(figures.workers), str(figures.accepted), str(figures.tried),
                      f"{figures.span_s:.1f}", f"{figures.per_minute:.1f}",
                      f"{figures.per_minute / single:.2f}")  # fmt: skip
    Console(width=130).print(table)
    for figures in postgres[1:]:
        share = figures.per_minute / (figures.workers * single)
        print(
            f"{figures.workers} workers: {share:.0%} of {figures.workers} × one worker's rate (goal ≥ 90 %)"
        )
    print(f"one worker on PostgreSQL: {single / sqlite.per_minute:.0%} of SQLite's rate (goal ≥ 90 %)")


if __name__ == "__main__":
    main()
