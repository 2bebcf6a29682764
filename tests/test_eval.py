"""`resyn eval`: the library's held-out instances and BBH / BBEH, run with scripted models."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from example_library import build_example_library
from langchain_core.messages import BaseMessage

from resyn.agents.llm import ChatEndpoint
from resyn.evals.benchmark_data import BenchmarkError, Example, load_examples
from resyn.evals.benchmark_runs import RunFile, RunOptions
from resyn.evals.benchmark_scoring import bbeh_correct, bbh_correct
from resyn.evals.eval_benchmarks import run_benchmark
from resyn.evals.eval_library import evaluate_library
from resyn.seeds import held_out_seeds
from resyn.settings import Settings
from resyn.testing.fake_openai import FakeOpenAI
from resyn.testing.scripted import ScriptedChatModel
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.sampler import sample_in_kernel

REPO = Path(__file__).resolve().parents[1]
DATA = next(
    (path for path in (REPO.parent / "shared" / "data", REPO / "shared" / "data") if path.is_dir()), None
)
needs_data = pytest.mark.skipif(DATA is None, reason="the BBH/BBEH data (../shared/data) is not here")


def endpoint(
    script: Callable[[list[BaseMessage]], str | BaseException], name: str = "scripted"
) -> ChatEndpoint:
    return ChatEndpoint(
        "solver", name, ScriptedChatModel(script=script, fake_name=name), asyncio.Semaphore(4)
    )


# --- answer normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "target", "correct"),
    [
        ("(B)", "(B)", True),
        ("B", "(B)", True),
        ("(b)", "(B)", True),
        ("(B) 12/25/1937", "(B)", True),
        ("So the answer is (C).", "(B)", False),
        ("Let's see... So the answer is (B).", "(B)", True),
        ("BA", "(B)", False),
        ("True", "True", True),
        ("true.", "True", True),
        ("**valid**", "valid", True),
        ("So the answer is 24.", "24", True),
        ("24.0", "24", False),  # BBH is exact match
        ("] ) >", "] ) >", True),
        ("syndrome  therefrom", "syndrome therefrom", True),
        ("therefrom syndrome", "syndrome therefrom", False),
    ],
)
def test_bbh_exact_match_after_normalising(answer: str, target: str, correct: bool) -> None:
    assert bbh_correct(answer, target) is correct


@pytest.mark.parametrize(
    ("answer", "target", "correct"),
    [
        ("The answer is: 6", "6", True),
        ("The final answer is 6.", "6", True),
        ("6.0", "6", True),  # numbers compare as numbers
        ("(E)", "(E)", True),
        ("e", "(E)", True),
        ("(e)", "E", True),
        ("No, No, Yes", "no, no, yes", True),
        ("'els llaços'", "els llaços", True),
        ("[emma, lily]", "emma, lily", True),
        ("unanswerable?", "unanswerable", True),
        ("$\\boxed{131}$", "131", True),
        ("disproved\nbecause the rules say so", "disproved", True),
        ("proved", "disproved", False),
        ("7", "6", False),
    ],
)
def test_bbeh_fuzzy_match_as_the_paper(answer: str, target: str, correct: bool) -> None:
    assert bbeh_correct(answer, target) is correct


# --- benchmark data and runs ------------------------------------------------------------------


@needs_data
def test_examples_are_read_from_the_official_layout() -> None:
    assert DATA is not None
    examples = load_examples(DATA, "bbh", ["boolean_expressions", "date_understanding"], limit=3)
    assert [example.key for example in examples] == [
        "boolean_expressions/0", "boolean_expressions/1", "boolean_expressions/2",
        "date_understanding/0", "date_understanding/1", "date_understanding/2",
    ]  # fmt: skip
    assert all(example.input and example.target for example in examples)
    bbeh = load_examples(DATA, "bbeh", ["bbeh_zebra_puzzles", "mini"], limit=2)
    assert [example.task for example in bbeh] == ["zebra_puzzles", "zebra_puzzles", "mini", "mini"]
    with pytest.raises(BenchmarkError, match="unknown bbh task"):
        load_examples(DATA, "bbh", ["no_such_task"], None)


def test_missing_data_says_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="point --data at"):
        load_examples(tmp_path, "bbeh", None, None)


EXAMPLES = [Example("arith", index, f"What is {index} + {index}?", str(2 * index)) for index in range(6)]


def answer_by_question(wrong: set[int] = frozenset(), failing: set[int] = frozenset()):  # type: ignore[assignment]
    """A solver that knows each example's target, answers some wrongly and fails on others."""

    def script(messages: list[BaseMessage]) -> str | BaseException:
        question = str(messages[-1].content)
        index = next(example.index for example in EXAMPLES if example.input in question)
        if index in failing:
            return ValueError("the endpoint refused")  # not transient: no retries
        return f"Thinking.\n<answer>{'nope' if index in wrong else 2 * index}</answer>"

    return script


