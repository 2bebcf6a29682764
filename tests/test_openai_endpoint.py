"""`resyn synthesize` through the real ChatOpenAI client, against a loopback fake endpoint.

The test's own HTTP server speaks the OpenAI chat-completions format (no network beyond
127.0.0.1): the author role gets a canned valid environment, the solver solves short lists only.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resyn.testing.fake_openai import FakeOpenAI

VALID = (Path(__file__).parent / "fixtures" / "valid_minimal.py").read_text()


def canned(messages: list[dict]) -> str:
    """The author gets the valid fixture; the solver solves lists of up to 8 numbers."""
    if "environment" in messages[0]["content"]:
        return f"```python\n{VALID}```"
    numbers = re.findall(r"-?\d+", messages[-1]["content"].split("?")[0])
    return f"<answer>{sum(map(int, numbers)) if len(numbers) <= 8 else 0}</answer>"


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(canned) as server:
        yield server


@pytest.fixture
def fake_endpoint(fake_server: FakeOpenAI) -> str:
    return fake_server.url


def resyn(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_synthesize_talks_to_an_openai_compatible_endpoint(
    fake_server: FakeOpenAI, fake_endpoint: str, tmp_path: Path, fake_api_key: str
) -> None:
    endpoint = {
        "RESYN_LLM_BASE_URL": fake_endpoint,
        "RESYN_LLM_MODEL": "fake-openai-server",
        "RESYN_DATA_DIR": str(tmp_path),
        "RESYN_SYNTHESIS_PROBE_INSTANCES": "2",
    }
    done = resyn("synthesize", "mental arithmetic", "--json", **endpoint)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "accepted"
    assert record["author_model"] == record["solver_model"] == "fake-openai-server"
    assert record["pass_rates"] == {"1": 1.0, "2": 1.0, "3": 0.0, "4": 0.0, "5": 0.0}
    assert record["input_tokens"] == 100 * (1 + 5 * 2)
    assert Path(record["path"]).read_text() == VALID

    requests = fake_server.requests
    assert {request["path"] for request in requests} == {"/v1/chat/completions"}
    assert requests[0]["auth"] == f"Bearer {fake_api_key}"  # the key goes to the endpoint, and nowhere else
    for stored in tmp_path.rglob("*"):
        if stored.is_file():
            assert fake_api_key.encode() not in stored.read_bytes(), stored

    listed = resyn("library", "list", "--json", **endpoint)
    assert [row["id"] for row in json.loads(listed.stdout)] == [record["id"]]
    shown = resyn("library", "show", record["id"][:6], **endpoint)
    assert "accepted" in shown.stdout and "d1=1.00" in shown.stdout


def test_synthesize_shows_progress_and_the_verdict(fake_endpoint: str, tmp_path: Path) -> None:
    endpoint = {
        "RESYN_LLM_BASE_URL": fake_endpoint,
        "RESYN_LLM_MODEL": "fake-openai-server",
        "RESYN_DATA_DIR": str(tmp_path),
        "RESYN_SYNTHESIS_PROBE_INSTANCES": "1",
    }
    done = resyn("synthesize", "mental arithmetic", **endpoint)
    assert done.returncode == 0, done.stderr
    for step in ("draft", "validate", "sample_probe", "solve", "score_probe", "verdict"):
        assert step in done.stdout
    assert "author: fake-openai-server" in done.stdout
    assert f"file {tmp_path / 'environments'}" in done.stdout


def test_synthesize_usage_errors_are_one_line(tmp_path: Path) -> None:
    no_model = resyn(
        "synthesize", "x", RESYN_LLM_BASE_URL="http://127.0.0.1:9/v1", RESYN_DATA_DIR=str(tmp_path)
    )
    assert no_model.returncode == 2
    assert no_model.stderr.strip().splitlines() == [
        "error: author: an endpoint is set (http://127.0.0.1:9/v1) but no model: set RESYN_LLM_MODEL "
        "or RESYN_AUTHOR_MODEL"
    ]
    nothing = resyn("synthesize", "--resume", "nope", RESYN_LLM_BASE_URL="http://127.0.0.1:9/v1",
                    RESYN_LLM_MODEL="m", RESYN_DATA_DIR=str(tmp_path))  # fmt: skip
    assert nothing.returncode == 2 and "no synthesis 'nope' to resume" in nothing.stderr
    assert resyn("library", "list", "--status", "bogus", RESYN_DATA_DIR=str(tmp_path)).returncode == 2


def test_an_unreachable_endpoint_pauses_then_stops_resumably_without_a_verdict(tmp_path: Path) -> None:
    done = resyn(
        "synthesize", "x", "--json",
        RESYN_LLM_BASE_URL="http://127.0.0.1:9/v1", RESYN_LLM_MODEL="m", RESYN_DATA_DIR=str(tmp_path),
        RESYN_LLM_RETRIES="1", RESYN_LLM_RETRY_INITIAL_S="0.01", RESYN_LLM_MAX_OUTAGE_S="1",
    )  # fmt: skip
    assert done.returncode == 75
    note, error = done.stderr.strip().splitlines()[-2:]
    assert "http://127.0.0.1:9/v1 is not answering" in note and "paused" in note
    assert error.startswith("error: http://127.0.0.1:9/v1 has not answered for 1 s")
    assert "resume with: resyn synthesize --resume " in error
    rows = sqlite3.connect(tmp_path / "library.sqlite").execute("SELECT status FROM environments").fetchall()
    assert rows == [("running",)]  # an outage is no verdict: nothing is charged to the topic


def test_synthesize_a_file_asks_only_the_solver_and_the_export_holds_it(
    fake_server: FakeOpenAI, fake_endpoint: str, tmp_path: Path
) -> None:
    endpoint = {
        "RESYN_LLM_BASE_URL": fake_endpoint,
        "RESYN_LLM_MODEL": "fake-openai-server",
        "RESYN_DATA_DIR": str(tmp_path / "workspace"),
        "RESYN_SYNTHESIS_PROBE_INSTANCES": "2",
    }
    file = tmp_path / "list_sum.py"
    file.write_text(VALID)
    done = resyn("synthesize", "--file", str(file), "--json", **endpoint)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["status"], record["topic"]) == ("accepted", "mental arithmetic")  # the file's TOPIC
    assert record["author_model"] == "none (a given file)" and record["solver_model"] == "fake-openai-server"
    assert record["pass_rates"] == {"1": 1.0, "2": 1.0, "3": 0.0, "4": 0.0, "5": 0.0}
    roles = [request["messages"][0]["content"] for request in fake_server.requests]
    assert len(roles) == 5 * 2 and not any("environment" in system for system in roles)  # no author

    out = tmp_path / "out"
    exported = resyn("export", str(out), **endpoint)
    assert exported.returncode == 0, exported.stderr
    assert (out / "environments" / f"{record['id']}.py").read_text() == VALID


def test_synthesize_file_usage_errors_are_one_line(tmp_path: Path) -> None:
    env = {"RESYN_DATA_DIR": str(tmp_path)}
    no_topic = tmp_path / "no_topic.py"
    no_topic.write_text(VALID.replace('TOPIC = "mental arithmetic"', ""))
    not_python = tmp_path / "not_python.py"
    not_python.write_text(VALID.replace("def generate(", "def generate(("))
    for args, message in (
        (("--file", str(tmp_path / "missing.py")), "no such file"),
        (("--file", str(no_topic)), "defines no TOPIC"),
        (("--file", str(not_python)), "defines no TOPIC string (or is not Python)"),
        (("--file", str(no_topic), "--max-repairs", "1"), "--max-repairs is for an author's drafts"),
        (("--resume", "abc", "--file", str(no_topic)), "give no topic or --file with it"),
    ):
        done = resyn("synthesize", *args, **env)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
