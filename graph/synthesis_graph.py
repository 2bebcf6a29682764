"""The synthesis graph: one topic in, one verdict out.

    draft ──▶ validate ──valid──▶ sample_probe ──▶ novelty ──Send×N──▶ solve ──▶ score_probe ──▶ verdict
      │          │ invalid, repairs left                                                        ▲
      │          ▼                                                                              │
      └─(no code)─▶ repair ──▶ validate …  (repairs spent, LLM failure, duplicate, off topic, --no-probe)
                     ▲  │ no code, or the very code it was to repair (not validated again)
                     └──┘

Every node is a plain async function of the state and LangGraph's `Runtime`, whose context is the
`SynthesisRuntime` (kernel pool, models, library), and returns a partial update. A request the
endpoint refuses ends the environment as an `llm_failure` with the reason, or, for a probe
question, leaves that answer missing (see `graph/faults.py`). The graph is compiled once, here;
`graph/synthesis.py` runs it.

The novelty step runs before the solver probe: embedding a few sample questions costs
milliseconds, the probe costs `5 × probe_instances` LLM calls, so a duplicate is caught before
they are spent; so is an environment that drifted off its topic (`memory/topic_fit.py`). Two
environments of the same job may be judged at the same time, so the verdict checks once more,
against everything accepted meanwhile, before it accepts.

A repair that returns the very code it was asked to repair is a failed repair: it uses up one of
`max_repairs`, is not validated again, and the next repair request tells the author so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
from collections import defaultdict
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from resyn.agents import author, solver
from resyn.agents.author import Authored
from resyn.agents.exemplars import choose_exemplars, source_constants
from resyn.agents.llm import Reply
from resyn.agents.resilience import describe
from resyn.contract import DIFFICULTIES, SampledInstance, Status, ValidationReport
from resyn.graph.faults import result_or_fault
from resyn.graph.runtime import SynthesisRuntime
from resyn.graph.steps import traced
from resyn.graph.verdict import decide, duplicate_reason, missing_answers_allowed, pass_rates
from resyn.memory.novelty import novelty_text
from resyn.memory.records import RoleUsage, add_role_usage
from resyn.memory.topic_fit import topic_fit
from resyn.seeds import probe_seeds
from resyn.tools.sampler import SampleError, sample_in_kernel
from resyn.tools.scoring import score_in_kernel


def add_usage(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    keys = set(total) | set(more)
    return {key: total.get(key, 0) + more.get(key, 0) for key in keys}


def usage_by_role(calls: list[dict[str, Any]]) -> RoleUsage:
    """The tokens of these LLM call records by role (an `author.repair` call is the author's)."""
    by_role: RoleUsage = {}
    for call in calls:
        usage = {key: call.get(key, 0) for key in ("input_tokens", "output_tokens")}
        by_role = add_role_usage(by_role, {call["role"].split(".")[0]: usage})
    return by_role


class SynthesisState(TypedDict, total=False):
    environment_id: str
    topic: str
    probe: bool
    max_repairs: int
    attempts: int  # author replies so far: the draft plus the repairs
    source: str | None
    source_attempt: int  # the attempt whose reply `source` came from
    problem: str | None  # why the latest author reply held no usable code
    unchanged: int | None  # the attempt whose code the latest reply repeated, unchanged
    from_file: bool  # the code is a given file's (`resyn synthesize --file`), not an author's
    unchanged_repairs: int  # repairs that returned the code they were asked to repair
    report: ValidationReport | None  # the latest validation (checkpointed as such: graph/runtime.py)
    probe_instances: list[dict[str, Any]]
    answers: Annotated[list[dict[str, Any]], operator.add]
    pass_rates: dict[str, float]
    scores: list[float | None]  # per probe instance: verify's score, None where no answer came
    missing_answers: int  # probe questions the solver could not be asked (faults of those requests)
    novelty_vector: list[float] | None
    topic_similarity: float | None  # cosine of the environment's own words to the asked topic
    contamination: dict[str, Any] | None
    status: str
    reason: str
    usage: Annotated[dict[str, int], add_usage]
    llm_calls: Annotated[list[dict[str, Any]], operator.add]


async def draft(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    context = runtime.context
    exemplars = choose_exemplars(state["topic"], context.exemplars, context.settings.synthesis.exemplars)
    authored = await result_or_fault(
        lambda: author.draft(context.endpoint("author"), state["topic"], exemplars)
    )
    if isinstance(authored, Exception):
        return _author_failure(authored)
    context.library.record_attempt(
        state["environment_id"], 1, "draft", authored.source, None, authored.problem
    )
    return _authored_update(state, authored, "draft")


async def repair(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    endpoint, report = runtime.context.endpoint("author"), state.get("report")
    if state.get("problem") or report is None:
        authored = await result_or_fault(
            lambda: author.retry_malformed(endpoint, state["topic"], state.get("problem") or "no code")
        )
    else:
        unchanged = state.get("unchanged") is not None
        authored = await result_or_fault(
            lambda: author.repair(endpoint, state["topic"], state["source"], report, unchanged=unchanged)
        )
    if isinstance(authored, Exception):
        return _author_failure(authored)
    update = _authored_update(state, authored, "repair")
    problem = authored.problem
    if _unchanged(state, authored):  # a failed repair: not validated again, and the author is told
        repeated = state.get("source_attempt") or state.get("attempts", 0)
        failing = ", ".join(check.name for check in report.failures())
        problem = f"unchanged: the same code as attempt {repeated}, which fails {failing}"
        update |= {
            "source_attempt": repeated,
            "unchanged": repeated,
            "unchanged_repairs": state.get("unchanged_repairs", 0) + 1,
        }
    runtime.context.library.record_attempt(
        state["environment_id"], update["attempts"], "repair", authored.source, None, problem
    )
    return update


async def validate(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    report = await runtime.context.validator.validate(state["source"])
    kind = "file" if state.get("from_file") else "draft" if state["attempts"] == 1 else "repair"
    runtime.context.library.record_attempt(
        state["environment_id"], state["attempts"], kind, state["source"], report, None
    )
    return {"report": report}


async def sample_probe(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    settings = runtime.context.settings
    seeds = probe_seeds(settings)
    instances: list[SampledInstance] = []
    try:
        async with runtime.context.pool.lease() as kernel:
            for difficulty in DIFFICULTIES:
                instances += await sample_in_kernel(kernel, state["source"], difficulty, seeds, settings)
    except SampleError as error:
        return _ended(Status.INVALID, f"the probe could not sample instances: {error}")
    return {"probe_instances": [instance.model_dump() for instance in instances]}


async def novelty(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    """Before the probe: a duplicate of an accepted environment, or one that drifted off its
    topic, ends here; a near match to a benchmark question is flagged."""
    context = runtime.context
    if state.get("status") or context.novelty is None:
        return {}
    constants = source_constants(state["source"])
    questions = [instance["question"] for instance in state["probe_instances"]]
    text = novelty_text(
        constants.get("NAME"),
        constants.get("DESCRIPTION"),
        _spread(questions, context.settings.expansion.novelty_questions),
    )
    vector = await asyncio.to_thread(context.novelty.embed, text)
    update: dict[str, Any] = {"novelty_vector": vector.tolist()}
    context.novelty.catch_up()  # what other workers accepted since
    duplicate = duplicate_reason(context, vector)
    if duplicate:
        return update | _ended(Status.DUPLICATE, duplicate)
    if context.embedder is not None:
        threshold = context.settings.synthesis.min_topic_similarity
        fit = await asyncio.to_thread(topic_fit, context.embedder, state["topic"], constants, threshold)
        update["topic_similarity"] = fit.similarity
        if not fit.on_topic:
            return update | _ended(Status.OFF_TOPIC, fit.reason)
    if context.contamination is not None:
        match = await asyncio.to_thread(context.contamination.check, questions)
        update["contamination"] = dataclasses.asdict(match) if match else None
    return update


def fan_out_probes(state: SynthesisState) -> list[Send] | str:
    if state.get("status"):
        return "verdict"
    return [
        Send("solve", {"index": index, "question": instance["question"]})
        for index, instance in enumerate(state["probe_instances"])
    ]


async def solve(task: dict[str, Any], runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    answered = await result_or_fault(
        lambda: solver.answer(runtime.context.endpoint("solver"), task["question"])
    )
    if isinstance(answered, Exception):  # this question's answer is missing; the probe may go on
        return {"answers": [{"index": task["index"], "answer": None, "error": describe(answered)}]}
    return {
        "answers": [{"index": task["index"], "answer": answered.answer}],
        "usage": answered.reply.usage(),
        "llm_calls": [_call_record("solver", answered.reply)],
    }


async def score_probe(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    settings = runtime.context.settings
    answers = {entry["index"]: entry for entry in state.get("answers", [])}
    failed = [entry["error"] for entry in answers.values() if entry.get("error")]
    allowed = missing_answers_allowed(len(state["probe_instances"]), settings.synthesis)
    if len(failed) > allowed:
        return _ended(
            Status.LLM_FAILURE,
            f"the solver could not answer {len(failed)} of {len(answers)} probe questions "
            f"(at most {allowed} may be missing): {failed[0]}",
        )
    instances = [SampledInstance.model_validate(item) for item in state["probe_instances"]]
    answered = {index for index, entry in answers.items() if not entry.get("error")}
    scored = [(index, instance) for index, instance in enumerate(instances) if answers[index]["answer"]]
    async with runtime.context.pool.lease() as kernel:
        scores = await score_in_kernel(
            kernel, state["source"], [(inst, answers[i]["answer"]) for i, inst in scored], settings
        )
    by_index = dict(zip((index for index, _ in scored), scores, strict=True))
    by_level: dict[int, list[float]] = defaultdict(list)
    for index, instance in enumerate(instances):
        if index in answered:  # a missing answer is no data, not a wrong answer
            by_level[instance.difficulty].append(by_index.get(index, 0.0))
    scores = [by_index.get(index, 0.0) if index in answered else None for index in range(len(instances))]
    return {"pass_rates": pass_rates(by_level), "missing_answers": len(failed), "scores": scores}


ACCEPTANCE_LOCK = "resyn:acceptance"  # held by the worker recording a verdict (memory/job_claims.py)


async def verdict(state: SynthesisState, runtime: Runtime[SynthesisRuntime]) -> dict[str, Any]:
    import numpy as np

    context = runtime.context
    status, reason = decide(state, context.settings.synthesis)
    vector = state.get("novelty_vector")
    vector = np.asarray(vector, dtype=np.float32) if vector is not None else None
    library, environment_id = context.library, state["environment_id"]
    # the final novelty check and the verdict, one worker at a time: no two accept near-duplicates
    async with library.claims.lock(ACCEPTANCE_LOCK):
        if context.worker is not None and not library.claims.holds(environment_id, context.worker):
            return {}  # another worker took this synthesis over while this one seemed gone: its verdict
        return _record_verdict(state, context, status, reason, vector)


def _record_verdict(
    state: SynthesisState, context: SynthesisRuntime, status: Status, reason: str, vector: Any
) -> dict[str, Any]:
    if status == Status.ACCEPTED and vector is not None:
        if context.novelty is not None:
            context.novelty.catch_up()  # what other workers accepted meanwhile
        duplicate = duplicate_reason(context, vector)  # accepted by a sibling since the novelty step
        if duplicate:
            status, reason = Status.DUPLICATE, duplicate
    constants = source_constants(state.get("source") or "")
    accepted = status == Status.ACCEPTED
    context.library.finish(
        state["environment_id"],
        status=status,
        reason=reason,
        source=state.get("source"),
        report=state.get("report"),
        pass_rates=state.get("pass_rates"),
        usage=state.get("usage", {}),
        role_usage=usage_by_role(state.get("llm_calls", [])),
        name=constants.get("NAME"),
        description=constants.get("DESCRIPTION"),
        embedding=vector.tobytes() if accepted and vector is not None else None,
        contamination=state.get("contamination") if accepted else None,
    )
    if accepted and vector is not None and context.novelty is not None:
        context.novelty.remember(state["environment_id"], vector)
    return _ended(status, reason)


def _ended(status: Status, reason: str) -> dict[str, str]:
    """The update that ends a synthesis. The status goes in as its plain string: the checkpoint
    serializer would store a Status member as a typed extension, not as the text it is."""
    return {"status": status.value, "reason": reason}


def _first_step(state: SynthesisState) -> str:
    """A synthesis of a given file (`resyn synthesize --file`) starts at its validation."""
    return "validate" if state.get("from_file") else "draft"


def _after_authoring(state: SynthesisState) -> str:
    if state.get("status"):
        return "verdict"
    if state.get("problem") is None and state.get("unchanged") is None:
        return "validate"
    return "repair" if _repairs_left(state) else "verdict"


def _after_validation(state: SynthesisState) -> str:
    if state["report"].valid:
        return "sample_probe" if state["probe"] else "verdict"
    return "repair" if _repairs_left(state) else "verdict"


def _repairs_left(state: SynthesisState) -> bool:
    return state.get("attempts", 0) <= state["max_repairs"]


def _call_record(role: str, reply: Reply) -> dict[str, Any]:
    return {"role": role, "model": reply.model, "seconds": reply.seconds, **reply.usage()}


def _unchanged(state: SynthesisState, authored: Authored) -> bool:
    """Whether a repair's reply is the very code it was asked to repair."""
    previous, report = state.get("source"), state.get("report")
    return bool(authored.source and previous and report) and author.same_source(authored.source, previous)


def _authored_update(state: SynthesisState, authored: Authored, kind: str) -> dict[str, Any]:
    number = state.get("attempts", 0) + 1
    return {
        "attempts": number,
        "source": authored.source or state.get("source"),
        "source_attempt": number if authored.source else state.get("source_attempt"),
        "problem": authored.problem,
        "unchanged": None,
        "usage": authored.reply.usage(),
        "llm_calls": [_call_record(f"author.{kind}", authored.reply)],
    }


def _author_failure(error: Exception) -> dict[str, Any]:
    return _ended(Status.LLM_FAILURE, f"the author could not be reached: {describe(error)}")


def _spread(items: list[str], count: int) -> list[str]:
    """`count` items spread evenly over the list (the probe's questions run from easy to hard)."""
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    step = (len(items) - 1) / max(count - 1, 1)
    return [items[round(position * step)] for position in range(count)]


def _build() -> CompiledStateGraph:
    graph = StateGraph(SynthesisState, context_schema=SynthesisRuntime)
    for node in (draft, repair, validate, sample_probe, novelty, solve, score_probe, verdict):
        graph.add_node(node.__name__, traced(node.__name__, node))
    graph.add_conditional_edges(START, _first_step, ["draft", "validate"])
    graph.add_conditional_edges("draft", _after_authoring, ["validate", "repair", "verdict"])
    graph.add_conditional_edges("repair", _after_authoring, ["validate", "repair", "verdict"])
    graph.add_conditional_edges("validate", _after_validation, ["sample_probe", "repair", "verdict"])
    graph.add_edge("sample_probe", "novelty")
    graph.add_conditional_edges("novelty", fan_out_probes, ["solve", "verdict"])
    graph.add_edge("solve", "score_probe")
    graph.add_edge("score_probe", "verdict")
    graph.add_edge("verdict", END)
    return graph.compile()  # without a checkpointer: each run binds its own (graph/synthesis.py)


SYNTHESIS_GRAPH = _build()
