"""The host's client for the harness inside every kernel (`kernel_sandbox.py`).

Everything that asks a kernel to load, generate, verify, score, keep or reset goes through here.
This module builds those calls, gives each the wall time its environment calls may take (the
backstops of their CPU-time limits) plus one slack for the round trip, checks and decodes the
replies, and is the only place that decides a kernel is no longer to be trusted (`distrust`: the
pool then replaces it instead of resetting it). A kernel is distrusted when

- an execution timed out, crashed, hit a kernel limit (memory, output) or recorded a side effect
  (every harness call, and `run_code`);
- a harness call gave no usable reply (`HarnessStopped`);
- a call of the environment's code hit a limit (time, memory, output); or, where the caller expects
  the environment to work (`expect_success`: sampling, scoring), it failed in any way;
- a reset failed, found the standard library patched, or found compiled modules imported since the
  baseline (a reset cannot take those back: their state lives in C, and some refuse a second import).

`Kernel` is only the transport (a process, its messages, its restarts): this client needs its
`call`, `execute` and `dirty`, so the validation benchmark's in-process stand-in serves as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resyn.contract import GENERATE_SECONDS, VERIFY_SECONDS
from resyn.settings import Settings
from resyn.tools import checks
from resyn.tools.kernel import ExecutionResult, Kernel
from resyn.tools.kernel_sandbox import SECRET_NAME, WALL_BACKSTOP_FACTOR

HARNESS_SLACK_S = 5.0  # a harness call's own round trip, on top of its environment calls' limits
_UNTRUSTED_STATUSES = ("timeout", "crashed", "limit")
_RESET_GRACES = 5  # a reset may take this many interrupt grace periods

Call = dict[str, Any]  # the harness's report of one call of the environment's code


class HarnessStopped(Exception):
    """A harness call got no usable reply: the kernel hung, crashed, flooded or lost the reply.

    The kernel is already distrusted; `status`, `error` and `seconds` are the execution's.
    """

    def __init__(self, function: str, result: ExecutionResult) -> None:
        super().__init__(f"{function}: {result.status}: {result.error or 'no reply'}")
        self.function = function
        self.status = result.status
        self.error = result.error
        self.seconds = result.duration


def distrust(kernel: Kernel) -> None:
    """Mark a kernel for replacement: the pool restarts it instead of resetting it."""
    kernel.dirty = True


def _judged(kernel: Kernel, result: ExecutionResult) -> ExecutionResult:
    if result.status in _UNTRUSTED_STATUSES or result.events:
        distrust(kernel)
    return result


def _distrust_if_any(kernel: Kernel, calls: list[Call], misbehaved: Callable[[Call], Any]) -> None:
    if any(misbehaved(call) for call in calls):
        distrust(kernel)


def _budget(calls: int, seconds: float) -> float:
    """The wall time a batch may take: each call's backstop (its limit is on CPU time), plus slack."""
    return calls * seconds * WALL_BACKSTOP_FACTOR + HARNESS_SLACK_S


async def _call(
    kernel: Kernel, function: str, *args: Any, timeout: float | None, reply: type
) -> ExecutionResult:
    """Call a harness function; raises HarnessStopped unless it replied with a `reply`."""
    result = _judged(kernel, await kernel.call(function, *args, timeout=timeout))
    if not result.ok or not isinstance(result.value, reply):
        distrust(kernel)
        raise HarnessStopped(function, result)
    return result


async def run_code(kernel: Kernel, code: str, timeout: float | None = None) -> ExecutionResult:
    """Run arbitrary code (`run_python`); the kernel is judged by what happened."""
    return _judged(kernel, await kernel.execute(code, timeout=timeout))


async def load(
    kernel: Kernel, source: str, settings: Settings, *, expect_success: bool = False
) -> dict[str, Any]:
    """Make an environment's source the kernel's current one; the harness's reply (status, error,
    problems, name, events, output, environment_names)."""
    seconds = settings.validator.load_timeout_s
    result = await _call(
        kernel,
        "load",
        source,
        settings.validator.allowed_imports,
        seconds,
        settings.kernel.output_limit_bytes,
        timeout=_budget(1, seconds),
        reply=dict,
    )
    loaded = result.value
    if loaded["status"] in checks.LIMIT_STATUSES or (expect_success and loaded["status"] != "ok"):
        distrust(kernel)
    return loaded


