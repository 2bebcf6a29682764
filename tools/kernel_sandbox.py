"""Code that runs *inside* a sandboxed kernel; the host imports only its constants.

Every kernel gets this module's source when it starts (`kernel.py`) and calls `install`:
resource limits, the allowed imports (imported before the guard is armed, kept across resets), an
audit hook that refuses and records the side effects the contract forbids (a write that can only
land in the OS sandbox's private /tmp is none), and a watch on secret-looking environment
variables. The host's harness client (`harness.py`) then calls the harness functions at the bottom
(`load`, `generate_batch`, `verify_batch`, `score_batch`, ...) and gets plain JSON back. The
constants up top are the protocol both sides share: the MIME types replies travel in, the exit
status of a kernel that swallowed its time limit, what a secret's name looks like, the statuses of
a call stopped by a limit, and how far past its limit a call may run in wall time.

Standard library only, and nothing runs at import: this file is also exec'd by the unsafe
in-process baseline of the validation benchmark. It is one long file because it travels to each
kernel as one source.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import importlib.machinery
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
# Each file-changing event: the positions of the paths it changes, each with the position of the
# dir_fd it is relative to (None: the current directory), as Python 3.11 raises them.
_FILE_CHANGE_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.remove": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.symlink": ((1, 2),),
    "os.link": ((0, 2), (1, 3)),
    "os.truncate": ((0, None),),
    "os.utime": ((0, 3),),
    "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),),
    "shutil.move": ((0, None), (1, None)),
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
SWALLOWED_TIMEOUT_EXIT = 71  # the kernel's exit status when code caught its own time limit
LIMIT_STATUSES = ("timeout", "memory")  # a call's status when a limit stopped it
WALL_BACKSTOP_FACTOR = 5  # a call's limit is on CPU time; in wall time it may run this many times it
_BORDERLINE_FACTOR = 1.25  # a call that finished within this many times its CPU limit is tried again
_SWALLOW_GRACE_S = 1.0
_LIMIT_HITS_BEFORE_GIVING_UP = (
    2  # per batch: a hanging or hoarding function costs its limit twice, not per seed
)


class CallTimeout(BaseException):
    """Raised inside a call that ran out of a clock: `clock` is "cpu" (SIGPROF) or "wall" (SIGALRM)."""

    def __init__(self, clock: str) -> None:
        super().__init__(clock)
        self.clock = clock


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
        self.preload_failures: dict[str, str] = {}  # top-level name -> why its import failed at start
        self.private_dirs: list[str] = []  # writes below these land in the OS sandbox's own tmpfs...
        self.bound_dirs: list[str] = []  # ...unless below these, bound into it from the host


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
        # the event does not say which dir_fd a relative path is relative to: such a path never qualifies
        if _opens_for_writing(mode, flags) and not _in_private_area(_resolved(path, dir_fd=None)):
            _refuse("file_write", "open", path)
    elif event in _FILE_CHANGE_EVENTS:
        if event == "os.mkdir" and os.path.isdir(_resolved(args[0], _argument(args, 2)) or ""):
            return  # mkdir of a directory that exists changes nothing (it raises FileExistsError)
        changed = _FILE_CHANGE_EVENTS[event]
        if not all(
            _in_private_area(_resolved(args[path], _argument(args, dir_fd))) for path, dir_fd in changed
        ):
            _refuse("file_write", event, args[changed[0][0]])
    elif event in _PROCESS_EVENTS:
        _refuse("process", event, args[0] if args else "")
    elif event in _SOCKET_EVENTS:
        _refuse("socket", event, args[1] if event.startswith(("socket.connect", "socket.bind")) else args[:2])
    elif event in _SIGNAL_EVENTS and not _interrupts_itself(event, args):
        _refuse("signal", event, args)


def _argument(args: tuple, position: int | None) -> Any:
    """A dir_fd argument of an event; -1 (the current directory) where it has none."""
    return -1 if position is None or position >= len(args) or args[position] is None else args[position]


def _resolved(path: Any, dir_fd: Any) -> str | None:
    """The absolute path, symlinks resolved, that a file event names; None where it cannot be known.
    A file descriptor is resolved through /proc; `dir_fd` None means unknown, -1 the current directory."""
    if isinstance(path, int):
        path, dir_fd = f"/proc/self/fd/{path}", -1
    try:
        path = os.fsdecode(path)
    except TypeError:
        return None
    if not os.path.isabs(path):
        if not isinstance(dir_fd, int):
            return None
        path = os.path.join(os.getcwd() if dir_fd == -1 else f"/proc/self/fd/{dir_fd}", path)
    return os.path.realpath(path)


def _in_private_area(path: str | None) -> bool:
    """Whether a write to `path` can only land in the OS sandbox's private tmpfs (never without bwrap)."""
    return path is not None and _below(path, _sandbox.private_dirs) and not _below(path, _sandbox.bound_dirs)


