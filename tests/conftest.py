"""Shared fixtures: one warm kernel pool for the whole session (kernels take ~0.5 s to start)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from resyn.settings import KernelSettings, Settings
from resyn.testing.postgres import fresh_database, server_binaries, throwaway_cluster
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.os_sandbox import SandboxUnavailable, require_bwrap

FAKE_API_KEY = "sk-resyn-test-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def children_hear_ctrl_c() -> None:
    """A test run started in the background (`cmd &` in a script, nohup) inherits SIGINT ignored,
    and so would every process it starts: Python then never raises KeyboardInterrupt, and the
    Ctrl-C tests would see their SIGINT ignored. A handled signal is reset to its default at exec,
    so with Python's own handler here each child hears Ctrl-C as it would from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def parent_holds_a_secret() -> None:
    """Every test runs with an API key in the parent's environment: it must never cross."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    mp.setenv("RESYN_LLM_API_KEY", FAKE_API_KEY)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def fake_api_key() -> str:
    return FAKE_API_KEY


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(kernel=KernelSettings(execution_timeout_s=10, interrupt_grace_s=1.5))


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[KernelPool]:
    async with KernelPool(settings.kernel) as warm_pool:
        yield warm_pool


@pytest.fixture
def os_sandbox() -> None:
    """Tests of the OS sandbox itself: skipped with the reason where it cannot be made here, except
    in CI, which installs bubblewrap (`.ci/run`) and must not skip them."""
    try:
        require_bwrap()
    except SandboxUnavailable as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (resyn/testing/postgres.py); its URL. Skipped
    with the reason where PostgreSQL is not installed, except in CI, which installs Debian's
    `postgresql` when missing (`.ci/run`) and must not skip it."""
    binaries = server_binaries()
    if binaries is None:
        reason = "PostgreSQL is not installed (initdb not found): apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with throwaway_cluster(binaries) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database of the session's cluster, for one test."""
    return fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each backend in turn: None (the workspace's SQLite file), then a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else None
