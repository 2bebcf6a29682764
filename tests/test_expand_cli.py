"""`resyn expand` as users run it: a real process, killed with SIGKILL or interrupted with Ctrl-C,
then resumed. The models are the scripted world behind a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from resyn.testing.fake_openai import FakeOpenAI, role_of, scripted_world_reply
from resyn.testing.jobs import JOB, SERIAL_JOB, job_environment, run_resyn
from resyn.testing.jobs import start_resyn as start

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(scripted_world_reply, latency_s=0.1) as fake:
        yield fake


def environment(server: FakeOpenAI, data_dir: Path) -> dict[str, str]:
    return job_environment(server, data_dir)


def resyn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_resyn(env, *args, timeout_s=300)


def wait_for_requests(server: FakeOpenAI, process: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 120
    while len(server.requests) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the job made too few LLM calls"
        time.sleep(0.02)


def accepted(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        return db.execute(
            "SELECT id, topic FROM environments WHERE status = 'accepted' ORDER BY id"
        ).fetchall()


def statuses(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        return [row[0] for row in db.execute("SELECT status FROM environments")]


def job_state(env: dict[str, str], name: str) -> str:
    listed = resyn(env, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    return next(row["state"] for row in json.loads(listed.stdout) if row["job"] == name)


def asked(requests: list[dict]) -> Counter:
    """How often each distinct request (its messages) was made."""
    return Counter(json.dumps(request["messages"], sort_keys=True) for request in requests)


def test_kill_9_mid_probe_then_resume_loses_nothing_and_repeats_no_finished_call(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = resyn(environment(server, reference_dir), "expand", *SERIAL_JOB, "--job", "k")
    assert reference.returncode == 0, reference.stderr
    assert "target reached: 6 accepted" in reference.stdout
    reference_calls = len(server.requests)

    env = environment(server, killed_dir)
    process = start(env, "expand", *SERIAL_JOB, "--job", "k")
    wait_for_requests(server, process, reference_calls + 30)  # mid-job
    while server.roles()[-1] != "solver":  # mid-probe: a solver's question was just asked
        wait_for_requests(server, process, len(server.requests) + 1)
    # Calls in flight stay unanswered; those answered have a moment to reach the checkpoint (the
    # write after an LLM reply takes milliseconds: a kill inside that window repeats that call).
    server.hold()
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    at_kill, answered = len(server.requests), set(server.answered_requests)
    server.release()
    assert job_state(env, "k") == "stopped"
    killed_run = range(reference_calls, at_kill)
    unanswered = [server.requests[index] for index in killed_run if index not in answered]
    answered_before_the_kill = [server.requests[index] for index in killed_run if index in answered]
    assert "solver" in [role_of(request["messages"]) for request in unanswered]

    resumed = resyn(env, "expand", "--resume", "k")
    assert resumed.returncode == 0, resumed.stderr
    assert "target reached: 6 accepted" in resumed.stdout
    assert accepted(killed_dir) == accepted(reference_dir)  # same environments, none lost or doubled
    assert "running" not in statuses(killed_dir)
    # every request of the killed job and its resume was one of the reference job's, and none that
    # was answered before the kill (a probe's answers included) was asked again
    made = asked(answered_before_the_kill) + asked(server.requests[at_kill:])
    assert not made - (asked(server.requests[:reference_calls]) + asked(unanswered))
    assert job_state(env, "k") == "finished"


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(server: FakeOpenAI, tmp_path: Path) -> None:
    env = environment(server, tmp_path)
    process = start(env, "expand", *JOB, "--job", "c")
    wait_for_requests(server, process, 20)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "error: interrupted; resume with: resyn expand --resume c"
    assert job_state(env, "c") == "interrupted"

    resumed = resyn(env, "expand", "--resume", "c")
    assert resumed.returncode == 0, resumed.stderr
    assert len(accepted(tmp_path)) == 6
    log = (tmp_path / "jobs" / "c.log").read_text()
    assert "resumed c" in log and "target reached: 6 accepted" in log


def test_expand_usage_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RESYN_DATA_DIR": str(tmp_path)}
    cases = {
        ("expand", "--target", "3"): "give --seed-topics",
        ("expand", "--seed-topics", "a, b"): "give --target N",
        ("expand", "--resume", "x", "--seed-topics", "a"): "only budgets may change",
        ("expand", "--resume", "nope"): "no job 'nope'",
        ("expand", "--seed-topics", "a", "--target", "1", "--benchmark-dir", "/no/such"): "no such directory",
    }
    for args, message in cases.items():
        done = resyn(env, *args)
        assert done.returncode == 2, (args, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("error: ") and message in line, (args, line)
    empty = resyn(env, "jobs", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