async def test_a_run_scores_per_task_and_keeps_each_result(tmp_path: Path) -> None:
    run = RunFile.create(tmp_path / "run-a.jsonl", RunOptions("bbh", "scripted"))
    summary = await run_benchmark(
        run, EXAMPLES, endpoint(answer_by_question(wrong={1, 4})), data_dir=tmp_path
    )
    assert summary.tasks == {"arith": (4, 6)} and summary.missing == 0
    assert summary.accuracy == pytest.approx(4 / 6)
    lines = (tmp_path / "run-a.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "run" and len(lines) == 7
    result = json.loads(lines[1])
    assert {"key", "target", "answer", "correct", "response"} <= set(result)


async def test_a_rerun_asks_only_what_is_missing(tmp_path: Path) -> None:
    run = RunFile.create(tmp_path / "run-b.jsonl", RunOptions("bbh", "scripted"))
    first = await run_benchmark(
        run, EXAMPLES, endpoint(answer_by_question(failing={2, 5})), data_dir=tmp_path
    )
    assert first.missing == 2 and first.answered == 4
    path = tmp_path / "run-b.jsonl"
    *kept, last = path.read_text().splitlines()
    path.write_text("\n".join(kept) + "\n" + last[:30])  # the last result, torn by a kill mid-write
    torn = json.loads(last)["index"]
    reopened = RunFile.open(path)
    assert sorted(reopened.done) == [f"arith/{index}" for index in (0, 1, 3, 4) if index != torn]
    model = ScriptedChatModel(script=answer_by_question())
    chat = ChatEndpoint("solver", "scripted", model, asyncio.Semaphore(4))
    second = await run_benchmark(reopened, EXAMPLES, chat, data_dir=tmp_path)
    asked = sorted(str(call[-1].content).split()[2] for call in model.calls)
    assert asked == sorted(["2", "5", str(torn)])  # the failed ones and the torn one, nothing else
    assert second.missing == 0 and second.tasks == {"arith": (6, 6)}
    assert len(RunFile.open(tmp_path / "run-b.jsonl").done) == 6


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    in_flight, peak = 0, 0

    class Counting(ScriptedChatModel):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            return self._reply(messages)

    chat = ChatEndpoint("solver", "scripted", Counting(script=answer_by_question()), asyncio.Semaphore(10))
    run = RunFile.create(tmp_path / "run-c.jsonl", RunOptions("bbh", "scripted"))
    await run_benchmark(run, EXAMPLES, chat, data_dir=tmp_path, concurrency=2)
    assert peak == 2


@needs_data
async def test_few_shot_uses_the_official_chain_of_thought_prompt(tmp_path: Path) -> None:
    assert DATA is not None
    [example] = load_examples(DATA, "bbh", ["boolean_expressions"], limit=1)
    model = ScriptedChatModel(script=lambda _messages: f"So the answer is {example.target}.")
    chat = ChatEndpoint("solver", "scripted", model, asyncio.Semaphore(1))
    run = RunFile.create(tmp_path / "fs.jsonl", RunOptions("bbh", "scripted", few_shot=True))
    summary = await run_benchmark(run, [example], chat, data_dir=DATA)
    [prompt] = [str(message.content) for message in model.calls[0]]
    assert "canary" not in prompt and prompt.count("Q: ") == 4
    assert prompt.endswith(f"Q: {example.input}\nA: Let's think step by step.")
    assert summary.tasks == {"boolean_expressions": (1, 1)}


# --- the library ------------------------------------------------------------------------------


async def test_library_accuracy_by_environment_and_difficulty(
    pool: KernelPool, settings: Settings, tmp_path: Path
) -> None:
    library = build_example_library(tmp_path)
    seeds = held_out_seeds(2, settings)
    witnesses: dict[str, tuple[str, int]] = {}
    for record in library.environments("accepted"):
        async with pool.lease() as kernel:
            for level in (1, 4):
                for instance in await sample_in_kernel(kernel, record.source or "", level, seeds, settings):
                    witnesses[instance.question] = (instance.witness, level)

    def knows_the_easy_ones(messages: list[BaseMessage]) -> str:
        question = str(messages[-1].content).rsplit("\n\n", 1)[0]
        witness, level = witnesses[question]  # a KeyError here: a question that is not held out
        return f"<answer>{witness if level == 1 else 'no idea'}</answer>"

    result = await evaluate_library(
        library, endpoint(knows_the_easy_ones), pool, settings, per_env=4, difficulties=(1, 4)
    )
    assert len(result.cells) == 12 and not result.failed and result.errors == 0
    by_level = result.by_difficulty()
    assert (by_level[1].solved, by_level[1].total) == (24, 24)
    assert (by_level[4].solved, by_level[4].total) == (0, 24)
    assert result.overall().accuracy == 0.5 and result.mean_environment_accuracy() == 0.5
    assert result.as_json()["by_environment"]["shortest-path"]["1"] == {
        "solved": 2,
        "total": 2,
        "accuracy": 1.0,
    }


# --- the commands -----------------------------------------------------------------------------


def resyn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, **env}
    )


