"""A synthesis runtime for tests: the real kernel pool, validator, library and exemplars, with
scripted endpoints in place of the model factory's."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver

from resyn.agents.exemplars import load_exemplars
from resyn.agents.llm import ChatEndpoint
from resyn.graph.runtime import SynthesisRuntime
from resyn.memory.library import Library
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator


def scripted_runtime(
    settings: Settings,
    pool: KernelPool,
    endpoints: dict[str, ChatEndpoint],
    checkpointer: BaseCheckpointSaver | None = None,
) -> SynthesisRuntime:
    """A runtime on `settings.data_dir` whose models are `endpoints` (by role)."""
    return SynthesisRuntime(
        settings=settings,
        pool=pool,
        validator=Validator(pool, settings, seeds_per_difficulty=4),
        library=Library.of(settings),
        exemplars=load_exemplars(),
        endpoints=endpoints,
        checkpointer=checkpointer,
    )