def _below(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


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


def install(limits: dict[str, int], preload: list[str], private: dict[str, list[str]]) -> dict[str, Any]:
    """Apply resource limits, import the allowed modules, and arm the audit hook. Called once, right
    after the kernel starts. `private` names where writes stay inside the OS sandbox (`inside`, except
    `bound`; both empty without it)."""
    if _sandbox.installed:
        return {"installed": True}
    megabyte = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * megabyte,) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
    _preload(preload)
    _sandbox.private_dirs = [os.path.realpath(path) for path in private["inside"]]
    _sandbox.bound_dirs = [os.path.realpath(path) for path in private["bound"]]
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
    return {"installed": True, "pid": os.getpid(), "preload_failures": _sandbox.preload_failures}


def _preload(names: list[str]) -> None:
    """Import the allowed modules while nothing is guarded: a library may write its config and caches
    as it imports (matplotlib does). They join the baseline a reset keeps, so each kernel imports them
    once; one that fails is remembered, for `load` to say why."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:
            _sandbox.preload_failures[name.split(".")[0]] = _error_summary(error)


def _renew_cpu_budget() -> None:
    """SIGXCPU, which ends the kernel, once this lease has used `cpu_seconds` of CPU. Only the soft
    limit moves: a process without privileges (as under bwrap) cannot raise its hard limit again,
    which a renewal at every reset would need."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + 1 + _sandbox.cpu_seconds
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(
        resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )


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

    Returns what a reset cannot undo, for the host to replace a kernel that reports any: which
    fingerprinted stdlib attributes were replaced (monkeypatching), and which compiled modules were
    imported since the baseline (their state lives in C, beyond sys.modules, and some, numpy's
    among them, cannot be imported a second time in one process).
    """
    _sandbox.environment = None
    _sandbox.kept = {}
    _sandbox.instances = {}
    _sandbox.events = []
    dropped = set(sys.modules) - _sandbox.baseline_modules
    unrestorable = sorted(name for name in dropped if _compiled(sys.modules[name]))
    for module_name in dropped:
        del sys.modules[module_name]
    namespace = _user_namespace()
    for name in set(namespace) - _sandbox.baseline_user_names:
        del namespace[name]
    random.seed(os.urandom(16))
    _renew_cpu_budget()
    current = _fingerprint()
    tampered = sorted(name for name, value in _sandbox.fingerprint.items() if current.get(name) != value)
    return {"tampered": tampered[:20], "unrestorable": unrestorable[:20]}


def _compiled(module: Any) -> bool:
    """An extension or built-in module (not Python source a second import would run afresh)."""
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    return isinstance(loader, importlib.machinery.ExtensionFileLoader) or (
        loader is importlib.machinery.BuiltinImporter
    )


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
    """The first signal (SIGPROF: out of CPU time; SIGALRM: past the wall-clock backstop) raises
    CallTimeout in the call, and sets an alarm every grace period from then on. A signal after that
    means the code swallowed the first (`except BaseException`), and the only way out is to end the
    kernel; the host sees the exit status and restarts it."""
    fired = []

    def on_limit(signum: int, _frame: Any) -> None:
        if fired:
            os._exit(SWALLOWED_TIMEOUT_EXIT)
        fired.append(signum)
        signal.setitimer(signal.ITIMER_REAL, _SWALLOW_GRACE_S, _SWALLOW_GRACE_S)
        raise CallTimeout("cpu" if signum == signal.SIGPROF else "wall")

    return on_limit


@contextlib.contextmanager
def _time_limits(cpu_seconds: float, wall_seconds: float) -> Iterator[None]:
    """SIGPROF after `cpu_seconds` of the process's CPU time, SIGALRM after `wall_seconds`."""
    handler = _timeout_handler()
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds, _SWALLOW_GRACE_S)
    signal.setitimer(signal.ITIMER_REAL, wall_seconds, _SWALLOW_GRACE_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _error_summary(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _call(function: Callable[..., Any], args: tuple, seconds: float, output_limit: int) -> dict[str, Any]:
    """Run one call of environment code under its time limit, with its output captured.

    The limit is on CPU time, which a loaded host barely stretches, so it judges the environment
    rather than the machine; a wall-clock backstop (`WALL_BACKSTOP_FACTOR` times the limit) stops
    code that waits instead of computing. Sleeping within the backstop passes: it costs no CPU.
    A call that went over by a little (it finished within `_BORDERLINE_FACTOR` times its limit) or
    ran into the backstop is tried once more, and fails only if the retry does too.
    """
    events_before = len(_sandbox.events)
    outcome, output = _attempt(function, args, seconds, output_limit)
    if outcome["status"] == "timeout" and not (outcome["clock"] == "cpu" and outcome["stopped"]):
        outcome, output = _attempt(function, args, seconds, output_limit)
        outcome["retried"] = True
    if outcome["status"] == "timeout":
        outcome["error"] = _timeout_error(outcome, seconds)
    outcome["events"] = _sandbox.events[events_before:]
    outcome["output_chars"] = output.total
    outcome["output"] = output.text()[:500]
    return outcome


def _attempt(
    function: Callable[..., Any], args: tuple, seconds: float, output_limit: int
) -> tuple[dict[str, Any], _CappedText]:
    output = _CappedText(output_limit)
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    outcome: dict[str, Any] = {"status": "ok", "value": None}
    limits = _time_limits(seconds * _BORDERLINE_FACTOR, seconds * WALL_BACKSTOP_FACTOR)
    try:
        with limits, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            outcome["value"] = function(*args)
    except CallTimeout as timeout:
        outcome = {"status": "timeout", "clock": timeout.clock, "stopped": True}
    except MemoryError:
        outcome = {"status": "memory", "error": "MemoryError: exceeded the memory limit"}
        gc.collect()
    except Exception as error:
        outcome = {
            "status": "error",
            "error": _error_summary(error),
            "traceback": traceback.format_exc(limit=-8)[-3000:],
        }
    cpu_seconds = time.process_time() - cpu_started
    if outcome["status"] in ("ok", "error") and cpu_seconds > seconds:
        outcome = {"status": "timeout", "clock": "cpu", "stopped": False}  # it finished, but over its limit
    outcome["seconds"] = round(time.perf_counter() - wall_started, 4)
    outcome["cpu_seconds"] = round(cpu_seconds, 4)
    return outcome, output


def _timeout_error(outcome: dict[str, Any], seconds: float) -> str:
    """Which clock stopped a call: "exceeded 2 s of CPU time (took 2.31 s, retried once)"."""
    if outcome["clock"] == "wall":
        text, details = f"ran {seconds * WALL_BACKSTOP_FACTOR:g} s of wall time", ["backstop"]
    else:
        text = f"exceeded {seconds:g} s of CPU time"
        stopped_at = f"stopped at {seconds * _BORDERLINE_FACTOR:g} s"
        details = [stopped_at if outcome["stopped"] else f"took {outcome['cpu_seconds']:.2f} s"]
    if outcome.get("retried"):
        details.append("retried once")
    return f"{text} ({', '.join(details)})"


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


def _execute_module(code: types.CodeType) -> types.ModuleType:
    """The environment as a fresh module (a retried load starts from a fresh one too)."""
    module = types.ModuleType("environment")
    module.__file__ = ENVIRONMENT_FILENAME
    exec(code, vars(module))
    return module


def load(source: str, allowed_imports: list[str], seconds: float, output_limit: int) -> dict[str, Any]:
    """Execute an environment's source as a fresh module and report what it defines."""
    try:
        tree = ast.parse(source, ENVIRONMENT_FILENAME)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return {"status": "error", "error": _error_summary(error), "traceback": traceback.format_exc(limit=0)}
    imported = _imports(tree)
    allowed = set(sys.stdlib_module_names) | set(allowed_imports)
    foreign = sorted(name for name in imported if name not in allowed)
    if foreign:
        return {"status": "error", "error": f"imports non-standard-library modules: {', '.join(foreign)}"}
    failed = sorted(imported & set(_sandbox.preload_failures))
    if failed:
        why = _sandbox.preload_failures[failed[0]]
        return {
            "status": "error",
            "error": f"allowed import {failed[0]} failed when the kernel started: {why}",
        }
    linecache.cache[ENVIRONMENT_FILENAME] = (len(source), None, source.splitlines(True), ENVIRONMENT_FILENAME)
    code = compile(tree, ENVIRONMENT_FILENAME, "exec")
    outcome = _call(_execute_module, (code,), seconds, output_limit)
    module = outcome.pop("value", None)
    outcome["environment_names"] = sorted(os.environ)
    if outcome["status"] == "ok":
        _sandbox.environment = module
        outcome["problems"] = _definition_problems(module)
        outcome["name"] = module.NAME if isinstance(getattr(module, "NAME", None), str) else None
    return outcome


def instance_key(seed: int, difficulty: int) -> str:
    return f"{seed}:{difficulty}"


def generate_batch(pairs: list[list[int]], seconds: float, output_limit: int) -> list[dict[str, Any]]:
    """Generate one instance per (seed, difficulty); keep each after a JSON round trip."""
    environment = _sandbox.environment
    results, limit_hits = [], 0  # counted as they come: a batch runs to hundreds of calls
    for seed, difficulty in pairs:
        if limit_hits >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "seed": seed, "difficulty": difficulty, "events": []})
            continue
        outcome = _call(environment.generate, (seed, difficulty), seconds, output_limit)
        limit_hits += outcome["status"] in LIMIT_STATUSES
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
    results, limit_hits = [], 0
    for key, answer_ref in jobs:
        if limit_hits >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "key": key, "answer": answer_ref, "events": []})
            continue
        instance = _sandbox.instances[key]
        if isinstance(answer_ref, int):
            answer = answers[answer_ref]
        else:
            answer = _sandbox.instances[answer_ref]["witness"]
        # verify gets its own copy: a verifier that mutates the instance must not affect the next call
        outcome = _call(environment.verify, (json.loads(json.dumps(instance)), answer), seconds, output_limit)
        limit_hits += outcome["status"] in LIMIT_STATUSES
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
    results, limit_hits = [], 0
    for instance, answer in items:
        if limit_hits >= _LIMIT_HITS_BEFORE_GIVING_UP:
            results.append({"status": "skipped", "events": []})
            continue
        outcome = _call(environment.verify, (instance, answer), seconds, output_limit)
        limit_hits += outcome["status"] in LIMIT_STATUSES
        value = outcome.pop("value", None)
        if outcome["status"] == "ok":
            outcome.update(_describe_score(value))
        results.append(outcome)
    return results
