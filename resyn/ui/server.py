"""`resyn ui`'s web app: read-only pages over one workspace, served by uvicorn (loopback by default).

Each request opens the workspace's SQLite file afresh, in the worker thread that serves it, so the
pages follow a job that is still running and no connection is shared between threads. The app
answers GET (and HEAD) only. Untrusted text — environment code, LLM messages — is escaped by the
templates' autoescaping, and the Content-Security-Policy forbids every script besides: the pages
need none (a page of a running job reloads itself with a meta refresh). On loopback, requests must
name a loopback host, so a web page elsewhere cannot read the workspace through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resyn.contract import Status
from resyn.memory.library import AmbiguousEnvironment, Library, UnknownEnvironment
from resyn.memory.traces import TraceStore
from resyn.memory.workspace import Workspace, WorkspaceDamaged
from resyn.settings import PriceSettings
from resyn.ui import pages, story

TEMPLATES = Path(__file__).parent / "templates"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]  # fmt: skip


def when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""


def duration(seconds: float | None) -> str:
    seconds = seconds or 0.0
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _templates() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True)
    environment.filters |= {"when": when, "duration": duration, "thousands": lambda n: f"{n or 0:,}"}
    environment.globals["statuses"] = list(Status)
    return environment


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class Viewer:
    """The pages; one instance per app, holding only the workspace's path and the templates."""

    def __init__(
        self, data_dir: Path, prices: PriceSettings | None = None, database_url: str | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.prices = prices  # for the jobs' cost estimates; None: no estimate
        self.templates = _templates()

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The page; `refresh=True` makes it reload itself every few seconds (a meta refresh: no
        script, so the CSP stays as strict), for pages of what still runs."""
        context["refresh"] = pages.REFRESH_S if context.get("refresh") else None
        page = self.templates.get_template(template).render(data_dir=str(self.data_dir), **context)
        return HTMLResponse(page, status_code)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[tuple[Library, TraceStore] | None]:
        """The library and traces, or None where no workspace exists yet (nothing is created then)."""
        if not Workspace(self.data_dir, self.database_url).has_library():
            yield None
            return
        library = Library(self.data_dir, read_only=True, database_url=self.database_url)
        traces = TraceStore(self.data_dir, read_only=True, database_url=self.database_url)
        try:
            yield library, traces
        finally:
            traces.close()
            library.close()

    def jobs(self, request: Request) -> HTMLResponse:
        with self.workspace() as opened:
            if opened is None:
                return self.render("empty.html")
            library, _traces = opened
            environments = library.environments()
            if not environments and not library.jobs():
                return self.render("empty.html")
            jobs = pages.job_rows(library, self.prices)
            return self.render(
                "jobs.html",
                jobs=jobs,
                environments=len(environments),
                outside_jobs=sum(record.job is None for record in environments),
                refresh=any(job["live"] for job in jobs),
            )

    def environments(self, request: Request) -> HTMLResponse:
        return self._environment_list(request, job=request.query_params.get("job", ""))

    def job(self, request: Request) -> HTMLResponse:
        return self._environment_list(request, job=request.path_params["name"], job_page=True)

    def _environment_list(self, request: Request, job: str, job_page: bool = False) -> HTMLResponse:
        try:
            filters = pages.Filters.parse(request.query_params, job, job_in_path=job_page)
        except pages.BadQuery as bad:
            raise HTTPException(400, str(bad)) from None
        with self.workspace() as opened:
            if opened is None:
                if job_page:
                    raise HTTPException(404, f"no job {job!r}: this workspace is empty")
                return self.render("empty.html")
            library, traces = opened
            job_row, chart, events = None, None, []
            if job_page:
                record = library.job(job)
                if record is None:
                    raise HTTPException(404, f"no job {job!r} in this workspace")
                environments, events = library.environments(), traces.job_events(job)
                job_row = pages.job_row(library, record, environments, self.prices)
                chart = pages.job_progress(job_row, events, environments, time.time())
            listing = pages.environment_list(library, filters)
            shown, pagination = pages.paginate(listing.rows, filters.page)
            return self.render(
                "environments.html",
                path=request.url.path,
                filters=filters,
                rows=shown,
                pagination=pagination,
                counts=listing.counts,
                in_progress=listing.in_progress if job_row else [],
                status_filter=pages.status_filter,
                job=job_row,
                chart=chart,
                log=pages.job_log(events),
                refresh=job_row["live"] if job_row else any(row["live"] for row in shown),
            )

    def environment(self, request: Request) -> HTMLResponse:
        environment_id = request.path_params["environment_id"]
        with self.workspace() as opened:
            if opened is None:
                raise HTTPException(404, f"no environment {environment_id!r}: this workspace is empty")
            library, traces = opened
            try:
                record = library.get(environment_id)
            except AmbiguousEnvironment as ambiguous:
                raise HTTPException(404, f"{ambiguous}: give more of the id") from None
            except UnknownEnvironment:
                raise HTTPException(404, f"no environment {environment_id!r} in this workspace") from None
            job = library.job(record.job) if record.job else None
            page = story.environment_page(library, traces, record.id, job.state if job else None)
        return self.render("environment.html", refresh=page["live"], **page)

    async def http_error(self, request: Request, error: Exception) -> HTMLResponse:
        assert isinstance(error, HTTPException)
        titles = {400: "Bad request", 404: "Not found", 405: "Read-only"}
        message = error.detail
        if error.status_code == 405:
            message = "resyn ui is read-only: it answers GET requests only."
        elif error.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        title = titles.get(error.status_code, f"Error {error.status_code}")
        response = self.render("error.html", error.status_code, title=title, message=message)
        response.headers.update(error.headers or {})
        return response

    async def workspace_damaged(self, request: Request, error: Exception) -> HTMLResponse:
        return self.render("error.html", 503, title="Workspace damaged", message=str(error))

    async def server_error(self, request: Request, error: Exception) -> HTMLResponse:
        message = f"reading the workspace failed: {type(error).__name__}: {error}"
        return self.render("error.html", 500, title="Error", message=message)


def create_app(
    data_dir: Path,
    allowed_hosts: list[str] | None = None,
    prices: PriceSettings | None = None,
    database_url: str | None = None,
) -> Starlette:
    """The viewer of the workspace at `data_dir` (its library on `database_url` when given);
    `allowed_hosts` limits the Host header (None: any); `prices` gives the jobs' cost estimates
    (`resyn jobs` shows the same)."""
    viewer = Viewer(data_dir, prices, database_url)
    return Starlette(
        routes=[
            Route("/", viewer.jobs),
            Route("/jobs/{name:path}", viewer.job),
            Route("/environments", viewer.environments),
            Route("/environments/{environment_id}", viewer.environment),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["*"]),
        ],
        exception_handlers={
            HTTPException: viewer.http_error,
            WorkspaceDamaged: viewer.workspace_damaged,
            Exception: viewer.server_error,
        },
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); raises OSError if it is taken."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    return listener


def serve(
    listener: socket.socket,
    data_dir: Path,
    host: str,
    prices: PriceSettings | None = None,
    database_url: str | None = None,
) -> None:
    """Serve the viewer on an already bound socket until Ctrl-C or SIGTERM."""
    import uvicorn

    app = create_app(data_dir, LOOPBACK_HOSTS if is_loopback(host) else None, prices, database_url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    uvicorn.Server(config).run(sockets=[listener])
