"""A repair that returns the very code it was asked to repair: told so, counted, not validated again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from scripted_runtime import scripted_runtime

from resyn.agents.author import same_source
from resyn.agents.llm import ChatEndpoint
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.synthesis import synthesize
from resyn.settings import LLMSettings, Settings, SynthesisSettings
from resyn.testing.scripted import ScriptedChatModel, in_order
from resyn.tools.kernel_pool import KernelPool

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "valid_minimal.py").read_text()
BROKEN = (FIXTURES / "defective" / "witness_accepted.py").read_text()
UNCHANGED_NOTICE = (
    "Your reply is the same code as the previous attempt; it still fails witness_accepted. "
    "Change the code to fix them."
)


def fenced(source: str) -> str:
    return f"Here is the corrected environment.\n\n```python\n{source}```"


@pytest.fixture
def repair_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": tmp_path,
            "synthesis": SynthesisSettings(max_repairs=2, probe_instances=3),
            "llm": LLMSettings(retries=1, retry_initial_s=0.01),
        }
    )


def runtime_for(settings: Settings, pool: KernelPool, replies: list[str]) -> SynthesisRuntime:
    author = ChatEndpoint(
        "author", "scripted-author", ScriptedChatModel(script=in_order(replies)), asyncio.Semaphore(2)
    )
    return scripted_runtime(settings, pool, {"author": author})


def prompts(runtime: SynthesisRuntime) -> list[str]:
    calls: list[list[BaseMessage]] = runtime.endpoints["author"].chat.calls
    return [str(call[-1].content) for call in calls]


async def test_the_same_code_again_is_a_failed_repair_the_author_is_told_about(
    repair_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(repair_settings, pool, [fenced(BROKEN)] * 3)
    record = await synthesize(runtime, "mental arithmetic", probe=False)

    assert record.status == "invalid"
    assert "after 2 repairs (2 returned the code unchanged)" in record.reason
    assert "witness_accepted" in record.reason
    first_repair, second_repair = prompts(runtime)[1:]
    assert UNCHANGED_NOTICE not in first_repair  # it had not repeated itself yet
    assert second_repair.startswith(UNCHANGED_NOTICE)
    assert "witness_accepted" in second_repair.split(UNCHANGED_NOTICE)[1]  # the failures, again

    attempts = runtime.library.attempts(record.id)
    assert [attempt.report is not None for attempt in attempts] == [True, False, False]  # one validation
    assert [attempt.problem for attempt in attempts[1:]] == [
        "unchanged: the same code as attempt 1, which fails witness_accepted"
    ] * 2


async def test_a_changed_reply_after_an_unchanged_one_is_validated_again(
    repair_settings: Settings, pool: KernelPool
) -> None:
    only_whitespace_changed = "\n\n" + BROKEN.replace("\n", "   \n") + "\n"
    runtime = runtime_for(
        repair_settings, pool, [fenced(BROKEN), fenced(only_whitespace_changed), fenced(VALID)]
    )
    record = await synthesize(runtime, "mental arithmetic", probe=False)

    assert record.status == "accepted", record.reason
    assert prompts(runtime)[2].startswith(UNCHANGED_NOTICE)
    attempts = runtime.library.attempts(record.id)
    assert attempts[1].problem.startswith("unchanged: the same code as attempt 1")
    assert attempts[2].problem is None and attempts[2].report.valid


def test_same_source_ignores_trailing_whitespace_but_not_code() -> None:
    assert same_source(BROKEN, "\n" + BROKEN.replace("\n", " \t\n") + "\n\n")
    assert not same_source(BROKEN, BROKEN.replace("return", "return  ", 1))
    assert not same_source(BROKEN, VALID)
