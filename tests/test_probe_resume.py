"""A synthesis stopped in the middle of its solver probe asks only the questions it had no answer to.

The probe is one step of the graph fanned out into one task per question (`Send`). LangGraph saves
each task's writes to the checkpoint as the task finishes (the pending writes of the unfinished
step), and a resume runs only the tasks that have none. These tests stop a probe after 7 of its 20
answers (Ctrl-C, an outage past `llm.max_outage_s`, `kill -9` of a real process), resume it and
count the solver calls the resume makes: the 13 unanswered questions. An answer that arrives within
milliseconds of the stop may not be saved yet, and is asked again; the tests leave it that time.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from scripted_runtime import scripted_runtime

from resyn.agents.llm import ChatEndpoint
from resyn.agents.resilience import EndpointDown
from resyn.graph.runtime import SynthesisRuntime, open_checkpointer
from resyn.graph.synthesis import synthesize
from resyn.memory.library import Library
from resyn.settings import LLMSettings, Settings, SynthesisSettings
from resyn.testing.fake_openai import FakeOpenAI, role_of, scripted_world_reply
from resyn.testing.jobs import job_environment, run_resyn, start_resyn
from resyn.testing.scripted import ScriptedChatModel, in_order
from resyn.tools.kernel_pool import KernelPool

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "valid_minimal.py").read_text()
QUESTIONS = 20  # 4 probe instances at each of the 5 difficulties
ANSWERED_BEFORE_THE_STOP = 7
STOP_DELAY_S = 0.5  # after the last answer, before the stop: its checkpoint write takes milliseconds


class AnswersThenStops(ScriptedChatModel):
    """Answers its first `answers` calls at once. Each later call waits a moment, long enough for
    those answers to be checkpointed, and raises `then`; with `then` unset it never returns."""

    answers: int = ANSWERED_BEFORE_THE_STOP
    then: Any = None

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        if len(self.calls) < self.answers:
            return await super()._agenerate(messages, *args, **kwargs)
        if self.then is None:
            await asyncio.Event().wait()  # until the synthesis is cancelled
        await asyncio.sleep(STOP_DELAY_S)
        raise self.then


def correct_sum(messages: list[BaseMessage]) -> str:
    numbers = re.findall(r"-?\d+", str(messages[-1].content).split("?")[0])
    return f"<answer>{sum(map(int, numbers))}</answer>"


@pytest.fixture
def probe_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": tmp_path,
            "synthesis": SynthesisSettings(max_repairs=0, probe_instances=QUESTIONS // 5),
            "llm": LLMSettings(retries=1, retry_initial_s=0.01, max_outage_s=0.3),
        }
    )


@pytest.fixture
async def checkpointer(probe_settings: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """One checkpointer for the stopped run and its resume, as one process's runtime holds it. (A
    second connection can meet the writes LangGraph still makes for the cancelled tasks after the
    stop holding the database: "database is locked".)"""
    Library(probe_settings.data_dir).close()  # the workspace starts with its library
    async with open_checkpointer(probe_settings) as saver:
        yield saver


def runtime_for(
    settings: Settings, pool: KernelPool, checkpointer: BaseCheckpointSaver | None, solver: ScriptedChatModel
) -> SynthesisRuntime:
    limiter = asyncio.Semaphore(QUESTIONS)  # every question of the probe in flight at once
    author = ScriptedChatModel(script=in_order([f"```python\n{VALID}```"]))
    endpoints = {
        "author": ChatEndpoint("author", "scripted-author", author, limiter),
        "solver": ChatEndpoint("solver", "scripted-solver", solver, limiter),
    }
    return scripted_runtime(settings, pool, endpoints, checkpointer)


STOPS = {
    "ctrl-c": None,  # the task is cancelled, as asyncio.run does on SIGINT
    "outage": TimeoutError("the endpoint timed out"),  # past max_outage_s: EndpointDown
}


async def stop_mid_probe(runtime: SynthesisRuntime, how: str) -> None:
    """Run a synthesis until its probe has `ANSWERED_BEFORE_THE_STOP` answers, then stop it `how`."""
    answered, enough = 0, asyncio.Event()

    def on_update(node: str, _update: dict[str, Any]) -> None:
        nonlocal answered
        answered += node == "solve"
        if answered == ANSWERED_BEFORE_THE_STOP:
            enough.set()

    run = asyncio.create_task(
        synthesize(runtime, "mental arithmetic", environment_id="probe", on_update=on_update)
    )
    if how == "ctrl-c":
        await enough.wait()
        await asyncio.sleep(STOP_DELAY_S)
        run.cancel()
    with pytest.raises(asyncio.CancelledError if how == "ctrl-c" else EndpointDown):
        await run
    assert answered == ANSWERED_BEFORE_THE_STOP


@pytest.mark.parametrize("how", list(STOPS))
async def test_a_probe_stopped_midway_asks_only_its_unanswered_questions_again(
    probe_settings: Settings, pool: KernelPool, checkpointer: BaseCheckpointSaver, how: str
) -> None:
    solver = AnswersThenStops(script=correct_sum, then=STOPS[how])
    first = runtime_for(probe_settings, pool, checkpointer, solver)
    await stop_mid_probe(first, how)
    assert first.library.get("probe").status == "running"
    assert len(solver.calls) == ANSWERED_BEFORE_THE_STOP

    second = runtime_for(probe_settings, pool, checkpointer, ScriptedChatModel(script=correct_sum))
    record = await synthesize(second, None, environment_id="probe")
    assert record.status == "too_easy"  # judged on all 20 answers, every one of them right
    assert second.endpoints["author"].chat.calls == []  # the draft is not asked again
    assert len(second.endpoints["solver"].chat.calls) == QUESTIONS - ANSWERED_BEFORE_THE_STOP


class ProgressDisplayBroke(Exception):
    """Raised by an `on_update` callback: the caller's own failure, in the middle of the probe."""


