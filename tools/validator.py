"""The environment validator: runs every check of docs/contract.md on a source, in pool kernels.

One environment's way through: load it in a clean kernel; generate the sampled seeds at every
difficulty, then more draws (questions are cheap) for the checks that judge the sample as a whole;
verify witnesses, junk, other instances' witnesses, hostile strings and the shortcuts derived from
each question; then load it again in a second kernel (another PYTHONHASHSEED, another global
random state) and generate the sampled seeds in reverse order for the determinism check.
Whatever the environment does, the validator returns a report: a kernel that hangs or dies is
replaced and the checks that could not run are reported as skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from resyn.contract import CHECK_NAMES, DIFFICULTIES, DIVERSITY_DRAWS, CheckResult, ValidationReport
from resyn.settings import Settings
from resyn.tools import checks, harness, population_checks
from resyn.tools.harness import HarnessStopped
from resyn.tools.kernel import Kernel
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.kernel_sandbox import SECRET_NAME
from resyn.tools.shortcuts import shortcut_jobs

# What the extra draws and the shortcut answers may cost, from the time the sampled calls took:
# a slow generator gets fewer draws (and says so in `diverse`), never a slow validation.
DRAWS_BUDGET_S = 5.0
SHORTCUTS_BUDGET_S = 5.0
# Instances the shortcuts are scored on: enough that a trick paying 10% stays clear of the 20% bar.
SHORTCUT_INSTANCES = 120


@dataclass
class _Evidence:
    """Everything the harness reported for one environment, gathered before judging."""

    load: dict[str, Any] | None = None
    generated: list[dict[str, Any]] = field(default_factory=list)
    drawn: list[dict[str, Any]] = field(default_factory=list)
    regenerated: list[dict[str, Any]] | None = None
    witness: list[dict[str, Any]] | None = None
    junk: list[dict[str, Any]] | None = None
    crossed: list[dict[str, Any]] | None = None
    hostile: list[dict[str, Any]] | None = None
    shortcut_scores: dict[str, dict[str, float]] | None = None
    events: list[dict[str, str]] = field(default_factory=list)
    limit_problems: list[str] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    aborted: str | None = None


def parent_secrets() -> list[str]:
    """Values of the parent's secret-looking environment variables: they must appear nowhere."""
    return [value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= 8]


def sampled_seeds(count: int, sample_seed: int) -> list[int]:
    return sorted(random.Random(sample_seed).sample(range(1_000_000), count))


def drawn_seeds(count: int, sample_seed: int) -> list[int]:
    """Seeds for the extra draws, apart from the sampled ones."""
    return sorted(random.Random(sample_seed + 1).sample(range(1_000_000, 2_000_000), count))


