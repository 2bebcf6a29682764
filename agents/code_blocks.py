"""Finding the environment's source in a model's reply: prose around it, several fenced blocks,
other languages, or no fence at all."""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_REQUIRED = ("generate", "verify")


class NoCodeFound(ValueError):
    """The reply holds no usable Python environment; the message says what it held instead."""


def _defines_environment(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return all(name in functions for name in _REQUIRED)


def extract_python(reply: str) -> str:
    """The environment source in `reply`.

    Preference: a fenced block that parses and defines generate and verify (the last such, as
    models put the corrected version last); else the whole reply if it is such code; else the
    longest Python-labelled block (it will fail validation with a useful message).
    """
    blocks = [(language.lower(), body.strip()) for language, body in _FENCE.findall(reply)]
    complete = [body for _language, body in blocks if _defines_environment(body)]
    if complete:
        return complete[-1] + "\n"
    if _defines_environment(reply):
        return reply.strip() + "\n"
    python_blocks = [body for language, body in blocks if language in ("python", "py", "python3", "")]
    if python_blocks:
        return max(python_blocks, key=len) + "\n"
    if blocks:
        languages = ", ".join(sorted({language or "unlabelled" for language, _body in blocks}))
        raise NoCodeFound(f"the reply holds no Python code (code blocks in: {languages})")
    raise NoCodeFound("the reply holds no code block")
