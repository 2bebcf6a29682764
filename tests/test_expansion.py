"""The expansion job in-process, with the scripted world's fake author, solver and scout."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from rich.console import Console

from resyn.agents.llm import ChatEndpoint
from resyn.agents.scout import parse_topics
from resyn.graph import expansion_graph
from resyn.graph.expansion import (
    JobFailed,
    JobOptions,
    WorkspaceBusy,
    expand,
    job_log_path,
    workspace_lock,
)
from resyn.graph.runtime import open_runtime
from resyn.job_trace_views import events_view, job_runs
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.memory.topics import TopicGraph
from resyn.memory.traces import TraceStore
from resyn.memory.workspace import WorkspaceDamaged
from resyn.settings import FrontierSettings, Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel

Script = Callable[[list[BaseMessage]], str]
SEEDS = ["logic puzzles", "graph algorithms", "scheduling"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def job_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": tmp_path, "synthesis": SynthesisSettings(max_repairs=0, probe_instances=3)}
    )


def endpoints(**scripts: Script) -> dict[str, ChatEndpoint]:
    limiter = asyncio.Semaphore(8)
    chosen = {
        role: scripts.get(role, scripted_world.reply_for(role)) for role in ("author", "solver", "scout")
    }
    return {
        role: ChatEndpoint(role, f"scripted-{role}", ScriptedChatModel(script=script), limiter)
        for role, script in chosen.items()
    }


async def run_job(
    settings: Settings,
    embedder: Embedder,
    options: JobOptions | None,
    resume: str | None = None,
    **scripts: Script,
):
    models = endpoints(**scripts)
    async with open_runtime(settings, models, embedder) as runtime:
        options, reason = await expand(runtime, options, resume=resume)
        records = runtime.library.environments()
        counts = runtime.library.job_counts(options.name)
    calls = {role: len(endpoint.chat.calls) for role, endpoint in models.items()}
    return reason, records, counts, calls


async def test_a_job_reaches_its_target_and_grows_the_topic_graph(
    job_settings: Settings, embedder: Embedder
) -> None:
    options = JobOptions(name="grow", seed_topics=SEEDS, target=5, concurrency=3)
    reason, records, counts, calls = await run_job(job_settings, embedder, options)
    assert reason == "target reached: 5 accepted"
    accepted = [record for record in records if record.status == "accepted"]
    assert len(accepted) == counts.accepted == 5
    assert {record.job for record in records} == {"grow"}
    assert calls["scout"] >= 1

    topics = TopicGraph.load(job_settings.data_dir / "topics.json")
    origins = {name: topics.graph.nodes[name]["origin"] for name in topics.names()}
    assert [name for name, origin in origins.items() if origin == "seed"] == SEEDS
    scouted = [name for name, origin in origins.items() if origin == "scouted"]
    assert scouted and all(topics.graph.nodes[name]["parent"] in topics for name in scouted)
    assert any(record.topic in scouted for record in accepted)  # the job went beyond its seeds

    log = job_log_path(job_settings.data_dir, "grow").read_text().splitlines()
    assert sum(" accepted " in line for line in log) == 5
    assert "stop" in log[-1] and "target reached" in log[-1]

    traces = TraceStore(job_settings.data_dir, read_only=True)
    events = traces.job_events("grow")
    traces.close()
    scouts = [event for event in events if event["name"] == "scout"]
    assert len(scouts) == calls["scout"]  # each scout call is in the job's trace, timed, with its tokens
    assert all(event["data"]["seconds"] >= 0 and event["data"]["input_tokens"] > 0 for event in scouts)
    console = Console(width=80, record=True, color_system=None)
    console.print(*events_view(events, job_runs(events, "finished"), None))
    scout_rows = [line for line in console.export_text().splitlines() if " scout " in line]
    assert scout_rows and all(re.search(r"scout +\d+\.\d s +\+\d+ topics", row) for row in scout_rows)

    again = await run_job(job_settings, embedder, None, resume="grow")
    assert again[0] == "target reached: 5 accepted"  # a finished job is not run again
    assert sum(again[3].values()) == 0


async def test_a_finished_job_resumed_with_a_higher_target_carries_on(
    job_settings: Settings, embedder: Embedder
) -> None:
    options = JobOptions(name="extend", seed_topics=SEEDS, target=2, concurrency=2)
    first = await run_job(job_settings, embedder, options)
    assert first[0] == "target reached: 2 accepted"
    models = endpoints()
    async with open_runtime(job_settings, models, embedder) as runtime:
        extended, reason = await expand(runtime, None, resume="extend", changes={"target": 4})
        assert reason == "target reached: 4 accepted" and extended.target == 4
        assert runtime.library.job("extend").options["target"] == 4
        again, same = await expand(runtime, None, resume="extend")
        assert same == reason and again.target == 4  # nothing left to do: no new calls
    assert len(models["author"].chat.calls) == 2


async def test_a_near_duplicate_is_rejected_before_the_probe_spends_calls(
    job_settings: Settings, embedder: Embedder
) -> None:
    same_environment = f"```python\n{scripted_world.environment_for('logic puzzles')}```"
    options = JobOptions(name="dup", seed_topics=SEEDS, target=3, concurrency=1, max_environments=3)
    reason, records, _counts, calls = await run_job(
        job_settings, embedder, options, author=lambda _messages: same_environment
    )
    assert reason == "environment budget spent: 3 tried"
    first, *others = records
    assert first.status == "accepted"
    assert [record.status for record in others] == ["duplicate", "duplicate"]
    assert all(
        record.reason.startswith(f"duplicate of {first.id} (logic-puzzles-lists)") for record in others
    )
    assert calls["solver"] == 5 * 3  # only the first environment was probed


async def test_the_token_budget_stops_the_job(job_settings: Settings, embedder: Embedder) -> None:
    options = JobOptions(name="tokens", seed_topics=SEEDS, target=50, concurrency=2, max_tokens=1)
    reason, records, _counts, _calls = await run_job(job_settings, embedder, options)
    assert reason.startswith("token budget spent")
    assert len(records) == 2  # one round ran, then the budget was seen


async def test_an_exhausted_frontier_ends_the_job(job_settings: Settings, embedder: Embedder) -> None:
    settings = job_settings.model_copy(deep=True)
    settings.expansion.frontier = FrontierSettings(max_topic_attempts=1)
    options = JobOptions(name="empty", seed_topics=SEEDS[:2], target=5, concurrency=2)
    reason, records, _counts, calls = await run_job(
        settings,
        embedder,
        options,
        author=lambda _messages: "I cannot write code today.",
        scout=lambda _messages: "No ideas, sorry.",
    )
    assert reason == "the frontier is empty: every topic is retired"
    assert [record.status for record in records] == ["invalid", "invalid"]
    assert calls["scout"] == 2  # two fruitless scout calls in a row, then it gives up


async def test_a_bug_in_the_job_marks_it_failed_and_resume_carries_on_once_fixed(
    job_settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = JobOptions(name="buggy", seed_topics=SEEDS, target=3, concurrency=3)
    set_counts, planned_rounds = TopicGraph.set_counts, []

    def broken_after_the_first_round(self: TopicGraph, counts: dict) -> None:
        planned_rounds.append(len(planned_rounds) + 1)
        if len(planned_rounds) > 1:
            raise RuntimeError("a bug in the frontier")
        set_counts(self, counts)

    monkeypatch.setattr(TopicGraph, "set_counts", broken_after_the_first_round)
    with pytest.raises(JobFailed) as failed:
        await run_job(job_settings, embedder, options)
    message = str(failed.value)
    log = job_log_path(job_settings.data_dir, "buggy")
    assert message.startswith("job buggy failed: RuntimeError: a bug in the frontier")
    assert str(log) in message and message.endswith("resyn expand --resume buggy")
    assert "Traceback" in log.read_text()
    assert Library(job_settings.data_dir).job("buggy").status == "failed"

    monkeypatch.setattr(TopicGraph, "set_counts", set_counts)  # the cause, fixed
    reason, records, _counts, calls = await run_job(job_settings, embedder, None, resume="buggy")
    assert reason == "target reached: 3 accepted"
    assert calls["author"] == 0  # the first round's three were kept, and they reached the target
    assert {record.status for record in records} == {"accepted"}


async def test_a_synthesis_that_ends_without_a_verdict_is_an_error_and_the_job_goes_on(
    job_settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that returns a synthesis still running must not leave its row holding the job back:
    the job waited on it for ever (the bug fixed in df81a57 did exactly this)."""
    real_synthesize, broken = expansion_graph.synthesize, []

    async def first_one_returns_unfinished(runtime, topic, *, environment_id, **kwargs):
        if not broken:
            broken.append(environment_id)
            return runtime.library.get(environment_id)  # still running: no verdict
        return await real_synthesize(runtime, topic, environment_id=environment_id, **kwargs)

    monkeypatch.setattr(expansion_graph, "synthesize", first_one_returns_unfinished)
    options = JobOptions(name="unfinished", seed_topics=SEEDS, target=2, concurrency=1)
    reason, records, _counts, _calls = await asyncio.wait_for(
        run_job(job_settings, embedder, options), timeout=120
    )
    assert reason == "target reached: 2 accepted"
    by_id = {record.id: record for record in records}
    assert by_id[broken[0]].status == "error"
    assert "without a verdict" in by_id[broken[0]].reason
    assert "running" not in {record.status for record in records}


