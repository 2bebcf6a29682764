"""resyn's tools for other agents: driven by a LangGraph tool-calling agent, and the run_python sessions."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from example_library import build_example_library
from json_schemas import untyped_objects
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from resyn.agents.exemplars import EXEMPLAR_DIR
from resyn.contract import CHECK_NAMES
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.memory.novelty import novelty_text
from resyn.memory.topics import TopicGraph
from resyn.settings import Settings, ToolSettings
from resyn.tools.agent_tool_specs import TOOL_SPECS, VerifyAnswerArgs
from resyn.tools.agent_tools import Toolbox, ToolError, langchain_tools
from resyn.tools.kernel_pool import KernelPool

VALID = (Path(__file__).parent / "fixtures" / "valid_minimal.py").read_text()
LIBRARY_FILES = ("dependency_sorting.py", "graph_coloring.py", "substitution_cipher.py")
TOPICS = ("task scheduling", "classical cryptography", "logic puzzles")
SECRET_NAMES = ("OPENAI_API_KEY", "RESYN_LLM_API_KEY")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def workspace(tmp_path: Path, embedder: Embedder) -> Path:
    """A workspace as an expansion job leaves it: accepted environments with vectors, a topic graph."""
    data_dir = tmp_path / "workspace"
    library = Library(data_dir)
    for number, file in enumerate(LIBRARY_FILES):
        source = (EXEMPLAR_DIR / file).read_text()
        constants = _constants(source)
        environment_id = f"env{number:09d}"
        library.start(environment_id, constants["TOPIC"], "scripted-fake", None)
        vector = embedder.embed([novelty_text(constants["NAME"], constants["DESCRIPTION"], [])])[0]
        library.finish(
            environment_id,
            status="accepted",
            reason="",
            source=source,
            report=None,
            pass_rates=None,
            usage={},
            name=constants["NAME"],
            description=constants["DESCRIPTION"],
            embedding=vector.tobytes(),
        )
    library.close()
    topics = TopicGraph()
    for topic, vector in zip(TOPICS, embedder.embed(list(TOPICS)), strict=True):
        topics.add_topic(topic, vector, origin="seed", parent=None, similar_threshold=0.75)
    topics.save(data_dir / "topics.json")
    return data_dir


def _constants(source: str) -> dict[str, str]:
    wanted = {"NAME", "TOPIC", "DESCRIPTION"}
    assignments = [node for node in ast.parse(source).body if isinstance(node, ast.Assign)]
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in assignments
        if getattr(node.targets[0], "id", None) in wanted
    }


def tool_settings(settings: Settings, data_dir: Path, **tools: Any) -> Settings:
    return settings.model_copy(update={"data_dir": data_dir, "tools": ToolSettings(**tools)})


@pytest.fixture
async def toolbox(settings: Settings, pool: KernelPool, tmp_path: Path) -> AsyncIterator[Toolbox]:
    limits = {"max_sessions": 2, "session_idle_s": 60, "max_run_timeout_s": 2}
    async with Toolbox(tool_settings(settings, tmp_path / "empty", **limits), pool=pool) as box:
        yield box


class ScriptedToolCaller(BaseChatModel):
    """A fake chat model for the prebuilt agent: each turn, the next step turns the conversation so
    far into an AIMessage (tool calls, or a final answer)."""

    steps: list[Any]
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller-fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolCaller:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any):
        step: Callable[[list[BaseMessage]], AIMessage] = self.steps[self.turn]
        self.turn += 1
        return ChatResult(generations=[ChatGeneration(message=step(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ):
        return self._generate(messages)


def calls(*tool_calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[
            {"name": name, "args": args, "id": f"call-{name}-{index}", "type": "tool_call"}
            for index, (name, args) in enumerate(tool_calls)
        ],
    )


def last_result(messages: list[BaseMessage], name: str) -> dict[str, Any]:
    message = next(m for m in reversed(messages) if isinstance(m, ToolMessage) and m.name == name)
    return json.loads(message.content)


async def test_a_langgraph_agent_calls_every_tool(
    settings: Settings, pool: KernelPool, workspace: Path, embedder: Embedder, fake_api_key: str
) -> None:
    def find(_messages: list[BaseMessage]) -> AIMessage:
        return calls(("find_similar", {"text": "order jobs so that each runs after its prerequisites"}))

    def sample(messages: list[BaseMessage]) -> AIMessage:
        nearest = last_result(messages, "find_similar")["environments"][0]["id"]
        return calls(
            ("sample_instances", {"environment_id": nearest, "difficulty": 2, "count": 2, "seed": 11})
        )

    def verify(messages: list[BaseMessage]) -> AIMessage:
        [instance, _] = last_result(messages, "sample_instances")["instances"]
        nearest = last_result(messages, "find_similar")["environments"][0]["id"]
        return calls(
            (
                "verify_answer",
                {"environment_id": nearest, "instance": instance, "answer": instance["witness"]},
            ),
            ("verify_answer", {"environment_id": nearest, "instance": instance, "answer": "no idea"}),
            ("verify_answer", {"environment_id": "no-such-id", "instance": instance, "answer": "1"}),
        )

    def validate_and_run(_messages: list[BaseMessage]) -> AIMessage:
        code = "import os\nprint(sorted(os.environ))\nsum(range(10))"
        return calls(("validate_environment", {"source": VALID}), ("run_python", {"code": code}))

    model = ScriptedToolCaller(steps=[find, sample, verify, validate_and_run, lambda _: AIMessage("done")])
    toolbox_settings = tool_settings(settings, workspace)
    async with Toolbox(toolbox_settings, pool=pool, embedder=embedder) as toolbox:
        agent = create_agent(model, langchain_tools(toolbox))
        final = await agent.ainvoke({"messages": [("user", "try every resyn tool")]})

    replies = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in replies] == [
        "find_similar",
        "sample_instances",
        *["verify_answer"] * 3,
        "validate_environment",
        "run_python",
    ]
    similar = json.loads(replies[0].content)
    assert similar["environments"][0]["name"] == "dependency-sorting"
    assert similar["topics"][0]["topic"] == "task scheduling"
    assert similar["environments"][0]["similarity"] > similar["environments"][1]["similarity"]
    instances = json.loads(replies[1].content)["instances"]
    assert [(i["seed"], i["difficulty"]) for i in instances] == [(11, 2), (12, 2)]
    assert [json.loads(m.content)["score"] for m in replies[2:4]] == [1.0, 0.0]
    assert replies[4].status == "error"
    assert "no environment with id" in replies[4].content and "\n" not in replies[4].content
    report = json.loads(replies[5].content)
    assert report["valid"] and [check["name"] for check in report["checks"]] == list(CHECK_NAMES)
    ran = json.loads(replies[6].content)
    assert ran["status"] == "ok" and ran["result"] == "45"
    assert not any(name in ran["stdout"] for name in SECRET_NAMES)
    assert fake_api_key not in json.dumps([m.content for m in final["messages"]])
    assert final["messages"][-1].content == "done"


async def test_each_call_without_a_session_starts_from_a_clean_namespace(toolbox: Toolbox) -> None:
    first = await toolbox.call("run_python", {"code": "x = 41\nx + 1"})
    second = await toolbox.call("run_python", {"code": "x"})
    assert first["result"] == "42"
    assert second["status"] == "error" and second["error"].startswith("NameError")


async def test_a_session_keeps_its_state_and_sessions_do_not_share_it(toolbox: Toolbox) -> None:
    await toolbox.call("run_python", {"code": "import math\nx = math.pi", "session_id": "a"})
    await toolbox.call("run_python", {"code": "x = 'b'", "session_id": "b"})
    in_a = await toolbox.call("run_python", {"code": "round(x, 2)", "session_id": "a"})
    in_b = await toolbox.call("run_python", {"code": "x", "session_id": "b"})
    assert (in_a["result"], in_b["result"]) == ("3.14", "'b'")


async def test_a_session_kernel_cannot_see_the_parents_secrets(toolbox: Toolbox, fake_api_key: str) -> None:
    ran = await toolbox.call("run_python", {"code": "import os\ndict(os.environ)", "session_id": "s"})
    assert ran["status"] == "ok"
    assert not any(name in ran["result"] for name in SECRET_NAMES)
    assert fake_api_key not in ran["result"]


async def test_a_new_session_beyond_the_cap_closes_the_least_recently_used(toolbox: Toolbox) -> None:
    for name in ("a", "b", "a"):  # b is now the least recently used
        await toolbox.call("run_python", {"code": f"x = {name!r}", "session_id": name})
    await toolbox.call("run_python", {"code": "x = 'c'", "session_id": "c"})
    assert sorted(toolbox.open_sessions()) == ["a", "c"]
    back = await toolbox.call("run_python", {"code": "x", "session_id": "b"})
    assert back["status"] == "error" and back["error"].startswith("NameError")
    assert "closed to make room" in back["note"]


async def test_a_new_session_is_refused_while_every_session_runs_code(toolbox: Toolbox) -> None:
    await asyncio.gather(*(toolbox.call("run_python", {"code": "1", "session_id": name}) for name in "ab"))
    sleep = "import time; time.sleep(1.5)"
    busy = [
        asyncio.create_task(toolbox.call("run_python", {"code": sleep, "session_id": name})) for name in "ab"
    ]
    await asyncio.sleep(0.3)
    with pytest.raises(ToolError, match="all 2 python sessions are running code"):
        await toolbox.call("run_python", {"code": "1", "session_id": "c"})
    assert [(await task)["status"] for task in busy] == ["ok", "ok"]


async def test_an_idle_session_is_closed(settings: Settings, pool: KernelPool, tmp_path: Path) -> None:
    async with Toolbox(tool_settings(settings, tmp_path, session_idle_s=0.5), pool=pool) as box:
        await box.call("run_python", {"code": "x = 1", "session_id": "idle"})
        await asyncio.sleep(1.2)
        assert box.open_sessions() == []
        back = await box.call("run_python", {"code": "x", "session_id": "idle"})
    assert back["status"] == "error"
    assert "idle for more than 0.5 s" in back["note"]


async def test_the_time_limit_a_caller_asks_for_is_capped(toolbox: Toolbox) -> None:
    started = time.perf_counter()
    ran = await asyncio.wait_for(
        toolbox.call("run_python", {"code": "while True: pass", "timeout_s": 600}), 30
    )
    assert ran["status"] == "timeout"
    assert time.perf_counter() - started < 6  # the cap is 2 s, plus the interrupt
    assert (await toolbox.call("run_python", {"code": "1 + 1"}))["result"] == "2"


async def test_a_crashed_session_restarts_and_says_its_state_is_gone(toolbox: Toolbox) -> None:
    await toolbox.call("run_python", {"code": "x = 1", "session_id": "s"})
    crashed = await toolbox.call("run_python", {"code": "import os; os._exit(1)", "session_id": "s"})
    after = await toolbox.call("run_python", {"code": "'x' in dir()", "session_id": "s"})
    assert crashed["status"] == "crashed" and "variables and imports are gone" in crashed["note"]
    assert after["status"] == "ok" and after["result"] == "False"


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("sample_instances", {"environment_id": "abc"}, "there is no library"),
        ("sample_instances", {"source": VALID, "environment_id": "abc"}, "exactly one of source"),
        ("sample_instances", {"source": VALID, "difficulty": 9}, "difficulty: Input should be less"),
        ("sample_instances", {"source": "NAME = 1"}, "sampling failed: "),
        ("run_python", {"code": "1", "sesion_id": "a"}, "sesion_id: Extra inputs are not permitted"),
        ("verify_answer", {"source": VALID, "answer": "1"}, "instance: Field required"),
        (
            "verify_answer",
            {"source": VALID, "instance": "{question: 1}", "answer": "1"},
            "instance: expected a JSON object, got a string that is not JSON",
        ),
        ("verify_answer", {"source": VALID, "instance": "[1]", "answer": "1"}, "instance: Input should be a"),
        ("write_file", {}, "no tool named 'write_file'"),
    ],
)
async def test_bad_calls_are_one_line_errors_that_say_what_to_fix(
    toolbox: Toolbox, name: str, arguments: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ToolError) as raised:
        await toolbox.call(name, arguments)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


async def test_find_similar_in_an_empty_workspace_needs_no_model(
    settings: Settings, pool: KernelPool, tmp_path: Path
) -> None:
    class NoModel(Embedder):
        def embed(self, texts: list[str]) -> Any:
            raise AssertionError("nothing to compare with, so nothing should be embedded")

    async with Toolbox(tool_settings(settings, tmp_path), pool=pool, embedder=NoModel(bf16=False)) as box:
        found = await box.call("find_similar", {"text": "graph colouring"})
    assert found == {"environments": [], "topics": []}
    assert not (tmp_path / "library.sqlite").exists()  # a look-up creates no workspace


def test_every_schema_a_client_is_shown_says_which_arguments_are_objects(settings: Settings) -> None:
    """Type-driven clients (the MCP Inspector) send the value of a property without a type as a string."""
    schemas = {spec.name: spec.input_schema() for spec in TOOL_SPECS}
    schemas |= {f"{spec.name} result": spec.output_schema() for spec in TOOL_SPECS}
    schemas |= {
        f"langchain {tool.name}": convert_to_openai_tool(tool)["function"]["parameters"]
        for tool in langchain_tools(Toolbox(settings))
    }
    untyped = {name: untyped_objects(schema) for name, schema in schemas.items()}
    assert untyped == {name: [] for name in schemas}
    assert untyped_objects(VerifyAnswerArgs.model_json_schema()) == ["instance"]  # pydantic's own schema
    instance = schemas["verify_answer"]["properties"]["instance"]
    assert instance["required"] == ["question", "witness"]
    assert instance["description"] == "the instance exactly as sample_instances returned it"


async def test_verify_answer_takes_arguments_as_type_driven_clients_send_them(toolbox: Toolbox) -> None:
    """The Inspector's CLI reads `answer=1272` as the number 1272; some clients send objects as JSON text."""
    [instance] = (await toolbox.call("sample_instances", {"source": VALID, "count": 1}))["instances"]
    arguments = {"source": VALID, "instance": json.dumps(instance), "answer": int(instance["witness"])}
    assert await toolbox.call("verify_answer", arguments) == {"score": 1.0, "correct": True}


@pytest.mark.parametrize("prefix", ["0", 0])  # 0: as the Inspector's CLI sends `environment_id=0`
async def test_an_id_prefix_that_several_environments_share_is_ambiguous(
    settings: Settings, tmp_path: Path, prefix: str | int
) -> None:
    build_example_library(tmp_path).close()  # twelve environments, 00ababababab to 11ababababab
    async with Toolbox(tool_settings(settings, tmp_path)) as box:
        with pytest.raises(ToolError) as raised:
            await box.call("sample_instances", {"environment_id": prefix})
    assert str(raised.value) == (
        "ambiguous: 10 environments start with '0' (00ababababab, 01ababababab, 02ababababab, …): "
        "give more of the id"
    )
