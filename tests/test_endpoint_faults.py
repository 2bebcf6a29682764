"""`resyn expand` against an endpoint that misbehaves as real ones do: a share of faulty replies of
every kind, an outage longer than the retries, an outage past `--max-outage`, a scout that never
answers. The scripted world is deterministic, so a job that rides out its faults must accept
exactly what a clean run accepts."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from resyn.testing.fake_openai import FAULT_KINDS, FakeOpenAI, Faults, scripted_world_reply
from resyn.testing.jobs import JOB, SERIAL_JOB, job_environment
from resyn.testing.jobs import run_resyn as resyn
from resyn.testing.jobs import start_resyn as start

pytestmark = pytest.mark.slow


def environment(server: FakeOpenAI, data_dir: Path) -> dict[str, str]:
    return job_environment(
        server,
        data_dir,
        RESYN_LLM_TIMEOUT_S="1.5",  # the fake's hangs last 3 s
        RESYN_LLM_RETRY_INITIAL_S="0.05",
        RESYN_LLM_OUTAGE_CHECK_MAX_S="0.5",
    )


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rows(data_dir: Path, query: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "library.sqlite") as db:
        return db.execute(query).fetchall()


def accepted(data_dir: Path) -> list[tuple[str, str]]:
    return rows(data_dir, "SELECT id, topic FROM environments WHERE status = 'accepted' ORDER BY id")


def statuses(data_dir: Path) -> set[str]:
    return {status for (status,) in rows(data_dir, "SELECT status FROM environments")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """What a clean run of the job accepts."""
    data_dir = tmp_path_factory.mktemp("reference")
    with FakeOpenAI(scripted_world_reply) as server:
        done = resyn(environment(server, data_dir), "expand", *SERIAL_JOB, "--job", "k")
    assert done.returncode == 0, done.stderr
    assert "target reached: 6 accepted" in done.stdout
    return accepted(data_dir)


def test_a_job_at_25_percent_faults_accepts_what_a_clean_run_accepts(
    reference: list[tuple[str, str]], tmp_path: Path
) -> None:
    with FakeOpenAI(scripted_world_reply, faults=Faults(share=0.25)) as server:
        done = resyn(environment(server, tmp_path), "expand", *SERIAL_JOB, "--job", "k")
    assert done.returncode == 0, done.stderr
    assert set(server.faulted) == set(FAULT_KINDS), server.faulted  # every kind was met
    assert sum(server.faulted.values()) >= 0.15 * len(server.requests)
    assert accepted(tmp_path) == reference
    assert "llm_failure" not in statuses(tmp_path) and "running" not in statuses(tmp_path)


def test_outages_at_start_and_mid_job_pause_the_job_which_then_loses_nothing(
    reference: list[tuple[str, str]], tmp_path: Path
) -> None:
    with FakeOpenAI(scripted_world_reply, latency_s=0.02) as server:
        server.go_down()  # down before the job's first call
        env = environment(server, tmp_path)
        process = start(env, "expand", *SERIAL_JOB, "--job", "k")
        log = tmp_path / "jobs" / "k.log"
        wait_until(lambda: log.is_file() and "paused" in log.read_text(), process, "the first pause")
        server.come_back()
        wait_until(lambda: len(server.requests) >= 40, process, "40 calls")
        server.go_down()  # mid-job, for far longer than the retries last (0.05 + 0.1 + 0.2 s)
        time.sleep(4)
        server.come_back()
        stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "target reached: 6 accepted" in stdout
    events = log.read_text()
    assert events.count(" paused ") == 2 and events.count(" resumed ") == 2, events
    assert accepted(tmp_path) == reference
    assert "llm_failure" not in statuses(tmp_path) and "running" not in statuses(tmp_path)


def test_an_outage_past_max_outage_stops_the_job_cleanly_and_resume_finishes_it(
    reference: list[tuple[str, str]], tmp_path: Path
) -> None:
    with FakeOpenAI(scripted_world_reply, latency_s=0.02) as server:
        env = environment(server, tmp_path)
        process = start(env, "expand", *SERIAL_JOB, "--job", "k", "--max-outage", "0.05")  # 3 s
        wait_until(lambda: len(server.requests) >= 30, process, "30 calls")
        server.go_down()
        _stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 75, stderr
        [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert "has not answered for 3 s" in line
        assert line.endswith("the job is paused; resume with: resyn expand --resume k")
        assert "Traceback" not in stderr
        assert "llm_failure" not in statuses(tmp_path)  # nothing in flight was charged

        server.come_back()
        resumed = resyn(env, "expand", "--resume", "k")
    assert resumed.returncode == 0, resumed.stderr
    assert "target reached: 6 accepted" in resumed.stdout
    assert accepted(tmp_path) == reference


def test_a_scout_that_never_answers_ends_no_job_and_resume_still_works(tmp_path: Path) -> None:
    kinds = ("500", "truncated_json", "empty_body", "empty_message", "drop", "429")
    scout_down = Faults(share=1.0, kinds=kinds, roles=("scout",), repeats=1_000)
    with FakeOpenAI(scripted_world_reply, faults=scout_down) as server:
        env = environment(server, tmp_path)
        done = resyn(env, "expand", *JOB, "--job", "s")
        assert done.returncode == 0, done.stderr
        assert len(server.faulted) >= 4, server.faulted  # each scout call met several kinds of fault
        log = (tmp_path / "jobs" / "s.log").read_text()
        assert "the scout could not be reached" in log
        assert "job s stopped:" in done.stdout
        again = resyn(env, "expand", "--resume", "s")
        more = resyn(env, "expand", "--resume", "s", "--target", "7")
    assert again.returncode == 0, again.stderr
    assert more.returncode == 0, more.stderr
    assert "running" not in statuses(tmp_path)