def _every_level_in_turn(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls reordered one difficulty after another (1, 2, … 5, 1, 2, …), so a prefix covers all."""
    levels = [[call for call in calls if call["difficulty"] == difficulty] for difficulty in DIFFICULTIES]
    return [call for row in itertools.zip_longest(*levels) for call in row if call is not None]


def _mean_seconds(calls: list[dict[str, Any]]) -> float:
    """The mean CPU time of the calls that finished (a loaded host does not shrink the budgets)."""
    timed = [call["cpu_seconds"] for call in calls if call.get("status") == "ok"]
    return max(sum(timed) / len(timed), 1e-4) if timed else 1e-4


class Validator:
    """`await Validator(pool, settings).validate(source)` → `ValidationReport`."""

    def __init__(self, pool: KernelPool, settings: Settings, seeds_per_difficulty: int | None = None) -> None:
        self.pool = pool
        self.settings = settings
        count = seeds_per_difficulty or settings.validator.seeds_per_difficulty
        self.seeds = sampled_seeds(count, settings.validator.sample_seed)
        self.output_limit = settings.kernel.output_limit_bytes

    async def validate(self, source: str) -> ValidationReport:
        started = time.perf_counter()
        evidence = _Evidence()
        first_kernel: Kernel | None = None
        try:
            async with self.pool.lease() as first:
                await self._load(first, source, evidence)
                if checks.usable(evidence.load):
                    first_kernel = first
                    await self._generate_and_verify(first, evidence)
            if evidence.hostile is not None:
                async with self.pool.lease(avoid=first_kernel) as second:
                    await self._regenerate(second, source, evidence)
        except HarnessStopped as stopped:  # a hang, crash or flood of a whole harness call
            during = "while loading" if stopped.function == "load" else f"during {stopped.function}"
            evidence.aborted = f"{during}: {stopped.status}: {stopped.error or 'no reply'}"
        return self._judge(evidence, time.perf_counter() - started)

    async def _load(self, kernel: Kernel, source: str, evidence: _Evidence) -> None:
        try:
            loaded = await harness.load(kernel, source, self.settings)
        except HarnessStopped as stopped:
            evidence.load = {"status": stopped.status, "error": stopped.error or "no reply from the kernel"}
            raise
        evidence.load = loaded
        evidence.events.extend(harness.load_events(loaded))
        evidence.outputs.append(loaded.get("output", ""))
        if loaded["status"] in checks.LIMIT_STATUSES:
            evidence.limit_problems.append(f"loading {loaded['error']}")

    async def _generate_all(self, kernel: Kernel, seeds: list[int]) -> list[dict[str, Any]]:
        pairs = [[seed, difficulty] for difficulty in DIFFICULTIES for seed in seeds]
        return await harness.generate(kernel, pairs, self.settings)

    async def _draw_more(self, kernel: Kernel, evidence: _Evidence) -> None:
        """Up to DIVERSITY_DRAWS questions per difficulty in all, as many as the budget affords."""
        per_level = DIVERSITY_DRAWS - len(self.seeds)
        affordable = int(DRAWS_BUDGET_S / (_mean_seconds(evidence.generated) * len(DIFFICULTIES)))
        count = min(per_level, affordable)
        if count > 0:
            seeds = drawn_seeds(count, self.settings.validator.sample_seed)
            evidence.drawn = await self._generate_all(kernel, seeds)
            self._absorb(evidence.drawn, "generate", evidence)
            evidence.outputs.extend(call.get("instance") for call in evidence.drawn)

    async def _score_shortcuts(self, kernel: Kernel, evidence: _Evidence, verify_seconds: float) -> None:
        """Score each shortcut answer on as many instances (sampled first) as the budget affords."""
        instances = checks.well_formed(evidence.generated) + checks.well_formed(evidence.drawn)
        jobs, answers, rules = shortcut_jobs(_every_level_in_turn(instances)[:SHORTCUT_INSTANCES])
        affordable, keys = int(SHORTCUTS_BUDGET_S / verify_seconds), []
        jobs_per_key = Counter(key for key, _ in jobs)  # in instance order: every level in turn
        for key, count in jobs_per_key.items():
            if count > affordable:
                break
            keys.append(key)
            affordable -= count
        kept = set(keys)
        chosen = [index for index, (key, _) in enumerate(jobs) if key in kept]
        calls = await harness.verify(kernel, [jobs[index] for index in chosen], answers, self.settings)
        self._absorb(calls, "verify", evidence)
        scores: dict[str, dict[str, float]] = {key: {} for key in keys}
        for index, call in zip(chosen, calls, strict=True):
            if call["status"] == "ok" and call.get("score") is not None:
                scores[call["key"]].update(dict.fromkeys(rules[index], call["score"]))
        evidence.shortcut_scores = scores

    def _absorb(self, calls: list[dict[str, Any]], function: str, evidence: _Evidence) -> None:
        for call in calls:
            evidence.events.extend(call.get("events", []))
            evidence.outputs.append(call.get("output", ""))
            problem = checks.limit_problem(call, function, self.output_limit)
            if problem:
                evidence.limit_problems.append(problem)

    async def _generate_and_verify(self, kernel: Kernel, evidence: _Evidence) -> None:
        evidence.generated = await self._generate_all(kernel, self.seeds)
        self._absorb(evidence.generated, "generate", evidence)
        evidence.outputs.extend(call.get("instance") for call in evidence.generated)
        await self._draw_more(kernel, evidence)
        instances = checks.well_formed(evidence.generated)
        by_key = {f"{call['seed']}:{call['difficulty']}": call for call in instances}
        keys = list(by_key)
        answers = [*checks.JUNK_ANSWERS, "", *checks.HOSTILE_ANSWERS]
        hostile_start = len(checks.JUNK_ANSWERS) + 1
        robust_count = self.settings.validator.robust_instances
        jobs = {
            "witness": [[key, key] for key in keys],
            "junk": [[key, index] for key in keys for index in range(hostile_start)],
            "crossed": self._crossed_pairs(instances),
            "hostile": [
                [key, index]
                for key in keys[:: max(1, len(keys) // robust_count)][:robust_count]
                for index in range(hostile_start, len(answers))
            ],
        }
        all_jobs = [job for kind_jobs in jobs.values() for job in kind_jobs]
        calls = await harness.verify(kernel, all_jobs, answers, self.settings)
        for call in calls:
            generated = by_key[call["key"]]
            call.update(seed=generated["seed"], difficulty=generated["difficulty"])
            answer = call["answer"]
            call["shown"] = (
                checks.shown(checks.expand(answers[answer]))
                if isinstance(answer, int)
                else ("another instance's witness")
            )
        self._absorb(calls, "verify", evidence)
        start = 0
        for kind, kind_jobs in jobs.items():
            setattr(evidence, kind, calls[start : start + len(kind_jobs)])
            start += len(kind_jobs)
        await self._score_shortcuts(kernel, evidence, _mean_seconds(evidence.witness))

    @staticmethod
    def _crossed_pairs(instances: list[dict[str, Any]]) -> list[list[str]]:
        """Each instance with the next one's witness at the same difficulty, where they differ."""
        pairs = []
        for difficulty in DIFFICULTIES:
            level = [call for call in instances if call["difficulty"] == difficulty]
            for index, call in enumerate(level):
                other = level[(index + 1) % len(level)]
                if other is not call and other["instance"]["witness"] != call["instance"]["witness"]:
                    pairs.append([f"{call['seed']}:{difficulty}", f"{other['seed']}:{difficulty}"])
        return pairs

    async def _regenerate(self, kernel: Kernel, source: str, evidence: _Evidence) -> None:
        again = _Evidence()
        await self._load(kernel, source, again)
        evidence.events.extend(again.events)
        evidence.limit_problems.extend(again.limit_problems)
        if again.load["status"] != "ok":
            evidence.regenerated = []
            evidence.limit_problems.append(f"the second kernel could not load it: {again.load.get('error')}")
            return
        evidence.regenerated = await self._generate_all(kernel, list(reversed(self.seeds)))
        self._absorb(evidence.regenerated, "generate", evidence)

    def _judge(self, evidence: _Evidence, seconds: float) -> ValidationReport:
        results: dict[str, checks.Result] = {}
        load = evidence.load or {"status": "error", "error": "no reply"}
        results["loads"] = checks.loads(load)
        if checks.usable(load):
            instances = checks.well_formed(evidence.generated)
            population = instances + checks.well_formed(evidence.drawn)
            if evidence.generated:
                results["generates"] = checks.generates(evidence.generated + evidence.drawn)
                results["diverse"] = population_checks.diverse(population)
                results["no_leak"] = population_checks.no_leak(population)
                results["graded"] = population_checks.graded(population)
            if evidence.regenerated is not None:
                results["deterministic"] = checks.deterministic(evidence.generated, evidence.regenerated)
            if evidence.witness is not None:
                by_key = {f"{call['seed']}:{call['difficulty']}": call["instance"] for call in instances}
                results["witness_accepted"] = checks.witness_accepted(evidence.witness, by_key)
            if evidence.crossed is not None:
                results["rejects_wrong"] = checks.rejects_wrong(evidence.junk or [], evidence.crossed)
            if evidence.hostile is not None:
                verify_calls = evidence.witness + evidence.junk + evidence.crossed + evidence.hostile
                results["robust"] = checks.robust(verify_calls)
            if evidence.shortcut_scores is not None:
                shared_rate = population_checks.shared_answer_rate(population)
                results["no_shortcut"] = population_checks.no_shortcut(evidence.shortcut_scores, shared_rate)
        limit_problems = list(evidence.limit_problems)
        if evidence.aborted:
            limit_problems.insert(0, f"the kernel was stopped {evidence.aborted}")
        results["within_limits"] = checks.within_limits(limit_problems)
        results["no_side_effects"] = checks.no_side_effects(evidence.events, self._leaks_secret(evidence))
        not_run = "not run: " + (
            "the file did not load"
            if load["status"] != "ok"
            else "the file defines no usable generate and verify"
            if not checks.usable(load)
            else "the kernel was stopped"
        )
        report_checks = [
            CheckResult(name=name, passed=bool(passed), detail=detail, skipped=passed is None)
            for name in CHECK_NAMES
            for passed, detail in [results.get(name, (None, not_run))]
        ]
        return ValidationReport(
            name=load.get("name"),
            valid=all(check.passed for check in report_checks),
            checks=report_checks,
            seconds=round(seconds, 3),
            traceback=_first_traceback(evidence),
        )

    @staticmethod
    def _leaks_secret(evidence: _Evidence) -> bool:
        secrets = parent_secrets()
        if not secrets:
            return False
        text = json.dumps(evidence.outputs, ensure_ascii=False, default=str)
        return any(secret in text for secret in secrets)


def _first_traceback(evidence: _Evidence) -> str | None:
    calls = [evidence.load or {}, *evidence.generated]
    for group in (evidence.witness, evidence.junk, evidence.crossed, evidence.hostile):
        calls += group or []
    return next((call["traceback"] for call in calls if call.get("traceback")), None)


async def validate_sources(
    sources: list[str], settings: Settings, seeds: int | None = None
) -> list[ValidationReport]:
    """Validate several sources on one warm pool, as many at a time as the pool has kernels."""
    async with KernelPool(settings.kernel) as pool:
        validator = Validator(pool, settings, seeds)
        gate = asyncio.Semaphore(settings.kernel.pool_size)

        async def one(source: str) -> ValidationReport:
            async with gate:
                return await validator.validate(source)

        return await asyncio.gather(*(one(source) for source in sources))
