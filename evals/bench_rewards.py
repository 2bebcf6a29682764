"""Benchmark: rewards per second, the way trainers call them, on an export of the example environments.

    python -m resyn.evals.bench_rewards [--per-env N] [--kernels K] [--repeat R]

The twelve example environments are recorded as accepted in a temporary library and exported (the
export's own time is reported too); then the same completions, half right and half wrong, are scored

1. in-process: each environment's `verify` called directly here (the floor: no sandbox at all);
2. verl `compute_score`, one call per completion, rows in environment order (a warm kernel keeps
   its environment loaded) and shuffled (most calls switch environment: reset + load);
3. verl `compute_score_batch` / TRL `trl_reward`: a whole step's completions per call, shuffled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resyn.agents.exemplars import load_exemplars
from resyn.contract import Status, extract_answer
from resyn.evals.export import ExportOptions, export_library
from resyn.memory.library import Library
from resyn.settings import Settings
from resyn.tools import rewards
from resyn.tools.ground_truth import GroundTruth


def example_library(data_dir: Path) -> Library:
    library = Library(data_dir)
    for number, exemplar in enumerate(load_exemplars()):
        environment_id = f"bench{number:07d}"
        library.start(environment_id, exemplar.topic, "example", "example")
        library.finish(
            environment_id, status=Status.ACCEPTED, reason="example", source=exemplar.source, report=None,
            pass_rates=None, usage={}, name=exemplar.name, description=exemplar.description,
        )  # fmt: skip
    return library


def completions(rows: list[dict]) -> tuple[list[str], list[str]]:
    """(ground truths, completions): every other completion answers with the witness."""
    truths = [row["reward_model"]["ground_truth"] for row in rows]
    texts = []
    for index, truth in enumerate(truths):
        answer = json.loads(truth)["instance"]["witness"] if index % 2 == 0 else "not it"
        texts.append(f"Some reasoning first.\n<answer>{answer}</answer>")
    return truths, texts


def in_process(bundle: Path, truths: list[str], texts: list[str]) -> list[float]:
    modules: dict[str, types.ModuleType] = {}
    scores = []
    for truth, text in zip(truths, texts, strict=True):
        parsed = GroundTruth.parse(truth)
        environment_id, instance = parsed.environment_id, parsed.instance
        if environment_id not in modules:
            module = types.ModuleType(environment_id)
            exec(compile((bundle / f"{environment_id}.py").read_text(), environment_id, "exec"), vars(module))
            modules[environment_id] = module
        answer = extract_answer(text)
        scores.append(float(modules[environment_id].verify(instance, answer)) if answer is not None else 0.0)
    return scores


def timed(action: Callable[[], list[float]], repeat: int) -> tuple[float, list[float]]:
    timings, scores = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        scores = action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), scores


def run(per_env: int, kernels: int | None, repeat: int) -> None:
    console = Console()
    settings = Settings()
    if kernels:
        settings.kernel.pool_size = kernels
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        library = example_library(root / "workspace")
        options = ExportOptions(out_dir=root / "export", per_env=per_env, test_fraction=0.0)
        exported = asyncio.run(export_library(library, options, settings))
        rows = [json.loads(line) for line in (root / "export" / "train.jsonl").read_text().splitlines()]
        console.print(
            f"export of the example library: {len(rows)} rows of {len(exported.manifest['environments'])} "
            f"environments in {exported.seconds:.2f} s (kernel start included)"
        )
        bundle = root / "export" / "environments"
        truths, texts = completions(rows)
        expected = in_process(bundle, truths, texts)
        order = list(range(len(rows)))
        random.Random(0).shuffle(order)
        shuffled_truths, shuffled_texts = [truths[i] for i in order], [texts[i] for i in order]
        rewards.configure(bundle, settings)
        rewards.compute_score_batch([""] * 24, texts[:24], truths[:24])  # start the kernels before timing

        def singly(truth_list: list[str], text_list: list[str]) -> list[float]:
            return [
                rewards.compute_score("", text, truth)
                for truth, text in zip(truth_list, text_list, strict=True)
            ]

        def batched(size: int) -> list[float]:
            scores: list[float] = []
            for start in range(0, len(rows), size):
                chunk = slice(start, start + size)
                scores += rewards.compute_score_batch(
                    [""] * size, shuffled_texts[chunk], shuffled_truths[chunk]
                )
            return scores

        ways: list[tuple[str, Callable[[], list[float]], list[float]]] = [
            ("in-process verify (floor, unsafe)", lambda: in_process(bundle, truths, texts), expected),
            ("compute_score, one by one, grouped", lambda: singly(truths, texts), expected),
            ("compute_score, one by one, shuffled", lambda: singly(shuffled_truths, shuffled_texts),
             [expected[i] for i in order]),
        ]  # fmt: skip
        for size in (64, 256, 1024):
            ways.append((f"compute_score_batch / trl_reward, {size} a call", lambda s=size: batched(s),
                         [expected[i] for i in order]))  # fmt: skip
        table = Table(
            title=f"rewards on {len(rows)} completions, half right ({settings.kernel.pool_size} kernels)"
        )
        for column in ("way", "seconds", "rewards/s", "agrees with in-process"):
            table.add_column(column, justify="left" if column == "way" else "right")
        for label, action, want in ways:
            seconds, scores = timed(action, repeat)
            table.add_row(
                label, f"{seconds:.3f}", f"{len(rows) / seconds:,.0f}", "yes" if scores == want else "NO"
            )
        console.print(table)
        rewards.default_scorer().close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-env", type=int, default=100, help="rows per environment (default 100)")
    parser.add_argument("--kernels", type=int, default=None, help="kernels of the reward scorer")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    run(arguments.per_env, arguments.kernels, arguments.repeat)


if __name__ == "__main__":
    main()
