"""The solver probe's verdict: is a valid environment worth keeping for RL?

An environment is kept when the solver solves some but not all probed instances (a learning
signal exists) and the hard levels are not clearly easier than the easy ones (the difficulty
knob means something). Per-level pass rates are stored either way: they are the curriculum.
"""

from __future__ import annotations

from statistics import mean

from resyn.contract import DIFFICULTIES
from resyn.settings import SynthesisSettings


def pass_rates(scores_by_level: dict[int, list[float]]) -> dict[str, float]:
    """Fraction of fully solved instances (score 1.0) per difficulty, keyed "1".."5" for JSON."""
    return {
        str(level): round(mean(score >= 1.0 for score in scores), 3)
        for level, scores in sorted(scores_by_level.items())
        if scores
    }


def probe_verdict(rates: dict[str, float], settings: SynthesisSettings) -> tuple[str, str]:
    """(status, reason) for a valid environment from its per-level pass rates."""
    shown = ", ".join(f"d{level}={rate:.2f}" for level, rate in rates.items())
    overall = mean(rates.values())
    if overall <= settings.min_pass_rate:
        return "unsolvable", f"the solver solved {overall:.0%} of the probes ({shown})"
    if overall >= settings.max_pass_rate:
        return "too_easy", f"the solver solved {overall:.0%} of the probes ({shown})"
    easy = mean(rates.get(str(level), 0.0) for level in DIFFICULTIES[:2])
    hard = mean(rates.get(str(level), 0.0) for level in DIFFICULTIES[-2:])
    if hard - easy > settings.max_difficulty_rise:
        return "inverted", f"pass rates rise with difficulty beyond noise ({shown})"
    return "accepted", f"valid, and the solver solved {overall:.0%} of the probes ({shown})"
