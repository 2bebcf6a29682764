"""A loopback HTTP server that speaks the OpenAI chat-completions format, for CLI tests and benchmarks.

It runs in the test's process (no network beyond 127.0.0.1) and answers with a reply function of
the request's messages. `scripted_world_reply` routes each request to the scripted world's fake
author, solver or scout by its system prompt. Every request is recorded.

It also misbehaves on demand, as real endpoints do: `Faults` picks a share of the requests to
answer with a fault (429 with Retry-After, 500, a hang past the client's timeout, an empty body,
truncated JSON, an empty message, prose without code, a dropped connection), and `go_down()` /
`come_back()` stop and restart the listener on the same port (connections are refused meanwhile).

Its latency is fixed (`latency_s`) unless a `latency` function of the request is given:
`LognormalLatency` draws each role's from a lognormal, as a real model's replies spread. For
benchmarks, `RepairingAuthor` makes a share of the topics need repairs before their draft passes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from resyn.testing import scripted_world

Reply = Callable[[list[dict[str, Any]]], str]


def role_of(messages: list[dict[str, Any]]) -> str:
    system = messages[0]["content"]
    if "curriculum designer" in system:
        return "scout"
    return "author" if "environment" in system else "solver"


def scripted_world_reply(messages: list[dict[str, Any]]) -> str:
    converted: list[BaseMessage] = [
        SystemMessage(message["content"]) if message["role"] == "system" else HumanMessage(message["content"])
        for message in messages
    ]
    return scripted_world.reply_for(role_of(messages))(converted)


@dataclass
class LognormalLatency:
    """Seconds per request, lognormal around each role's median (`sigma` is the log's spread),
    drawn from a seeded generator so a benchmark run can be repeated."""

    medians: dict[str, float]
    sigma: float = 0.6
    seed: int = 0
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, body: dict[str, Any]) -> float:
        with self._lock:
            return self._rng.lognormvariate(math.log(self.medians[role_of(body["messages"])]), self.sigma)


_TOPIC_IN_PROMPT = re.compile(r'(?:Now write the environment for|for the topic) "(.*?)"')


@dataclass
class RepairingAuthor:
    """The scripted world's replies, except that a `share` of the topics (by a hash of the name)
    get 1 to 3 drafts that do not load before the canned environment: each needs repairs (and none
    is the same code as the one before it, which resyn would answer as an unchanged repair)."""

    share: float = 1 / 3
    broken_left: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        reply = scripted_world_reply(messages)
        match = _TOPIC_IN_PROMPT.search(messages[-1]["content"])
        if role_of(messages) != "author" or match is None:
            return reply
        topic = match.group(1)
        digest = int(hashlib.sha256(topic.encode()).hexdigest(), 16)
        with self._lock:
            if topic not in self.broken_left:
                self.broken_left[topic] = 1 + digest // 1000 % 3 if digest % 1000 < self.share * 1000 else 0
            left = self.broken_left[topic]
            self.broken_left[topic] -= left > 0
        if not left:
            return reply
        # each broken draft differs from the last, so it is validated as a real repair would be
        return reply.replace("import random", f"import random\nthis line is not python ({left} left)", 1)


FAULT_KINDS = ("429", "500", "hang", "empty_body", "truncated_json", "empty_message", "no_code", "drop")


@dataclass
class Faults:
    """Which requests get a fault instead of their reply: deterministic, by a hash of the request
    and how often the same request was seen, so a retried request is faulted at most `repeats`
    times in a row. `roles` limits the faults to some roles; "no_code" (a reply that is prose) is
    given to the author only, where it is a reply the author must be asked again for; an author
    makes few calls, so its first one always gets that fault."""

    share: float = 0.25
    kinds: tuple[str, ...] = FAULT_KINDS
    roles: tuple[str, ...] = ("author", "solver", "scout")
    repeats: int = 2
    hang_s: float = 3.0
    seen: Counter = field(default_factory=Counter)
    author_faulted: bool = False

    def pick(self, body: dict[str, Any]) -> str | None:
        role = role_of(body["messages"])
        if role not in self.roles:
            return None
        key = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
        times = self.seen[key]
        self.seen[key] += 1
        if role == "author" and "no_code" in self.kinds and not self.author_faulted:
            self.author_faulted = True
            return "no_code"
        digest = int(hashlib.sha256(f"{key}/{times}".encode()).hexdigest(), 16)
        if times >= self.repeats or digest % 1000 >= self.share * 1000:
            return None
        kind = self.kinds[(digest // 1000) % len(self.kinds)]
        return "500" if kind == "no_code" and role != "author" else kind


class _Server(ThreadingHTTPServer):
    """Each call opens a connection (HTTP/1.0): with socketserver's listen backlog of 5, a burst of
    them (a probe's solver calls, every worker's at once) overflows it, and the kernel drops the
    extra SYNs, which the client resends after 1 s, then 3 s: latency no real server adds (vLLM's
    backlog, uvicorn's, is 2048)."""

    request_queue_size = 2048


class FakeOpenAI:
    """`with FakeOpenAI(reply) as server:` → `server.url` is the base URL; `server.requests` logs every
    request as it arrives, `server.answered` counts the replies sent in full, `server.faulted` the
    faults given, by kind."""

    def __init__(
        self,
        reply: Reply,
        latency_s: float = 0.0,
        faults: Faults | None = None,
        latency: Callable[[dict[str, Any]], float] | None = None,
    ) -> None:
        self.reply, self.faults = reply, faults
        self.latency = latency or (lambda _body: latency_s)
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # replies sent in full
        self.answered_requests: list[int] = []  # indexes into `requests` of the replies sent in full
        self.latency_total_s = 0.0  # seconds the requests waited on the latency, all of them together
        self.faulted: Counter = Counter()
        self.replying = threading.Event()
        self.replying.set()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except (json.JSONDecodeError, ConnectionError):  # a client killed while it sent its request
                    return
                with fake._lock:
                    index = len(fake.requests)
                    fake.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                    )
                    fault = fake.faults.pick(body) if fake.faults else None
                    if fault:
                        fake.faulted[fault] += 1
                    delay = fake.latency(body)
                    fake.latency_total_s += delay
                time.sleep(delay)
                fake.replying.wait()
                try:
                    if fault:
                        fake.misbehave(self, fault, body)
                        return
                    payload = json.dumps(completion(fake.reply(body["messages"]), body["model"])).encode()
                    self.send(200, payload)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client is gone (a test killed it): this call never finished
                with fake._lock:
                    fake.answered += 1
                    fake.answered_requests.append(index)

            def send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.handler = Handler
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def misbehave(self, handler: BaseHTTPRequestHandler, fault: str, body: dict[str, Any]) -> None:
        error = json.dumps(
            {"error": {"message": f"injected fault: {fault}", "type": "server_error"}}
        ).encode()
        if fault == "429":
            handler.send(429, error, {"Retry-After": "1"})
        elif fault == "500":
            handler.send(500, error)
        elif fault == "hang":
            time.sleep(self.faults.hang_s)  # past the client's timeout: it has given up by now
            handler.close_connection = True
        elif fault == "empty_body":
            handler.send(200, b"")
        elif fault == "truncated_json":
            payload = json.dumps(completion(self.reply(body["messages"]), body["model"])).encode()
            handler.send(200, payload[: len(payload) // 2])
        elif fault == "empty_message":
            handler.send(200, json.dumps(completion("", body["model"])).encode())
        elif fault == "no_code":
            prose = "Happy to help! An environment like this needs careful thought; let me outline it first."
            handler.send(200, json.dumps(completion(prose, body["model"])).encode())
        elif fault == "drop":
            handler.close_connection = True  # no response at all
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def __enter__(self) -> FakeOpenAI:
        self._serve()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.go_down()

    def _serve(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def go_down(self) -> None:
        """Stop listening: new connections are refused until `come_back`."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def come_back(self) -> None:
        """Listen again, on the same port."""
        if self.server is None:
            self.server = _Server(("127.0.0.1", self.port), self.handler)
            self._serve()

    def hold(self) -> None:
        """Stop replying: calls from now on stay in flight until `release`."""
        self.replying.clear()

    def release(self) -> None:
        self.replying.set()

    def roles(self) -> list[str]:
        return [role_of(request["messages"]) for request in self.requests]


def completion(content: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }
