"""What an endpoint's `Retry-After` asks for, however it is written (or garbled)."""

from __future__ import annotations

import httpx
import openai
import pytest

from resyn.agents.resilience import retry_after_s


def rate_limited(headers: dict[str, str]) -> openai.RateLimitError:
    response = httpx.Response(429, headers=headers, request=httpx.Request("POST", "http://127.0.0.1:9/v1"))
    return openai.RateLimitError("slow down", response=response, body=None)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"Retry-After": "soon, honestly"}, None),  # garbage: the ordinary backoff applies
        ({}, None),
    ],
)
def test_retry_after_is_read_in_every_form_and_garbage_is_ignored(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after_s(rate_limited(headers)) == seconds
