"""The author: drafts an environment for a topic and repairs it from a validation report."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from resyn.agents.code_blocks import NoCodeFound, extract_python
from resyn.agents.exemplars import Exemplar
from resyn.agents.llm import ChatEndpoint, Reply, ask
from resyn.agents.prompts import author_system_prompt, prompt
from resyn.contract import ValidationReport

_TRACEBACK_CHARS = 3000


@dataclass
class Authored:
    """One author reply: the source found in it, or why none was (a malformed reply)."""

    source: str | None
    problem: str | None
    reply: Reply
    messages: list[BaseMessage]


def draft_messages(topic: str, exemplars: list[Exemplar]) -> list[BaseMessage]:
    shown = "\n\n".join(
        f"Example {number}: {item.name} (topic: {item.topic})\n```python\n{item.source.strip()}\n```"
        for number, item in enumerate(exemplars, 1)
    )
    text = prompt("author_draft").format(topic=topic, count=len(exemplars), exemplars=shown)
    return [SystemMessage(author_system_prompt()), HumanMessage(text)]


def repair_messages(
    topic: str, source: str, report: ValidationReport, *, unchanged: bool = False
) -> list[BaseMessage]:
    """A repair request: the source, every failed check with its detail, the first traceback.
    `unchanged`: the author's last reply was this very source again, and is told so first."""
    failures = "\n".join(f"- {check.name}: {check.detail}" for check in report.failures())
    skipped = [check.name for check in report.checks if check.skipped]
    if skipped:
        failures += f"\n- not run because of the failures above: {', '.join(skipped)}"
    traceback = ""
    if report.traceback:
        traceback = f"\nThe first error's traceback:\n```\n{report.traceback[-_TRACEBACK_CHARS:]}\n```\n"
    text = prompt("author_repair").format(
        topic=topic, source=source.strip(), failures=failures or "- (none listed)", traceback=traceback
    )
    if unchanged:
        checks = ", ".join(check.name for check in report.failures()) or "validation"
        text = prompt("author_unchanged").format(checks=checks) + text
    return [SystemMessage(author_system_prompt()), HumanMessage(text)]


def malformed_repair_messages(topic: str, problem: str) -> list[BaseMessage]:
    """A repair request after a reply that held no usable code."""
    text = (
        f'Your last reply for the topic "{topic}" could not be used: {problem}. '
        "Reply with the complete environment file in one ```python code block."
    )
    return [SystemMessage(author_system_prompt()), HumanMessage(text)]


def same_source(one: str, other: str) -> bool:
    """Whether two extracted sources are the same code: equal but for trailing whitespace on
    their lines and blank lines around them."""
    return _normalized(one) == _normalized(other)


def _normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.splitlines()).strip("\n")


async def _author(endpoint: ChatEndpoint, messages: list[BaseMessage]) -> Authored:
    reply = await ask(endpoint, messages)
    try:
        return Authored(extract_python(reply.text), None, reply, messages)
    except NoCodeFound as problem:
        return Authored(None, str(problem), reply, messages)


async def draft(endpoint: ChatEndpoint, topic: str, exemplars: list[Exemplar]) -> Authored:
    return await _author(endpoint, draft_messages(topic, exemplars))


async def repair(
    endpoint: ChatEndpoint, topic: str, source: str, report: ValidationReport, *, unchanged: bool = False
) -> Authored:
    return await _author(endpoint, repair_messages(topic, source, report, unchanged=unchanged))


async def retry_malformed(endpoint: ChatEndpoint, topic: str, problem: str) -> Authored:
    return await _author(endpoint, malformed_repair_messages(topic, problem))