async def test_resume_refuses_a_job_whose_checkpoints_are_gone(
    job_settings: Settings, embedder: Embedder
) -> None:
    options = JobOptions(name="lost", seed_topics=SEEDS, target=5, concurrency=2, max_environments=2)
    await run_job(job_settings, embedder, options)
    for leftover in job_settings.data_dir.glob("checkpoints.sqlite*"):
        leftover.unlink()
    with pytest.raises(WorkspaceDamaged, match="holds no progress of job 'lost'"):
        await run_job(job_settings, embedder, None, resume="lost")


def test_one_job_at_a_time_per_workspace(tmp_path: Path) -> None:
    busy = pytest.raises(WorkspaceBusy, match="another resyn expand is running")
    with workspace_lock(tmp_path), busy, workspace_lock(tmp_path):
        pass
    with workspace_lock(tmp_path):  # released when the holder is done
        pass


async def test_the_scout_drops_echoes_of_its_own_prompt() -> None:
    from resyn.agents.scout import brainstorm

    echo = (
        '["first topic", "second topic", "Interval scheduling with deadlines", "logic puzzles", "rail yards"]'
    )
    endpoint = endpoints(scout=lambda _messages: echo)["scout"]
    scouted = await brainstorm(endpoint, ["logic puzzles"], count=5, known=set())
    assert scouted.topics == ["rail yards"]


