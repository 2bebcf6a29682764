"""What a synthesis runs on: settings, the kernel pool and validator, the models, the library.

`open_runtime(settings)` starts and later stops all of it; tests pass scripted endpoints instead
of the model factory's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from resyn.agents.exemplars import Exemplar, load_exemplars
from resyn.agents.llm import ChatEndpoint
from resyn.memory.library import Library
from resyn.models import ModelFactory
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator


@dataclass
class SynthesisRuntime:
    settings: Settings
    pool: KernelPool
    validator: Validator
    library: Library
    exemplars: list[Exemplar]
    models: ModelFactory | None = None
    endpoints: dict[str, ChatEndpoint] = field(default_factory=dict)

    def endpoint(self, role: str) -> ChatEndpoint:
        if role not in self.endpoints:
            if self.models is None:
                raise LookupError(f"no endpoint for the role {role!r}")
            self.endpoints[role] = self.models.endpoint(role)
        return self.endpoints[role]

    def model_name(self, role: str) -> str:
        """The model a role talks to, without starting it."""
        if role in self.endpoints or self.models is None:
            return self.endpoint(role).model_name
        return self.models.model_name(role)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, endpoints: dict[str, ChatEndpoint] | None = None
) -> AsyncIterator[SynthesisRuntime]:
    library = Library(settings.data_dir)
    models = None if endpoints else ModelFactory(settings)
    try:
        async with KernelPool(settings.kernel) as pool:
            yield SynthesisRuntime(
                settings=settings,
                pool=pool,
                validator=Validator(pool, settings),
                library=library,
                exemplars=load_exemplars(),
                models=models,
                endpoints=dict(endpoints or {}),
            )
    finally:
        if models is not None:
            models.close()
        library.close()
