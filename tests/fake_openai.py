"""A loopback HTTP server that speaks the OpenAI chat-completions format, for CLI tests.

It runs in the test's process (no network beyond 127.0.0.1) and answers with a reply function of
the request's messages. `scripted_world_reply` routes each request to the scripted world's fake
author, solver or scout by its system prompt. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from resyn.agents import scripted_world

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


class FakeOpenAI:
    """`with FakeOpenAI(reply) as server:` → `server.url` is the base URL; `server.requests` logs every
    request as it arrives, `server.answered` counts the replies sent in full."""

    def __init__(self, reply: Reply, latency_s: float = 0.0) -> None:
        self.reply, self.latency_s = reply, latency_s
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # replies sent in full
        self.replying = threading.Event()
        self.replying.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                time.sleep(fake.latency_s)
                fake.replying.wait()
                payload = json.dumps(completion(fake.reply(body["messages"]), body["model"])).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client is gone (a test killed it): this call never finished
                fake.answered += 1

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

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
