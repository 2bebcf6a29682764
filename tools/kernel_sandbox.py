"""Code that runs *inside* a sandboxed kernel; the host imports only its constants.

Every kernel gets this module's source when it starts (`kernel.py`) and calls `install`:
resource limits, an audit hook that refuses and records the side effects the contract forbids,
and a watch on secret-looking environment variables. The host's harness client (`harness.py`)
then calls the harness functions at the bottom (`load`, `generate_batch`, `verify_batch`,
`score_batch`, ...) and gets plain JSON back. The constants up top are the protocol both sides
share: the MIME types replies travel in, the exit status of a kernel that swallowed its time
limit, what a secret's name looks like, and the statuses of a call stopped by a limit.

Standard library only, and nothing runs at import: this file is also exec'd by the unsafe
in-process baseline of the validation benchmark. It is one long file because it travels to each
kernel as one source.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import inspect
import io
import json
import linecache
import math
import os
import random
import re
import resource
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any

RESULT_MIME = "application/vnd.resyn.result+json"
EVENTS_MIME = "application/vnd.resyn.events+json"
TRUNCATED_MIME = "application/vnd.resyn.truncated+json"
ENVIRONMENT_FILENAME = "<environment>"

_PROCESS_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
}
_SOCKET_EVENTS = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
}
_SIGNAL_EVENTS = {"os.kill", "os.killpg", "signal.pthread_kill"}
_FILE_CHANGE_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
_FINGERPRINTED_MODULES = (
    "builtins",
    "random",
    "math",
    "json",
    "re",
    "itertools",
    "functools",
    "collections",
    "string",
    "heapq",
    "bisect",
    "operator",
    "copy",
    "fractions",
    "statistics",
    "time",
)
_MAX_EVENTS = 200
_CPU_KILL_MARGIN_S = 5  # SIGXCPU at the soft CPU limit, SIGKILL this many seconds later
SWALLOWED_TIMEOUT_EXIT = 71  # the kernel's exit status when code caught its own time limit
LIMIT_STATUSES = ("timeout", "memory")  # a call's status when a limit stopped it
_SWALLOW_GRACE_S = 1.0
_LIMIT_HITS_BEFORE_GIVING_UP = (
    2  # per batch: a hanging or hoarding function costs its limit twice, not per seed
)


class CallTimeout(BaseException):
    """Raised by SIGALRM inside a call that ran past its wall-clock limit."""


class _Sandbox:
    """What the audit hook and the harness share. One per kernel."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.installed = False
        self.environment: types.ModuleType | None = None
        self.kept: dict[str, types.ModuleType] = {}  # loaded environments a reward kernel holds by key
        self.instances: dict[str, dict] = {}
        self.baseline_modules: set[str] = set()
        self.baseline_user_names: set[str] = set()
        self.fingerprint: dict[str, int] = {}
        self.cpu_seconds = 0


_sandbox = _Sandbox()


def _record(kind: str, event: str, detail: Any) -> None:
    if len(_sandbox.events) < _MAX_EVENTS:
        _sandbox.events.append({"kind": kind, "event": event, "detail": str(detail)[:200]})


def _refuse(kind: str, event: str, detail: Any) -> None:
    _record(kind, event, detail)
    raise PermissionError(f"resyn sandbox: {event} is not allowed ({kind})")


def _opens_for_writing(mode: Any, flags: Any) -> bool:
    if isinstance(flags, int) and flags & _WRITE_FLAGS:
        return True
    return isinstance(mode, str) and any(letter in mode for letter in "wax+")


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = (*args, None, None, None)[:3]
        if _opens_for_writing(mode, flags):
            _refuse("file_write", "open", path)
    elif event in _FILE_CHANGE_EVENTS:
        _refuse("file_write", event, args[0] if args else "")
    elif event in _PROCESS_EVENTS:
        _refuse("process", event, args[0] if args else "")
    elif event in _SOCKET_EVENTS:
        _refuse("socket", event, args[1] if event.startswith(("socket.connect", "socket.bind")) else args[:2])
    elif event in _SIGNAL_EVENTS and not _interrupts_itself(event, args):
        _refuse("signal", event, args)


