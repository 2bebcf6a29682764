"""Choosing the example environments the author is shown for a topic.

The examples are the bundled, validated environments (`agents/exemplar_environments/`), package data
read through importlib.resources so an installed wheel finds them as a checkout does. The choice is by
word overlap between the topic and each example's NAME, TOPIC and DESCRIPTION, ties broken by name,
so it is deterministic; the diversity memory (embeddings) can replace the scoring later.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

EXEMPLAR_DIR = files("resyn.agents") / "exemplar_environments"
_WORD = re.compile(r"[a-z]+")


class ExemplarsMissing(RuntimeError):
    """The installation lacks its exemplar environments: an author shown none drafts blind, so stop."""


@dataclass(frozen=True)
class Exemplar:
    name: str
    topic: str
    description: str
    source: str


def source_constants(source: str) -> dict[str, str]:
    """The module-level string constants (NAME, TOPIC, DESCRIPTION) of a source, without running it."""
    values: dict[str, str] = {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return values
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    values[target.id] = node.value.value
    return values


def load_exemplars(directory: Traversable = EXEMPLAR_DIR) -> list[Exemplar]:
    """Every exemplar, in file-name order; `ExemplarsMissing` rather than an empty list."""
    paths = directory.iterdir() if directory.is_dir() else []
    exemplars = []
    for path in sorted((path for path in paths if path.name.endswith(".py")), key=lambda path: path.name):
        source = path.read_text(encoding="utf-8")
        constants = source_constants(source)
        exemplars.append(
            Exemplar(
                name=constants.get("NAME", path.name.removesuffix(".py")),
                topic=constants.get("TOPIC", ""),
                description=constants.get("DESCRIPTION", ""),
                source=source,
            )
        )
    if not exemplars:
        raise ExemplarsMissing(
            f"this resyn installation is missing its exemplar environments (no .py files in {directory}); "
            "reinstall resyn: pip install --force-reinstall --no-deps resyn (in a checkout: pip install -e .)"
        )
    return exemplars


def _words(text: str) -> set[str]:
    return {word[:6] for word in _WORD.findall(text.lower()) if len(word) > 2}


def choose_exemplars(topic: str, exemplars: list[Exemplar], count: int) -> list[Exemplar]:
    """The `count` exemplars closest to the topic by shared words (word stems of six letters)."""
    wanted = _words(topic)

    def closeness(exemplar: Exemplar) -> tuple[int, str]:
        shared = wanted & _words(f"{exemplar.name} {exemplar.topic} {exemplar.description}")
        return (-len(shared), exemplar.name)

    return sorted(exemplars, key=closeness)[:count]
