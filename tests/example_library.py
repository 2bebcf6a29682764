"""The example library: the twelve hand-written example environments, recorded as accepted in a
workspace's library the way a synthesis records them, plus a few rejected syntheses so the funnel
has something to show. Pass rates, tokens and novelty vectors are made up but plausible (and fixed,
so tests are deterministic); nothing here calls a model or a kernel.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from resyn.agents.exemplars import load_exemplars
from resyn.contract import CHECK_NAMES, CheckResult, ValidationReport
from resyn.memory.embeddings import DIMENSIONS
from resyn.memory.library import Library

AUTHOR, SOLVER = "scripted-author", "scripted-solver"


def report(failed: tuple[str, ...] = ()) -> ValidationReport:
    checks = [
        CheckResult(name=name, passed=name not in failed, detail=f"{name} failed for seed=3 difficulty=2")
        for name in CHECK_NAMES
    ]
    return ValidationReport(name="x", valid=not failed, checks=checks, seconds=1.0)


def vector(rng: random.Random, near: np.ndarray | None = None) -> np.ndarray:
    """A unit vector: random, or close to `near` (two environments on one theme)."""
    values = np.array([rng.gauss(0, 1) for _ in range(DIMENSIONS)], dtype=np.float32)
    if near is not None:
        values = near * 8 + values * 0.1
    return (values / np.linalg.norm(values)).astype(np.float32)


def build_example_library(data_dir: Path, contaminated: str | None = None) -> Library:
    """Accepted: every example environment (two of them, the path-finding ones, given near vectors).
    Rejected: one invalid (after two attempts), one unsolvable, one duplicate. `contaminated` names
    an example (its NAME) to flag as a near-duplicate of a BBH question."""
    library = Library(data_dir)
    rng = random.Random(7)
    themed: np.ndarray | None = None
    for number, exemplar in enumerate(load_exemplars()):
        environment_id = f"{number:02d}" + "ab" * 5
        library.start(environment_id, exemplar.topic, AUTHOR, SOLVER)
        library.record_attempt(environment_id, 1, "draft", exemplar.source, report(), None)
        embedding = vector(rng, themed if exemplar.name == "shortest-path" else None)
        if exemplar.name == "grid-navigation":
            themed = embedding
        rates = {str(level): round(max(0.05, 0.9 - 0.17 * level - 0.01 * number), 3) for level in range(1, 6)}
        flag = None
        if exemplar.name == contaminated:
            flag = {"benchmark": "bbh", "task": "word_sorting", "example": 4, "similarity": 0.91}
        library.finish(
            environment_id,
            status="accepted",
            reason="valid, and the solver solved some of the probes",
            source=exemplar.source,
            report=report(),
            pass_rates=rates,
            usage={"input_tokens": 3000 + 100 * number, "output_tokens": 1500 + 50 * number},
            name=exemplar.name,
            description=exemplar.description,
            embedding=embedding.tobytes(),
            contamination=flag,
        )
    _rejected(library)
    return library


def _rejected(library: Library) -> None:
    """An invalid synthesis (a draft and a repair), an unsolvable one and a duplicate."""
    invalid = [report(("loads", "generates")), report(("no_leak",))]
    _finished(
        library, "f1cdcdcdcdcd", "tower puzzles", "invalid", "still invalid after 1 repairs: no_leak", invalid
    )
    unsolvable = {str(level): 0.0 for level in range(1, 6)}
    _finished(library, "f2cdcdcdcdcd", "prime sieves", "unsolvable", "the solver solved 0% of the probes",
              [report()], unsolvable)  # fmt: skip
    duplicate = "duplicate of 09ababababab (shortest-path): cosine 0.95 ≥ 0.92"
    _finished(library, "f3cdcdcdcdcd", "route finding", "duplicate", duplicate, [report()])


def _finished(
    library: Library,
    environment_id: str,
    topic: str,
    status: str,
    reason: str,
    reports: list[ValidationReport],
    pass_rates: dict[str, float] | None = None,
) -> None:
    library.start(environment_id, topic, AUTHOR, SOLVER)
    for number, attempt in enumerate(reports, 1):
        library.record_attempt(
            environment_id, number, "draft" if number == 1 else "repair", "NAME = 'x'", attempt, None
        )
    library.finish(
        environment_id,
        status=status,
        reason=reason,
        source="NAME = 'x'",
        report=reports[-1],
        pass_rates=pass_rates,
        usage={"input_tokens": 4000, "output_tokens": 2000},
    )
