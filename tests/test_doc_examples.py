"""Every code example in README.md and docs/*.md works as written: one test case per fenced block.

- Python blocks run as scripts, each in its own subprocess and its own copy of a workspace holding the
  example library (`resyn-data/`), an export of it (`out/`) and, for every hub id a block loads, a tiny
  chat model in a local folder of that name; `RESYN_LLM_BASE_URL` points at a loopback endpoint whose
  scripted model calls resyn's tools. A block defining `generate` and `verify` is a contract skeleton:
  it must pass the validator's `loads` check.
- Shell blocks are not run (the README's set-up commands are what CI runs): bash checks their syntax,
  the real CLI parses every `resyn …` command in them, and every `python -m resyn.…` module exists.
- A block marked `<!-- not-run: REASON -->` on the line before its fence is skipped with the reason.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from doc_blocks import DATA, PYTHON, SHELL, Block, all_blocks, commands_in, documents, prose_of, shell_script
from example_library import build_example_library
from tiny_chat_model import build_tiny_chat_model
from tool_calling_endpoint import FakeToolCallingEndpoint
from typer.core import TyperGroup

from resyn.agents.exemplars import load_exemplars
from resyn.cli import app
from resyn.evals.export import ExportOptions, export_library
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator

BLOCKS = all_blocks()
MOST_NOT_RUN = 2  # blocks that cannot run here must stay the rare exception
RUN_TIMEOUT_S = 240
_QUOTED_HUB_ID = r"""["']([\w.-]+/[\w.-]+)["']"""
HUB_ID = re.compile(
    rf"(?:model|model_name_or_path)\s*=\s*{_QUOTED_HUB_ID}|from_pretrained\(\s*{_QUOTED_HUB_ID}"
)
MODULE = re.compile(r"python3? -m (resyn(?:\.\w+)+)")


def cases(languages: set[str]) -> list[Any]:
    return [
        pytest.param(
            block, id=block.id, marks=[pytest.mark.skip(f"not-run: {block.not_run}")] if block.not_run else []
        )
        for block in BLOCKS
        if block.language in languages
    ]


def is_contract_skeleton(block: Block) -> bool:
    functions = {node.name for node in ast.parse(block.code).body if isinstance(node, ast.FunctionDef)}
    return {"generate", "verify"} <= functions


def hub_ids(code: str) -> set[str]:
    return {first or second for first, second in HUB_ID.findall(code)}


class AuthorScript:
    """The agent examples' model: it validates an environment with resyn's tool, then reports what the
    tool said (so the report can only be right if the tool's result came back)."""

    def __init__(self) -> None:
        self.environment = next(e for e in load_exemplars() if e.name == "job-scheduling")
        self.report: dict[str, Any] | None = None
        self.answer: str | None = None

    def __call__(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        if messages[-1]["role"] != "tool":
            return {"tool_calls": [("validate_environment", {"source": self.environment.source})]}
        self.report = json.loads(messages[-1]["content"])
        self.answer = f"validate_environment says {self.report['name']} is valid: {self.report['valid']}"
        return {"content": self.answer}


@pytest.fixture(scope="module")
async def docs_workspace(
    tmp_path_factory: pytest.TempPathFactory, pool: KernelPool, settings: Settings
) -> Path:
    root = tmp_path_factory.mktemp("docs-workspace")
    library = build_example_library(root / "resyn-data")
    options = ExportOptions(out_dir=root / "out", format="parquet", per_env=2, test_fraction=0.25)
    await export_library(library, options, settings, pool)
    for hub_id in set().union(*(hub_ids(block.code) for block in BLOCKS if block.language in PYTHON)):
        build_tiny_chat_model(root / hub_id)
    return root


def example_environment(endpoint_url: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RESYN_", "HF_", "TRANSFORMERS_")) or name == "RESYN_LLM_API_KEY"
    }
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return {
        **environment,
        **offline,
        "RESYN_LLM_BASE_URL": endpoint_url,
        "RESYN_LLM_MODEL": "fake-tool-caller",
    }


@pytest.mark.parametrize("block", cases(PYTHON))
async def test_python_example_runs(
    block: Block, docs_workspace: Path, tmp_path: Path, pool: KernelPool, settings: Settings
) -> None:
    if is_contract_skeleton(block):
        report = await Validator(pool, settings).validate(block.code)
        assert report.check("loads").passed, f"{block.id}: {report.check('loads').detail}"
        return
    workspace = tmp_path / "workspace"
    shutil.copytree(docs_workspace, workspace)
    (workspace / "example.py").write_text(block.code, encoding="utf-8")
    script = AuthorScript()
    with FakeToolCallingEndpoint(script) as endpoint:
        ran = subprocess.run(
            [sys.executable, "example.py"],
            cwd=workspace,
            env=example_environment(endpoint.url),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    assert ran.returncode == 0, f"{block.id} failed:\n{ran.stderr[-4000:]}"
    if endpoint.requests or "RESYN_LLM_BASE_URL" in block.code:
        # an agent example: the model was asked, the tool ran in the sandbox, the agent's answer is shown
        assert script.report is not None and script.report["valid"], script.report
        assert script.answer in ran.stdout
        assert "deprecat" not in ran.stderr.lower(), ran.stderr  # the agent API the docs show is current


def parse_resyn(words: list[str]) -> None:
    """Parse a `resyn` command line with the real CLI, as `resyn` would, without running it."""
    command, name, parent = typer.main.get_command(app), "resyn", None
    try:
        while isinstance(command, TyperGroup):
            if words and words[0].startswith("-"):  # the group's own options: --help, or unknown ones
                command.make_context(name, list(words), parent=parent)
            if not words or words[0].startswith("-"):
                raise typer.TyperException(f"`{name}` needs a command")
            context = command.make_context(name, [], parent=parent, resilient_parsing=True)
            asked, words = words[0], words[1:]
            command, name, parent = command.get_command(context, asked), asked, context
            if command is None:
                raise typer.TyperException(f"`{context.command_path}` has no command {asked!r}")
        command.make_context(name, list(words), parent=parent)
    except typer.Exit:  # --help: printed, and a valid command line
        return


@pytest.mark.parametrize("block", cases(SHELL))
def test_shell_example_parses(block: Block) -> None:
    syntax = subprocess.run(["bash", "-n"], input=shell_script(block), capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.id}: {syntax.stderr}"
    for words in commands_in(block):
        program = Path(words[0]).name
        if program == "resyn":
            try:
                parse_resyn(words[1:])
            except typer.TyperException as error:
                pytest.fail(f"{block.id}: `{' '.join(words)}`: {error.format_message()}")
        elif program.startswith("python") and "-m" in words[:-1]:
            module = words[words.index("-m") + 1]
            if module.startswith("resyn."):
                assert importlib.util.find_spec(module), f"{block.id}: no module {module}"


@pytest.mark.parametrize(
    "words", [["export", "out/", "--bogus"], ["eval", "bbq"], ["eval"], ["exprot"], ["--bogus"], []]
)
def test_the_cli_parser_rejects_what_resyn_would(words: list[str]) -> None:
    with pytest.raises(typer.TyperException):
        parse_resyn(words)


def test_modules_named_in_the_prose_exist() -> None:
    named = [(path.name, module) for path in documents() for module in MODULE.findall(prose_of(path))]
    assert named, "the README names its benchmarks as `python -m resyn.evals.…`"
    missing = [
        f"{document}: {module}" for document, module in named if importlib.util.find_spec(module) is None
    ]
    assert not missing, missing


def test_every_block_is_run_checked_or_marked_as_data() -> None:
    known = PYTHON | SHELL | DATA
    unknown = [f"{block.id} ({block.language})" for block in BLOCKS if block.language not in known]
    assert not unknown, f"blocks in a language this test neither runs nor knows as data: {unknown}"


def test_blocks_that_cannot_run_here_are_few() -> None:
    not_run = [f"{block.id}: {block.not_run}" for block in BLOCKS if block.not_run]
    assert len(not_run) <= MOST_NOT_RUN, "\n".join(not_run)
