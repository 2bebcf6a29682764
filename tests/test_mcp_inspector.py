"""`resyn mcp` driven by the official MCP Inspector's CLI, the way a user tries a server:
`npx @modelcontextprotocol/inspector --cli resyn mcp --method tools/call --tool-name … --tool-arg k=v`.

The Inspector reads each `--tool-arg` value as JSON when it parses (`answer=1272` is the number 1272,
`instance={…}` an object) and converts the rest by the property's schema `type`. Each call starts
its own `resyn mcp`. npx fetches the pinned Inspector from the npm registry once, then runs it from
its cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from example_library import build_example_library
from json_schemas import untyped_objects

from resyn.contract import CHECK_NAMES

pytestmark = pytest.mark.slow

# 2.12.0 asks for Node.js 22.19 but runs on 20, these machines' Node.js; on Debian 12's own nodejs (18)
# it stops at once ("CustomEvent is not defined").
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
NODE_MAJOR = 20
RESYN = Path(__file__).parents[1] / ".venv" / "bin" / "resyn"
VALID = (Path(__file__).parent / "fixtures" / "valid_minimal.py").read_text()
TOOLS = ["run_python", "validate_environment", "sample_instances", "verify_answer", "find_similar"]
TOOL_IS_ERROR = 5  # the Inspector's exit status for a result with isError: the server answered


@dataclass(frozen=True)
class Reply:
    status: int
    result: dict[str, Any]  # what the Inspector printed: the JSON-RPC result

    @property
    def text(self) -> str:
        return self.result["content"][0]["text"]

    def data(self) -> dict[str, Any]:
        assert (self.status, self.result["isError"]) == (0, False), self.result
        assert json.loads(self.text) == self.result["structuredContent"]
        return self.result["structuredContent"]

    def error(self) -> str:
        assert (self.status, self.result["isError"]) == (TOOL_IS_ERROR, True), self.result
        assert "\n" not in self.text
        return self.text


def unavailable(reason: str) -> NoReturn:
    """Skipped with the reason where it cannot run here, except in CI, which installs Debian's nodejs
    and npm when npx is missing (`.ci/run`) and must not skip it."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    """The Inspector's command line, fetched once: ~25 s and ~200 MB of npm cache the first time."""
    npx = shutil.which("npx")
    if npx is None:
        unavailable("no npx on this machine: `apt-get install nodejs npm` (as .ci/run does)")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    if int(re.match(r"v(\d+)", node)[1]) < NODE_MAJOR:
        unavailable(f"{INSPECTOR} needs Node.js {NODE_MAJOR} or newer; this machine has {node.strip()}")
    command = [npx, "--yes", "--prefer-offline", INSPECTOR, "--cli"]
    fetched = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=300)
    if fetched.returncode != 0:
        unavailable(f"npx could not fetch {INSPECTOR}: {fetched.stderr.strip()[-500:]}")
    return command


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_api_key: str) -> list[str]:
    """`resyn mcp` on a workspace holding the example library (ids 00ababababab to 11ababababab)."""
    workspace = tmp_path_factory.mktemp("inspector") / "workspace"
    build_example_library(workspace).close()
    environment = {
        "RESYN_DATA_DIR": workspace,
        "OPENAI_API_KEY": fake_api_key,
        "RESYN_LLM_API_KEY": fake_api_key,
    }
    options = [option for name, value in environment.items() for option in ("-e", f"{name}={value}")]
    return [str(RESYN), "mcp", *options, "--cwd", str(workspace.parent)]


def call(inspector: list[str], server: list[str], tool: str, *arguments: str) -> Reply:
    options = ["--tool-arg", *arguments] if arguments else []
    command = [*inspector, *server, "--method", "tools/call", "--tool-name", tool, *options]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.stdout, f"the Inspector printed no result ({completed.returncode}): {completed.stderr}"
    return Reply(completed.returncode, json.loads(completed.stdout))


def test_the_inspector_lists_every_tool_with_schemas_it_can_fill(
    inspector: list[str], server: list[str]
) -> None:
    # --strict: the Inspector's own tool-schema portability check, which fails on error-severity problems
    command = [*inspector, *server, "--method", "tools/list", "--strict"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    tools = json.loads(completed.stdout)["tools"]
    assert [tool["name"] for tool in tools] == TOOLS
    assert {tool["name"]: untyped_objects(tool["inputSchema"]) for tool in tools} == {
        name: [] for name in TOOLS
    }


def test_run_python(inspector: list[str], server: list[str]) -> None:
    code = "code=import os; (sum(range(10)), 'OPENAI_API_KEY' in os.environ)"
    ran = call(inspector, server, "run_python", code).data()
    misspelt = call(inspector, server, "run_python", "code=1", "sesion_id=a").error()
    assert (ran["status"], ran["result"]) == ("ok", "(45, False)")
    assert misspelt == "invalid arguments for run_python: sesion_id: Extra inputs are not permitted"


def test_validate_environment(inspector: list[str], server: list[str]) -> None:
    report = call(inspector, server, "validate_environment", f"source={VALID}").data()
    missing = call(inspector, server, "validate_environment").error()
    assert report["valid"] and [check["name"] for check in report["checks"]] == list(CHECK_NAMES)
    assert missing == "invalid arguments for validate_environment: source: Field required"


def test_sample_instances_by_library_id(inspector: list[str], server: list[str]) -> None:
    # "03" is not JSON, so it arrives as text; "0" arrives as the number 0
    sampled = call(inspector, server, "sample_instances", "environment_id=03", "count=2", "seed=5").data()
    ambiguous = call(inspector, server, "sample_instances", "environment_id=0").error()
    assert [(i["seed"], i["difficulty"]) for i in sampled["instances"]] == [(5, 1), (6, 1)]
    assert ambiguous == (
        "ambiguous: 10 environments start with '0' (00ababababab, 01ababababab, 02ababababab, …): "
        "give more of the id"
    )


def test_verify_answer(inspector: list[str], server: list[str]) -> None:
    [instance] = call(inspector, server, "sample_instances", f"source={VALID}", "count=1").data()["instances"]
    given = (f"source={VALID}", f"instance={json.dumps(instance)}")
    right = call(inspector, server, "verify_answer", *given, f"answer={instance['witness']}").data()
    wrong = call(inspector, server, "verify_answer", *given, "answer=no idea").data()
    incomplete = call(
        inspector, server, "verify_answer", f"source={VALID}", 'instance={"question": "?"}', "answer=1"
    ).error()
    assert right == {"score": 1.0, "correct": True}  # the witness, an integer, arrives as a JSON number
    assert wrong == {"score": 0.0, "correct": False}
    assert incomplete == "invalid arguments for verify_answer: instance.witness: Field required"


def test_find_similar(inspector: list[str], server: list[str]) -> None:
    found = call(
        inspector, server, "find_similar", "text=the shortest route through a grid", "count=3"
    ).data()
    too_many = call(inspector, server, "find_similar", "text=routes", "count=99").error()
    assert len(found["environments"]) == 3 and found["topics"] == []
    assert all(environment["id"].endswith("ababababab") for environment in found["environments"])
    assert too_many == "invalid arguments for find_similar: count: Input should be less than or equal to 20"