def _interrupts_itself(event: str, args: tuple) -> bool:
    """ipykernel answers an interrupt request on its control channel (how resyn interrupts a
    kernel in the OS sandbox, where a signal would reach bwrap) by sending SIGINT to its own
    process group: the kernel interrupting itself, not a side effect."""
    if event not in ("os.kill", "os.killpg") or len(args) != 2 or args[1] != signal.SIGINT:
        return False
    return args[0] == (os.getpid() if event == "os.kill" else os.getpgid(0))


class _WatchedEnviron(os._Environ):  # type: ignore[name-defined]
    """os.environ that records every read of a secret-looking name (the kernel holds none)."""

    def __getitem__(self, key: str) -> str:
        if SECRET_NAME.search(str(key)):
            _record("secret_read", "os.environ", key)
        return super().__getitem__(key)


# ipykernel itself swaps these in and out around every execute request (stdin forwarding)
_SWAPPED_BY_IPYKERNEL = frozenset({"builtins.input", "builtins.raw_input", "getpass.getpass"})


def _fingerprint() -> dict[str, int]:
    prints = {}
    for module_name in _FINGERPRINTED_MODULES:
        module = sys.modules.get(module_name)
        if module is not None:
            for attribute, value in list(vars(module).items()):
                prints[f"{module_name}.{attribute}"] = id(value)
    return {name: value for name, value in prints.items() if name not in _SWAPPED_BY_IPYKERNEL}


def install(limits: dict[str, int]) -> dict[str, Any]:
    """Apply resource limits and the audit hook. Called once, right after the kernel starts."""
    if _sandbox.installed:
        return {"installed": True}
    megabyte = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
    _sandbox.cpu_seconds = limits["cpu_seconds"]
    _renew_cpu_budget()
    os.environ.__class__ = _WatchedEnviron
    for module_name in _FINGERPRINTED_MODULES:
        __import__(module_name)
    sys.addaudithook(_audit)
    _sandbox.installed = True
    _sandbox.baseline_modules = set(sys.modules)
    _sandbox.baseline_user_names = set(_user_namespace())
    _sandbox.fingerprint = _fingerprint()
    _register_cell_hooks(limits["output_limit"], limits["output_abort"])
    return {"installed": True, "pid": os.getpid()}


def _renew_cpu_budget() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    soft = used + _sandbox.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + _CPU_KILL_MARGIN_S))


def _user_namespace() -> dict[str, Any]:
    shell = _ipython()
    return shell.user_ns if shell is not None else {}


def _ipython() -> Any:
    ipython_module = sys.modules.get("IPython")
    return ipython_module.get_ipython() if ipython_module is not None else None


class OutputLimitExceeded(BaseException):
    """Raised in code that keeps printing after a cell's output passed the abort threshold."""


class _CappedStream:
    """Wraps the kernel's stdout/stderr: forwards the first `limit` characters of a cell and
    stops the cell at `abort`, so a print flood never crosses to the host or fills memory."""

    def __init__(self, stream: Any, counter: dict[str, int], limit: int, abort: int) -> None:
        self._stream, self._counter, self._limit, self._abort = stream, counter, limit, abort

    def write(self, text: str) -> int:
        before = self._counter["chars"]
        self._counter["chars"] = before + len(text)
        if before < self._limit:
            self._stream.write(text[: self._limit - before])
        if self._counter["chars"] > self._abort:
            raise OutputLimitExceeded(f"printed more than {self._abort} characters")
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _register_cell_hooks(output_limit: int, output_abort: int) -> None:
    """Per cell: reset the output budget before, and after it publish the side-effect events it
    caused, so the host gets them with the cell's own reply instead of in a second round trip."""
    shell = _ipython()
    if shell is None:
        return
    counter = {"chars": 0}
    sys.stdout = _CappedStream(sys.stdout, counter, output_limit, output_abort)
    sys.stderr = _CappedStream(sys.stderr, counter, output_limit, output_abort)
    shell.events.register("pre_run_cell", lambda _info: counter.update(chars=0))
    shell.events.register("post_run_cell", lambda _result: _after_cell(counter["chars"], output_limit))


def _after_cell(printed: int, output_limit: int) -> None:
    if printed > output_limit:
        _publish(TRUNCATED_MIME, {"printed": printed, "kept": output_limit})
    _flush_events()


def _flush_events() -> None:
    if _sandbox.events:
        events, _sandbox.events = _sandbox.events, []
        _publish(EVENTS_MIME, events)


def _publish(mime: str, payload: Any) -> None:
    from IPython.display import publish_display_data

    publish_display_data({mime: payload})


