"""`resyn export`: the accepted environments as an RL dataset, a source bundle and a manifest.

    OUT_DIR/
      train.jsonl | train.parquet    rows of the training environments
      test.jsonl  | test.parquet     rows of the held-out environments (the split is by environment)
      environments/<id>.py           every exported environment's source, as the library accepted it
      manifest.json                  versions, options, counts, models, sources' sha256

A row is verl's layout, which TRL reads as it is (docs/export.md):

    {"data_source": "resyn/<name>", "prompt": [{"role": "user", "content": question + instruction}],
     "ability": "reasoning", "reward_model": {"style": "rule", "ground_truth": "<JSON>"},
     "extra_info": {...}, "environment_id", "environment_name", "seed", "difficulty", "split"}

The ground truth is a JSON string (`resyn.tools.ground_truth.GroundTruth`) because the contract's
`verify(instance, answer)` receives the whole instance, witness included: the reward needs it, the
prompt never shows it. Instances are generated in the sandbox from seeds outside the held-out window
of the solver probe and `resyn eval library` (`resyn.seeds`), so neither ever meets a training
instance. Past 300 lines: planning, sampling, splitting and writing the rows are one pipeline,
read top to bottom.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import resyn
from resyn.agents.solver import solver_prompt
from resyn.contract import CONTRACT_VERSION, DIFFICULTIES, SampledInstance, Status
from resyn.memory.library import Library, source_hash
from resyn.memory.records import EnvironmentRecord
from resyn.seeds import held_out_window, training_seeds
from resyn.settings import Settings
from resyn.tools.ground_truth import GroundTruth
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.sampler import SampleError, sample_in_kernel

Format = Literal["jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("jsonl", "parquet")
_DIFFICULTY_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


class ExportError(Exception):
    """The export cannot be made as asked; the message says why in one line."""


@dataclass(frozen=True)
class ExportOptions:
    out_dir: Path
    format: Format = "jsonl"
    per_env: int = 100
    difficulties: tuple[int, ...] = DIFFICULTIES
    test_fraction: float = 0.1
    seed: int = 0
    include_contaminated: bool = False


@dataclass
class ExportResult:
    manifest: dict[str, Any]
    files: dict[str, Path]
    seconds: float
    skipped: list[dict[str, str]] = field(default_factory=list)


def parse_difficulties(text: str) -> tuple[int, ...]:
    """ "1-5", "3", "1,3,5" or "1-2,5" → sorted levels; ValueError says what is wrong."""
    levels: set[int] = set()
    for part in text.split(","):
        match = _DIFFICULTY_PART.match(part)
        if not match:
            raise ValueError(f"cannot read difficulties {text!r}: use e.g. 1-5, 3 or 1,3,5")
        low, high = int(match[1]), int(match[2] or match[1])
        if low > high or low < DIFFICULTIES[0] or high > DIFFICULTIES[-1]:
            raise ValueError(
                f"difficulties must lie in {DIFFICULTIES[0]}-{DIFFICULTIES[-1]}, got {part.strip()!r}"
            )
        levels.update(range(low, high + 1))
    return tuple(sorted(levels))


def difficulty_plan(count: int, difficulties: tuple[int, ...]) -> dict[int, int]:
    """How many instances of each level make `count`: as even as can be, the easier levels first."""
    base, extra = divmod(count, len(difficulties))
    return {level: base + (position < extra) for position, level in enumerate(difficulties)}


def split_environments(ids: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) ids: a seeded shuffle; the test part gets round(n·F) environments, at least one
    when F > 0 and there are two or more, and never all of them."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    tests = round(len(order) * test_fraction)
    if test_fraction > 0 and len(order) >= 2:
        tests = min(max(tests, 1), len(order) - 1)
    elif len(order) < 2:
        tests = 0
    return sorted(order[tests:]), sorted(order[:tests])


def ground_truth(record: EnvironmentRecord, instance: SampledInstance) -> str:
    """The row's `reward_model.ground_truth`: what the reward verifies the answer against."""
    generated = instance.model_dump(include={"question", "witness", "meta"})  # as generate returned it
    return GroundTruth(record.id, record.source_hash, generated).to_json()


