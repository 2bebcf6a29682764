"""`resyn mcp` as an MCP client sees it: a subprocess on stdio, driven by the official SDK's client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from json_schemas import untyped_objects
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult
from mcp_types.version import LATEST_HANDSHAKE_VERSION

VALID = (Path(__file__).parent / "fixtures" / "valid_minimal.py").read_text()
TOOLS = ["run_python", "validate_environment", "sample_instances", "verify_answer", "find_similar"]
MEMORY_BOMB = "hoard = []\nwhile True:\n    hoard.append(bytearray(50_000_000))"


def server_environment(tmp_path: Path, fake_api_key: str) -> dict[str, str]:
    return {
        "RESYN_DATA_DIR": str(tmp_path / "workspace"),
        "OPENAI_API_KEY": fake_api_key,  # the server holds a secret: no kernel may see it
        "RESYN_LLM_API_KEY": fake_api_key,
    }


@contextlib.asynccontextmanager
async def resyn_mcp(tmp_path: Path, fake_api_key: str, **settings: str) -> AsyncIterator[ClientSession]:
    """A session with `python -m resyn mcp`, connected and initialized; its stderr goes to server.log."""
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "resyn", "mcp"],
        env={**server_environment(tmp_path, fake_api_key), **settings},
        cwd=tmp_path,
    )
    with (tmp_path / "server.log").open("w") as log:
        async with (
            stdio_client(server, errlog=log) as (read, write),
            ClientSession(read, write, read_timeout_seconds=60) as session,
        ):
            await session.initialize()
            yield session


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


async def test_the_server_lists_every_tool_and_serves_each(tmp_path: Path, fake_api_key: str) -> None:
    async with resyn_mcp(tmp_path, fake_api_key) as session:
        listed = (await session.list_tools()).tools
        ran = data(await session.call_tool("run_python", {"code": "import os\ndict(os.environ)"}))
        report = data(await session.call_tool("validate_environment", {"source": VALID}))
        [instance] = data(
            await session.call_tool(
                "sample_instances", {"source": VALID, "difficulty": 3, "count": 1, "seed": 7}
            )
        )["instances"]
        scored = data(
            await session.call_tool(
                "verify_answer", {"source": VALID, "instance": instance, "answer": instance["witness"]}
            )
        )
        similar = data(await session.call_tool("find_similar", {"text": "adding up numbers"}))
        unknown = await session.call_tool(
            "verify_answer", {"environment_id": "missing", "instance": instance, "answer": "1"}
        )

    assert [tool.name for tool in listed] == TOOLS
    assert all(tool.description and tool.input_schema["type"] == "object" for tool in listed)
    assert listed[0].input_schema["required"] == ["code"]
    untyped = {
        tool.name: untyped_objects(tool.input_schema) + untyped_objects(tool.output_schema) for tool in listed
    }
    assert untyped == {name: [] for name in TOOLS}
    assert ran["status"] == "ok" and "PATH" in ran["result"]
    assert "API_KEY" not in ran["result"] and fake_api_key not in ran["result"]
    assert report["valid"] and report["name"] == "list-sum"
    assert (instance["seed"], instance["difficulty"]) == (7, 3)
    assert scored == {"score": 1.0, "correct": True}
    assert similar == {"environments": [], "topics": []}  # a fresh workspace holds nothing yet
    assert unknown.is_error
    assert "no library" in unknown.content[0].text and "\n" not in unknown.content[0].text


async def test_hostile_python_is_contained_and_the_server_keeps_serving(
    tmp_path: Path, fake_api_key: str
) -> None:
    # a smaller address space (the kernel itself takes ~0.7 GB of it) makes the bomb quick and small
    async with resyn_mcp(tmp_path, fake_api_key, RESYN_KERNEL_MEMORY_MB="1024") as session:
        await session.call_tool("run_python", {"code": "kept = 'still here'", "session_id": "mine"})
        hang = data(await session.call_tool("run_python", {"code": "while True: pass", "timeout_s": 1}))
        bomb = data(await session.call_tool("run_python", {"code": MEMORY_BOMB, "timeout_s": 20}))
        exit_ = data(await session.call_tool("run_python", {"code": "import os; os._exit(1)"}))
        after = data(await session.call_tool("run_python", {"code": "sum(range(10))"}))
        session_after = data(await session.call_tool("run_python", {"code": "kept", "session_id": "mine"}))

    assert (hang["status"], hang["error"]) == ("timeout", "execution exceeded 1 s")
    assert bomb["status"] == "limit" and "memory limit" in bomb["error"]
    assert exit_["status"] == "crashed"
    assert (after["status"], after["result"]) == ("ok", "45")
    assert session_after["result"] == "'still here'"  # other callers' hostile code never touched it


async def test_nothing_but_protocol_messages_reach_stdout(tmp_path: Path, fake_api_key: str) -> None:
    """Raw JSON-RPC, so that every byte the server writes is seen, up to its exit."""
    hello = {
        "protocolVersion": LATEST_HANDSHAKE_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    }
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        tool_call(2, "run_python", {"code": "print('hi')"}),
        tool_call(3, "sample_instances", {"source": "x = ("}),
    ]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "resyn", "mcp",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **server_environment(tmp_path, fake_api_key)}, cwd=tmp_path,
    )  # fmt: skip
    server.stdin.write("".join(json.dumps(request) + "\n" for request in requests).encode())
    await server.stdin.drain()
    lines, answered = [], set()
    while answered != {1, 2, 3}:
        line = await asyncio.wait_for(server.stdout.readline(), 60)
        assert line, "the server closed stdout before answering"
        lines.append(line)
        answered.add(json.loads(line).get("id"))
    server.stdin.close()
    lines += (await asyncio.wait_for(server.stdout.read(), 30)).splitlines(keepends=True)
    assert await asyncio.wait_for(server.wait(), 30) == 0
    messages = [json.loads(line) for line in lines]  # a stray print would not parse
    assert all(message["jsonrpc"] == "2.0" for message in messages)
    replies = {message["id"]: message["result"] for message in messages if "id" in message}
    assert replies[2]["structuredContent"]["stdout"] == "hi\n"
    assert replies[3]["isError"] and "sampling failed" in replies[3]["content"][0]["text"]


def tool_call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


@pytest.mark.usefixtures("os_sandbox")
async def test_run_python_over_mcp_cannot_touch_the_host(tmp_path: Path, fake_api_key: str) -> None:
    """libc through ctypes walks past the audit hook; the OS sandbox still holds: no command
    runs on the host, and the server's environment (its API key) is out of sight."""
    proof = tmp_path / "ran-on-the-host"
    escape = f"import ctypes; ctypes.CDLL(None).system(b'id > {proof}')"
    environ = "import os; open(f'/proc/{os.getppid()}/environ', 'rb').read()"
    async with resyn_mcp(tmp_path, fake_api_key) as session:
        ran = data(await session.call_tool("run_python", {"code": escape}))
        parent = data(await session.call_tool("run_python", {"code": environ}))
    assert ran["status"] == "ok"
    assert not proof.exists()
    assert fake_api_key not in json.dumps(parent)
