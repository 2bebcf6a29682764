"""`resyn report`: what the library's syntheses came to, from its environments and attempts.

- **funnel**, in the order a synthesis runs: started → drafted (the author produced code) → valid
  (every contract check) → novel (not a near-duplicate; checked before the probe, to spare its
  LLM calls) → solvable (the solver solved some probes: not unsolvable, nor a probe lost to a
  fault) → not trivial (it did not solve them all: not too easy) → graded (pass rates do not rise
  with difficulty: not inverted) → accepted. Each stage lists what was lost there, by status. A
  duplicate found by the verdict's re-check (a sibling was accepted meanwhile) is lost at the last step.
- **checks**: how many syntheses' final reports and how many validations (attempts) failed each
  contract check, and how many attempts a synthesis took.
- **diversity**: each accepted environment's nearest neighbour (cosine of the stored novelty
  vectors), and clusters — connected components of the graph joining environments at cosine ≥ the
  threshold.
- **difficulty profile**: mean probe pass rate by level, over accepted and over all probed environments.
- **tokens**: what it cost, by role (the scout's included: with `job`, the very count of
  `Library.job_usage`), on environments not accepted, and per accepted environment; in USD when
  prices are set.

`build_report(library, job=NAME)` reports one job; `resyn.evals.report_html.render_html` draws
the same as a self-contained page.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from statistics import mean
from typing import TYPE_CHECKING

from resyn.contract import CHECK_NAMES, DIFFICULTIES, Status
from resyn.memory.library import Library
from resyn.memory.records import EnvironmentRecord

if TYPE_CHECKING:
    import numpy as np

    from resyn.memory.embeddings import Embedder
    from resyn.settings import PriceSettings

STAGES = ("started", "drafted", "valid", "novel", "solvable", "not trivial", "graded", "accepted")


@dataclass
class Stage:
    name: str
    count: int
    lost: dict[str, int] = field(default_factory=dict)  # status → environments that stopped here


@dataclass
class Diversity:
    threshold: float
    nearest: dict[str, float]  # environment name → cosine to its nearest other accepted environment
    clusters: list[list[str]]  # names, largest first; only clusters of two or more
    singletons: int
    embedded_now: int = 0  # accepted environments without a stored vector, embedded for this report
    ids: dict[str, str] = field(default_factory=dict)  # environment name → its id


@dataclass
class CorpusReport:
    statuses: dict[str, int]
    funnel: list[Stage]
    reasons: dict[str, str]  # status → its most recent reason, as an example
    final_failed_checks: dict[str, int]  # check → syntheses whose final report failed it
    attempt_failed_checks: dict[str, int]  # check → validations (of every attempt) that failed it
    attempts: dict[str, float]  # mean attempts, first-draft valid share, …
    difficulty: dict[int, tuple[float | None, float | None, int]]  # level → (accepted, probed, n accepted)
    tokens: dict[str, float]
    diversity: Diversity | None
    seconds: float = 0.0
    job: str | None = None  # the job reported on; None: the whole library
    created: float = 0.0  # when the report was made (epoch seconds)
    models: dict[str, list[str]] = field(default_factory=dict)  # role → the models it used
    examples: dict[str, str] = field(default_factory=dict)  # status → id of the example reason's environment
    cost_usd: float | None = None  # estimated from the price settings; None when unknown


def _stage_lost(record: EnvironmentRecord, has_code: bool) -> str | None:
    """The stage at which a finished synthesis stopped; None when it was accepted."""
    status = record.status
    if status == Status.ACCEPTED:
        return None
    if not has_code:
        return "drafted"
    valid = record.report is not None and record.report.valid
    if status == Status.INVALID or not valid:
        return "valid"
    if status in (Status.DUPLICATE, Status.OFF_TOPIC):  # rejected before the probe, or after it
        return "novel" if record.pass_rates is None else "accepted"
    if status == Status.TOO_EASY:
        return "not trivial"
    if status == Status.INVERTED:
        return "graded"
    return "solvable"  # unsolvable; a probe lost to a solver outage, or an error after validity


def build_report(
    library: Library,
    embedder: Embedder | None = None,
    cluster_threshold: float = 0.75,
    job: str | None = None,
    prices: PriceSettings | None = None,
) -> CorpusReport:
    """The report of everything finished in the library, or in one `job`. Accepted environments
    without a stored vector are embedded with `embedder` (loaded only if one is needed)."""
    started = time.perf_counter()
    scope = [record for record in library.environments() if job is None or record.job == job]
    records = [record for record in scope if record.status != Status.RUNNING]
    attempts = {record.id: library.attempts(record.id) for record in records}
    statuses = Counter(record.status for record in records)
    lost_at: dict[str, Counter] = {stage: Counter() for stage in STAGES}
    reasons: dict[str, str] = {}
    examples: dict[str, str] = {}
    for record in records:
        has_code = bool(record.source) or any(attempt.source for attempt in attempts[record.id])
        stage = _stage_lost(record, has_code)
        reasons[record.status], examples[record.status] = record.reason, record.id
        if stage is not None:
            lost_at[stage][record.status] += 1
    funnel, remaining = [], len(records)
    for stage in STAGES:
        remaining -= sum(lost_at[stage].values())
        funnel.append(Stage(stage, remaining, dict(lost_at[stage].most_common())))

    final_failed: Counter = Counter()
    attempt_failed: Counter = Counter()
    for record in records:
        if record.report is not None:
            final_failed.update(check.name for check in record.report.failed() if not check.skipped)
        for attempt in attempts[record.id]:
            if attempt.report is not None:
                attempt_failed.update(check.name for check in attempt.report.failed() if not check.skipped)
    validated = [[a for a in attempts[record.id] if a.report is not None] for record in records]
    firsts = [reports[0].report.valid for reports in validated if reports]
    to_valid = [
        next(number for number, attempt in enumerate(reports, 1) if attempt.report.valid)
        for reports in validated
        if any(attempt.report.valid for attempt in reports)
    ]
    attempt_stats = {
        "mean attempts": mean(len(attempts[record.id]) for record in records) if records else 0.0,
        "valid at the first draft": mean(firsts) if firsts else 0.0,
        "validations to become valid": mean(to_valid) if to_valid else 0.0,
    }

    accepted = [record for record in records if record.status == Status.ACCEPTED]
    probed = [record for record in records if record.pass_rates]
    difficulty = {}
    for level in DIFFICULTIES:
        ours = [r.pass_rates[str(level)] for r in accepted if r.pass_rates and str(level) in r.pass_rates]
        every = [r.pass_rates[str(level)] for r in probed if str(level) in r.pass_rates]
        difficulty[level] = (mean(ours) if ours else None, mean(every) if every else None, len(ours))

    usage = library.usage(job, prices)
    tokens = {
        "total": float(usage.total),
        "input": float(usage.input_tokens),
        "output": float(usage.output_tokens),
        **{role: float(count.total) for role, count in usage.by_role.items()},
        "on environments not accepted": float(usage.rejected),
        "all syntheses per accepted environment": (
            sum(record.tokens for record in scope) / len(accepted) if accepted else 0.0
        ),
        "an accepted environment's own synthesis": mean(r.tokens for r in accepted) if accepted else 0.0,
    }
    models = {
        role: sorted({model for record in scope if (model := getattr(record, f"{role}_model"))})
        for role in ("author", "solver")
    }
    return CorpusReport(
        statuses=dict(statuses.most_common()),
        funnel=funnel,
        reasons=reasons,
        final_failed_checks={name: final_failed[name] for name in CHECK_NAMES if final_failed[name]},
        attempt_failed_checks={name: attempt_failed[name] for name in CHECK_NAMES if attempt_failed[name]},
        attempts=attempt_stats,
        difficulty=difficulty,
        tokens=tokens,
        diversity=diversity(library, accepted, embedder, cluster_threshold),
        seconds=round(time.perf_counter() - started, 3),
        job=job,
        created=time.time(),
        models=models,
        examples=examples,
        cost_usd=usage.cost_usd,
    )


def diversity(
    library: Library, accepted: list[EnvironmentRecord], embedder: Embedder | None, threshold: float
) -> Diversity | None:
    """Nearest-neighbour cosines and similarity clusters of the accepted environments (two or more)."""
    if len(accepted) < 2:
        return None
    import networkx as nx
    import numpy as np

    stored = {environment_id: blob for _, environment_id, blob in library.accepted_embeddings()}
    missing = [record for record in accepted if record.id not in stored]
    vectors: dict[str, np.ndarray] = {
        environment_id: np.frombuffer(blob, dtype=np.float32) for environment_id, blob in stored.items()
    }
    if missing:
        from resyn.memory.novelty import novelty_text

        if embedder is None:
            from resyn.memory.embeddings import Embedder

            embedder = Embedder()
        texts = [novelty_text(record.name, record.description, []) for record in missing]
        for record, row in zip(missing, embedder.embed(texts), strict=True):
            vectors[record.id] = row
    names = [record.name or record.id for record in accepted]
    matrix = np.stack([vectors[record.id] for record in accepted]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
    cosines = matrix @ matrix.T
    np.fill_diagonal(cosines, -1.0)
    nearest = {name: round(float(cosines[row].max()), 4) for row, name in enumerate(names)}
    graph = nx.Graph()
    graph.add_nodes_from(range(len(names)))
    rows, columns = np.nonzero(np.triu(cosines >= threshold, k=1))
    graph.add_edges_from(zip(rows.tolist(), columns.tolist(), strict=True))
    components = sorted(nx.connected_components(graph), key=lambda part: (-len(part), min(part)))
    clusters = [sorted(names[node] for node in part) for part in components if len(part) > 1]
    singletons = sum(1 for part in components if len(part) == 1)
    ids = {name: record.id for name, record in zip(names, accepted, strict=True)}
    return Diversity(threshold, nearest, clusters, singletons, embedded_now=len(missing), ids=ids)


def scope_line(report: CorpusReport) -> str:
    """What the report covers, when it was made, and with which models."""
    scope = f"job {report.job}" if report.job else "the whole library"
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.created))
    models = [f"{role}: {', '.join(names)}" for role, names in report.models.items() if names]
    return " · ".join([scope, made, *models])


def attempt_rows(report: CorpusReport) -> list[tuple[str, str]]:
    """The attempt statistics, each with a label that says what its number is."""
    stats = report.attempts
    return [
        ("attempts per synthesis (draft + repairs, mean)", f"{stats['mean attempts']:.2f}"),
        ("syntheses valid at the first draft", f"{stats['valid at the first draft']:.0%}"),
        (
            "validations until valid (mean, of those that became valid)",
            f"{stats['validations to become valid']:.2f}",
        ),
    ]


def cost_text(report: CorpusReport) -> str:
    return "—" if report.cost_usd is None else f"${report.cost_usd:,.2f}"
