"""A scripted world for tests, benchmarks and demos: fake author, solver and scout scripts.

Nothing here is a model. The author returns a canned, valid environment per topic: one of a few
list puzzles (chosen by a hash of the topic) whose name and questions mention the topic, so that
different topics give environments that differ to an embedding model. The solver computes the
answer for short lists and guesses wrong on long ones, so the probe sees a solvable but not
trivial environment. The scout answers with topics from a fixed vocabulary, in a JSON array.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable

from langchain_core.messages import BaseMessage

from resyn.agents.llm import ChatEndpoint
from resyn.agents.resilience import EndpointHealth
from resyn.testing.scripted import ScriptedChatModel

# The puzzles the canned environments ask: written once, as the source every environment carries,
# and run here too, so the fake solver answers with the very same functions.
_OPERATIONS_SOURCE = """OPERATIONS = {
    "sum": sum,
    "sum of the largest and the smallest value": lambda numbers: max(numbers) + min(numbers),
    "sum of the two largest values": lambda numbers: sum(sorted(numbers)[-2:]),
    "count of odd numbers": lambda numbers: sum(1 for number in numbers if number % 2),
    "range (largest minus smallest)": lambda numbers: max(numbers) - min(numbers),
    "sum of the even numbers": lambda numbers: sum(number for number in numbers if number % 2 == 0),
}
"""
_namespace: dict[str, dict[str, Callable[[list[int]], int]]] = {}
exec(_OPERATIONS_SOURCE, _namespace)  # our own constant source, not model output
OPERATIONS = _namespace["OPERATIONS"]
SOLVED_UP_TO = 12  # the fake solver is right on lists this long or shorter (difficulties 1-3)

_THINGS = [
    "river crossings", "bipartite matchings", "interval schedules", "sudoku variants", "tiling puzzles",
    "cellular automata", "regular expressions", "stack machines", "knapsack packings", "seating charts",
    "tournament brackets", "clock arithmetic", "bit manipulation", "maze routing", "topological orders",
    "syllogisms", "ciphers", "graph colourings", "queue simulations", "binary trees", "calendars",
    "number bases", "voting rules", "circuit diagrams", "chess endgames", "word ladders", "magic squares",
    "inventory ledgers", "train timetables", "elevator logic",
]  # fmt: skip
_ANGLES = [
    "counting", "optimisation", "verification", "construction", "probability", "invariants",
    "reachability", "ordering", "constraint satisfaction", "recurrences",
]  # fmt: skip

# Every author prompt names its topic: a draft, a repair, and the retry after a reply with no code.
_TOPIC_IN_PROMPT = re.compile(r'(?:Now write the environment for|for the topic) "(.*?)"')


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "topic"


def environment_for(topic: str) -> str:
    """A valid environment source whose puzzle and wording depend on the topic."""
    digest = int(hashlib.sha256(topic.encode()).hexdigest(), 16)
    operation = list(OPERATIONS)[digest % len(OPERATIONS)]
    description = f"Find the {operation} of a list of integers drawn from a {topic} scenario."
    return f'''import random

NAME = "{_slug(topic)}-lists"
TOPIC = {topic!r}
DESCRIPTION = {description!r}

{_OPERATIONS_SOURCE}

def generate(seed: int, difficulty: int) -> dict:
    rng = random.Random(seed * 1000 + difficulty)
    numbers = [rng.randint(-999, 999) for _ in range(4 * difficulty)]
    question = (
        f"In this {{TOPIC}} exercise the recorded values are {{', '.join(map(str, numbers))}}. "
        "What is the {operation} of these values? Answer with one integer."
    )
    answer = OPERATIONS[{operation!r}](numbers)
    return {{"question": question, "witness": str(answer), "meta": {{"numbers": numbers}}}}


def verify(instance: dict, answer: str) -> float:
    try:
        return float(int(answer.strip()) == OPERATIONS[{operation!r}](instance["meta"]["numbers"]))
    except ValueError:
        return 0.0
'''


def _last(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


def author(messages: list[BaseMessage]) -> str:
    """Drafts (and 'repairs') the canned environment of the topic named in the prompt."""
    text = _last(messages)
    match = _TOPIC_IN_PROMPT.search(text)
    topic = match.group(1) if match else "unnamed topic"
    return f"Here is the environment.\n\n```python\n{environment_for(topic)}```"


def solver(messages: list[BaseMessage]) -> str:
    """Right on short lists, wrong on long ones: a probe sees pass rates 1, 1, 1, 0, 0."""
    text = _last(messages)
    values = re.search(r"values are (.*?)\. What is the (.*?) of these values", text, re.DOTALL)
    if values is None:
        return "<answer>0</answer>"
    numbers = [int(number) for number in values.group(1).split(", ")]
    if len(numbers) > SOLVED_UP_TO:
        return "<answer>0.5</answer>"
    return f"<answer>{OPERATIONS[values.group(2)](numbers)}</answer>"


def topic_vocabulary() -> list[str]:
    """Every topic the scout may propose ("counting with river crossings", …), in a fixed order."""
    return [f"{angle} with {thing}" for thing in _THINGS for angle in _ANGLES]


def scout(messages: list[BaseMessage]) -> str:
    """Topics from a fixed vocabulary, picked by a hash of the prompt, as a JSON array."""
    wanted = int(re.search(r"Propose (\d+) NEW topics", _last(messages)).group(1))
    digest = int(hashlib.sha256(_last(messages).encode()).hexdigest(), 16)
    vocabulary = topic_vocabulary()
    topics = [vocabulary[(digest + offset * 7919) % len(vocabulary)] for offset in range(wanted)]
    return "Here are some ideas:\n" + "[" + ", ".join(f'"{topic}"' for topic in topics) + "]"


def reply_for(role: str) -> Callable[[list[BaseMessage]], str]:
    return {"author": author, "solver": solver, "scout": scout}[role]


def scripted_endpoints(
    latency_s: float = 0.0, slots: int = 8, keep_calls: bool = True
) -> dict[str, ChatEndpoint]:
    """The three roles on scripted fakes sharing one limiter and health, as if on one endpoint."""
    limiter, health = asyncio.Semaphore(slots), EndpointHealth("the scripted endpoint")
    return {
        role: ChatEndpoint(
            role,
            f"scripted-{role}",
            ScriptedChatModel(script=reply_for(role), latency_s=latency_s, keep_calls=keep_calls),
            limiter,
            health=health,
        )
        for role in ("author", "solver", "scout")
    }
