"""The synthesis graph: one topic in, one verdict out.

    draft ──▶ validate ──valid──▶ sample_probe ──▶ novelty ──Send×N──▶ solve ──▶ score_probe ──▶ verdict
      │          │ invalid, repairs left                                                        ▲
      │          ▼                                                                              │
      └─(no code)─▶ repair ──▶ validate …   (repairs spent, LLM failure, duplicate, --no-probe) ─┘

Every node is a plain async function of the state returning a partial update. Transient LLM faults
are retried, and outages waited out, inside each call (`agents/resilience.py`); a fault of the
request itself ends the environment as an `llm_failure` with the reason, or, for a probe question,
leaves that answer missing (a few may be: `synthesis.max_missing_answers`). An outage longer than
`llm.max_outage_s` raises `EndpointDown` through the graph: the synthesis stops unjudged, to be
resumed. A SQLite checkpointer saves every step (durability "sync"), so an interrupted synthesis
resumes where it stopped: the finished LLM calls, including each finished solver probe, are not
made again.

The novelty step runs before the solver probe: embedding a few sample questions costs
milliseconds, the probe costs `5 × probe_instances` LLM calls, so a duplicate is caught before
they are spent. Two environments of the same job may be judged at the same time, so the verdict
checks once more, against everything accepted meanwhile, before it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import operator
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from resyn import tracing
from resyn.agents import author, solver
from resyn.agents.author import Authored
from resyn.agents.exemplars import choose_exemplars, source_constants
from resyn.agents.llm import Reply
from resyn.agents.resilience import EndpointDown, describe
from resyn.contract import DIFFICULTIES, SampledInstance, ValidationReport
from resyn.graph.runtime import SynthesisRuntime, open_checkpointer
from resyn.graph.verdict import pass_rates, probe_verdict
from resyn.memory.library import EnvironmentRecord
from resyn.memory.novelty import novelty_text
from resyn.settings import SynthesisSettings
from resyn.tools.sampler import SampleError, sample_in_kernel
from resyn.tools.scoring import score_in_kernel
from resyn.tools.validator import parent_secrets


def add_usage(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    keys = set(total) | set(more)
    return {key: total.get(key, 0) + more.get(key, 0) for key in keys}


class SynthesisState(TypedDict, total=False):
    environment_id: str
    topic: str
    probe: bool
    max_repairs: int
    attempts: int  # author replies so far: the draft plus the repairs
    source: str | None
    problem: str | None  # why the latest author reply held no usable code
    report: dict[str, Any] | None  # the latest ValidationReport, as JSON data
    probe_instances: list[dict[str, Any]]
    answers: Annotated[list[dict[str, Any]], operator.add]
    pass_rates: dict[str, float]
    missing_answers: int  # probe questions the solver could not be asked (faults of those requests)
    novelty_vector: list[float] | None
    contamination: dict[str, Any] | None
    status: str
    reason: str
    usage: Annotated[dict[str, int], add_usage]
    llm_calls: Annotated[list[dict[str, Any]], operator.add]


def _call_record(role: str, reply: Reply) -> dict[str, Any]:
    return {"role": role, "model": reply.model, "seconds": reply.seconds, **reply.usage()}


def _authored_update(state: SynthesisState, authored: Authored, kind: str) -> dict[str, Any]:
    return {
        "attempts": state.get("attempts", 0) + 1,
        "source": authored.source or state.get("source"),
        "problem": authored.problem,
        "usage": authored.reply.usage(),
        "llm_calls": [_call_record(f"author.{kind}", authored.reply)],
    }


def build_synthesis_graph(runtime: SynthesisRuntime) -> StateGraph:
    """The graph's nodes close over the runtime (kernel pool, models, library)."""
    settings = runtime.settings

    async def draft(state: SynthesisState) -> dict[str, Any]:
        exemplars = choose_exemplars(state["topic"], runtime.exemplars, settings.synthesis.exemplars)
        try:
            authored = await author.draft(runtime.endpoint("author"), state["topic"], exemplars)
        except EndpointDown:
            raise
        except Exception as error:
            return _author_failure(error)
        runtime.library.record_attempt(
            state["environment_id"], 1, "draft", authored.source, None, authored.problem
        )
        return _authored_update(state, authored, "draft")

    async def repair(state: SynthesisState) -> dict[str, Any]:
        endpoint = runtime.endpoint("author")
        try:
            if state.get("problem") or state.get("report") is None:
                authored = await author.retry_malformed(
                    endpoint, state["topic"], state.get("problem") or "no code"
                )
            else:
                report = ValidationReport.model_validate(state["report"])
                authored = await author.repair(endpoint, state["topic"], state["source"], report)
        except EndpointDown:
            raise
        except Exception as error:
            return _author_failure(error)
        number = state.get("attempts", 0) + 1
        runtime.library.record_attempt(
            state["environment_id"], number, "repair", authored.source, None, authored.problem
        )
        update = _authored_update(state, authored, "repair")
        if authored.source is None:
            update["source"] = state.get("source")
        return update

    async def validate(state: SynthesisState) -> dict[str, Any]:
        report = await runtime.validator.validate(state["source"])
        runtime.library.record_attempt(
            state["environment_id"], state["attempts"], "draft" if state["attempts"] == 1 else "repair",
            state["source"], report, None,
        )  # fmt: skip
        return {"report": report.model_dump()}

    async def sample_probe(state: SynthesisState) -> dict[str, Any]:
        count, first_seed = settings.synthesis.probe_instances, settings.synthesis.probe_seed
        instances: list[SampledInstance] = []
        try:
            async with runtime.pool.lease() as kernel:
                for difficulty in DIFFICULTIES:
                    seeds = range(first_seed, first_seed + count)
                    instances += await sample_in_kernel(kernel, state["source"], difficulty, seeds, settings)
        except SampleError as error:
            return {"status": "invalid", "reason": f"the probe could not sample instances: {error}"}
        return {"probe_instances": [instance.model_dump() for instance in instances]}

    async def novelty(state: SynthesisState) -> dict[str, Any]:
        if state.get("status") or runtime.novelty is None:
            return {}
        constants = source_constants(state["source"])
        questions = [instance["question"] for instance in state["probe_instances"]]
        text = novelty_text(
            constants.get("NAME"),
            constants.get("DESCRIPTION"),
            _spread(questions, settings.expansion.novelty_questions),
        )
        vector = await asyncio.to_thread(runtime.novelty.embed, text)
        update: dict[str, Any] = {"novelty_vector": vector.tolist()}
        duplicate = _duplicate_reason(runtime, vector)
        if duplicate:
            update |= {"status": "duplicate", "reason": duplicate}
        elif runtime.contamination is not None:
            match = await asyncio.to_thread(runtime.contamination.check, questions)
            update["contamination"] = dataclasses.asdict(match) if match else None
        return update

    def fan_out_probes(state: SynthesisState) -> list[Send] | str:
        if state.get("status"):
            return "verdict"
        return [
            Send("solve", {"index": index, "question": instance["question"]})
            for index, instance in enumerate(state["probe_instances"])
        ]

    async def solve(task: dict[str, Any]) -> dict[str, Any]:
        try:
            answered = await solver.answer(runtime.endpoint("solver"), task["question"])
        except EndpointDown:
            raise
        except Exception as error:  # this question's answer is missing; the probe may go on
            return {"answers": [{"index": task["index"], "answer": None, "error": describe(error)}]}
        return {
            "answers": [{"index": task["index"], "answer": answered.answer}],
            "usage": answered.reply.usage(),
            "llm_calls": [_call_record("solver", answered.reply)],
        }

    async def score_probe(state: SynthesisState) -> dict[str, Any]:
        answers = {entry["index"]: entry for entry in state.get("answers", [])}
        failed = [entry["error"] for entry in answers.values() if entry.get("error")]
        allowed = missing_answers_allowed(len(state["probe_instances"]), settings.synthesis)
        if len(failed) > allowed:
            return {
                "status": "llm_failure",
                "reason": f"the solver could not answer {len(failed)} of {len(answers)} probe questions "
                f"(at most {allowed} may be missing): {failed[0]}",
            }
        instances = [SampledInstance.model_validate(item) for item in state["probe_instances"]]
        answered = {index for index, entry in answers.items() if not entry.get("error")}
        scored = [(index, instance) for index, instance in enumerate(instances) if answers[index]["answer"]]
        async with runtime.pool.lease() as kernel:
            scores = await score_in_kernel(
                kernel, state["source"], [(inst, answers[i]["answer"]) for i, inst in scored], settings
            )
        by_index = dict(zip((index for index, _ in scored), scores, strict=True))
        by_level: dict[int, list[float]] = defaultdict(list)
        for index, instance in enumerate(instances):
            if index in answered:  # a missing answer is no data, not a wrong answer
                by_level[instance.difficulty].append(by_index.get(index, 0.0))
        return {"pass_rates": pass_rates(by_level), "missing_answers": len(failed)}

    async def verdict(state: SynthesisState) -> dict[str, Any]:
        import numpy as np

        status, reason = _decide(state, runtime)
        vector = state.get("novelty_vector")
        vector = np.asarray(vector, dtype=np.float32) if vector is not None else None
        if status == "accepted" and vector is not None:
            duplicate = _duplicate_reason(runtime, vector)  # accepted by a sibling since the novelty step
            if duplicate:
                status, reason = "duplicate", duplicate
        report = ValidationReport.model_validate(state["report"]) if state.get("report") else None
        constants = source_constants(state.get("source") or "")
        accepted = status == "accepted"
        runtime.library.finish(
            state["environment_id"],
            status=status,
            reason=reason,
            source=state.get("source"),
            report=report,
            pass_rates=state.get("pass_rates"),
            usage=state.get("usage", {}),
            name=constants.get("NAME"),
            description=constants.get("DESCRIPTION"),
            embedding=vector.tobytes() if accepted and vector is not None else None,
            contamination=state.get("contamination") if accepted else None,
        )
        if accepted and vector is not None and runtime.novelty is not None:
            runtime.novelty.remember(state["environment_id"], vector)
        return {"status": status, "reason": reason}

    graph = StateGraph(SynthesisState)
    graph.add_node("draft", traced("draft", draft))
    graph.add_node("repair", traced("repair", repair))
    graph.add_node("validate", traced("validate", validate))
    graph.add_node("sample_probe", traced("sample_probe", sample_probe))
    graph.add_node("novelty", traced("novelty", novelty))
    graph.add_node("solve", traced("solve", solve))
    graph.add_node("score_probe", traced("score_probe", score_probe))
    graph.add_node("verdict", traced("verdict", verdict))
    graph.add_edge(START, "draft")
    graph.add_conditional_edges("draft", _after_authoring, ["validate", "repair", "verdict"])
    graph.add_conditional_edges("repair", _after_authoring, ["validate", "repair", "verdict"])
    graph.add_conditional_edges("validate", _after_validation, ["sample_probe", "repair", "verdict"])
    graph.add_edge("sample_probe", "novelty")
    graph.add_conditional_edges("novelty", fan_out_probes, ["solve", "verdict"])
    graph.add_edge("solve", "score_probe")
    graph.add_edge("score_probe", "verdict")
    graph.add_edge("verdict", END)
    return graph


