"""The scout: brainstorms new topics around the frontier.

Models answer a list request in many shapes (a JSON array, a numbered or bulleted list, prose
with headers, quoted strings), so the parser takes any of them and keeps only short,
distinct, topic-like lines. Deduplication against every known topic by embedding is the
expansion graph's job (agents touch no storage).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from langchain_core.messages import HumanMessage, SystemMessage

from resyn.agents.llm import ChatEndpoint, Reply, ask
from resyn.agents.prompts import prompt

_MAX_WORDS = 12
_MAX_CHARS = 100
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|\(\d+\)|[a-z][.)])\s+", re.IGNORECASE)
_JSON_ARRAY = re.compile(r"\[[^\[\]]*\]", re.DOTALL)


@dataclass
class Scouted:
    topics: list[str]
    reply: Reply


def normalise(topic: str) -> str:
    """The comparison key of a topic: case, spacing and punctuation at the ends ignored."""
    return " ".join(topic.split()).strip(" .;:,'\"`").casefold()


def _clean(line: str) -> str | None:
    text = _LIST_MARKER.sub("", line).strip()
    text = re.sub(r"[*_`]+", "", text)  # markdown emphasis
    text = text.strip(" \t\"'“”‘’,.;")
    if " - " in text or " — " in text or ": " in text:  # "topic: why it is good" keeps the topic
        text = re.split(r" - | — |: ", text, maxsplit=1)[0].strip(" \"'“”")
    if not text or text.endswith(":") or len(text) > _MAX_CHARS or len(text.split()) > _MAX_WORDS:
        return None
    if not re.search(r"[a-zA-Z]", text) or text.startswith(("{", "[", "```")):
        return None
    return " ".join(text.split())


def _candidates(reply: str) -> list[str]:
    """A JSON array of strings if the reply has one; else its list items; else its lines that are
    not sentences (prose such as "No new ideas, sorry." is not a topic)."""
    for match in _JSON_ARRAY.finditer(reply):
        try:
            items = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(items, list) and items and all(isinstance(item, str) for item in items):
            return items
    lines = reply.splitlines()
    items = [line for line in lines if _LIST_MARKER.match(line)]
    return items or [line for line in lines if not line.rstrip().endswith((".", "!", "?", ":"))]


def parse_topics(reply: str, known: set[str] = frozenset(), limit: int | None = None) -> list[str]:
    """Distinct topics in a reply, skipping ones whose normalised form is in `known`."""
    seen = {normalise(topic) for topic in known}
    topics = []
    for candidate in _candidates(reply):
        topic = _clean(candidate)
        if topic is None or normalise(topic) in seen:
            continue
        seen.add(normalise(topic))
        topics.append(topic)
    return topics[:limit] if limit is not None else topics


def brainstorm_messages(around: list[str], count: int) -> list:
    listed = "\n".join(f"- {topic}" for topic in around) or "- (none yet)"
    return [
        SystemMessage(prompt("scout_system")),
        HumanMessage(prompt("scout_brainstorm").format(around=listed, count=count)),
    ]


async def brainstorm(endpoint: ChatEndpoint, around: list[str], count: int, known: set[str]) -> Scouted:
    """Up to `count` new topics near `around`, none equal (by name) to a `known` one.

    A topic that appears word for word in the prompt is an echo (of a listed topic or of the
    prompt's own examples, which small models repeat), not a new one."""
    messages = brainstorm_messages(around, count)
    reply = await ask(endpoint, messages)
    asked = " ".join(" ".join(str(message.content).split()) for message in messages).casefold()
    topics = [topic for topic in parse_topics(reply.text, known) if normalise(topic) not in asked]
    return Scouted(topics[:count], reply)
