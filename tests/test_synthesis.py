"""The synthesis graph with scripted (fake) models: drafts, repairs, probes, verdicts, resumes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from scripted_runtime import scripted_runtime

from resyn.agents.llm import ChatEndpoint
from resyn.agents.resilience import EndpointDown
from resyn.contract import DIFFICULTIES
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.synthesis import FROM_FILE, synthesize
from resyn.settings import LLMSettings, Settings, SynthesisSettings
from resyn.testing.scripted import ScriptedChatModel, in_order
from resyn.tools.kernel_pool import KernelPool

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "valid_minimal.py").read_text()
BROKEN = (FIXTURES / "defective" / "witness_accepted.py").read_text()


def fenced(source: str) -> str:
    return f"Here is the environment.\n\n```python\n{source}```\n\nIt follows the contract."


def endpoint(role: str, script) -> ChatEndpoint:
    return ChatEndpoint(role, f"scripted-{role}", ScriptedChatModel(script=script), asyncio.Semaphore(8))


def question_of(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def correct_sum(messages: list[BaseMessage]) -> str:
    numbers = re.findall(r"-?\d+", question_of(messages).split("?")[0])
    return f"Adding them up: <answer>{sum(map(int, numbers))}</answer>"


def always_right(messages: list[BaseMessage]) -> str:
    return correct_sum(messages)


def never_right(_messages: list[BaseMessage]) -> str:
    return "I think it is <answer>not a number</answer>"


def right_on_short_lists(messages: list[BaseMessage]) -> str:
    """Solves lists of up to 12 numbers (difficulties 1-3), fails the longer ones."""
    count = len(re.findall(r"-?\d+", question_of(messages).split("?")[0]))
    return correct_sum(messages) if count <= 12 else "<answer>0.5</answer>"


@pytest.fixture
def synthesis_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": tmp_path,
            "synthesis": SynthesisSettings(max_repairs=2, probe_instances=3),
            "llm": LLMSettings(retries=3, retry_initial_s=0.01),
        }
    )


def runtime_for(
    settings: Settings, pool: KernelPool, author_script, solver_script=never_right
) -> SynthesisRuntime:
    endpoints = {"author": endpoint("author", author_script), "solver": endpoint("solver", solver_script)}
    return scripted_runtime(settings, pool, endpoints)


def calls(runtime: SynthesisRuntime, role: str) -> list[list[BaseMessage]]:
    return runtime.endpoints[role].chat.calls


async def test_a_broken_draft_is_repaired_then_accepted_with_its_pass_rates(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(
        synthesis_settings, pool, in_order([fenced(BROKEN), fenced(VALID)]), right_on_short_lists
    )
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == "accepted", record.reason
    assert record.pass_rates == {"1": 1.0, "2": 1.0, "3": 1.0, "4": 0.0, "5": 0.0}
    repair_prompt = question_of(calls(runtime, "author")[1])
    assert "witness_accepted" in repair_prompt and "difficulty=3" in repair_prompt
    attempts = runtime.library.attempts(record.id)
    assert [(attempt.kind, attempt.report.valid) for attempt in attempts] == [
        ("draft", False),
        ("repair", True),
    ]
    assert Path(record.path).read_text() == VALID
    assert record.input_tokens > 0 and record.output_tokens > 0
    assert len(calls(runtime, "solver")) == 5 * 3


async def test_repairs_exhausted_is_rejected_with_the_last_report(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(synthesis_settings, pool, in_order([fenced(BROKEN)] * 3))
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == "invalid"
    assert "after 2 repairs" in record.reason and "witness_accepted" in record.reason
    assert record.report is not None and not record.report.valid
    assert len(runtime.library.attempts(record.id)) == 3
    assert calls(runtime, "solver") == []
    assert record.path is None


@pytest.mark.parametrize(
    ("solver_script", "status"),
    [(always_right, "too_easy"), (never_right, "unsolvable")],
    ids=["always-right", "never-right"],
)
async def test_the_probe_rejects_what_teaches_nothing(
    synthesis_settings: Settings,
    pool: KernelPool,
    solver_script,
    status: str,
) -> None:
    runtime = runtime_for(synthesis_settings, pool, in_order([fenced(VALID)]), solver_script)
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == status
    assert set(record.pass_rates) == {"1", "2", "3", "4", "5"}


async def test_no_probe_accepts_a_valid_environment_and_says_it_skipped(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(synthesis_settings, pool, in_order([fenced(VALID)]))
    record = await synthesize(runtime, "mental arithmetic", probe=False)
    assert record.status == "accepted"
    assert "--no-probe" in record.reason
    assert calls(runtime, "solver") == []


async def test_a_reply_without_code_is_a_failed_attempt_with_that_reason(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    replies = ["Sure! I would love to help with that.", "```javascript\nconsole.log(1)\n```", fenced(VALID)]
    runtime = runtime_for(synthesis_settings, pool, in_order(replies))
    record = await synthesize(runtime, "mental arithmetic", probe=False)
    assert record.status == "accepted"
    problems = [attempt.problem for attempt in runtime.library.attempts(record.id)]
    assert problems[:2] == [
        "the reply holds no code block",
        "the reply holds no Python code (code blocks in: javascript)",
    ]


async def test_transient_llm_faults_are_retried(synthesis_settings: Settings, pool: KernelPool) -> None:
    timeouts = [TimeoutError("the endpoint timed out"), ConnectionError("connection refused")]
    runtime = runtime_for(synthesis_settings, pool, in_order([*timeouts, fenced(VALID)]))
    record = await synthesize(runtime, "mental arithmetic", probe=False)
    assert record.status == "accepted"
    assert len(calls(runtime, "author")) == 3


PING = "Reply with the word OK."


async def test_a_request_the_endpoint_refuses_ends_the_environment_with_the_reason(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    refused = openai.BadRequestError(
        "context too long", response=httpx.Response(400, request=request), body=None
    )
    runtime = runtime_for(synthesis_settings, pool, lambda _messages: refused)
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == "llm_failure"
    assert "BadRequestError: context too long" in record.reason
    assert len(calls(runtime, "author")) == 1  # not a transient fault: asked once


async def test_a_fault_of_one_request_while_the_endpoint_answers_is_an_llm_failure(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    def times_out_but_answers_a_ping(messages: list[BaseMessage]) -> str | BaseException:
        return "OK" if question_of(messages) == PING else TimeoutError("the endpoint timed out")

    runtime = runtime_for(synthesis_settings, pool, times_out_but_answers_a_ping)
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == "llm_failure"
    assert "TimeoutError: the endpoint timed out" in record.reason
    asked = [question_of(call) for call in calls(runtime, "author")]
    assert len(asked) == 5 and asked[-1] == PING  # the first try, three retries, then the ping


async def test_an_endpoint_that_answers_nothing_pauses_the_synthesis_unjudged(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    settings = synthesis_settings.model_copy(
        update={"llm": LLMSettings(retries=2, retry_initial_s=0.01, max_outage_s=0.3)}
    )
    down = runtime_for(settings, pool, lambda _messages: TimeoutError("the endpoint timed out"))
    with pytest.raises(EndpointDown, match=r"has not answered for 0\.3 s"):
        await synthesize(down, "mental arithmetic", environment_id="outage", probe=False)
    assert down.library.get("outage").status == "running"  # nothing judged, nothing charged
    assert len(calls(down, "author")) > 3  # it kept checking after its quick retries

    back = runtime_for(settings, pool, in_order([fenced(VALID)]))
    record = await synthesize(back, None, environment_id="outage")
    assert record.status == "accepted"
    assert len(calls(back, "author")) == 1


async def test_a_solver_outage_is_an_llm_failure_not_unsolvable(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    refused = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1"))

    def down_for_long_lists(messages: list[BaseMessage]) -> str | BaseException:
        return refused if len(question_of(messages)) > 200 else correct_sum(messages)

    runtime = runtime_for(synthesis_settings, pool, in_order([fenced(VALID)]), down_for_long_lists)
    record = await synthesize(runtime, "mental arithmetic")
    assert record.status == "llm_failure"
    assert "solver" in record.reason and "APIConnectionError" in record.reason


class Interrupted(BaseException):
    """Stands for the process being stopped mid-synthesis (Ctrl-C, a crash)."""


def stop_after(node_name: str):
    def on_update(node: str, _update: dict) -> None:
        if node == node_name:
            raise Interrupted

    return on_update


async def test_an_interrupted_synthesis_resumes_without_repeating_llm_calls(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    first = runtime_for(synthesis_settings, pool, in_order([fenced(BROKEN)]))
    with pytest.raises(Interrupted):
        await synthesize(
            first,
            "mental arithmetic",
            environment_id="resume-me",
            probe=False,
            on_update=stop_after("validate"),
        )
    assert first.library.get("resume-me").status == "running"

    second = runtime_for(synthesis_settings, pool, in_order([fenced(VALID)]))
    record = await synthesize(second, None, environment_id="resume-me")
    assert record.status == "accepted"
    assert len(calls(second, "author")) == 1  # only the repair: the draft was not asked again
    assert "witness_accepted" in question_of(calls(second, "author")[0])


def no_solver(_messages: list[BaseMessage]) -> str:
    raise AssertionError("every probe answer is in the checkpoint: the solver is not asked again")


async def test_a_synthesis_stopped_once_every_probe_answered_resumes_from_those_answers(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    """Stopped after the last probe answer was written but before the step's checkpoint: the
    checkpoint has no `next` step, only its answered tasks. That is not a finished synthesis."""
    answered = 0

    def stop_after_the_last_probe_answer(node: str, _update: dict) -> None:
        nonlocal answered
        answered += node == "solve"
        if answered == len(DIFFICULTIES) * synthesis_settings.synthesis.probe_instances:
            raise Interrupted

    first = runtime_for(synthesis_settings, pool, in_order([fenced(VALID)]), right_on_short_lists)
    with pytest.raises(Interrupted):
        await synthesize(
            first,
            "mental arithmetic",
            environment_id="all-answered",
            on_update=stop_after_the_last_probe_answer,
        )
    assert first.library.get("all-answered").status == "running"

    second = runtime_for(synthesis_settings, pool, in_order([]), no_solver)
    record = await synthesize(second, None, environment_id="all-answered")
    assert record.status == "accepted" and record.pass_rates is not None


def no_author(_messages: list[BaseMessage]) -> str:
    raise AssertionError("a given file is judged without an author")


async def test_a_given_file_is_validated_and_probed_without_an_author(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(synthesis_settings, pool, no_author, right_on_short_lists)
    record = await synthesize(runtime, "mental arithmetic", source=VALID)
    assert record.status == "accepted", record.reason
    assert record.pass_rates == {"1": 1.0, "2": 1.0, "3": 1.0, "4": 0.0, "5": 0.0}
    assert record.author_model == FROM_FILE  # no author model is named for code it did not write
    assert [(attempt.kind, attempt.report.valid) for attempt in runtime.library.attempts(record.id)] == [
        ("file", True)
    ]
    assert Path(record.path).read_text() == VALID
    assert len(calls(runtime, "solver")) == 5 * 3 and not calls(runtime, "author")


async def test_a_given_file_that_fails_a_check_is_not_repaired(
    synthesis_settings: Settings, pool: KernelPool
) -> None:
    runtime = runtime_for(synthesis_settings, pool, no_author)
    record = await synthesize(runtime, "mental arithmetic", source=BROKEN, max_repairs=2)
    assert record.status == "invalid" and "witness_accepted" in record.reason
    assert len(runtime.library.attempts(record.id)) == 1 and not calls(runtime, "author")
