"""Benchmark: the expansion job's throughput and its memory over a long run, on scripted models.

    python -m resyn.evals.bench_expansion [--latency 0.5] [--target 50] [--uneven-target 32]
                                          [--cli-target 100] [--memory-environments 1000]

1. Throughput, two jobs of 8 syntheses in flight (`--concurrency 8`):
   - fixed latency: every call of the in-process scripted world takes `--latency` seconds, 8 calls
     at a time (the endpoint's limit is the job's concurrency);
   - uneven latency, as a real model's: a loopback OpenAI-compatible server whose latencies are
     lognormal (σ 0.6) around 1.0 s for the author and the scout and 0.3 s for the solver, a third
     of the topics needing 1-3 repairs, and an endpoint limit of 64.
   - the uneven run again through the CLI, as a user runs it (issue 15's measurement): `resyn
     expand --target --cli-target --concurrency 8` in its own process against the same loopback
     server, its wall time the span of the job's environments (the first `created` to the last
     `updated`, so the process start, the embedder's load and the kernel pool's start are left
     out). A longer job: the drain at the end, when the target is in flight and nothing may start,
     is a smaller share of it. The scripted author writes the same file whenever it is given the
     same topic, so a second attempt at a topic would be a sure duplicate: this run tries each
     topic once (`max_topic_attempts` 1), and its target stays inside what the scripted scout's
     vocabulary yields (about 120 distinct topics).
   Each reports its wall time, its slot occupancy (busy synthesis-seconds, each environment's
   `updated − created`, over 8 × wall) and its endpoint efficiency (LLM call-seconds over 8 × wall:
   issue 4's figure). Goal (issue 15): occupancy ≥ 90 % through the CLI and in the fixed run. The
   figures of the old round-based scheduler, measured with this benchmark at commit `OLD_COMMIT`,
   are shown beside the in-process runs.
2. Memory: resident set size while `--memory-environments` environments are synthesized with
   zero-latency fakes, sampled after every verdict. Goal: flat, not growing per environment.

The scripted author writes one of six list puzzles per topic, so at the default threshold most of
its environments are duplicates of each other, rejected after one LLM call: the job would measure
the fake's repetitiveness. The throughput runs raise the duplicate threshold to 0.99 (the novelty
step still runs); the memory run keeps the default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resyn.graph.expansion import JobOptions, expand
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.settings import FrontierSettings, LLMSettings, Settings
from resyn.testing.fake_openai import FakeOpenAI, LognormalLatency, RepairingAuthor
from resyn.testing.jobs import run_resyn
from resyn.testing.scripted_world import scripted_endpoints

SEEDS = ["logic puzzles", "graph algorithms", "scheduling"]
CONCURRENCY = 8


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


@dataclass
class Run:
    """One throughput job's figures."""

    accepted: int
    tried: int
    calls: int
    wall_s: float
    busy_s: float  # synthesis-seconds: each environment's `updated − created`, summed
    call_s: float  # LLM call-seconds: each call's latency, summed
    steady: float | None = None  # the occupancy from the first moment every slot was busy to the last start
    concurrency: int = CONCURRENCY

    @property
    def occupancy(self) -> float:
        """Busy synthesis-seconds over concurrency × wall: how full the job kept its slots."""
        return self.busy_s / (self.concurrency * self.wall_s)

    @property
    def endpoint_efficiency(self) -> float:
        """LLM call-seconds over `concurrency` endpoint slots × wall (issue 4's figure, where the
        endpoint's limit is the job's concurrency); passes 100 % when probes fan out beyond it."""
        return self.call_s / (self.concurrency * self.wall_s)


def steady_occupancy(spans: list[tuple[float, float]], concurrency: int) -> float:
    """Occupancy between the first moment `concurrency` syntheses were in flight and the last
    start: the stretch where the job had a topic for every slot. It leaves out the ramp-up (the
    seeds are fewer than the slots until the first scout's topics arrive) and the drain at the end
    (with the target in flight, nothing may start)."""
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    last_start = max(start for start, _ in spans)
    in_flight, full_since, busy, previous = 0, None, 0.0, 0.0
    for moment, change in moments:
        if full_since is not None:
            busy += in_flight * (min(moment, last_start) - previous)
        if moment >= last_start:
            break
        in_flight += change
        previous = moment
        if full_since is None and in_flight >= concurrency:
            full_since = moment
    return busy / (concurrency * (last_start - full_since)) if full_since is not None else 0.0


