"""The expansion job's scheduler keeps every slot busy: a synthesis that ends starts the next at once.

The tests read the order of events from the job's log (one line per event, in the order they
happened), never wall-clock durations."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from resyn.agents.llm import ChatEndpoint
from resyn.contract import Status
from resyn.graph.expansion import JobOptions, expand, job_log_path
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.settings import Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel

SEEDS = ["logic puzzles", "graph algorithms", "scheduling"]
SLOW_TOPIC = "logic puzzles"
FINISHED_WHILE_SLOW = 3  # verdicts of other syntheses before the slow one's author replies


class SlowOnOneTopic(ScriptedChatModel):
    """The scripted author, except that its draft for `SLOW_TOPIC` waits for `released`."""

    released: Any = None

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        if f'"{SLOW_TOPIC}"' in str(messages[-1].content):
            # a scheduler in rounds would never release it: fail the assertions below, do not hang
            await asyncio.wait_for(self.released.wait(), timeout=120)
        return await super()._agenerate(messages, *args, **kwargs)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def events(log: Path) -> list[tuple[str, str]]:
    """(kind, environment id) of each start and verdict in the job's log, in order."""
    kinds = {"start"} | {status.value for status in Status if status.finished}
    found = []
    for line in log.read_text().splitlines():
        _time, kind, *rest = line.split()
        if kind in kinds:
            found.append((kind, rest[0]))
    return found


async def test_a_long_synthesis_does_not_hold_the_other_slots_back(
    settings: Settings, tmp_path: Path, embedder: Embedder
) -> None:
    settings = settings.model_copy(
        update={"data_dir": tmp_path, "synthesis": SynthesisSettings(max_repairs=0, probe_instances=3)}
    )
    settings.expansion.duplicate_threshold = 0.99  # the scripted author's puzzles are few
    released = asyncio.Event()
    verdicts: list[str] = []

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if "counts" in data and data["topic"] != SLOW_TOPIC:
            verdicts.append(data["environment_id"])
            if len(verdicts) == FINISHED_WHILE_SLOW:
                released.set()

    limiter = asyncio.Semaphore(8)
    author = SlowOnOneTopic(script=scripted_world.author, released=released)
    models = {
        "author": ChatEndpoint("author", "scripted-author", author, limiter),
        **{
            role: ChatEndpoint(
                role, f"scripted-{role}", ScriptedChatModel(script=scripted_world.reply_for(role)), limiter
            )
            for role in ("solver", "scout")
        },
    }
    options = JobOptions(name="busy", seed_topics=SEEDS, target=5, concurrency=2)
    async with open_runtime(settings, models, embedder) as runtime:
        _options, reason = await expand(runtime, options, on_event=on_event)
        slow = next(record.id for record in runtime.library.environments() if record.topic == SLOW_TOPIC)
    assert reason == "target reached: 5 accepted"

    log = events(job_log_path(tmp_path, "busy"))
    started = log.index(("start", slow))
    judged = next(index for index, (kind, id_) in enumerate(log) if id_ == slow and kind != "start")
    while_slow = log[started + 1 : judged]
    others_judged = [id_ for kind, id_ in while_slow if kind != "start"]
    others_started = [id_ for kind, id_ in while_slow if kind == "start"]
    # the other slot went through several syntheses, each started as soon as the one before ended
    assert len(others_judged) >= FINISHED_WHILE_SLOW
    assert len(others_started) >= FINISHED_WHILE_SLOW - 1
    for (kind, _id), (following, _next) in itertools.pairwise(while_slow):
        if kind != "start":
            assert following == "start", while_slow
