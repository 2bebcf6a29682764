"""Scoring answers with an environment's own `verify`, in the sandbox (probe, rewards, tools)."""

from __future__ import annotations

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
    scores = []
    for call in scored.value:
        score = call.get("score") if call["status"] == "ok" else None
        if call["status"] != "ok":
            kernel.dirty = True
        scores.append(min(1.0, max(0.0, score)) if isinstance(score, float) else 0.0)
    return scores
