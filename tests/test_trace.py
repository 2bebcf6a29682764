"""Traces: every step, LLM call and kernel run of a synthesis, and `resyn trace` showing them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from rich.console import Console

from resyn.agents.llm import ChatEndpoint
from resyn.graph.runtime import open_runtime
from resyn.graph.synthesis import synthesize
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.memory.traces import TraceStore, environment_story
from resyn.settings import LLMSettings, Settings, SynthesisSettings
from resyn.testing.scripted import ScriptedChatModel, in_order
from resyn.trace_views import probe_results, probe_table
from resyn.tracing import TraceEvent

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
        [
            openai.APITimeoutError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")),
            fenced(BROKEN),
            f"key {fake_api_key}\n" + fenced(VALID),
        ]
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


def resyn(data_dir: Path, *args: str, columns: int = 160) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RESYN_DATA_DIR": str(data_dir), "COLUMNS": str(columns)}
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def test_resyn_trace_tells_the_story(traced_workspace: tuple[Path, str]) -> None:
    data_dir, environment_id = traced_workspace
    shown = resyn(data_dir, "trace", environment_id[:6], "--messages")
    assert shown.returncode == 0, shown.stderr
    expected_parts = ("timeline", "repair", "witness_accepted", "solve ×10", "accepted", "human:",
                      "reply:", "APITimeoutError", "+++ attempt 2")  # fmt: skip
    for expected in expected_parts:
        assert expected in shown.stdout, expected
    as_json = json.loads(resyn(data_dir, "trace", environment_id, "--json").stdout)
    assert as_json["environment"]["id"] == environment_id and as_json["attempts"][1]["diff"]
    assert [result["seed"] for result in as_json["probe"]["results"]] == [
        instance["seed"] for instance in as_json["probe"]["instances"]
    ]


def test_resyn_trace_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in ((("trace",), "give an environment id, or --job JOB"),
                          (("trace", "nope"), "no environment 'nope'"),
                          (("trace", "--job", "nope"), "no job 'nope'")):  # fmt: skip
        done = resyn(tmp_path, *args)
        assert done.returncode == 2
        [line] = done.stderr.strip().splitlines()
        assert message in line


CALL_RULE = re.compile(r"^call (\d+) · (\w+) · step (\w+)", re.MULTILINE)


def test_messages_show_each_system_prompt_once(traced_workspace: tuple[Path, str]) -> None:
    data_dir, environment_id = traced_workspace
    shown = resyn(data_dir, "trace", environment_id, "--messages", columns=80).stdout
    calls = CALL_RULE.findall(shown)
    assert len(calls) == 13
    assert shown.count("You write reinforcement-learning environments") == 1  # the author's system prompt
    assert shown.count("You are a careful problem solver") == 1  # the solver's
    first_solver = next(number for number, role, _ in calls if role == "solver")
    assert shown.count(f"system: same as call {first_solver}") == 9
    assert shown.count("system: same as call 1") == 2  # the retried draft and the repair
    assert "human: same as call 1" in shown  # the retried draft sent the same prompt again
    assert len(shown.splitlines()) < 450  # every prompt in every call made 586 lines


def test_role_and_step_narrow_the_calls(traced_workspace: tuple[Path, str]) -> None:
    data_dir, environment_id = traced_workspace
    solver = CALL_RULE.findall(resyn(data_dir, "trace", environment_id, "--role", "solver").stdout)
    assert len(solver) == 10 and {(role, step) for _, role, step in solver} == {("solver", "solve")}
    assert CALL_RULE.findall(resyn(data_dir, "trace", environment_id, "--step", "probe").stdout) == solver
    repair = resyn(data_dir, "trace", environment_id, "--step", "repair").stdout
    assert [(role, step) for _, role, step in CALL_RULE.findall(repair)] == [("author", "repair")]
    assert "timeline" not in repair and "system:" in repair  # its first call shows the prompt whole
    missing = resyn(data_dir, "trace", environment_id, "--role", "scout")
    assert missing.returncode == 2
    assert "no LLM calls with role 'scout'" in missing.stderr and "solver (solve)" in missing.stderr


def test_each_probe_call_names_its_instance(traced_workspace: tuple[Path, str]) -> None:
    data_dir, environment_id = traced_workspace
    story = story_of(traced_workspace)
    instances = story["probe"]["instances"]
    shown = resyn(data_dir, "trace", environment_id, "--role", "solver", columns=80).stdout
    for number, instance in enumerate(instances, 1):
        about = f"probe {number}/10: difficulty {instance['difficulty']}, seed {instance['seed']}"
        assert about in shown
    results = probe_results(story)
    assert [(r["difficulty"], r["seed"]) for r in results] == [
        (i["difficulty"], i["seed"]) for i in instances
    ]
    assert all(result["call"] and result["answer"] is not None for result in results)
    assert results[0]["answer"] == instances[0]["witness"]  # the scripted solver is right on short lists


def test_probe_table_marks_right_and_wrong_where_scores_are_recorded(
    traced_workspace: tuple[Path, str],
) -> None:
    story = story_of(traced_workspace)
    scored = next(step for step in story["steps"] if step["name"] == "score_probe")
    scored["data"]["scores"] = [1.0] * 6 + [0.0] * 4  # what the score_probe step records per instance
    console = Console(width=80, record=True, color_system=None)
    console.print(probe_table(probe_results(story)))
    shown = console.export_text()
    assert "10 questions, 6 right" in shown
    assert shown.count("✓ 1.00") == 6 and shown.count("✗ 0.00") == 4
    recorded = probe_results(story_of(traced_workspace))  # the synthesis's own scores, one per question
    assert len(recorded) == 10 and all(isinstance(result["score"], float) for result in recorded)


JOB = "job-20261202-101500-interrupted"
FIRST, SECOND = "a1b2c3d4e5f6", "0f9e8d7c6b5a"


@pytest.fixture
def interrupted_job(tmp_path: Path) -> tuple[Path, list[float]]:
    """A job's events as the expansion writes them: a run stopped by Ctrl-C with one synthesis in
    flight (no stop event), and a resume the next day that finishes it; returns their times."""
    library = Library(tmp_path)
    library.save_job(JOB, {"target": 2, "seed_topics": ["logic puzzles"]}, "finished", "target reached")
    for identifier, topic, status in (
        (FIRST, "logic puzzles", "accepted"),
        (SECOND, "graph search", "invalid"),
    ):
        library.start(identifier, topic, "scripted-author", "scripted-solver", job=JOB)
        library.finish(identifier, status=status, reason="because", source=None, report=None,
                       pass_rates=None, usage={})  # fmt: skip
    library.close()
    day = 1796206500.0
    events = [
        (day, "job", f"started {JOB}: target 2, seeds: logic puzzles", {}),
        (day + 1, "start", f"{FIRST} logic puzzles", {"environment_id": FIRST}),
        (day + 2, "start", f"{SECOND} graph search", {"environment_id": SECOND}),
        (day + 43, "accepted", f"{FIRST} logic puzzles", {"environment_id": FIRST, "status": "accepted"}),
        (day + 86400, "job", f"resumed {JOB}: 1 environments tried so far", {}),
        (day + 86401, "start", f"{SECOND} graph search", {"environment_id": SECOND}),
        (day + 86601, "invalid", f"{SECOND} graph search", {"environment_id": SECOND, "status": "invalid"}),
        (day + 86602, "stop", "target reached", {}),
    ]  # fmt: skip
    traces = TraceStore(tmp_path)
    for started, kind, line, data in events:
        traces.add(TraceEvent("job", kind, started, 0.0, {"line": line, **data}, job=JOB))
    traces.close()
    return tmp_path, [started for started, *_ in events]


def clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def test_job_trace_shows_every_event_with_its_time_and_the_interruption(
    interrupted_job: tuple[Path, list[float]],
) -> None:
    data_dir, times = interrupted_job
    shown = resyn(data_dir, "trace", "--job", JOB, columns=80).stdout
    for started in times:
        assert clock(started) in shown
    assert time.strftime("%Y-%m-%d", time.localtime(times[0])) in shown
    assert time.strftime("%Y-%m-%d", time.localtime(times[-1])) in shown  # the date, when it changes
    flat = " ".join(shown.split())  # a wrapped cell reads as one line
    assert "interrupted (Ctrl-C or killed): no stop recorded, 1 in flight" in flat
    assert "(resumed from its checkpoint)" in flat
    assert re.search(r"accepted +42 s +" + FIRST, shown)  # start → verdict
    assert re.search(r"invalid +3\.3 min +" + SECOND, shown)  # since its resume, not its first start
    assert "stopped: target reached" in shown


def test_job_trace_last_says_how_many_events_it_hides(interrupted_job: tuple[Path, list[float]]) -> None:
    data_dir, times = interrupted_job
    shown = resyn(data_dir, "trace", "--job", JOB, "--last", "3", columns=80).stdout
    assert "events: the last 3 of 8 (without --last, all)" in shown
    assert clock(times[-3]) in shown and f"started {JOB}" not in shown


def test_trace_at_80_columns_keeps_ids_whole(
    traced_workspace: tuple[Path, str], interrupted_job: tuple[Path, list[float]]
) -> None:
    data_dir, environment_id = traced_workspace
    job_dir, _ = interrupted_job
    environment = resyn(data_dir, "trace", environment_id, "--messages", columns=80).stdout
    job = resyn(job_dir, "trace", "--job", JOB, columns=80).stdout
    for shown, ids in ((environment, [environment_id]), (job, [JOB, FIRST, SECOND])):
        assert max(len(line) for line in shown.splitlines()) <= 80
        for identifier in ids:
            assert identifier in shown, identifier
