"""Riding out a flaky endpoint: retries with backoff, and pausing through an outage.

A call that meets a transient fault (timeout, refused connection, 429, 5xx, an empty or malformed
body) is tried again after a jittered, doubling backoff; a 429's `Retry-After` sets the wait. When
the retries are spent, the question is whether the endpoint is down or this one request is bad:

- if the endpoint answers a tiny ping now, the request is bad, and its fault is raised (the caller
  records it: an `llm_failure`, or a missing probe answer). Other calls' answers prove nothing
  here: replies already on their way when an endpoint dies still arrive;
- otherwise the endpoint is down: the call does not fail, it waits, checking the endpoint at
  growing intervals (`outage_check_max_s` at most) until it answers, and then goes on. Calls made
  while the endpoint is known to be down skip the quick retries and wait the same way. Listeners
  hear when an outage starts and ends (the job's log and dashboard); `max_outage_s`, when set,
  turns a longer outage into `EndpointDown`, which stops the work cleanly: nothing is charged to it.

One `EndpointHealth` is shared by every role that talks to the same endpoint, like its limiter,
so an outage that one role notices pauses the others too, and one answer ends it for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import openai

from resyn.settings import LLMSettings

T = TypeVar("T")
Listener = Callable[[str, str], None]  # (event: "down" | "up", one line)


class EmptyReply(ValueError):
    """The endpoint answered 200 with no text."""


class MalformedReply(ValueError):
    """The endpoint answered 200 with JSON that is not a chat completion (no choices, nulls)."""


class EndpointDown(Exception):
    """The endpoint has not answered for longer than `max_outage_s`: stop, to be resumed later.

    Not an LLM failure of the work in flight: nothing is charged for an outage."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APIResponseValidationError,  # a body that is JSON but not a completion
    json.JSONDecodeError,  # an empty or truncated body
    httpx.TransportError,
    EmptyReply,
    MalformedReply,
    TimeoutError,
    ConnectionError,
)
_RETRIED_STATUSES = (408, 409, 425)  # timeouts and conflicts the OpenAI client itself would retry


def is_transient(error: BaseException) -> bool:
    """Faults worth retrying: the endpoint (or the way to it) failed, not the request."""
    if isinstance(error, openai.APIStatusError) and error.status_code in _RETRIED_STATUSES:
        return True
    return isinstance(error, TRANSIENT_ERRORS)


def retry_after_s(error: BaseException) -> float | None:
    """The wait a 429 or 503 asks for (`Retry-After` in seconds or as a date, `retry-after-ms`)."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if milliseconds := headers.get("retry-after-ms"):
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):  # a header that is neither: back off as if there were none
        return None


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class EndpointHealth:
    """Whether an endpoint answers, shared by every call to it (see the module docstring)."""

    def __init__(self, name: str = "the endpoint", settings: LLMSettings | None = None) -> None:
        self.name = name
        self.settings = settings or LLMSettings()
        self.listeners: list[Listener] = []
        self.down_since: float | None = None
        self._up = asyncio.Event()
        self._up.set()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    async def call(self, send: Callable[[], Awaitable[T]], ping: Callable[[], Awaitable[object]]) -> T:
        """`send()` until it answers; raises its fault only when the request itself is at fault.

        `ping()` makes a tiny request: when it answers while `send()` keeps failing, the endpoint
        is up and this request is the problem."""
        failures = 0
        check_wait = self.settings.retry_initial_s
        while True:
            if self.down and failures == 0:
                await self._wait_for_recovery(check_wait)
                check_wait = self._grow(check_wait)
            try:
                result = await send()
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                if failures <= self.settings.retries:
                    await asyncio.sleep(self._backoff(failures, error))
                    continue
                was_down = self.down
                if await self._answers(ping):
                    if was_down:  # it just came back: this request gets a fresh set of retries
                        failures = 0
                        continue
                    raise  # the endpoint answers: this request is the problem
                self._mark_down(error)
                await self._wait_for_recovery(check_wait)
                check_wait = self._grow(check_wait)
                if not self.down:  # it answers again: a fresh set of quick retries
                    failures = 0
                continue
            self._mark_up()
            return result

    async def _answers(self, ping: Callable[[], Awaitable[object]]) -> bool:
        try:
            await ping()
        except Exception:
            return False
        self._mark_up()
        return True

    def _backoff(self, failures: int, error: BaseException) -> float:
        asked = retry_after_s(error)
        if asked is not None:
            return min(asked, self.settings.outage_check_max_s)
        base = self.settings.retry_initial_s * 2 ** (failures - 1)
        return min(base * random.uniform(0.5, 1.5), self.settings.outage_check_max_s)

    def _grow(self, wait: float) -> float:
        return min(max(wait, self.settings.retry_initial_s) * 2, self.settings.outage_check_max_s)

    async def _wait_for_recovery(self, wait: float) -> None:
        """Until another call sees the endpoint answer, or `wait` passes (then this call checks)."""
        self._give_up_if_too_long()
        deadline = self._outage_deadline()
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout=wait * random.uniform(0.8, 1.2))
        self._give_up_if_too_long()

    def _outage_deadline(self) -> float | None:
        limit = self.settings.max_outage_s
        if limit is None or self.down_since is None:
            return None
        return self.down_since + limit

    def _give_up_if_too_long(self) -> None:
        deadline = self._outage_deadline()
        if deadline is not None and time.monotonic() >= deadline:
            raise EndpointDown(
                f"{self.name} has not answered for {self.settings.max_outage_s:g} s (RESYN_LLM_MAX_OUTAGE_S)"
            )

    def _mark_down(self, error: BaseException) -> None:
        if self.down:
            return
        self.down_since = time.monotonic()
        self._up.clear()
        self._tell(
            "down",
            f"{self.name} is not answering ({describe(error)}): paused, checking again at growing "
            f"intervals (up to {self.settings.outage_check_max_s:g} s)",
        )

    def _mark_up(self) -> None:
        if self.down_since is None:
            return
        lasted = time.monotonic() - self.down_since
        self.down_since = None
        self._up.set()
        self._tell("up", f"{self.name} answers again after {lasted:.0f} s: resumed")

    def _tell(self, event: str, line: str) -> None:
        for listener in list(self.listeners):
            listener(event, line)