def build_row(record: EnvironmentRecord, instance: SampledInstance, split: str, index: int) -> dict[str, Any]:
    name = record.name or record.id
    extra = {
        "environment_id": record.id,
        "environment_name": name,
        "seed": instance.seed,
        "difficulty": instance.difficulty,
        "split": split,
        "index": index,
    }
    return {
        "data_source": f"resyn/{name}",
        "prompt": [{"role": "user", "content": solver_prompt(instance.question)}],
        "ability": "reasoning",
        "reward_model": {"style": "rule", "ground_truth": ground_truth(record, instance)},
        "extra_info": extra,
        "environment_id": record.id,
        "environment_name": name,
        "seed": instance.seed,
        "difficulty": instance.difficulty,
        "split": split,
    }


def exportable(library: Library, include_contaminated: bool) -> tuple[list[EnvironmentRecord], list[dict]]:
    """The accepted environments to export, and those left out with the reason why."""
    chosen, left_out = [], []
    for record in library.environments(Status.ACCEPTED):
        if not record.source:
            left_out.append(_left_out(record, "no source stored"))
        elif record.contamination and not include_contaminated:
            match = record.contamination
            where = f"{match.get('benchmark')}/{match.get('task')} #{match.get('example')}"
            reason = f"contaminated: near-duplicate of {where} (cosine {match.get('similarity')})"
            left_out.append(_left_out(record, reason))
        else:
            chosen.append(record)
    return chosen, left_out


async def sample_environment(
    pool: KernelPool,
    record: EnvironmentRecord,
    seeds_by_level: dict[int, list[int]],
    settings: Settings,
) -> list[SampledInstance]:
    """Instances of one environment, generated in one leased kernel; SampleError says why not."""
    instances: list[SampledInstance] = []
    async with pool.lease() as kernel:
        for level, seeds in seeds_by_level.items():
            if seeds:
                instances += await sample_in_kernel(kernel, record.source or "", level, seeds, settings)
    return instances


def seeds_by_level(
    record: EnvironmentRecord, options: ExportOptions, settings: Settings
) -> dict[int, list[int]]:
    plan = difficulty_plan(options.per_env, options.difficulties)
    seeds = iter(training_seeds(record.id, options.per_env, options.seed, settings))
    return {level: [next(seeds) for _ in range(count)] for level, count in plan.items()}


