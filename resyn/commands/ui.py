"""`resyn ui`: the workspace in a web browser — jobs, environments, and each one's full story."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from resyn.console import errors, fail_usage

DEFAULT_PORT = 8765


def ui(
    port: Annotated[int, typer.Option(min=0, max=65535, help="the port to listen on; 0 picks a free one")] = (
        DEFAULT_PORT
    ),
    host: Annotated[
        str, typer.Option(help="the address to listen on; anything but loopback shares the workspace")
    ] = "127.0.0.1",
) -> None:
    """A local, read-only web viewer of the workspace's jobs, environments and traces.

    Each environment's timeline, code, side-by-side diffs, checks, probe rates and LLM messages
    (docs/ui.md). Ctrl-C stops it.
    """
    from pydantic import ValidationError

    from resyn.memory.library import Library
    from resyn.settings import Settings
    from resyn.ui.server import bind, is_loopback, serve

    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        raise fail_usage(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    Library.of(settings, read_only=True).close()  # a damaged workspace stops here, in one line
    try:
        listener = bind(host, port)
    except OSError as error:
        raise fail_usage(
            f"cannot listen on {host}:{port}: {error.strerror or error}; try another --port"
        ) from None
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"resyn ui: http://{shown}:{bound}/ (workspace {settings.data_dir}, read-only; Ctrl-C stops it)"
    )
    if not is_loopback(host):
        errors.print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach it can read the workspace "
            "(environment code, prompts, replies)",
            highlight=False,
            soft_wrap=True,
        )
    with contextlib.suppress(KeyboardInterrupt):
        serve(listener, settings.data_dir, host, settings.prices, settings.database_url_value)