Node = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def traced(name: str, node: Node) -> Node:
    """The node, recording one trace step (when, how long, what it decided) around each run."""

    @functools.wraps(node)
    async def run(state: dict[str, Any]) -> dict[str, Any]:
        with tracing.in_step(name):
            started, clock = tracing.now(), time.perf_counter()
            try:
                update = await node(state)
            except Exception as error:
                outcome = {"error": f"{type(error).__name__}: {error}"[:500]}
                tracing.record("step", name, started, time.perf_counter() - clock, outcome)
                raise
            tracing.record("step", name, started, time.perf_counter() - clock, step_outcome(update))
            return update

    return run


def step_outcome(update: dict[str, Any]) -> dict[str, Any]:
    """What a trace keeps of a step's update: the decision, not the bulk (sources live in attempts)."""
    outcome = {key: value for key, value in update.items() if key not in _BULKY}
    if update.get("report"):
        report = update["report"]
        outcome["report"] = {
            "valid": report["valid"],
            "seconds": report.get("seconds"),
            "failed": [
                {"name": check["name"], "detail": check["detail"]}
                for check in report["checks"]
                if not check["passed"] and not check["skipped"]
            ],
        }
    if update.get("probe_instances"):
        outcome["instances"] = [
            {key: instance[key] for key in ("seed", "difficulty", "question", "witness")}
            for instance in update["probe_instances"]
        ]
    return outcome


