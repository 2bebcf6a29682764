"""Scoring answers with an environment's own `verify`, in the sandbox (probe, rewards, tools)."""

from __future__ import annotations

from resyn.contract import Instance
from resyn.settings import Settings
from resyn.tools import harness
from resyn.tools.harness import HarnessStopped
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
        (instance.model_dump(include={"question", "witness", "meta"}), answer) for instance, answer in items
    ]
    try:
        scores, _seconds = await harness.score(kernel, payload, settings)
    except HarnessStopped as stopped:
        raise SampleError(f"verify stopped: {stopped.error}") from None
    return scores
