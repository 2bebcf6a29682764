"""What a synthesis ends with: its status and the reason, from the state its steps left.

`invalid` when the repairs are spent (a repair that returns the code unchanged is one of them),
`duplicate` when an accepted environment is too close, `off_topic` when it was written for another
topic than the one asked (both decided before the probe, in the novelty step). A valid environment
is kept when the solver solves some but not all probed instances (a learning signal exists) and
the hard levels are not clearly easier than the easy ones (the difficulty knob means something).
Per-level pass rates are stored either way: they are the curriculum.
"""

from __future__ import annotations

from statistics import mean
from typing import TYPE_CHECKING, Any

from resyn.contract import DIFFICULTIES, Status
from resyn.settings import SynthesisSettings

if TYPE_CHECKING:
    from resyn.graph.runtime import SynthesisRuntime
    from resyn.graph.synthesis_graph import SynthesisState


def decide(state: SynthesisState, settings: SynthesisSettings) -> tuple[Status, str]:
    """(status, reason): the one a step already decided, else the validation's, else the probe's."""
    if state.get("status"):
        return Status(state["status"]), state["reason"]
    repairs = state.get("attempts", 1) - 1
    report = state.get("report")
    if state.get("problem"):
        return (
            Status.INVALID,
            f"after {repairs} repairs the author's reply held no usable code: {state['problem']}",
        )
    if report is None or not report.valid:
        failed = report.failures() if report is not None else []
        summary = "; ".join(f"{check.name}: {check.detail}" for check in failed[:3])
        unchanged = state.get("unchanged_repairs", 0)
        spent = (
            f"{repairs} repairs ({unchanged} returned the code unchanged)"
            if unchanged
            else f"{repairs} repairs"
        )
        return Status.INVALID, f"still invalid after {spent}: {summary}"
    if not state["probe"]:
        return Status.ACCEPTED, "valid; the solver probe was skipped (--no-probe)"
    status, reason = probe_verdict(state["pass_rates"], settings)
    if state.get("missing_answers"):
        reason += f"; {state['missing_answers']} of {len(state['probe_instances'])} answers missing"
    return status, reason


def duplicate_reason(runtime: SynthesisRuntime, vector: Any) -> str | None:
    """Why the environment embedded as `vector` is a duplicate of an accepted one; None if it is not."""
    if runtime.novelty is None:
        return None
    threshold = runtime.settings.expansion.duplicate_threshold
    found = runtime.novelty.nearest(vector)
    if not found or found[0].similarity < threshold:
        return None
    neighbour = found[0]
    name = runtime.library.get(neighbour.environment_id).name or "unnamed"
    similarity = neighbour.similarity
    return f"duplicate of {neighbour.environment_id} ({name}): cosine {similarity:.3f} ≥ {threshold}"


def missing_answers_allowed(questions: int, settings: SynthesisSettings) -> int:
    """How many probe answers may be missing before the probe is void (10% by default: 2 of 20)."""
    return int(questions * settings.max_missing_answers)


def pass_rates(scores_by_level: dict[int, list[float]]) -> dict[str, float]:
    """Fraction of fully solved instances (score 1.0) per difficulty, keyed "1".."5" for JSON."""
    return {
        str(level): round(mean(score >= 1.0 for score in scores), 3)
        for level, scores in sorted(scores_by_level.items())
        if scores
    }


def probe_verdict(rates: dict[str, float], settings: SynthesisSettings) -> tuple[Status, str]:
    """(status, reason) for a valid environment from its per-level pass rates."""
    shown = ", ".join(f"d{level}={rate:.2f}" for level, rate in rates.items())
    overall = mean(rates.values())
    if overall <= settings.min_pass_rate:
        return Status.UNSOLVABLE, f"the solver solved {overall:.0%} of the probes ({shown})"
    if overall >= settings.max_pass_rate:
        return Status.TOO_EASY, f"the solver solved {overall:.0%} of the probes ({shown})"
    easy = mean(rates.get(str(level), 0.0) for level in DIFFICULTIES[:2])
    hard = mean(rates.get(str(level), 0.0) for level in DIFFICULTIES[-2:])
    if hard - easy > settings.max_difficulty_rise:
        return Status.INVERTED, f"pass rates rise with difficulty beyond noise ({shown})"
    return Status.ACCEPTED, f"valid, and the solver solved {overall:.0%} of the probes ({shown})"
