"""What stops a run, and what is only one step's misfortune.

An endpoint down past `llm.max_outage_s` (`EndpointDown`) or a damaged or full workspace
(`WorkspaceDamaged`) stops the whole run unjudged, to be resumed once the cause is fixed. Anything
else a step's call raises (a request the endpoint refused, a bug on one environment) is that
step's outcome: the node turns it into a verdict or an event and the run goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from resyn.agents.resilience import EndpointDown
from resyn.memory.workspace import WorkspaceDamaged

T = TypeVar("T")
STOPS_THE_RUN = (EndpointDown, WorkspaceDamaged)


async def result_or_fault(call: Callable[[], Awaitable[T]]) -> T | Exception:
    """What `call()` returns, or the exception it raised; one that stops the run propagates."""
    try:
        return await call()
    except STOPS_THE_RUN:
        raise
    except Exception as error:
        return error
