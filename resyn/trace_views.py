"""Rich renderings of one environment's trace: its timeline, attempts, probe and LLM calls
(a job's story is in `resyn.job_trace_views`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from resyn.memory.records import EnvironmentRecord
from resyn.views import environment_panel, status_text

_MESSAGE_CHARS = 2000
_ANSWER_CHARS = 24
ROLES = ("author", "solver", "scout")
STEP_ALIASES = {"probe": "solve"}  # the solver probe's calls run in the `solve` step


def step_outcome_text(step: dict[str, Any]) -> Text:
    """One line saying what a step decided."""
    data, name = step["data"], step["name"]
    if "error" in data:
        return Text(f"failed: {data['error']}", style="magenta")
    if data.get("status"):
        return Text.assemble(status_text(data["status"]), f": {data.get('reason', '')}")
    if name in ("draft", "repair"):
        return Text(f"no usable code: {data['problem']}" if data.get("problem") else "wrote a version")
    if "report" in data:
        report = data["report"]
        if report["valid"]:
            return Text("valid", style="green")
        return Text("invalid: " + ", ".join(check["name"] for check in report["failed"]), style="red")
    if "instances" in data:
        return Text(f"{len(data['instances'])} probe instances")
    if name == "novelty":
        flag = data.get("contamination")
        return Text(f"novel; contamination: {flag['task']}" if flag else "novel")
    if data.get("pass_rates"):
        return Text(" ".join(f"d{level}={rate:.2f}" for level, rate in data["pass_rates"].items()))
    return Text("")


def probe_results(story: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per probe question: its instance (difficulty, seed, witness), the solver's answer,
    the number of the LLM call that gave it, and its score where the trace records one.

    The solve steps name their question by index into the sample_probe step's instances; the
    score_probe step's `scores` (one per instance, None where the answer is missing) mark them."""
    sampled = [
        step for step in story["steps"] if step["name"] == "sample_probe" and "instances" in step["data"]
    ]
    if not sampled:
        return []
    scored = [step for step in story["steps"] if step["name"] == "score_probe" and "scores" in step["data"]]
    scores = scored[-1]["data"]["scores"] if scored else []
    call_of_span = {call["span"]: number for number, call in enumerate(story["llm_calls"], 1)}
    results = [
        {"index": index, "difficulty": instance["difficulty"], "seed": instance["seed"],
         "witness": instance["witness"], "answer": None, "error": None, "call": None,
         "score": scores[index] if index < len(scores) else None}
        for index, instance in enumerate(sampled[-1]["data"]["instances"])
    ]  # fmt: skip
    for step in (step for step in story["steps"] if step["name"] == "solve"):
        for answer in step["data"].get("answers", []):
            if answer["index"] < len(results):
                results[answer["index"]].update(
                    answer=answer["answer"], error=answer.get("error"), call=call_of_span.get(step["span"])
                )
    return results


def score_mark(result: dict[str, Any], unscored: str = "score not recorded") -> Text:
    """✓ right, ✗ wrong, the score when partial; why there is none otherwise."""
    score = result["score"]
    if result["error"]:
        return Text("no answer (call failed)", style="magenta")
    if score is None:
        return Text(unscored, style="dim")
    if score >= 1.0:
        return Text(f"✓ {score:.2f}", style="green")
    return Text(f"{'✗' if score == 0 else '~'} {score:.2f}", style="red" if score == 0 else "yellow")


def one_line(value: str | None, limit: int = _ANSWER_CHARS) -> str:
    """The value on one line, cut to `limit` characters ("—" for none)."""
    if value is None:
        return "—"
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


# table settings that leave the width to the values: no borders but the header's rule
COMPACT_TABLE: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False, "title_justify": "left"}


