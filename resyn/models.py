"""The model factory: one `ChatOpenAI` per role, on whatever OpenAI-compatible endpoint is set.

Roles (author, solver, scout) resolve their endpoint from the settings: per-role overrides
(RESYN_AUTHOR_*, RESYN_SOLVER_*) over the shared defaults (RESYN_LLM_*). With no base URL at all
the embedded model is started and used through the very same client. Endpoints with the same URL
share one concurrency limiter, so RESYN_LLM_MAX_CONCURRENCY bounds what the endpoint sees, and one
`EndpointHealth`, so an outage is noticed (and waited out) once for every role on it.
"""

from __future__ import annotations

import asyncio

from langchain_openai import ChatOpenAI

from resyn.agents.llm import ChatEndpoint
from resyn.agents.resilience import EndpointHealth
from resyn.embedded import EMBEDDED_MODEL, EmbeddedServer
from resyn.settings import Settings


class ModelConfigError(ValueError):
    """The settings name an endpoint but not enough to reach it; the message says what to set."""


class ModelFactory:
    """Builds each role's endpoint once and owns the embedded server, if one is started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = EmbeddedServer(settings.embedded)
        self._limiters: dict[str, asyncio.Semaphore] = {}
        self._healths: dict[str, EndpointHealth] = {}
        self._endpoints: dict[str, ChatEndpoint] = {}

    def uses_embedded(self, role: str) -> bool:
        return self.settings.model_for(role).base_url is None

    def model_name(self, role: str) -> str:
        resolved = self.settings.model_for(role)
        return (resolved.model or "?") if resolved.base_url else EMBEDDED_MODEL

    def endpoint(self, role: str) -> ChatEndpoint:
        if role not in self._endpoints:
            self._endpoints[role] = self._build(role)
        return self._endpoints[role]

    def _limiter(self, base_url: str, slots: int | None = None) -> asyncio.Semaphore:
        if base_url not in self._limiters:
            self._limiters[base_url] = asyncio.Semaphore(slots or self.settings.llm.max_concurrency)
        return self._limiters[base_url]

    def health(self, base_url: str) -> EndpointHealth:
        if base_url not in self._healths:
            self._healths[base_url] = EndpointHealth(base_url, self.settings.llm)
        return self._healths[base_url]

    def check(self, role: str) -> None:
        """Raise ModelConfigError if the role's endpoint cannot be reached as configured."""
        resolved = self.settings.model_for(role)
        if resolved.base_url is not None and not resolved.model:
            raise ModelConfigError(
                f"{role}: an endpoint is set ({resolved.base_url}) but no model: set RESYN_LLM_MODEL "
                f"or RESYN_{role.upper()}_MODEL"
            )

    def _build(self, role: str) -> ChatEndpoint:
        self.check(role)
        resolved = self.settings.model_for(role)
        common = {
            "timeout": self.settings.llm.timeout_s,
            "max_retries": 0,  # retries with backoff are the EndpointHealth's: one place, traced
            "temperature": resolved.temperature,
        }
        if resolved.base_url is None:
            max_tokens = min(
                resolved.max_tokens or self.settings.embedded.max_tokens, self.settings.embedded.max_tokens
            )
            # one request at a time: the embedded server runs one generation at a time anyway, and
            # requests queued behind it would run into their timeouts
            chat = ChatOpenAI(
                base_url=self.embedded.base_url,
                api_key="embedded",
                model="smollm2-135m-instruct",
                # llama-cpp-python's server ignores max_completion_tokens, which langchain-openai sends
                extra_body={"max_tokens": max_tokens},
                **common,
            )
            return ChatEndpoint(
                role,
                EMBEDDED_MODEL,
                chat,
                self._limiter("embedded", 1),
                embedded=True,
                health=self.health("the embedded model's server"),
            )
        chat = ChatOpenAI(
            base_url=resolved.base_url,
            api_key=resolved.api_key or "not-needed",  # vLLM, Ollama and llama.cpp take any key
            model=resolved.model,
            max_tokens=resolved.max_tokens,
            **common,
        )
        limiter, health = self._limiter(resolved.base_url), self.health(resolved.base_url)
        return ChatEndpoint(role, resolved.model, chat, limiter, health=health)

    def close(self) -> None:
        self.embedded.stop()
