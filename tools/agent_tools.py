"""resyn's tools for other agents: one implementation behind the LangChain tools and `resyn mcp`.

`Toolbox` holds what the tools share — one kernel pool, the bounded `run_python` sessions, the
workspace's library and topic graph, the embedder — and `Toolbox.call(name, arguments)` is the one
entry both surfaces use: it validates the arguments with the tool's pydantic model, applies the
per-call time limit and returns plain JSON data. Anything a caller can get wrong comes back as a
`ToolError` whose message is one line a model can act on, never a traceback.

    async with Toolbox(Settings()) as toolbox:
        agent = create_react_agent(model, langchain_tools(toolbox))
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from resyn.contract import DIFFICULTIES, Instance, SampledInstance, ValidationReport
from resyn.memory.library import Library, UnknownEnvironment
from resyn.memory.workspace import WorkspaceDamaged
from resyn.settings import Settings
from resyn.tools.kernel import KernelStartError
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.python_sessions import PythonResult, PythonSessions, SessionsBusy
from resyn.tools.sampler import SampleError, sample_in_kernel
from resyn.tools.scoring import score_in_kernel
from resyn.tools.validator import Validator

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.tools import StructuredTool

    from resyn.memory.embeddings import Embedder
    from resyn.memory.topics import TopicGraph

MAX_SOURCE_CHARS = 200_000
MAX_INSTANCES = 20
MAX_SIMILAR = 20
_SLACK_S = 10.0  # beyond run_python's own limit: waiting for a free kernel, an interrupt, a restart

ENVIRONMENT_FORMAT = (
    "A resyn environment is one Python file (standard library only) that defines NAME (kebab-case), "
    "TOPIC, DESCRIPTION, generate(seed: int, difficulty: int) -> dict with keys question (str), "
    "witness (str, one correct answer) and meta (dict), and verify(instance: dict, answer: str) -> float "
    "in [0, 1]; the same (seed, difficulty) must always give the same instance."
)


class ToolError(Exception):
    """A tool call that could not be done; the message is one line that says why and what to do."""


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is an error, not silently ignored


class _EnvironmentChoice(_Arguments):
    source: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SOURCE_CHARS,
        description="the environment's complete Python source",
    )
    environment_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="id (or unique id prefix) of an environment in the library",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> _EnvironmentChoice:
        if (self.source is None) == (self.environment_id is None):
            raise ValueError("give exactly one of source or environment_id")
        return self


class RunPythonArgs(_Arguments):
    code: str = Field(
        min_length=1,
        max_length=MAX_SOURCE_CHARS,
        description="Python code, run like a notebook cell: a final expression's value comes back as result",
    )
    session_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="name a session to keep variables and imports between calls; omit for a clean namespace",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="wall-clock limit in seconds (default 30; the server caps it, 120 by default)"
    )


class ValidateEnvironmentArgs(_Arguments):
    source: str = Field(
        min_length=1, max_length=MAX_SOURCE_CHARS, description="the environment's complete Python source"
    )


class SampleInstancesArgs(_EnvironmentChoice):
    difficulty: int = Field(
        1, ge=DIFFICULTIES[0], le=DIFFICULTIES[-1], description="1 (easiest) to 5 (hardest)"
    )
    count: int = Field(3, ge=1, le=MAX_INSTANCES, description="how many instances")
    seed: int = Field(
        0, ge=0, le=2**31, description="seed of the first instance; the others take the next seeds"
    )


class VerifyAnswerArgs(_EnvironmentChoice):
    instance: Instance = Field(description="the instance exactly as sample_instances returned it")
    answer: str = Field(
        max_length=MAX_SOURCE_CHARS, description="the final answer only, in the format the question asks for"
    )


class FindSimilarArgs(_Arguments):
    text: str = Field(min_length=1, max_length=10_000, description="a topic, a description or a question")
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


@dataclass(frozen=True)
class ToolSpec:
    """A tool as both surfaces show it: its name, the description a model reads, its argument and
    result models. The implementation is the `Toolbox` method of the same name."""

    name: str
    description: str
    args: type[_Arguments]
    result: type[BaseModel]


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
        "Check an environment's source against every check of the resyn environment contract (loads, "
        "generates, deterministic, diverse, witness_accepted, rejects_wrong, robust, no_leak, "
        "no_side_effects, within_limits), running it in the sandbox. Returns valid, each check with "
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
_SPECS = {spec.name: spec for spec in TOOL_SPECS}


def describe_invalid(tool: str, error: ValidationError) -> str:
    """One line from a pydantic error: each bad argument and what is wrong with it."""
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"invalid arguments for {tool}: {'; '.join(problems)}"


class Toolbox:
    """The tools' shared state. Kernels start on the first call that needs one; `close()` ends them.

    `pool` shares an already warm pool (it is then not closed here); `embedder` replaces the default
    all-MiniLM-L6-v2 embedder, which is loaded on the first `find_similar` that has anything to compare.
    """

    def __init__(
        self, settings: Settings, pool: KernelPool | None = None, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self._pool = pool
        self._owns_pool = pool is None
        self._sessions: PythonSessions | None = None
        self._starting = asyncio.Lock()
        self._embedding = asyncio.Lock()
        self._embedder = embedder
        self._library: Library | None = None

    async def __aenter__(self) -> Toolbox:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.close()
        if self._pool is not None and self._owns_pool:
            await self._pool.close()
            self._pool = None
        if self._library is not None:
            self._library.close()
            self._library = None

    def open_sessions(self) -> list[str]:
        """The ids of the run_python sessions that are open now."""
        return self._sessions.open_sessions() if self._sessions is not None else []

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate, run under the tool's time limit, and return the result as JSON data."""
        spec = _SPECS.get(name)
        if spec is None:
            raise ToolError(f"no tool named {name!r}; the tools are {', '.join(_SPECS)}")
        try:
            args = spec.args.model_validate(arguments)
        except ValidationError as error:
            raise ToolError(describe_invalid(name, error)) from None
        if isinstance(args, RunPythonArgs):
            kernel = self.settings.kernel
            limit = self._run_timeout(args) + kernel.interrupt_grace_s + kernel.startup_timeout_s + _SLACK_S
        else:
            limit = self.settings.tools.call_timeout_s
        try:
            result = await asyncio.wait_for(getattr(self, name)(args), limit)
        except TimeoutError:
            raise ToolError(f"{name} ran longer than {limit:g} s and was stopped") from None
        except KernelStartError as error:
            raise ToolError(f"no sandbox kernel could be started: {error}") from None
        except WorkspaceDamaged as error:
            raise ToolError(str(error)) from None
        return result.model_dump(mode="json")

    async def run_python(self, args: RunPythonArgs) -> PythonResult:
        sessions = await self._python_sessions()
        try:
            return await sessions.run(args.code, args.session_id, self._run_timeout(args))
        except SessionsBusy as error:
            raise ToolError(str(error)) from None

    async def validate_environment(self, args: ValidateEnvironmentArgs) -> ValidationReport:
        return await Validator(await self._kernel_pool(), self.settings).validate(args.source)

    async def sample_instances(self, args: SampleInstancesArgs) -> Samples:
        source = self._source(args)
        seeds = range(args.seed, args.seed + args.count)
        async with (await self._kernel_pool()).lease() as kernel:
            try:
                instances = await sample_in_kernel(kernel, source, args.difficulty, seeds, self.settings)
            except SampleError as error:
                raise ToolError(f"sampling failed: {error}") from None
        return Samples(instances=instances)

    async def verify_answer(self, args: VerifyAnswerArgs) -> Score:
        source = self._source(args)
        async with (await self._kernel_pool()).lease() as kernel:
            try:
                [score] = await score_in_kernel(kernel, source, [(args.instance, args.answer)], self.settings)
            except SampleError as error:
                raise ToolError(f"verifying failed: {error}") from None
        return Score(score=score, correct=score == 1.0)

    async def find_similar(self, args: FindSimilarArgs) -> SimilarFound:
        from resyn.memory.novelty import NoveltyMemory

        library = self._open_library()
        topics = self._topic_graph()
        has_environments = library is not None and bool(library.accepted_embeddings())
        if not has_environments and not len(topics):
            return SimilarFound(environments=[], topics=[])  # nothing to compare: no model to load
        vector = await self._embed(args.text)
        environments = []
        if has_environments:
            for neighbour in NoveltyMemory(library, self._embedder).nearest(vector, args.count):
                record = library.get(neighbour.environment_id)
                environments.append(
                    SimilarEnvironment(
                        id=record.id,
                        name=record.name,
                        topic=record.topic,
                        description=record.description,
                        similarity=neighbour.similarity,
                    )
                )
        nearest_topics = [
            SimilarTopic(topic=name, similarity=round(similarity, 4))
            for name, similarity in topics.nearest(vector, args.count)
        ]
        return SimilarFound(environments=environments, topics=nearest_topics)

    def _run_timeout(self, args: RunPythonArgs) -> float:
        tools = self.settings.tools
        return min(args.timeout_s or tools.run_timeout_s, tools.max_run_timeout_s)

    async def _kernel_pool(self) -> KernelPool:
        async with self._starting:
            if self._pool is None:
                pool = KernelPool(self.settings.kernel)
                await pool.start()
                self._pool = pool
            if self._sessions is None:
                self._sessions = PythonSessions(self._pool, self.settings.kernel, self.settings.tools)
        return self._pool

    async def _python_sessions(self) -> PythonSessions:
        await self._kernel_pool()
        return self._sessions

    def _open_library(self) -> Library | None:
        """The workspace's library; None when the workspace has none yet (nothing is created)."""
        if self._library is None:
            if not (self.settings.data_dir / "library.sqlite").exists():
                return None
            self._library = Library(self.settings.data_dir, read_only=True)
        return self._library

    def _source(self, args: _EnvironmentChoice) -> str:
        if args.source is not None:
            return args.source
        library = self._open_library()
        if library is None:
            raise ToolError(
                f"there is no library in {self.settings.data_dir} (set RESYN_DATA_DIR to the workspace), "
                "so no environment_id can be looked up; pass source instead"
            )
        try:
            record = library.get(args.environment_id)
        except UnknownEnvironment:
            raise ToolError(
                f"no environment with id (or unique id prefix) {args.environment_id!r} in the library; "
                "find_similar lists the accepted ones with their ids"
            ) from None
        if not record.source:
            raise ToolError(f"environment {record.id} has no source (its status is {record.status})")
        return record.source

    def _topic_graph(self) -> TopicGraph:
        from resyn.memory.topics import TopicGraph

        return TopicGraph.load(self.settings.data_dir / "topics.json")

    async def _embed(self, text: str) -> np.ndarray:
        async with self._embedding:  # one model load, however many calls arrive at once
            if self._embedder is None:
                from resyn.memory.embeddings import Embedder

                self._embedder = await asyncio.to_thread(Embedder)
            [vector] = await asyncio.to_thread(self._embedder.embed, [text])
        return vector


def langchain_tools(toolbox: Toolbox) -> list[StructuredTool]:
    """The tools as LangChain `StructuredTool`s (async only: use `ainvoke` or an async agent).

    A `ToolError` or invalid arguments come back to the model as the tool message's text, with
    status "error", so it can correct itself."""
    return [_langchain_tool(toolbox, spec) for spec in TOOL_SPECS]


def _langchain_tool(toolbox: Toolbox, spec: ToolSpec) -> StructuredTool:
    from langchain_core.tools import StructuredTool, ToolException

    async def run(**arguments: Any) -> dict[str, Any]:
        try:
            return await toolbox.call(spec.name, arguments)
        except ToolError as error:
            raise ToolException(str(error)) from None

    return StructuredTool.from_function(
        coroutine=run,
        name=spec.name,
        description=spec.description,
        args_schema=spec.args,
        handle_tool_error=True,
        handle_validation_error=lambda error: describe_invalid(spec.name, error),
    )
