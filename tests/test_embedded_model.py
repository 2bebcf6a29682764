"""The embedded default model, end to end: no endpoint set, a real (tiny) model, an honest verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resyn.embedded import EMBEDDED_MODEL


@pytest.mark.slow
def test_synthesize_runs_on_the_embedded_model_and_says_so(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RESYN_LLM_BASE")}
    environment.update(RESYN_DATA_DIR=str(tmp_path), RESYN_EMBEDDED_MAX_TOKENS="400")
    command = [
        sys.executable,
        "-m",
        "resyn",
        "synthesize",
        "dependency sorting",
        "--max-repairs",
        "0",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode in (0, 1), done.stderr
    assert "embedded SmolLM2-135M model" in done.stderr and "far too small" in done.stderr
    record = json.loads(done.stdout)
    assert record["author_model"] == EMBEDDED_MODEL
    assert record["status"] in ("accepted", "invalid", "unsolvable", "too_easy", "inverted")
    assert record["output_tokens"] > 0  # a real model answered: its tokens were counted
    servers = [path for path in Path("/proc").glob("[0-9]*/cmdline") if b"llama_cpp.server" in _read(path)]
    assert servers == [], "the embedded server must stop with resyn"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_the_embedded_server_dies_with_a_killed_resyn(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RESYN_LLM_BASE")}
    environment.update(RESYN_DATA_DIR=str(tmp_path))
    command = [sys.executable, "-m", "resyn", "synthesize", "dependency sorting", "--max-repairs", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        deadline = time.monotonic() + 120
        while not _servers_of(process.pid):
            assert process.poll() is None and time.monotonic() < deadline, "the embedded server never started"
            time.sleep(0.2)
        time.sleep(3)  # a generation is in flight
        servers = _servers_of(process.pid)
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in servers), "the embedded server outlived kill -9"


def _servers_of(parent: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        text = _read(status).decode(errors="replace")
        if f"PPid:\t{parent}\n" in text and b"llama_cpp.server" in _read(status.with_name("cmdline")):
            found.append(int(status.parent.name))
    return found
