"""The prompt texts, kept as files beside the agents and versioned with the code."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def prompt(name: str) -> str:
    return resources.files("resyn.agents").joinpath("prompts", f"{name}.txt").read_text()