_BULKY = ("source", "novelty_vector", "probe_instances", "report")


def _spread(items: list[str], count: int) -> list[str]:
    """`count` items spread evenly over the list (the probe's questions run from easy to hard)."""
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    step = (len(items) - 1) / max(count - 1, 1)
    return [items[round(position * step)] for position in range(count)]


def _duplicate_reason(runtime: SynthesisRuntime, vector: Any) -> str | None:
    if runtime.novelty is None:
        return None
    threshold = runtime.settings.expansion.duplicate_threshold
    neighbour = runtime.novelty.nearest(vector)
    if neighbour is None or neighbour.similarity < threshold:
        return None
    name = runtime.library.get(neighbour.environment_id).name or "unnamed"
    similarity = neighbour.similarity
    return f"duplicate of {neighbour.environment_id} ({name}): cosine {similarity:.3f} ≥ {threshold}"


def _repairs_left(state: SynthesisState) -> bool:
    return state.get("attempts", 0) <= state["max_repairs"]


def _author_failure(error: Exception) -> dict[str, Any]:
    return {"status": "llm_failure", "reason": f"the author could not be reached: {describe(error)}"}


def missing_answers_allowed(questions: int, settings: SynthesisSettings) -> int:
    """How many probe answers may be missing before the probe is void (10% by default: 2 of 20)."""
    return int(questions * settings.max_missing_answers)


