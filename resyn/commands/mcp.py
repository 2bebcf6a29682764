"""`resyn mcp`: serve resyn's tools to other agents over MCP (stdio)."""

from __future__ import annotations

import contextlib
import logging
import sys

from resyn.console import fail_usage


def mcp() -> None:
    """Serve resyn's tools to other agents over MCP, on stdio.

    Tools: run_python, validate_environment, sample_instances, verify_answer, find_similar.

    Register it in an MCP client's configuration (see the README); the workspace is RESYN_DATA_DIR.
    """
    import asyncio

    from pydantic import ValidationError

    from resyn.settings import Settings
    from resyn.tools.mcp_server import serve

    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="resyn mcp: %(levelname)s %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        raise fail_usage(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
