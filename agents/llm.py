"""One chat call, the way every agent makes it: bounded concurrency, timing and token counts.

Agents see a `ChatEndpoint` (a LangChain chat model plus the name to show and a limiter shared by
everything that talks to the same endpoint) and get back a `Reply`: plain data that the graph
stores, sums and traces. Retrying transient faults is the graph's job (LangGraph RetryPolicy).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from resyn import tracing


@dataclass
class ChatEndpoint:
    role: str
    model_name: str
    chat: BaseChatModel
    limiter: asyncio.Semaphore
    embedded: bool = False


@dataclass
class Reply:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    seconds: float

    def usage(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
    TimeoutError,
    ConnectionError,
)


def is_transient(error: BaseException) -> bool:
    """Faults worth retrying with backoff: timeouts, 429, 5xx, refused connections."""
    return isinstance(error, TRANSIENT_ERRORS)


async def ask(endpoint: ChatEndpoint, messages: list[BaseMessage]) -> Reply:
    """One call; it is traced (messages, reply or error, tokens, latency) when a recorder listens."""
    async with endpoint.limiter:
        started, clock = tracing.now(), time.perf_counter()
        try:
            message = await endpoint.chat.ainvoke(messages)
        except Exception as error:
            _trace(endpoint, messages, started, clock, {"error": f"{type(error).__name__}: {error}"[:500]})
            raise
    usage = getattr(message, "usage_metadata", None) or {}
    text = message.content if isinstance(message.content, str) else str(message.content)
    reply = Reply(
        text=text,
        model=endpoint.model_name,
        input_tokens=int(usage.get("input_tokens", 0)),
        output_tokens=int(usage.get("output_tokens", 0)),
        seconds=round(time.perf_counter() - clock, 3),
    )
    _trace(endpoint, messages, started, clock, {"reply": text, **reply.usage()})
    return reply


def _trace(
    endpoint: ChatEndpoint, messages: list[BaseMessage], started: float, clock: float, outcome: dict
) -> None:
    sent = [{"role": message.type, "content": str(message.content)} for message in messages]
    data = {"role": endpoint.role, "model": endpoint.model_name, "messages": sent, **outcome}
    tracing.record("llm_call", endpoint.role, started, time.perf_counter() - clock, data)
