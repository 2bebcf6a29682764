"""Benchmark: validating the example environments three ways, plus the kernel primitives.

    python -m resyn.evals.bench_validation [--repeat N]

1. in-process: the same validator and checks, with the harness exec'd in this process
   (the floor: no isolation at all, unsafe for untrusted code);
2. warm pool: the real `KernelPool`, started once before timing, in the OS sandbox (bubblewrap)
   and unconfined (`kernel.sandbox = "none"`), to show what the sandbox costs;
3. cold: a fresh sandboxed pool (two kernels: the determinism check needs two) per environment.

Goals: warm ≤ 2× in-process, ≥ 10× faster than cold; the sandbox adds well under 100 ms to a
kernel's start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import types
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from rich.console import Console
from rich.table import Table

from resyn.agents.exemplars import load_exemplars
from resyn.settings import SandboxMode, Settings
from resyn.tools.kernel import ExecutionResult, Kernel
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator


class InProcessKernel:
    """The harness exec'd in this process, behind the kernel's `call` interface."""

    def __init__(self) -> None:
        self.harness = types.ModuleType("resyn_harness_in_process")
        source = resources.files("resyn.tools").joinpath("kernel_sandbox.py").read_text()
        exec(compile(source, "kernel_sandbox", "exec"), vars(self.harness))
        self.hash_seed = 0
        self.dirty = False

    async def call(self, function: str, *args: Any, timeout: float | None = None) -> ExecutionResult:
        started = time.perf_counter()
        arguments = json.loads(json.dumps(args))  # the same encoding work a kernel call does
        value = json.loads(json.dumps(getattr(self.harness, function)(*arguments)))
        return ExecutionResult(status="ok", value=value, duration=time.perf_counter() - started)


class InProcessPool:
    def __init__(self) -> None:
        self.kernels = [InProcessKernel(), InProcessKernel()]
        self.kernels[1].hash_seed = 1

    @contextlib.asynccontextmanager
    async def lease(self, avoid: Any = None) -> AsyncIterator[InProcessKernel]:
        yield self.kernels[1] if avoid is self.kernels[0] else self.kernels[0]


async def _validate_all(pool: Any, settings: Settings, sources: list[str]) -> tuple[float, int]:
    validator = Validator(pool, settings)
    started = time.perf_counter()
    reports = [await validator.validate(source) for source in sources]
    return time.perf_counter() - started, sum(report.valid for report in reports)


async def in_process(settings: Settings, sources: list[str]) -> tuple[float, int]:
    return await _validate_all(InProcessPool(), settings, sources)


async def warm_pool(settings: Settings, sources: list[str]) -> tuple[float, int]:
    async with KernelPool(settings.kernel) as pool:
        await pool.ready()  # warm: the kernels' start is not part of what is measured
        return await _validate_all(pool, settings, sources)


async def cold_per_environment(settings: Settings, sources: list[str]) -> tuple[float, int]:
    started, valid = time.perf_counter(), 0
    for source in sources:
        async with KernelPool(settings.kernel) as pool:
            valid += (await Validator(pool, settings).validate(source)).valid
    return time.perf_counter() - started, valid


async def _median_ms(action: Callable[[], Any], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def kernel_primitives(settings: Settings, repeat: int) -> list[tuple[str, float]]:
    """Median milliseconds of what a validation is made of, and of reset versus restart."""
    kernel = Kernel(settings.kernel)
    rows = [("start a kernel", await _median_ms(kernel.start, 1))]
    cell = "\n".join(f"v{i} = {i} * 2" for i in range(200))
    busy = "while True: pass"
    rows += [
        ("round trip of `1+1`", await _median_ms(lambda: kernel.execute("1+1"), repeat * 10)),
        ("a 200-line cell", await _median_ms(lambda: kernel.execute(cell), repeat * 5)),
        ("reset between environments", await _median_ms(lambda: kernel.call("reset"), repeat * 5)),
        ("restart between environments", await _median_ms(kernel.restart, repeat)),
        ("0.2 s timeout, then interrupt", await _median_ms(lambda: kernel.execute(busy, 0.2), repeat)),
    ]
    await kernel.shutdown()
    started = time.perf_counter()
    async with KernelPool(settings.kernel.model_copy(update={"pool_size": 4})) as pool:
        await pool.ready()
        rows.append(("start a pool of 4 kernels", (time.perf_counter() - started) * 1000))
    return rows


def sandboxed(settings: Settings, mode: SandboxMode) -> Settings:
    return settings.model_copy(update={"kernel": settings.kernel.model_copy(update={"sandbox": mode})})


async def run(repeat: int) -> None:
    settings = Settings()
    sources = [exemplar.source for exemplar in load_exemplars()]
    console = Console()
    ways = {
        "in-process exec (floor, unsafe)": (in_process, settings),
        "warm kernel pool": (warm_pool, sandboxed(settings, "bwrap")),
        "warm kernel pool, unconfined": (warm_pool, sandboxed(settings, "none")),
        "cold kernels per environment": (cold_per_environment, sandboxed(settings, "bwrap")),
    }
    results = {}
    for label, (way, way_settings) in ways.items():
        timings = [await way(way_settings, sources) for _ in range(repeat)]
        results[label] = (statistics.median(seconds for seconds, _ in timings), timings[0][1])
    floor = results["in-process exec (floor, unsafe)"][0]
    warm = results["warm kernel pool"][0]
    table = Table(title=f"validating {len(sources)} example environments (median of {repeat})")
    for column in ("way", "seconds", "per environment (ms)", "valid", "vs in-process", "vs warm"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for label, (seconds, valid) in results.items():
        table.add_row(
            label, f"{seconds:.3f}", f"{seconds / len(sources) * 1000:.1f}", f"{valid}/{len(sources)}",
            f"{seconds / floor:.2f}×", f"{seconds / warm:.2f}×",
        )  # fmt: skip
    console.print(table)
    cold = results["cold kernels per environment"][0]
    console.print(f"goals: warm ≤ 2× in-process: {warm / floor:.2f}× · cold ≥ 10× warm: {cold / warm:.1f}×")
    primitives = Table(title="kernel primitives (median ms)")
    for column in ("operation", "bwrap", "unconfined", "the sandbox adds"):
        primitives.add_column(column, justify="left" if column == "operation" else "right")
    confined = await kernel_primitives(sandboxed(settings, "bwrap"), repeat)
    unconfined = await kernel_primitives(sandboxed(settings, "none"), repeat)
    for (operation, inside), (_, outside) in zip(confined, unconfined, strict=True):
        primitives.add_row(operation, f"{inside:.1f}", f"{outside:.1f}", f"{inside - outside:+.1f}")
    console.print(primitives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(run(parser.parse_args().repeat))


if __name__ == "__main__":
    main()