async def test_answers_survive_a_failing_progress_callback(
    probe_settings: Settings, pool: KernelPool
) -> None:
    """A synthesis that opens its own checkpointer and whose `on_update` raises after 7 answers
    still saves them before the checkpointer closes: the resume asks only the other 13."""
    Library(probe_settings.data_dir).close()
    solver = AnswersThenStops(script=correct_sum)  # the 8th question on never returns

    answered = 0

    def breaks_after_seven(node: str, _update: dict[str, Any]) -> None:
        nonlocal answered
        answered += node == "solve"
        if answered == ANSWERED_BEFORE_THE_STOP:
            raise ProgressDisplayBroke

    first = runtime_for(probe_settings, pool, None, solver)
    with pytest.raises(ProgressDisplayBroke):
        await synthesize(first, "mental arithmetic", environment_id="probe", on_update=breaks_after_seven)
    assert len(solver.calls) >= ANSWERED_BEFORE_THE_STOP

    second = runtime_for(probe_settings, pool, None, ScriptedChatModel(script=correct_sum))
    record = await synthesize(second, None, environment_id="probe")
    assert record.status == "too_easy"
    assert len(second.endpoints["solver"].chat.calls) == QUESTIONS - ANSWERED_BEFORE_THE_STOP


@pytest.mark.slow
def test_a_probe_killed_midway_asks_only_its_unanswered_questions_again(tmp_path: Path) -> None:
    """`kill -9` of a real `resyn synthesize` after some probe answers reached it, then `--resume`."""
    answered, stall = 0, threading.Event()
    lock = threading.Lock()

    def stalls_after_some_answers(messages: list[dict[str, Any]]) -> str:
        nonlocal answered
        if role_of(messages) == "solver":
            with lock:
                answered += 1
                late = answered > ANSWERED_BEFORE_THE_STOP
            if late:
                stall.wait(60)  # held until the process is killed
        return scripted_world_reply(messages)

    with FakeOpenAI(stalls_after_some_answers) as server:
        env = job_environment(server, tmp_path, RESYN_SYNTHESIS_PROBE_INSTANCES=str(QUESTIONS // 5))
        process = start_resyn(env, "synthesize", "logic puzzles")
        try:
            deadline = time.monotonic() + 120
            while answered < ANSWERED_BEFORE_THE_STOP:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the probe did not start"
                time.sleep(0.05)
            time.sleep(1.5)  # the answers are sent and reach the checkpoint (milliseconds)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            stall.set()
        before_resume = len(server.requests)

        [(environment_id, status)] = syntheses(tmp_path)
        assert status == "running"
        resumed = run_resyn(env, "synthesize", "--resume", environment_id, timeout_s=300)
        assert resumed.returncode in (0, 1), resumed.stderr  # 1: judged, but not accepted
        asked_again = [role_of(request["messages"]) for request in server.requests[before_resume:]]
    [(_, status)] = syntheses(tmp_path)
    assert status != "running"
    assert asked_again.count("author") == 0
    assert asked_again.count("solver") == QUESTIONS - ANSWERED_BEFORE_THE_STOP


def syntheses(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        return db.execute("SELECT id, status FROM environments").fetchall()
