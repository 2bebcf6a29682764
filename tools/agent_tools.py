"""resyn's tools for other agents: one implementation behind the LangChain tools and `resyn mcp`.

`Toolbox` holds what the tools share — one kernel pool, the bounded `run_python` sessions, the
workspace's library and topic graph, the embedder — and `Toolbox.call(name, arguments)` is the one
entry both surfaces use: it validates the arguments with the tool's pydantic model (the tools'
names, descriptions and models are `TOOL_SPECS`, in tools/agent_tool_specs.py), applies the
per-call time limit and returns plain JSON data. Anything a caller can get wrong comes back as a
`ToolError` whose message is one line a model can act on, never a traceback.

    async with Toolbox(Settings()) as toolbox:
        agent = create_agent(model, langchain_tools(toolbox))  # langchain.agents
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from resyn.contract import ValidationReport
from resyn.memory.damage import WorkspaceDamaged
from resyn.memory.library import AmbiguousEnvironment, Library, UnknownEnvironment
from resyn.memory.workspace import Workspace
from resyn.settings import Settings
from resyn.tools.agent_tool_specs import (
    TOOL_SPECS,
    EnvironmentChoice,
    FindSimilarArgs,
    RunPythonArgs,
    SampleInstancesArgs,
    Samples,
    Score,
    SimilarEnvironment,
    SimilarFound,
    SimilarTopic,
    ToolSpec,
    ValidateEnvironmentArgs,
    VerifyAnswerArgs,
)
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

_SLACK_S = 10.0  # beyond run_python's own limit: waiting for a free kernel, an interrupt, a restart
_SPECS = {spec.name: spec for spec in TOOL_SPECS}


class ToolError(Exception):
    """A tool call that could not be done; the message is one line that says why and what to do."""


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
            if not Workspace.of(self.settings).has_library():
                return None
            self._library = Library.of(self.settings, read_only=True)
        return self._library

    def _source(self, args: EnvironmentChoice) -> str:
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
        except AmbiguousEnvironment as error:
            raise ToolError(f"{error}: give more of the id") from None
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

        return TopicGraph.load(Workspace.of(self.settings).topics)

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
