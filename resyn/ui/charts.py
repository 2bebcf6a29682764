"""The geometry of the viewer's charts, drawn as inline SVG by the templates: no script, no CDN.

Each function returns plain numbers and labels (pixel positions, polyline points); the template
only places them, so what a chart shows is tested here, without a browser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resyn.contract import Status

PASS_RATE_HEIGHT = 120  # px of a 100 % bar
PASS_RATE_BAR = 44
PASS_RATE_GAP = 16


def pass_rate_chart(pass_rates: dict[str, float] | None) -> dict[str, Any] | None:
    """Bar geometry for an environment's pass-rate chart: one bar per difficulty."""
    if not pass_rates:
        return None
    bars = []
    for position, (level, rate) in enumerate(pass_rates.items()):
        height = round(PASS_RATE_HEIGHT * max(0.0, min(1.0, rate)))
        bars.append(
            {
                "label": f"d{level}",
                "rate": rate,
                "percent": f"{100 * rate:.0f}%",
                "x": PASS_RATE_GAP + position * (PASS_RATE_BAR + PASS_RATE_GAP),
                "y": 20 + PASS_RATE_HEIGHT - height,
                "height": height,
            }
        )
    return {
        "bars": bars,
        "bar_width": PASS_RATE_BAR,
        "width": PASS_RATE_GAP + len(bars) * (PASS_RATE_BAR + PASS_RATE_GAP),
        "height": PASS_RATE_HEIGHT + 44,
        "base": 20 + PASS_RATE_HEIGHT,
    }


@dataclass(frozen=True)
class Verdict:
    """One finished environment of a job, as the progress chart places it."""

    environment_id: str
    status: str
    at: float  # unix time of the verdict


WIDTH = 880
LEFT, RIGHT = 100, 24  # room for the y labels, and for the last x label
TOP = 20  # room for the first panel's label
PANEL = 96  # px of one line panel (accepted, tokens)
PANEL_GAP = 34
LANE = 18  # px of one verdict lane


def progress_chart(
    verdicts: list[Verdict],
    tokens: list[tuple[float, int]],
    start: float,
    end: float,
    resumes: list[float],
    target: int | None = None,
) -> dict[str, Any] | None:
    """A job's progress against wall time: accepted so far, tokens so far (`tokens`: the job's
    total at some times, the last one its total now), and each verdict in its status's lane.
    `start`..`end` is the time axis (the job's start to its last news, or now while it runs);
    `resumes` are the times it was resumed, drawn as marks. None without verdicts."""
    if not verdicts:
        return None
    verdicts = sorted(verdicts, key=lambda verdict: verdict.at)
    tokens = sorted(tokens)
    end = max(end, verdicts[-1].at, *(at for at, _total in tokens[-1:]), start + 1.0)

    def x(at: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * (at - start) / (end - start), 1)

    accepted = [verdict for verdict in verdicts if verdict.status == Status.ACCEPTED]
    accepted_so_far = [(verdict.at, count) for count, verdict in enumerate(accepted, 1)]
    accepted_top = max(len(accepted), target or 0, 1)
    total = max((count for _at, count in tokens), default=0)
    lanes_top = TOP + 2 * (PANEL + PANEL_GAP)
    statuses = [status for status in Status if any(verdict.status == status for verdict in verdicts)]
    lanes = [
        {
            "label": f"{status} {sum(verdict.status == status for verdict in verdicts)}",
            "status": status,
            "y": lanes_top + LANE * row + LANE / 2,
            "dots": [
                {"x": x(verdict.at), "environment_id": verdict.environment_id}
                for verdict in verdicts
                if verdict.status == status
            ],
        }
        for row, status in enumerate(statuses)
    ]
    height = lanes_top + LANE * len(lanes) + 30
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "panels": [
            _panel("accepted", accepted_so_far, accepted_top, TOP, x, start, end),
            _panel("tokens", tokens, max(total, 1), TOP + PANEL + PANEL_GAP, x, start, end),
        ],
        "lanes": lanes,
        "lanes_top": lanes_top,
        "ticks": [
            {"x": x(start + share * (end - start)), "label": _elapsed(share * (end - start))}
            for share in (0, 0.25, 0.5, 0.75, 1)
        ],
        "axis_y": height - 22,
        "resumes": [x(at) for at in resumes if start <= at <= end],
        "total_tokens": total,
        "accepted": len(accepted),
    }


def _panel(
    label: str,
    points: list[tuple[float, int]],
    top: int,
    offset: int,
    x: Callable[[float], float],
    start: float,
    end: float,
) -> dict[str, Any]:
    """A step line from 0 at `start` through each (time, value) to `end`, on a 0..top scale."""

    def y(value: int) -> float:
        return round(offset + PANEL - PANEL * value / top, 1)

    line = [(x(start), y(0))]
    for at, value in points:
        line += [(x(at), line[-1][1]), (x(at), y(value))]
    line.append((x(end), line[-1][1]))
    return {
        "label": label,
        "top_label": f"{top:,}",
        "points": " ".join(f"{px:g},{py:g}" for px, py in line),
        "y_top": offset,
        "y_base": offset + PANEL,
    }


def _elapsed(seconds: float) -> str:
    if seconds < 120:
        return f"+{seconds:.0f} s"
    if seconds < 7200:
        return f"+{seconds / 60:.0f} min"
    return f"+{seconds / 3600:.1f} h"