def timeline_table(story: dict[str, Any]) -> Table:
    """A row per step; the solver probes, which run in parallel, share one row (the probe table
    below has one row per question)."""
    table = Table(title="timeline", **COMPACT_TABLE)
    for column, justify in (("at s", "right"), ("step", "left"), ("took s", "right"), ("LLM", "right"),
                            ("kernel", "right"), ("outcome", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    by_span: dict[str, list[dict[str, Any]]] = {}
    for event in story["events"]:
        if event["kind"] != "step" and event["span"]:
            by_span.setdefault(event["span"], []).append(event)
    for group in _grouped_steps(story["steps"]):
        inside = [event for step in group for event in by_span.get(step["span"], [])]
        calls = [event for event in inside if event["kind"] == "llm_call"]
        kernel = [event for event in inside if event["kind"] == "kernel"]
        tokens = sum(c["data"].get("input_tokens", 0) + c["data"].get("output_tokens", 0) for c in calls)
        first = group[0]
        took = max(step["offset"] + step["seconds"] for step in group) - first["offset"]
        table.add_row(
            f"{first['offset']:.2f}",
            first["name"] + (f" ×{len(group)}" if len(group) > 1 else ""),
            f"{took:.2f}",
            f"{len(calls)}: {tokens:,} tok" if calls else "",
            f"{len(kernel)}: {sum(k['seconds'] for k in kernel):.2f} s" if kernel else "",
            _probe_outcome(story) if first["name"] == "solve" else step_outcome_text(first),
        )
    return table


def _grouped_steps(steps: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: list[list[dict[str, Any]]] = []
    for step in steps:
        if groups and step["name"] == "solve" and groups[-1][0]["name"] == "solve":
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _probe_outcome(story: dict[str, Any]) -> Text:
    results = probe_results(story)
    answered = [result for result in results if result["call"] and not result["error"]]
    failed = sum(1 for result in results if result["error"])
    scored = [result["score"] for result in answered if result["score"] is not None]
    text = f"{len(answered)} answered" + (f", {sum(s >= 1.0 for s in scored)} right" if scored else "")
    return Text(text + (f", {failed} failed" if failed else ""), style="magenta" if failed else "")


def probe_table(results: list[dict[str, Any]]) -> Table:
    """A row per probe question, tied to the call that answered it: `--messages` shows that call."""
    scored = [result["score"] for result in results if result["score"] is not None]
    title = f"probe: {len(results)} questions" + (
        f", {sum(score >= 1.0 for score in scored)} right"
        if scored
        else " (? : scores per question not recorded in this trace)"
    )
    table = Table(title=title, **COMPACT_TABLE)
    for column, justify in (("call", "right"), ("d", "right"), ("seed", "right"), ("answer", "left"),
                            ("witness", "left"), ("score", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for result in results:
        table.add_row(
            str(result["call"] or "—"), str(result["difficulty"]), str(result["seed"]),
            Text(one_line(result["answer"])), Text(one_line(result["witness"])), score_mark(result, "?"),
        )  # fmt: skip
    return table


def attempts_view(story: dict[str, Any]) -> list[RenderableType]:
    views: list[RenderableType] = []
    for attempt in story["attempts"]:
        title = f"attempt {attempt['number']} ({attempt['kind']})"
        parts: list[RenderableType] = []
        if attempt["problem"]:
            parts.append(Text(f"no usable code: {attempt['problem']}", style="red"))
        elif attempt["report"]:
            report = attempt["report"]
            failed = [check for check in report["checks"] if not check["passed"] and not check["skipped"]]
            parts.append(Text("valid", style="green") if report["valid"] else Text("invalid", style="red"))
            for check in failed:
                parts.append(Text.assemble(("  ✗ ", "red"), (check["name"], "bold"), f": {check['detail']}"))
        if attempt["diff"]:
            parts.append(Syntax(attempt["diff"], "diff", theme="ansi_dark", word_wrap=True))
        views.append(Panel(Group(*parts), title=title, title_align="left"))
    return views


def numbered_calls(story: dict[str, Any], role: str | None = None, step: str | None = None
                   ) -> list[tuple[int, dict[str, Any]]]:  # fmt: skip
    """The LLM calls, numbered in the order they started, of one role and one step if given."""
    step = STEP_ALIASES.get(step, step) if step else None
    return [
        (number, call)
        for number, call in enumerate(story["llm_calls"], 1)
        if (role is None or call["name"] == role) and (step is None or call["step"] == step)
    ]


def messages_view(story: dict[str, Any], calls: list[tuple[int, dict[str, Any]]], full: bool
                  ) -> list[RenderableType]:  # fmt: skip
    """Each call's messages and reply. A message already shown (the system prompt of every call
    after the first, the prompt of a retried call) is named by the call that showed it."""
    limit = None if full else _MESSAGE_CHARS
    shown: dict[tuple[str, str], int] = {}
    results = probe_results(story)
    probes = {result["call"]: result for result in results if result["call"]}
    views: list[RenderableType] = []
    for number, call in calls:
        data, probe = call["data"], probes.get(number)
        about = ""
        if probe:
            about = f" · probe {probe['index'] + 1}/{len(results)}: "
            about += f"difficulty {probe['difficulty']}, seed {probe['seed']}"
        tokens = (
            f"{data.get('input_tokens', 0) + data.get('output_tokens', 0):,} tokens "
            f"({data.get('input_tokens', 0):,} in, {data.get('output_tokens', 0):,} out)"
        )
        views.append(Rule(f"call {number} · {call['name']} · step {call['step']}{about}", align="left"))
        views.append(Text(f"{data['model']} · {call['seconds']:.2f} s · {tokens}", style="dim"))
        for message in data["messages"]:
            first = shown.setdefault((message["role"], message["content"]), number)
            if first != number:
                views.append(Text(f"{message['role']}: same as call {first}", style="dim cyan"))
            else:
                views.append(Text(f"{message['role']}:", style="bold cyan"))
                views.append(Text(_cut(message["content"], limit)))
        views.append(Text("reply:" if "reply" in data else "error:", style="bold green"))
        views.append(Text(_cut(data.get("reply") or data.get("error", ""), limit)))
        if probe:
            views.append(Text.assemble(
                f"answer {one_line(probe['answer'], 60)} · witness {one_line(probe['witness'], 60)} · ",
                score_mark(probe),
            ))  # fmt: skip
    return views


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters; --full shows them)"


def environment_trace(story: dict[str, Any], *, messages: bool, full: bool,
                      role: str | None = None, step: str | None = None) -> Group:  # fmt: skip
    """The whole story; with `role` or `step`, the verdict and those LLM calls only."""
    record = EnvironmentRecord.model_validate(story["environment"])
    roles: Counter[str] = Counter()
    for call in story["llm_calls"]:
        roles[call["name"]] += call["data"].get("input_tokens", 0) + call["data"].get("output_tokens", 0)
    kernel = story["kernel"]
    summary = Text(
        f"LLM calls {len(story['llm_calls'])} ("
        + ", ".join(f"{name} {tokens:,} tok" for name, tokens in roles.items())
        + f") · kernel executions {kernel['executions']} ({kernel['seconds']:.2f} s"
        + (f", side effects refused: {len(kernel['side_effects'])}" if kernel["side_effects"] else "")
        + ")",
        style="dim",
    )
    parts: list[RenderableType] = [environment_panel(record), summary]
    if role or step:
        return Group(*parts, *messages_view(story, numbered_calls(story, role, step), full))
    if story["steps"]:
        parts.append(timeline_table(story))
        results = probe_results(story)
        if results:
            parts.append(probe_table(results))
    else:
        parts.append(
            Text("no trace recorded for this environment (made before tracing existed?)", style="dim")
        )
    parts += attempts_view(story)
    if messages:
        parts += messages_view(story, numbered_calls(story), full)
    return Group(*parts)