# The round-based scheduler this one replaced, measured with this benchmark's two runs before the
# change (`--latency 0.5 --target 50`, `--uneven-target 32`), on the 2-core build machine.
OLD_COMMIT = "0913fcd3884bae09c8b5dc802e88c889f42783d9"
OLD_SCHEDULER = {
    "fixed": Run(accepted=50, tried=50, calls=1058, wall_s=107.3, busy_s=602.9, call_s=529.0),
    "uneven": Run(accepted=32, tried=32, calls=696, wall_s=67.8, busy_s=410.5, call_s=299.6),
}


def uneven_world() -> tuple[RepairingAuthor, LognormalLatency]:
    """A third of the topics need 1-3 repairs; latencies lognormal per role."""
    return RepairingAuthor(), LognormalLatency({"author": 1.0, "solver": 0.3, "scout": 1.0}, sigma=0.6)


async def timed_job(settings: Settings, endpoints: dict | None, embedder: Embedder, target: int) -> Run:
    """Run one job of `CONCURRENCY` syntheses in flight to `target`; its figures but the call-seconds."""
    settings.expansion.duplicate_threshold = 0.99
    async with open_runtime(settings, endpoints, embedder) as runtime:
        options = JobOptions(name="throughput", seed_topics=SEEDS, target=target, concurrency=CONCURRENCY)
        started = time.perf_counter()
        await expand(runtime, options)
        wall = time.perf_counter() - started
        counts = runtime.library.job_counts("throughput")
        spans = [(record.created, record.updated) for record in runtime.library.environments()]
    busy = sum(end - start for start, end in spans)
    return Run(counts.accepted, counts.tried, 0, wall, busy, 0.0, steady_occupancy(spans, CONCURRENCY))


async def fixed_latency(latency_s: float, target: int, embedder: Embedder) -> Run:
    """Every call takes `latency_s`; the endpoint's limit is the job's concurrency."""
    with tempfile.TemporaryDirectory() as data_dir:
        endpoints = scripted_endpoints(latency_s, slots=CONCURRENCY)
        run = await timed_job(Settings(data_dir=Path(data_dir)), endpoints, embedder, target)
    calls = sum(len(endpoint.chat.calls) for endpoint in endpoints.values())
    return replace(run, calls=calls, call_s=calls * latency_s)


async def uneven_latency(target: int, embedder: Embedder) -> Run:
    """A loopback OpenAI-compatible server with lognormal latencies per role, a third of the topics
    needing 1-3 repairs, and an endpoint limit (64) well above the job's concurrency."""
    author, latency = uneven_world()
    with tempfile.TemporaryDirectory() as data_dir, FakeOpenAI(author, latency=latency) as server:
        llm = LLMSettings(base_url=server.url, model="fake-openai-server", max_concurrency=64)
        run = await timed_job(Settings(data_dir=Path(data_dir), llm=llm), None, embedder, target)
        return replace(run, calls=server.answered, call_s=server.latency_total_s)


def uneven_through_cli(target: int) -> Run:
    """`resyn expand` in its own process against the uneven loopback server, as a user runs it."""
    author, latency = uneven_world()
    with tempfile.TemporaryDirectory() as data_dir, FakeOpenAI(author, latency=latency) as server:
        env = {
            **os.environ,
            "RESYN_LLM_BASE_URL": server.url,
            "RESYN_LLM_MODEL": "fake-openai-server",
            "RESYN_LLM_MAX_CONCURRENCY": "64",
            "RESYN_DATA_DIR": data_dir,
            "RESYN_EXPANSION_DUPLICATE_THRESHOLD": "0.99",
            "RESYN_EXPANSION_FRONTIER": '{"max_topic_attempts": 1}',
        }
        job = ["--job", "throughput", "--seed-topics", ", ".join(SEEDS)]
        finished = run_resyn(env, "expand", *job, "--target", str(target), "--concurrency", str(CONCURRENCY))
        if finished.returncode != 0:
            raise SystemExit(f"resyn expand failed ({finished.returncode}): {finished.stderr.strip()[-400:]}")
        library = Library(Path(data_dir))
        try:
            counts = library.job_counts("throughput")
            spans = [(environment.created, environment.updated) for environment in library.environments()]
        finally:
            library.close()
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        busy = sum(end - start for start, end in spans)
        return Run(
            counts.accepted, counts.tried, server.answered, wall, busy, server.latency_total_s,
            steady_occupancy(spans, CONCURRENCY),
        )  # fmt: skip