@pytest.mark.parametrize(
    ("reply", "topics"),
    [
        ('Sure!\n["bipartite matching", "Truth-teller grids", "bipartite  Matching"]', None),
        (
            "Here are ideas:\n1. **Bipartite matching** - pairs things up\n2) Truth-teller grids\n\n"
            "### More:\n- `Rail yard shunting`: moving wagons",
            ["Bipartite matching", "Truth-teller grids", "Rail yard shunting"],
        ),
        (
            "Bipartite matching\nRail yard shunting\nThat is all I have.",
            ["Bipartite matching", "Rail yard shunting"],
        ),
        ("No new ideas, sorry.", []),
    ],
    ids=["json-array", "markdown-list", "plain-lines", "prose"],
)
def test_scout_replies_are_parsed_robustly(reply: str, topics: list[str] | None) -> None:
    expected = ["bipartite matching", "Truth-teller grids"] if topics is None else topics
    assert parse_topics(reply) == expected
    assert parse_topics(reply, known={"truth-teller GRIDS"}) == [t for t in expected if "grids" not in t]


BOOLEAN_EXPRESSIONS = """import random

NAME = "boolean-expressions"
TOPIC = "boolean logic"
DESCRIPTION = "Evaluate a boolean expression."


def expression(rng, depth):
    if depth == 0:
        return rng.choice(["True", "False"])
    left, right = expression(rng, depth - 1), expression(rng, depth - 1)
    return rng.choice([f"not ( {left} )", f"{left} and {right}", f"{left} or {right}"])


def generate(seed: int, difficulty: int) -> dict:
    rng = random.Random(seed * 1000 + difficulty)
    text = expression(rng, difficulty + 2)
    return {"question": f"{text} is", "witness": str(eval(text)), "meta": {"expression": text}}


def verify(instance: dict, answer: str) -> float:
    return float(answer.strip() == str(eval(instance["meta"]["expression"])))
"""


def solves_shallow_expressions(messages: list[BaseMessage]) -> str:
    expression = str(messages[-1].content).split(" is")[0]
    return (
        f"<answer>{eval(expression)}</answer>" if expression.count("(") + expression.count(" ") < 24 else "no"
    )


async def test_an_environment_that_copies_a_benchmark_is_flagged(
    job_settings: Settings, embedder: Embedder, pool
) -> None:
    from resyn.agents.exemplars import load_exemplars
    from resyn.graph.runtime import SynthesisRuntime
    from resyn.graph.synthesis import synthesize
    from resyn.memory.contamination import ContaminationGuard
    from resyn.memory.library import Library
    from resyn.memory.novelty import NoveltyMemory
    from resyn.tools.validator import Validator

    data = next(
        (path for path in (REPO.parent / "shared" / "data", REPO / "shared" / "data") if path.is_dir()), None
    )
    if data is None:
        pytest.skip("the BBH/BBEH data (../shared/data) is not on this machine")
    library = Library(job_settings.data_dir)
    models = endpoints(
        author=lambda _m: f"```python\n{BOOLEAN_EXPRESSIONS}```", solver=solves_shallow_expressions
    )
    runtime = SynthesisRuntime(
        settings=job_settings,
        pool=pool,
        validator=Validator(pool, job_settings, seeds_per_difficulty=4),
        library=library,
        exemplars=load_exemplars(),
        endpoints=models,
        novelty=NoveltyMemory(library, embedder),
        contamination=ContaminationGuard(
            data, threshold=0.85, tasks={"boolean_expressions"}, embedder=embedder
        ),
    )
    record = await synthesize(runtime, "boolean logic")
    assert record.status == "accepted", record.reason
    assert record.contamination is not None
    assert (record.contamination["benchmark"], record.contamination["task"]) == ("bbh", "boolean_expressions")
    assert record.contamination["similarity"] >= 0.85
