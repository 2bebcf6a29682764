"""One chat call, the way every agent makes it: bounded concurrency, timing and token counts.

Agents see a `ChatEndpoint` (a LangChain chat model plus the name to show and a limiter shared by
everything that talks to the same endpoint) and get back a `Reply`: plain data that the graph
stores, sums and traces. Transient faults are retried, and outages waited out, by the endpoint's
`EndpointHealth` (agents/resilience.py): one place for every role, every attempt traced.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

from resyn import tracing
from resyn.agents.resilience import EmptyReply, EndpointHealth, MalformedReply, describe


@dataclass
class ChatEndpoint:
    role: str
    model_name: str
    chat: BaseChatModel
    limiter: asyncio.Semaphore
    embedded: bool = False
    health: EndpointHealth = field(default_factory=EndpointHealth)


@dataclass
class Reply:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    seconds: float

    def usage(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


async def ask(endpoint: ChatEndpoint, messages: list[BaseMessage]) -> Reply:
    """One call, retried through transient faults and outages (see `EndpointHealth.call`); every
    attempt is traced (messages, reply or error, tokens, latency) when a recorder listens."""
    return await endpoint.health.call(lambda: _ask_once(endpoint, messages), lambda: _ping(endpoint))


_PING = [HumanMessage("Reply with the word OK.")]


async def _ping(endpoint: ChatEndpoint) -> None:
    """A tiny request (untraced, its few tokens uncounted): does the endpoint answer at all?"""
    async with endpoint.limiter:
        await endpoint.chat.ainvoke(_PING)


async def _ask_once(endpoint: ChatEndpoint, messages: list[BaseMessage]) -> Reply:
    async with endpoint.limiter:
        started, clock = tracing.now(), time.perf_counter()
        try:
            try:
                message = await endpoint.chat.ainvoke(messages)
            except (TypeError, IndexError, KeyError) as error:  # langchain-openai reading a non-completion
                raise MalformedReply(f"the reply is not a chat completion ({describe(error)})") from error
            text = message.content if isinstance(message.content, str) else str(message.content)
            if not text.strip():
                raise EmptyReply("the endpoint replied with no text")
        except Exception as error:
            _trace(endpoint, messages, started, clock, {"error": f"{type(error).__name__}: {error}"[:500]})
            raise
    usage = getattr(message, "usage_metadata", None) or {}
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
