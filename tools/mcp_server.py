"""`resyn mcp`: the agent tools over the Model Context Protocol, on stdio (the official `mcp` SDK).

Every call goes to the same `Toolbox.call` as the LangChain tools, so names, descriptions, input and
output schemas, time limits and error messages are the ones in `agent_tool_specs.TOOL_SPECS`. A failure
comes back as a tool result with `is_error` and one line of text the calling model can act on; the
server keeps serving. Only protocol messages reach stdout: while it serves, the SDK's stdio transport
points fd 1 at stderr (so a stray print cannot corrupt the stream), and logs go to stderr.
"""

from __future__ import annotations

import json
import logging

from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from resyn.settings import Settings
from resyn.tools.agent_tool_specs import TOOL_SPECS
from resyn.tools.agent_tools import Toolbox, ToolError

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "resyn's tools: run Python in a sandboxed kernel, and validate, sample and score reasoning "
    "environments (seeded generator plus code verifier) or look up similar ones in the resyn library."
)


def build_server(toolbox: Toolbox) -> Server:
    """A low-level MCP server whose tools are `TOOL_SPECS`, served by `toolbox`."""
    from importlib.metadata import version

    tools = [
        Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema(),
            output_schema=spec.output_schema(),
        )
        for spec in TOOL_SPECS
    ]

    async def list_tools(
        _ctx: ServerRequestContext, _params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=tools)

    async def call_tool(_ctx: ServerRequestContext, params: CallToolRequestParams) -> CallToolResult:
        try:
            result = await toolbox.call(params.name, params.arguments or {})
        except ToolError as error:
            return _failure(str(error))
        except Exception as error:  # a bug in resyn, not the caller's fault: report it and keep serving
            logger.exception("tool %s failed", params.name)
            return _failure(f"{params.name} failed inside resyn ({type(error).__name__}: {error})")
        return CallToolResult(
            content=[TextContent(text=json.dumps(result, ensure_ascii=False))], structured_content=result
        )

    return Server(
        "resyn",
        version=version("resyn"),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _failure(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)


async def serve(settings: Settings) -> None:
    """Serve until the client closes stdin; the tools' kernels end with the server."""
    async with Toolbox(settings) as toolbox, stdio_server() as (read_stream, write_stream):
        server = build_server(toolbox)
        await server.run(read_stream, write_stream, server.create_initialization_options())
