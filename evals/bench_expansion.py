"""Benchmark: the expansion job's throughput and its memory over a long run, on scripted models.

    python -m resyn.evals.bench_expansion [--latency 0.5] [--target 50] [--memory-environments 1000]

1. Throughput: every LLM call of the scripted world takes `--latency` seconds; 8 environments in
   flight and 8 calls at a time (the endpoint's limit). The ideal wall time is calls × latency / 8:
   the LLM is never idle. Efficiency = ideal / measured. Goal (issue 4): ≥ 90 %.
2. Memory: resident set size while `--memory-environments` environments are synthesized with
   zero-latency fakes, sampled after every round. Goal: flat, not growing per environment.

The scripted author writes one of six list puzzles per topic, so at the default threshold most of
its environments are duplicates of each other, rejected after one LLM call: the job would measure
the fake's repetitiveness. The throughput run raises the duplicate threshold to 0.99 (the novelty
step still runs); the memory run keeps the default.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resyn.graph.expansion import JobOptions, expand
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.settings import FrontierSettings, Settings
from resyn.testing.scripted_world import scripted_endpoints

SEEDS = ["logic puzzles", "graph algorithms", "scheduling"]


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


async def throughput(latency_s: float, target: int, embedder: Embedder) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        settings.expansion.duplicate_threshold = 0.99
        endpoints = scripted_endpoints(latency_s, slots=8)
        async with open_runtime(settings, endpoints, embedder) as runtime:
            options = JobOptions(name="throughput", seed_topics=SEEDS, target=target, concurrency=8)
            started = time.perf_counter()
            await expand(runtime, options)
            wall = time.perf_counter() - started
            counts = runtime.library.job_counts("throughput")
        calls = sum(len(endpoint.chat.calls) for endpoint in endpoints.values())
    ideal = calls * latency_s / 8
    return {"calls": calls, "ideal": ideal, "wall": wall, "accepted": counts.accepted, "tried": counts.tried}


async def memory(environments: int, embedder: Embedder) -> list[tuple[int, float]]:
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        # topics may be retried: the scripted scout's vocabulary is smaller than the run
        settings.expansion.frontier = FrontierSettings(max_topic_attempts=10**6, max_failure_streak=10**6)
        async with open_runtime(settings, scripted_endpoints(0.0, keep_calls=False), embedder) as runtime:

            def on_event(kind: str, data: dict) -> None:
                if kind == "round":
                    samples.append((data["counts"].tried, resident_mb()))

            options = JobOptions(
                name="memory", seed_topics=SEEDS, target=10**6, concurrency=8, max_environments=environments
            )
            await expand(runtime, options, on_event=on_event)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per scripted LLM call")
    parser.add_argument("--target", type=int, default=50, help="accepted environments in the throughput job")
    parser.add_argument("--memory-environments", type=int, default=1000, help="0 skips the memory run")
    arguments = parser.parse_args()
    console = Console()
    embedder = Embedder()
    embedder.embed(["warm up"])  # the model load (~5 s) is not the job's throughput

    result = asyncio.run(throughput(arguments.latency, arguments.target, embedder))
    table = Table(title=f"expansion throughput: scripted latency {arguments.latency} s, concurrency 8")
    for column in ("accepted", "tried", "LLM calls", "ideal s", "wall s", "efficiency", "goal", "met"):
        table.add_column(column, justify="right")
    efficiency = result["ideal"] / result["wall"]
    table.add_row(
        str(result["accepted"]), str(result["tried"]), str(result["calls"]), f"{result['ideal']:.1f}",
        f"{result['wall']:.1f}", f"{efficiency:.0%}", "≥ 90%", "yes" if efficiency >= 0.9 else "no",
    )  # fmt: skip
    console.print(table)

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