async def export_library(
    library: Library,
    options: ExportOptions,
    settings: Settings,
    pool: KernelPool | None = None,
    on_environment: Callable[[EnvironmentRecord, int], None] | None = None,
) -> ExportResult:
    """Write the export to `options.out_dir` (which must be empty or absent). Without a `pool`, a
    pool is started for the export and closed after it."""
    if pool is None:
        async with KernelPool(settings.kernel) as own:
            return await export_library(library, options, settings, own, on_environment)
    started = time.perf_counter()
    out_dir = options.out_dir
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportError(f"{out_dir} exists and is not an empty directory: choose a new one")
    records, left_out = exportable(library, options.include_contaminated)
    if not records:
        raise ExportError(f"nothing to export: no accepted environment in {library.data_dir} to take")

    async def one(record: EnvironmentRecord) -> list[SampledInstance] | str:
        try:
            plan = seeds_by_level(record, options, settings)
            instances = await sample_environment(pool, record, plan, settings)
        except SampleError as error:
            return str(error)
        if on_environment:
            on_environment(record, len(instances))
        return instances

    sampled: dict[str, list[SampledInstance]] = {}
    for record, outcome in zip(records, await asyncio.gather(*map(one, records)), strict=True):
        if isinstance(outcome, str):
            left_out.append(_left_out(record, f"sampling failed: {outcome}"))
        else:
            sampled[record.id] = outcome
    kept = [record for record in records if record.id in sampled]
    if not kept:
        raise ExportError("nothing to export: no environment could generate its instances")
    train_ids, test_ids = split_environments(list(sampled), options.test_fraction, options.seed)
    splits = {"train": train_ids, "test": test_ids}
    by_id = {record.id: record for record in kept}
    rows: dict[str, list[dict[str, Any]]] = {}
    for split, ids in splits.items():
        instances = [
            (environment_id, instance) for environment_id in ids for instance in sampled[environment_id]
        ]
        rows[split] = [
            build_row(by_id[environment_id], instance, split, index)
            for index, (environment_id, instance) in enumerate(instances)
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, split_rows in rows.items():
        if split_rows:
            files[split] = out_dir / f"{split}.{options.format}"
            write_rows(files[split], split_rows, options.format)
    bundle = out_dir / "environments"
    bundle.mkdir()
    for record in kept:
        (bundle / f"{record.id}.py").write_text(record.source or "", encoding="utf-8")
    manifest = build_manifest(options, settings, kept, splits, rows, files, left_out)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    files["manifest"] = out_dir / "manifest.json"
    return ExportResult(manifest, files, round(time.perf_counter() - started, 3), left_out)


def write_rows(path: Path, rows: list[dict[str, Any]], fmt: Format) -> None:
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def build_manifest(
    options: ExportOptions,
    settings: Settings,
    records: list[EnvironmentRecord],
    splits: dict[str, list[str]],
    rows: dict[str, list[dict[str, Any]]],
    files: dict[str, Path],
    left_out: list[dict[str, str]],
) -> dict[str, Any]:
    """What was exported, how and from what; settings are named field by field (never a key)."""
    split_of = {environment_id: split for split, ids in splits.items() for environment_id in ids}
    rows_of = Counter(row["environment_id"] for split_rows in rows.values() for row in split_rows)
    levels = Counter(str(row["difficulty"]) for split_rows in rows.values() for row in split_rows)
    held_out = held_out_window(settings)
    return {
        "resyn_version": resyn.__version__,
        "contract_version": CONTRACT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "format": options.format,
        "files": {split: path.name for split, path in files.items()},
        "environments_dir": "environments",
        "options": {
            "per_env": options.per_env,
            "difficulties": list(options.difficulties),
            "test_fraction": options.test_fraction,
            "seed": options.seed,
            "include_contaminated": options.include_contaminated,
        },
        "settings": {
            "data_dir": str(settings.data_dir),
            "probe_seed": settings.synthesis.probe_seed,
            "held_out_seeds": [held_out.start, held_out.stop],
            "allowed_imports": settings.validator.allowed_imports,
        },
        "counts": {
            "environments": {split: len(ids) for split, ids in splits.items()},
            "rows": {split: len(split_rows) for split, split_rows in rows.items()},
            "by_difficulty": dict(sorted(levels.items())),
            "left_out": len(left_out),
        },
        "models": {
            "author": sorted({record.author_model for record in records if record.author_model}),
            "solver": sorted({record.solver_model for record in records if record.solver_model}),
        },
        "reward": {
            "module": "resyn.tools.rewards",
            "verl": "compute_score",
            "verl_batch": "compute_score_batch",
            "trl": "trl_reward",
            "environments_dir_variable": "RESYN_ENVIRONMENTS_DIR",
        },
        "environments": [
            {
                "id": record.id,
                "name": record.name,
                "topic": record.topic,
                "description": record.description,
                "split": split_of[record.id],
                "file": f"environments/{record.id}.py",
                "sha256": record.source_hash or source_hash(record.source or ""),
                "rows": rows_of[record.id],
                "pass_rates": record.pass_rates,
                "author_model": record.author_model,
                "solver_model": record.solver_model,
                "contamination": record.contamination,
            }
            for record in records
        ],
        "left_out": left_out,
    }


def _left_out(record: EnvironmentRecord, reason: str) -> dict[str, str]:
    return {"id": record.id, "name": record.name or "", "reason": reason}
