"""Traces: every step, LLM call and kernel run of a synthesis, and `resyn trace` showing them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from langchain_core.messages import BaseMessage

from resyn.agents.llm import ChatEndpoint
from resyn.graph.runtime import open_runtime
from resyn.graph.synthesis import synthesize
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.memory.traces import TraceStore, environment_story
from resyn.settings import LLMSettings, Settings, SynthesisSettings
from resyn.testing.scripted import ScriptedChatModel, in_order

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "valid_minimal.py").read_text()
BROKEN = (FIXTURES / "defective" / "witness_accepted.py").read_text()


def fenced(source: str) -> str:
    return f"```python\n{source}```"


def right_on_short_lists(messages: list[BaseMessage]) -> str:
    numbers = re.findall(r"-?\d+", str(messages[-1].content).split("?")[0])
    return f"<answer>{sum(map(int, numbers))}</answer>" if len(numbers) <= 12 else "<answer>0</answer>"


@pytest.fixture(scope="module")
def traced_workspace(tmp_path_factory: pytest.TempPathFactory, fake_api_key: str) -> tuple[Path, str]:
    """A workspace with one traced synthesis: a broken draft, a repair, a probe, an accepted verdict.

    The first author call times out once (a retried fault), and the repair's reply quotes the API
    key, as a leaky model might: the trace must keep the first and never the second."""
    data_dir = tmp_path_factory.mktemp("traced")
    settings = Settings(
        data_dir=data_dir,
        synthesis=SynthesisSettings(max_repairs=2, probe_instances=2),
        llm=LLMSettings(retries=2, retry_initial_s=0.01),
    )
    author = in_order(
        [openai.APITimeoutError(request=None), fenced(BROKEN), f"key {fake_api_key}\n" + fenced(VALID)]
    )
    limiter = asyncio.Semaphore(4)
    endpoints = {
        "author": ChatEndpoint("author", "scripted-author", ScriptedChatModel(script=author), limiter),
        "solver": ChatEndpoint(
            "solver", "scripted-solver", ScriptedChatModel(script=right_on_short_lists), limiter
        ),
    }

    async def run() -> str:
        async with open_runtime(settings, endpoints, Embedder()) as runtime:
            record = await synthesize(runtime, "mental arithmetic")
            return record.id

    return data_dir, asyncio.run(run())


def story_of(workspace: tuple[Path, str]) -> dict:
    data_dir, environment_id = workspace
    library, traces = Library(data_dir), TraceStore(data_dir)
    try:
        return environment_story(library, traces, environment_id)
    finally:
        traces.close()
        library.close()


def test_every_step_call_and_kernel_run_is_traced(traced_workspace: tuple[Path, str]) -> None:
    story = story_of(traced_workspace)
    assert story["environment"]["status"] == "accepted"
    steps = [step["name"] for step in story["steps"] if step["name"] != "solve"]
    assert steps == ["draft", "validate", "repair", "validate", "sample_probe", "novelty",
                     "score_probe", "verdict"]  # fmt: skip
    assert story["steps"][0]["data"]["attempts"] == 1  # the timed-out try was retried inside the step
    assert sum(step["name"] == "solve" for step in story["steps"]) == 5 * 2

    calls = story["llm_calls"]
    assert [call["name"] for call in calls[:3]] == ["author", "author", "author"]
    assert "APITimeoutError" in calls[0]["data"]["error"]
    draft = calls[1]["data"]
    assert draft["messages"][-1]["content"].startswith(
        "Write a new environment for the topic: mental arithmetic"
    )
    assert "witness" in draft["reply"] and draft["input_tokens"] > 0
    recorded = story["environment"]["input_tokens"] + story["environment"]["output_tokens"]
    assert story["tokens"]["input"] + story["tokens"]["output"] == recorded

    validate = next(step for step in story["steps"] if step["name"] == "validate")
    assert [check["name"] for check in validate["data"]["report"]["failed"]] == ["witness_accepted"]
    assert story["kernel"]["executions"] > 10 and story["kernel"]["statuses"]["ok"] > 0
    assert len(story["probe"]["instances"]) == 10 and story["probe"]["pass_rates"]["1"] == 1.0


def test_the_repair_diff_shows_what_changed(traced_workspace: tuple[Path, str]) -> None:
    first, second = story_of(traced_workspace)["attempts"]
    assert first["diff"] == ""
    removed = [
        line for line in second["diff"].splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    added = [
        line for line in second["diff"].splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    assert removed and added and set(removed) != set(added)


def test_secrets_never_reach_the_trace(traced_workspace: tuple[Path, str], fake_api_key: str) -> None:
    data_dir, _ = traced_workspace
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        rows = db.execute("SELECT data FROM trace_events").fetchall()
    assert rows and not any(fake_api_key in row[0] for row in rows)
    assert any("[secret removed]" in row[0] for row in rows)


def resyn(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RESYN_DATA_DIR": str(data_dir), "COLUMNS": "160"}
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def test_resyn_trace_tells_the_story(traced_workspace: tuple[Path, str]) -> None:
    data_dir, environment_id = traced_workspace
    shown = resyn(data_dir, "trace", environment_id[:6], "--messages")
    assert shown.returncode == 0, shown.stderr
    expected_parts = ("timeline", "repair", "witness_accepted", "solve ×10", "accepted", "── human",
                      "── reply", "APITimeoutError", "+++ attempt 2")  # fmt: skip
    for expected in expected_parts:
        assert expected in shown.stdout, expected
    as_json = json.loads(resyn(data_dir, "trace", environment_id, "--json").stdout)
    assert as_json["environment"]["id"] == environment_id and as_json["attempts"][1]["diff"]


def test_resyn_trace_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in ((("trace",), "give an environment id, or --job JOB"),
                          (("trace", "nope"), "no environment 'nope'"),
                          (("trace", "--job", "nope"), "no job 'nope'")):  # fmt: skip
        done = resyn(tmp_path, *args)
        assert done.returncode == 2
        [line] = done.stderr.strip().splitlines()
        assert message in line
