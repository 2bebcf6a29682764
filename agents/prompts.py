"""The prompt texts, kept as files beside the agents and versioned with the code."""

from __future__ import annotations

from functools import cache
from importlib import resources

from resyn.contract_rules import contract_rules


@cache
def prompt(name: str) -> str:
    return resources.files("resyn.agents").joinpath("prompts", f"{name}.txt").read_text()


def author_system_prompt() -> str:
    """The author's system prompt with the contract's rules rendered from the checks' thresholds."""
    return prompt("author_system").replace("{contract_rules}", contract_rules())