@needs_data
def test_eval_bbh_runs_and_resumes_against_an_endpoint(tmp_path: Path) -> None:
    assert DATA is not None
    targets = {example.input: example.target for example in load_examples(DATA, "bbh", ["web_of_lies"], 3)}

    def reply(messages: list[dict]) -> str:
        question = messages[-1]["content"].rsplit("\n\n", 1)[0]
        return f"It follows.\n<answer>{targets[question]}</answer>"

    with FakeOpenAI(reply) as server:
        env = {"RESYN_LLM_BASE_URL": server.url, "RESYN_DATA_DIR": str(tmp_path / "ws")}
        args = (
            "eval",
            "bbh",
            "--data",
            str(DATA),
            "--model",
            "fake-7b",
            "--tasks",
            "web_of_lies",
            "--limit",
            "3",
        )
        done = resyn(*args, "--run", "first", "--json", cwd=tmp_path, **env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["accuracy"] == 1.0 and summary["tasks"]["web_of_lies"]["answered"] == 3
        assert {request["model"] for request in server.requests} == {"fake-7b"}
        again = resyn("eval", "bbh", "--data", str(DATA), "--resume", "first", "--json", cwd=tmp_path, **env)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == 3  # nothing was asked twice
        assert json.loads(again.stdout)["correct"] == 3
    assert len((tmp_path / "ws" / "evals" / "first.jsonl").read_text().splitlines()) == 4


def test_eval_usage_errors_are_one_line(tmp_path: Path) -> None:
    env = {"RESYN_DATA_DIR": str(tmp_path / "ws")}
    no_data = resyn("eval", "bbeh", "--data", str(tmp_path / "nowhere"), cwd=tmp_path, **env)
    assert (
        no_data.returncode == 2
        and no_data.stderr.strip() == f"error: no such directory: {tmp_path / 'nowhere'}"
    )
    unknown = resyn("eval", "bbh", "--data", str(tmp_path), "--resume", "nope", cwd=tmp_path, **env)
    assert unknown.returncode == 2 and "no run named nope" in unknown.stderr
    mixed = resyn(
        "eval", "bbh", "--data", str(tmp_path), "--resume", "x", "--limit", "2", cwd=tmp_path, **env
    )
    assert mixed.returncode == 2 and "give only --resume RUN" in mixed.stderr
    build_example_library(tmp_path / "ws")
    without_endpoint = {name: value for name, value in os.environ.items() if not name.endswith("_BASE_URL")}
    no_endpoint = subprocess.run(
        [sys.executable, "-m", "resyn", "eval", "library", "--model", "m"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**without_endpoint, **env},
    )  # fmt: skip
    assert no_endpoint.returncode == 2
    assert no_endpoint.stderr.startswith("error: --model m needs an endpoint")
    assert len(no_endpoint.stderr.strip().splitlines()) == 1


def test_eval_library_command_prints_accuracy_by_environment(tmp_path: Path) -> None:
    build_example_library(tmp_path / "ws")

    with FakeOpenAI(lambda _messages: "I am not sure.\n<answer>0</answer>") as server:
        env = {"RESYN_LLM_BASE_URL": server.url, "RESYN_DATA_DIR": str(tmp_path / "ws")}
        args = ("eval", "library", "--model", "fake-7b", "--per-env", "2", "--difficulties", "1", "--json")
        done = resyn(*args, cwd=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "fake-7b" and len(result["by_environment"]) == 12
    assert result["overall"]["total"] == 24 and len(server.requests) == 24