def _after_authoring(state: SynthesisState) -> str:
    if state.get("status"):
        return "verdict"
    if state.get("problem") is None:
        return "validate"
    return "repair" if _repairs_left(state) else "verdict"


def _after_validation(state: SynthesisState) -> str:
    if state["report"]["valid"]:
        return "sample_probe" if state["probe"] else "verdict"
    return "repair" if _repairs_left(state) else "verdict"


def _decide(state: SynthesisState, runtime: SynthesisRuntime) -> tuple[str, str]:
    if state.get("status"):
        return state["status"], state["reason"]
    repairs = state.get("attempts", 1) - 1
    report = state.get("report")
    if state.get("problem"):
        return (
            "invalid",
            f"after {repairs} repairs the author's reply held no usable code: {state['problem']}",
        )
    if report is None or not report["valid"]:
        failed = [
            check
            for check in (report or {}).get("checks", [])
            if not check["passed"] and not check["skipped"]
        ]
        summary = "; ".join(f"{check['name']}: {check['detail']}" for check in failed[:3])
        return "invalid", f"still invalid after {repairs} repairs: {summary}"
    if not state["probe"]:
        return "accepted", "valid; the solver probe was skipped (--no-probe)"
    status, reason = probe_verdict(state["pass_rates"], runtime.settings.synthesis)
    if state.get("missing_answers"):
        reason += f"; {state['missing_answers']} of {len(state['probe_instances'])} answers missing"
    return status, reason


Updates = Callable[[str, dict[str, Any]], None]


def _compiled(runtime: SynthesisRuntime, saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """One compiled graph per runtime and checkpointer: a job of thousands compiles it once."""
    if runtime.compiled is None or runtime.compiled.checkpointer is not saver:
        runtime.compiled = build_synthesis_graph(runtime).compile(checkpointer=saver)
    return runtime.compiled


@contextlib.asynccontextmanager
async def _recording(runtime: SynthesisRuntime, environment_id: str, job: str | None) -> AsyncIterator[None]:
    """Trace this environment's steps, LLM calls and kernel runs into the runtime's trace store."""
    if runtime.traces is None:
        yield
        return
    recorder = tracing.Recorder(runtime.traces.add, environment_id, job, parent_secrets())
    with tracing.recording(recorder):
        yield


@contextlib.asynccontextmanager
async def _checkpointer(runtime: SynthesisRuntime) -> AsyncIterator[BaseCheckpointSaver]:
    """The runtime's shared checkpointer, or one of its own for a runtime built without one."""
    if runtime.checkpointer is not None:
        yield runtime.checkpointer
        return
    async with open_checkpointer(runtime.settings) as saver:
        yield saver


class NothingToResume(LookupError):
    """`--resume ID` named a synthesis with no saved progress."""


async def synthesize(
    runtime: SynthesisRuntime,
    topic: str | None,
    *,
    environment_id: str | None = None,
    probe: bool = True,
    max_repairs: int | None = None,
    on_update: Updates | None = None,
    job: str | None = None,
) -> EnvironmentRecord:
    """Run one synthesis to its verdict, or resume the one with `environment_id` where it stopped.

    `on_update(node, update)` is called after every step (the CLI's live progress).
    """
    environment_id = environment_id or uuid.uuid4().hex[:12]
    async with _checkpointer(runtime) as saver, _recording(runtime, environment_id, job):
        app = _compiled(runtime, saver)
        config: RunnableConfig = {"configurable": {"thread_id": environment_id}}
        saved = await app.aget_state(config)
        if saved.values and not saved.next:
            return runtime.library.get(environment_id)  # already finished
        if saved.values:
            start: dict[str, Any] | None = None  # resume from the last saved step
        elif topic is None:
            raise NothingToResume(f"no synthesis {environment_id!r} to resume")
        else:
            runtime.library.start(
                environment_id,
                topic,
                runtime.model_name("author"),
                runtime.model_name("solver") if probe else None,
                job=job,
            )
            start = {
                "environment_id": environment_id,
                "topic": topic,
                "probe": probe,
                "max_repairs": runtime.settings.synthesis.max_repairs if max_repairs is None else max_repairs,
                "attempts": 0,
            }
        async for chunk in app.astream(start, config, stream_mode="updates", durability="sync"):
            for node, update in chunk.items():
                if on_update is not None:
                    on_update(node, update or {})
    return runtime.library.get(environment_id)
