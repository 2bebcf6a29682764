"""The agent tools as callers see them: names, descriptions, argument and result models.

`TOOL_SPECS` is the one catalogue both surfaces publish (the LangChain tools and `resyn mcp`); the
argument models' JSON schemas are what a calling model is shown, and `Toolbox.call`
(tools/agent_tools.py) validates every call against them. The implementations live in `Toolbox`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from resyn.contract import CHECK_NAMES, DIFFICULTIES, Instance, SampledInstance, ValidationReport
from resyn.tools.python_sessions import PythonResult

MAX_SOURCE_CHARS = 200_000
MAX_INSTANCES = 20
MAX_SIMILAR = 20

ENVIRONMENT_FORMAT = (
    "A resyn environment is one Python file (standard library only) that defines NAME (kebab-case), "
    "TOPIC, DESCRIPTION, generate(seed: int, difficulty: int) -> dict with keys question (str), "
    "witness (str, one correct answer) and meta (dict), and verify(instance: dict, answer: str) -> float "
    "in [0, 1]; the same (seed, difficulty) must always give the same instance."
)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is an error, not silently ignored


def _typed_text(value: Any) -> Any:
    """A client that reads `key=value` arguments as JSON (the MCP Inspector's CLI) sends `answer=42` as
    the number 42 and `answer=[1, 2]` as a list: the text the caller typed is that value's JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _decoded_object(value: Any) -> Any:
    """Some clients send an object argument as its JSON text: take the object it encodes."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"expected a JSON object, got a string that is not JSON ({error.msg})") from None


_Text = Annotated[str, BeforeValidator(_typed_text)]
_PythonSource = Annotated[_Text, Field(min_length=1, max_length=MAX_SOURCE_CHARS)]
_ENVIRONMENT_SOURCE = "the environment's complete Python source"


class EnvironmentChoice(_Arguments):  # the environment as its source or as a library id, not both
    source: _PythonSource | None = Field(None, description=_ENVIRONMENT_SOURCE)
    environment_id: _Text | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="id (or unique id prefix) of an environment in the library",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvironmentChoice:
        if (self.source is None) == (self.environment_id is None):
            raise ValueError("give exactly one of source or environment_id")
        return self


class RunPythonArgs(_Arguments):
    code: _PythonSource = Field(
        description="Python code, run like a notebook cell: a final expression's value comes back as result",
    )
    session_id: _Text | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="name a session to keep variables and imports between calls; omit for a clean namespace",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="wall-clock limit in seconds (default 30; the server caps it, 120 by default)"
    )


class ValidateEnvironmentArgs(_Arguments):
    source: _PythonSource = Field(description=_ENVIRONMENT_SOURCE)


class SampleInstancesArgs(EnvironmentChoice):
    difficulty: int = Field(
        1, ge=DIFFICULTIES[0], le=DIFFICULTIES[-1], description="1 (easiest) to 5 (hardest)"
    )
    count: int = Field(3, ge=1, le=MAX_INSTANCES, description="how many instances")
    seed: int = Field(
        0, ge=0, le=2**31, description="seed of the first instance; the others take the next seeds"
    )


class VerifyAnswerArgs(EnvironmentChoice):
    instance: Annotated[Instance, BeforeValidator(_decoded_object)] = Field(
        description="the instance exactly as sample_instances returned it"
    )
    answer: _Text = Field(
        max_length=MAX_SOURCE_CHARS, description="the final answer only, in the format the question asks for"
    )


class FindSimilarArgs(_Arguments):
    text: _Text = Field(min_length=1, max_length=10_000, description="a topic, a description or a question")
    count: int = Field(5, ge=1, le=MAX_SIMILAR, description="how many of each kind to return")


class Samples(BaseModel):
    instances: list[SampledInstance]


class Score(BaseModel):
    score: float = Field(description="the environment's verify score in [0, 1]")
    correct: bool = Field(description="score == 1.0")


class SimilarEnvironment(BaseModel):
    id: str
    name: str | None
    topic: str
    description: str | None
    similarity: float = Field(description="cosine similarity, 1.0 = same meaning")


class SimilarTopic(BaseModel):
    topic: str
    similarity: float


class SimilarFound(BaseModel):
    environments: list[SimilarEnvironment] = Field(description="accepted library environments, nearest first")
    topics: list[SimilarTopic] = Field(description="topics of the workspace's topic graph, nearest first")


def self_contained(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each `{"$ref": "#/$defs/X"}` replaced by definition X, and no `$defs`.

    Clients that turn what a user types into arguments by each property's `type` (the MCP Inspector,
    form-based UIs) see a bare `$ref` as untyped and send an object as its JSON text; an inlined
    definition says `"type": "object"`. Pydantic has no option for it."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any, expanding: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, expanding) for item in node]
        if not isinstance(node, dict):
            return node
        resolved = {key: resolve(value, expanding) for key, value in node.items()}
        reference = resolved.pop("$ref", None)
        if reference is None:
            return resolved
        name = reference.removeprefix("#/$defs/")
        if name in expanding:
            raise ValueError(f"{name} refers to itself: a recursive schema cannot be inlined")
        return {**resolve(definitions[name], (*expanding, name)), **resolved}  # the field's description wins

    return resolve({key: value for key, value in schema.items() if key != "$defs"}, ())


@dataclass(frozen=True)
class ToolSpec:
    """A tool as both surfaces show it: its name, the description a model reads, its argument and
    result models. The implementation is the `Toolbox` method of the same name."""

    name: str
    description: str
    args: type[_Arguments]
    result: type[BaseModel]

    def input_schema(self) -> dict[str, Any]:
        return self_contained(self.args.model_json_schema())

    def output_schema(self) -> dict[str, Any]:
        return self_contained(self.result.model_json_schema())


TOOL_SPECS = (
    ToolSpec(
        "run_python",
        "Run Python 3 code in a sandboxed Jupyter kernel and get back stdout, stderr, result (the repr "
        "of the last expression) and error. The sandbox has the standard library but no network, no "
        "subprocesses, no file writes, and limited memory and time; a crash or hang only ends that kernel. "
        "Without session_id every call starts from a clean namespace; pass the same session_id to keep "
        "variables between calls (idle sessions are closed, and the least recently used one is closed "
        "when too many are open: `note` then says its state is gone).",
        RunPythonArgs,
        PythonResult,
    ),
    ToolSpec(
        "validate_environment",
        "Check an environment's source against every check of the resyn environment contract "
        f"({', '.join(CHECK_NAMES)}), running it in the sandbox. Returns valid, each check with "
        "passed and a one-line detail naming the failing seed and difficulty, and the first failure's "
        f"traceback. {ENVIRONMENT_FORMAT}",
        ValidateEnvironmentArgs,
        ValidationReport,
    ),
    ToolSpec(
        "sample_instances",
        "Generate problem instances of an environment, given either its source or the id of an "
        "environment in the resyn library. Each instance has question (what a solver sees), witness "
        "(one correct answer), meta, seed and difficulty.",
        SampleInstancesArgs,
        Samples,
    ),
    ToolSpec(
        "verify_answer",
        "Score an answer to one instance with the environment's own verify function (1.0 = correct, "
        "0.0 = wrong). Give the environment as source or library id, the instance exactly as "
        "sample_instances returned it, and the final answer only (no <answer> tags, no reasoning).",
        VerifyAnswerArgs,
        Score,
    ),
    ToolSpec(
        "find_similar",
        "Find the accepted environments in the resyn library and the known topics closest in meaning to "
        "a text (a topic, a description or a question), each with its cosine similarity (1.0 = same "
        "meaning). Use it before writing a new environment, to avoid duplicates.",
        FindSimilarArgs,
        SimilarFound,
    ),
)
