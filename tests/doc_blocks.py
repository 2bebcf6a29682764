"""The fenced code blocks of the project's markdown files, and the commands in the shell ones.

A block is marked as one that cannot run here by an HTML comment on the line before its fence:
`<!-- not-run: needs a GPU -->`; the reason is kept with the block.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = {"python"}
SHELL = {"bash", "sh", "shell", "console"}
DATA = {"", "json", "text", "toml"}  # diagrams, file trees and sample rows: shown, not run

_FENCE = re.compile(r"^```(?P<language>[\w-]*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")
_OPERATORS = {"&&", "||", ";", "|", "&"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")


@dataclass(frozen=True)
class Block:
    document: str  # relative to the project root
    line: int  # of the opening fence
    language: str
    code: str
    not_run: str | None  # the reason, where the markdown marks the block as one that cannot run here

    @property
    def id(self) -> str:
        return f"{self.document}:L{self.line}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_in(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next((n for n in range(index + 1, len(lines)) if lines[n].rstrip() == "```"), None)
        if end is None:
            raise ValueError(f"{path.name}:L{index + 1}: a code fence that is never closed")
        marker = _NOT_RUN.match(lines[index - 1]) if index else None
        blocks.append(
            Block(
                document=str(path.relative_to(ROOT)),
                line=index + 1,
                language=opening["language"],
                code="\n".join(lines[index + 1 : end]) + "\n",
                not_run=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks_in(path)]


def prose_of(path: Path) -> str:
    """The document without its fenced blocks."""
    kept, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line) or (fenced and line.rstrip() == "```"):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def shell_script(block: Block) -> str:
    """The block's shell code: a console block's `$ ` lines (the rest is their output)."""
    if block.language != "console":
        return block.code
    return "".join(
        line.removeprefix("$ ") + "\n" for line in block.code.splitlines() if line.startswith("$ ")
    )


def commands_in(block: Block) -> list[list[str]]:
    """Each simple command of a shell block as its words, without leading `VAR=value` assignments."""
    commands = []
    for line in shell_script(block).replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in _OPERATORS:
                words.append(token)
                continue
            while words and _ASSIGNMENT.match(words[0]):
                words.pop(0)
            if words:
                commands.append(words)
            words = []
    return commands