def reply(payload: Any) -> None:
    """Send a harness result to the host as one JSON display message."""
    _publish(RESULT_MIME, payload)


def reset() -> dict[str, Any]:
    """Forget the last environment: a fresh namespace, modules and random state for the next.

    Returns which fingerprinted stdlib attributes were replaced (monkeypatching that a
    namespace reset cannot undo); the host replaces a kernel that reports any.
    """
    _sandbox.environment = None
    _sandbox.kept = {}
    _sandbox.instances = {}
    _sandbox.events = []
    for module_name in set(sys.modules) - _sandbox.baseline_modules:
        del sys.modules[module_name]
    namespace = _user_namespace()
    for name in set(namespace) - _sandbox.baseline_user_names:
        del namespace[name]
    random.seed(os.urandom(16))
    _renew_cpu_budget()
    current = _fingerprint()
    tampered = sorted(name for name, value in _sandbox.fingerprint.items() if current.get(name) != value)
    return {"tampered": tampered[:20]}


# --- the harness -------------------------------------------------------------------------


class _CappedText(io.TextIOBase):
    """A text sink that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.total += len(text)
        if self.kept < self.limit:
            piece = text[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _timeout_handler() -> Callable[[int, Any], None]:
    """First alarm: raise CallTimeout in the call. An alarm after that means the code swallowed
    it (`except BaseException`), and the only way out is to end the kernel; the host sees the
    exit status and restarts it."""
    fired = []

    def on_alarm(_signum: int, _frame: Any) -> None:
        if fired:
            os._exit(SWALLOWED_TIMEOUT_EXIT)
        fired.append(True)
        raise CallTimeout

    return on_alarm


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _timeout_handler())
    signal.setitimer(signal.ITIMER_REAL, seconds, _SWALLOW_GRACE_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _error_summary(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _call(function: Callable[..., Any], args: tuple, seconds: float, output_limit: int) -> dict[str, Any]:
    """Run one call of environment code under a time limit, with its output captured."""
    output = _CappedText(output_limit)
    events_before = len(_sandbox.events)
    started = time.perf_counter()
    outcome: dict[str, Any] = {"status": "ok", "value": None}
    try:
        with _time_limit(seconds), contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            outcome["value"] = function(*args)
    except CallTimeout:
        outcome = {"status": "timeout", "error": f"exceeded {seconds:g} s"}
    except MemoryError:
        outcome = {"status": "memory", "error": "MemoryError: exceeded the memory limit"}
        gc.collect()
    except Exception as error:
        outcome = {
            "status": "error",
            "error": _error_summary(error),
            "traceback": traceback.format_exc(limit=-8)[-3000:],
        }
    outcome["seconds"] = round(time.perf_counter() - started, 4)
    outcome["events"] = _sandbox.events[events_before:]
    outcome["output_chars"] = output.total
    outcome["output"] = output.text()[:500]
    return outcome


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _takes_two_positional(function: Any) -> bool:
    try:
        inspect.signature(function).bind(0, 1)
    except (TypeError, ValueError):
        return False
    return True


def _definition_problems(module: types.ModuleType) -> list[str]:
    problems = []
    for name in ("NAME", "TOPIC", "DESCRIPTION"):
        value = getattr(module, name, None)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be a non-empty str (got {type(value).__name__})")
    for name in ("generate", "verify"):
        function = getattr(module, name, None)
        if not callable(function):
            problems.append(f"{name} must be a function")
        elif not _takes_two_positional(function):
            problems.append(f"{name} must take two positional arguments")
    return problems


def keep(key: str) -> bool:
    """Hold the loaded environment under `key`, so a kernel that scores many can switch between them
    without loading again (`select`); a reset forgets them all."""
    if _sandbox.environment is None:
        return False
    _sandbox.kept[key] = _sandbox.environment
    return True


def select(key: str) -> bool:
    """Make a kept environment the current one; False if this kernel does not hold it."""
    if key not in _sandbox.kept:
        return False
    _sandbox.environment = _sandbox.kept[key]
    return True


def load(source: str, allowed_imports: list[str], seconds: float, output_limit: int) -> dict[str, Any]:
    """Execute an environment's source as a fresh module and report what it defines."""
    try:
        tree = ast.parse(source, ENVIRONMENT_FILENAME)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return {"status": "error", "error": _error_summary(error), "traceback": traceback.format_exc(limit=0)}
    allowed = set(sys.stdlib_module_names) | set(allowed_imports)
    foreign = sorted(name for name in _imports(tree) if name not in allowed)
    if foreign:
        return {"status": "error", "error": f"imports non-standard-library modules: {', '.join(foreign)}"}
    module = types.ModuleType("environment")
    module.__file__ = ENVIRONMENT_FILENAME
    linecache.cache[ENVIRONMENT_FILENAME] = (len(source), None, source.splitlines(True), ENVIRONMENT_FILENAME)
    code = compile(tree, ENVIRONMENT_FILENAME, "exec")
    outcome = _call(exec, (code, vars(module)), seconds, output_limit)
    outcome.pop("value", None)
    outcome["environment_names"] = sorted(os.environ)
    if outcome["status"] == "ok":
        _sandbox.environment = module
        outcome["problems"] = _definition_problems(module)
        outcome["name"] = module.NAME if isinstance(getattr(module, "NAME", None), str) else None
    return outcome


