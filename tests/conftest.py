"""Shared fixtures: one warm kernel pool for the whole session (kernels take ~0.5 s to start)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from resyn.settings import KernelSettings, Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.os_sandbox import SandboxUnavailable, require_bwrap

FAKE_API_KEY = "sk-resyn-test-0123456789abcdef"


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
