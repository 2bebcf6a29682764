"""Scoring answers with an environment's own `verify`, in the sandbox (probe, rewards, tools)."""

from __future__ import annotations

from typing import Any

from resyn.contract import VERIFY_SECONDS, Instance
from resyn.settings import Settings
from resyn.tools.kernel import Kernel
from resyn.tools.sampler import SampleError, load_in_kernel


async def score_in_kernel(
    kernel: Kernel, source: str, items: list[tuple[Instance, str]], settings: Settings
) -> list[float]:
    """The score of each (instance, answer); a verify that fails or misbehaves scores 0.0."""
    if not items:
        return []
    await load_in_kernel(kernel, source, settings)
    payload = [
        [instance.model_dump(include={"question", "witness", "meta"}), answer] for instance, answer in items
    ]
    scored = await kernel.call(
        "score_batch",
        payload,
        VERIFY_SECONDS,
        settings.kernel.output_limit_bytes,
        timeout=len(payload) * VERIFY_SECONDS + 5,
    )
    if not scored.ok:
        kernel.dirty = True
        raise SampleError(f"verify stopped: {scored.error}")
    return scores_of(kernel, scored.value)


def scores_of(kernel: Kernel, calls: list[dict[str, Any]]) -> list[float]:
    """The scores in a `score_batch` reply, clamped to [0, 1]; a call that failed scores 0.0 and
    marks the kernel for replacement (it may have left state behind)."""
    scores = []
    for call in calls:
        score = call.get("score") if call["status"] == "ok" else None
        if call["status"] != "ok":
            kernel.dirty = True
        scores.append(min(1.0, max(0.0, score)) if isinstance(score, float) else 0.0)
    return scores