async def memory(environments: int, embedder: Embedder) -> list[tuple[int, float]]:
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        # topics may be retried: the scripted scout's vocabulary is smaller than the run
        settings.expansion.frontier = FrontierSettings(max_topic_attempts=10**6, max_failure_streak=10**6)
        async with open_runtime(settings, scripted_endpoints(0.0, keep_calls=False), embedder) as runtime:

            def on_event(kind: str, data: dict) -> None:
                if "counts" in data:  # a verdict
                    samples.append((data["counts"].tried, resident_mb()))

            options = JobOptions(
                name="memory", seed_topics=SEEDS, target=10**6, concurrency=8, max_environments=environments
            )
            await expand(runtime, options, on_event=on_event)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per call in the fixed run")
    parser.add_argument("--target", type=int, default=50, help="accepted environments, fixed-latency run")
    parser.add_argument("--uneven-target", type=int, default=32, help="accepted environments, uneven run")
    parser.add_argument("--cli-target", type=int, default=100, help="accepted environments, uneven CLI run")
    parser.add_argument("--memory-environments", type=int, default=1000, help="0 skips the memory run")
    arguments = parser.parse_args()
    console = Console(width=150)
    embedder = Embedder()
    embedder.embed(["warm up"])  # the model load (~5 s) is not the job's throughput

    runs = {
        f"fixed {arguments.latency} s, endpoint limit {CONCURRENCY}": asyncio.run(
            fixed_latency(arguments.latency, arguments.target, embedder)
        ),
        "uneven (lognormal, repairs), endpoint limit 64": asyncio.run(
            uneven_latency(arguments.uneven_target, embedder)
        ),
        f"uneven, through `resyn expand`, target {arguments.cli_target}": uneven_through_cli(
            arguments.cli_target
        ),
    }
    table = Table(title=f"expansion throughput: concurrency {CONCURRENCY}; goal: occupancy ≥ 90 %")
    for column in (
        "run",
        "scheduler",
        "accepted",
        "tried",
        "LLM calls",
        "wall s",
        "occupancy",
        "steady",
        "endpoint eff.",
    ):
        table.add_column(column, justify="right")
    recorded = [*OLD_SCHEDULER.values(), None]  # the old scheduler was not measured through the CLI
    for (title, run), old in zip(runs.items(), recorded, strict=True):
        rows = (
            [("continuous", run)]
            if old is None
            else [(f"rounds ({OLD_COMMIT[:8]}, recorded)", old), ("continuous", run)]
        )
        for scheduler, figures in rows:
            table.add_row(
                title, scheduler, str(figures.accepted), str(figures.tried), str(figures.calls),
                f"{figures.wall_s:.1f}", f"{figures.occupancy:.0%}",
                "—" if figures.steady is None else f"{figures.steady:.0%}",
                f"{figures.endpoint_efficiency:.0%}",
            )  # fmt: skip
    console.print(table)
    fixed, _, through_cli = runs.values()
    met = fixed.occupancy >= 0.9 and through_cli.occupancy >= 0.9
    verdict = "met" if met else "NOT met"
    console.print(f"goal (occupancy ≥ 90 % through the CLI and with fixed latency): {verdict}")

    if arguments.memory_environments:
        samples = asyncio.run(memory(arguments.memory_environments, embedder))
        table = Table(
            title=f"resident memory over {arguments.memory_environments} environments (zero latency)"
        )
        table.add_column("environments tried", justify="right")
        table.add_column("RSS MB", justify="right")
        step = max(1, len(samples) // 10)
        for tried, rss in samples[::step] + ([samples[-1]] if len(samples) % step != 1 else []):
            table.add_row(str(tried), f"{rss:.0f}")
        console.print(table)
        (first_tried, first_rss), (last_tried, last_rss) = samples[len(samples) // 2], samples[-1]
        per_100 = (last_rss - first_rss) / max(last_tried - first_tried, 1) * 100
        console.print(f"growth over the second half: {per_100:+.2f} MB per 100 environments")


if __name__ == "__main__":
    main()
