"""A loopback OpenAI-compatible endpoint whose scripted replies may call tools, for running the docs'
agent examples with their real `ChatOpenAI` client (resyn.testing.fake_openai answers text only).

`reply(messages)` gets the request's messages (OpenAI's JSON) and returns the assistant message:
`{"content": str}` or `{"tool_calls": [(name, arguments), …]}`. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, Any]]], dict[str, Any]]


class FakeToolCallingEndpoint:
    """`with FakeToolCallingEndpoint(reply) as endpoint:` → `endpoint.url` is the base URL."""

    def __init__(self, reply: Reply) -> None:
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                endpoint.requests.append(body)
                payload = json.dumps(completion(reply(body["messages"]), body["model"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> FakeToolCallingEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(reply: dict[str, Any], model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
    if calls := reply.get("tool_calls"):
        message["tool_calls"] = [
            {
                "id": f"call-{index}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }
