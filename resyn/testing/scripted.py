"""Scripted chat models for tests and benchmarks: deterministic fakes, never real model output.

`ScriptedChatModel(script)` answers each call with `script(messages)`: a string, or an exception to
raise (to simulate timeouts and rate limits). Token counts are estimated (4 characters a token) so
that usage accounting has something to count. Its name always says it is a fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Script = Callable[[list[BaseMessage]], "str | BaseException"]


def in_order(replies: Iterable[str | BaseException]) -> Script:
    """A script that gives these replies one after another, whatever it is asked."""
    queue = list(replies)

    def next_reply(_messages: list[BaseMessage]) -> str | BaseException:
        if not queue:
            raise AssertionError("the scripted model was called more often than scripted")
        return queue.pop(0)

    return next_reply


class ScriptedChatModel(BaseChatModel):
    """A fake chat model that replies from a script; `calls` records every prompt it got."""

    script: Any
    latency_s: float = 0.0
    fake_name: str = "scripted-fake"
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    keep_calls: bool = True  # False for long benchmark runs, where the record itself would grow

    @property
    def _llm_type(self) -> str:
        return self.fake_name

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        self.calls.append(messages if self.keep_calls else [])
        outcome = self.script(messages)
        if isinstance(outcome, BaseException):
            raise outcome
        prompt_chars = sum(len(str(message.content)) for message in messages)
        usage = {
            "input_tokens": prompt_chars // 4,
            "output_tokens": len(outcome) // 4,
            "total_tokens": prompt_chars // 4 + len(outcome) // 4,
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(outcome, usage_metadata=usage))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._reply(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._reply(messages)