def _limit_hits(results: list[dict[str, Any]]) -> int:
    return sum(result["status"] in LIMIT_STATUSES for result in results)


def instance_key(seed: int, difficulty: int) -> str:
    return f"{seed}:{difficulty}"


def generate_batch(pairs: list[list[int]], seconds: float, output_limit: int) -> list[dict[str, Any]]:
    """Generate one instance per (seed, difficulty); keep each after a JSON round trip."""
    environment = _sandbox.environment
    results = []
    for seed, difficulty in pairs:
        if _limit_hits(results) >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "seed": seed, "difficulty": difficulty, "events": []})
            continue
        outcome = _call(environment.generate, (seed, difficulty), seconds, output_limit)
        instance = outcome.pop("value", None)
        outcome.update(seed=seed, difficulty=difficulty)
        if outcome["status"] == "ok":
            try:
                round_tripped = json.loads(json.dumps(instance, allow_nan=False))
            except (TypeError, ValueError, RecursionError) as error:
                outcome["problem"] = f"instance is not JSON-serializable: {_error_summary(error)}"
            else:
                _sandbox.instances[instance_key(seed, difficulty)] = round_tripped
                outcome["instance"] = round_tripped
        results.append(outcome)
    return results


def _describe_score(value: Any) -> dict[str, Any]:
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    return {
        "score": float(value) if finite else None,
        "score_type": type(value).__name__,
        "score_repr": repr(value)[:80] if not finite else None,
    }


def verify_batch(jobs: list[list[Any]], answers: list[Any], seconds: float, output_limit: int) -> list[dict]:
    """Score answers. A job is [instance key, answer]: an index into `answers`, or the key of
    another instance whose witness is the answer. An answer [text, n] stands for text * n."""
    environment = _sandbox.environment
    answers = [answer if isinstance(answer, str) else answer[0] * answer[1] for answer in answers]
    results = []
    for key, answer_ref in jobs:
        if _limit_hits(results) >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "key": key, "answer": answer_ref, "events": []})
            continue
        instance = _sandbox.instances[key]
        if isinstance(answer_ref, int):
            answer = answers[answer_ref]
        else:
            answer = _sandbox.instances[answer_ref]["witness"]
        # verify gets its own copy: a verifier that mutates the instance must not affect the next call
        outcome = _call(environment.verify, (json.loads(json.dumps(instance)), answer), seconds, output_limit)
        value = outcome.pop("value", None)
        if outcome["status"] == "ok":
            outcome.update(_describe_score(value))
        outcome.update(key=key, answer=answer_ref)
        results.append(outcome)
    return results


def score_batch(
    items: list[list[Any]], seconds: float, output_limit: int, key: str | None = None
) -> list[dict]:
    """Score given answers on given instances (the solver probe, rewards): [instance, answer].
    `key` first selects that kept environment (a reward kernel holds many)."""
    if key is not None and not select(key):
        raise LookupError(f"this kernel keeps no environment {key!r}")
    environment = _sandbox.environment
    results = []
    for instance, answer in items:
        if _limit_hits(results) >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "events": []})
            continue
        outcome = _call(environment.verify, (instance, answer), seconds, output_limit)
        value = outcome.pop("value", None)
        if outcome["status"] == "ok":
            outcome.update(_describe_score(value))
        results.append(outcome)
    return results