def load_events(loaded: dict[str, Any]) -> list[dict[str, str]]:
    """The side effects a load reply reports: its code's events, and each secret-looking variable
    the kernel could see (its scrubbed environment should hold none)."""
    visible = [
        {"kind": "secret_visible", "event": "os.environ", "detail": name}
        for name in loaded.get("environment_names", [])
        if SECRET_NAME.search(name)
    ]
    return [*loaded.get("events", []), *visible]


async def generate(
    kernel: Kernel, pairs: list[list[int]], settings: Settings, *, expect_success: bool = False
) -> list[Call]:
    """generate(seed, difficulty) of the loaded environment for each pair: one report per call."""
    output_limit = settings.kernel.output_limit_bytes
    result = await _call(
        kernel,
        "generate_batch",
        pairs,
        GENERATE_SECONDS,
        output_limit,
        timeout=_budget(len(pairs), GENERATE_SECONDS),
        reply=list,
    )
    if expect_success:
        _distrust_if_any(kernel, result.value, checks.generate_failure)
    else:
        _distrust_if_any(kernel, result.value, lambda call: checks.broke_limit(call, output_limit))
    return result.value


async def verify(kernel: Kernel, jobs: list[list[Any]], answers: list[Any], settings: Settings) -> list[Call]:
    """verify() of generated instances (`kernel_sandbox.verify_batch` says how jobs name them)."""
    output_limit = settings.kernel.output_limit_bytes
    result = await _call(
        kernel,
        "verify_batch",
        jobs,
        answers,
        VERIFY_SECONDS,
        output_limit,
        timeout=_budget(len(jobs), VERIFY_SECONDS),
        reply=list,
    )
    _distrust_if_any(kernel, result.value, lambda call: checks.broke_limit(call, output_limit))
    return result.value


async def score(
    kernel: Kernel, items: list[tuple[dict[str, Any], str]], settings: Settings, key: str | None = None
) -> tuple[list[float], float]:
    """verify(instance, answer) of each item, and the seconds the round trip took.

    Scores are clamped to [0, 1]; a call that failed scores 0.0 and distrusts the kernel (it may
    have left state behind). `key` first selects an environment the kernel keeps (`keep`), in the
    same round trip.
    """
    result = await _call(
        kernel,
        "score_batch",
        items,
        VERIFY_SECONDS,
        settings.kernel.output_limit_bytes,
        key,
        timeout=_budget(len(items), VERIFY_SECONDS),
        reply=list,
    )
    _distrust_if_any(kernel, result.value, lambda call: call["status"] != "ok")
    return [_clamped_score(call) for call in result.value], result.duration


def _clamped_score(call: Call) -> float:
    value = call.get("score") if call["status"] == "ok" else None
    return min(1.0, max(0.0, value)) if isinstance(value, float) else 0.0


async def keep(kernel: Kernel, key: str) -> None:
    """Have the kernel hold its loaded environment under `key`, for `score(..., key=key)`;
    raises HarnessStopped if it does not."""
    result = await _call(kernel, "keep", key, timeout=None, reply=bool)
    if result.value is not True:
        distrust(kernel)
        raise HarnessStopped("keep", result)


async def reset(kernel: Kernel) -> bool:
    """Clean the kernel for the next environment; False, and the kernel distrusted, when the reset
    failed, caused side effects, or found what it cannot undo: standard-library attributes replaced,
    or compiled modules imported since the kernel started (`kernel_sandbox.reset`)."""
    timeout = kernel.settings.interrupt_grace_s * _RESET_GRACES
    result = _judged(kernel, await kernel.call("reset", timeout=timeout))
    undone = result.value or {}
    clean = result.ok and not undone.get("tampered") and not undone.get("unrestorable") and not result.events
    if not clean:
        distrust(kernel)
    return clean
