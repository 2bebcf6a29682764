"""An environment written for another topic than the one asked is rejected, with the cosine; one
that stays on its topic goes on to the probe. Cosines from the real all-MiniLM-L6-v2."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scripted_runtime import scripted_runtime

from resyn.agents.exemplars import Exemplar, load_exemplars, source_constants
from resyn.agents.llm import ChatEndpoint
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.synthesis import synthesize
from resyn.memory.embeddings import Embedder
from resyn.memory.novelty import NoveltyMemory
from resyn.memory.topic_fit import topic_fit
from resyn.settings import Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel
from resyn.tools.kernel_pool import KernelPool

THRESHOLD = SynthesisSettings().min_topic_similarity
ASKED = "invariants with queue simulations"
DRIFTED = scripted_world.environment_for("unnamed topic")  # what the scripted author wrote, unprompted


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.mark.parametrize("exemplar", load_exemplars(), ids=lambda exemplar: exemplar.name)
def test_an_exemplar_is_on_its_own_topic(embedder: Embedder, exemplar: Exemplar) -> None:
    constants = source_constants(exemplar.source)
    fit = topic_fit(embedder, constants["TOPIC"], constants, THRESHOLD)
    assert fit.on_topic, fit.reason


def test_a_list_puzzle_for_no_topic_is_off_the_asked_one(embedder: Embedder) -> None:
    fit = topic_fit(embedder, ASKED, source_constants(DRIFTED), THRESHOLD)
    assert not fit.on_topic
    assert fit.reason == (
        f"off topic: written for 'unnamed topic', asked for {ASKED!r} "
        f"(cosine {fit.similarity:.2f} < {THRESHOLD:.2f})"
    )


def runtime_for(
    settings: Settings, pool: KernelPool, embedder: Embedder, author_reply: str
) -> SynthesisRuntime:
    def fenced(_messages: object) -> str:
        return f"```python\n{author_reply}```"

    endpoints = {
        role: ChatEndpoint(role, f"scripted-{role}", ScriptedChatModel(script=script), asyncio.Semaphore(8))
        for role, script in (("author", fenced), ("solver", scripted_world.solver))
    }
    runtime = scripted_runtime(settings, pool, endpoints)
    runtime.embedder, runtime.novelty = embedder, NoveltyMemory(runtime.library, embedder)
    return runtime


@pytest.fixture
def drift_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": tmp_path, "synthesis": SynthesisSettings(max_repairs=0, probe_instances=2)}
    )


async def test_a_drifted_environment_is_rejected_before_the_probe_with_the_cosine(
    drift_settings: Settings, pool: KernelPool, embedder: Embedder
) -> None:
    runtime = runtime_for(drift_settings, pool, embedder, DRIFTED)
    record = await synthesize(runtime, ASKED)
    assert record.status == "off_topic"
    assert record.reason.startswith(f"off topic: written for 'unnamed topic', asked for {ASKED!r} (cosine 0.")
    assert record.reason.endswith(f" < {THRESHOLD:.2f})")
    assert runtime.endpoints["solver"].chat.calls == []  # no probe spent on it


async def test_an_environment_on_the_asked_topic_goes_on_to_the_probe(
    drift_settings: Settings, pool: KernelPool, embedder: Embedder
) -> None:
    runtime = runtime_for(drift_settings, pool, embedder, scripted_world.environment_for(ASKED))
    record = await synthesize(runtime, ASKED)
    assert record.status == "accepted", record.reason
    assert len(runtime.endpoints["solver"].chat.calls) == 5 * 2
