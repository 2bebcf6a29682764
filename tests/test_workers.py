"""Several `resyn expand` workers on one job, against one PostgreSQL database (docs/scale.md).

Real processes, each with its own workspace folder (as on separate machines) and the database of
the session's throwaway cluster in common; the models are the scripted world behind a loopback
OpenAI-compatible server. One worker is killed with SIGKILL in the middle of a synthesis.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row
from starlette.testclient import TestClient

from resyn.graph.expansion_graph import INTERRUPTED_ELSEWHERE
from resyn.settings import ExpansionSettings
from resyn.testing.fake_openai import FakeOpenAI, role_of, scripted_world_reply
from resyn.testing.jobs import job_environment, run_resyn, start_resyn
from resyn.ui.server import create_app

pytestmark = pytest.mark.slow

TARGET = 8
PASSWORD = "s3cret-db-password"  # in the workers' database URL: it must show up nowhere
JOB = ["--seed-topics", "logic puzzles, graph algorithms, scheduling", "--target", str(TARGET),
       "--concurrency", "2", "--job", "shared"]  # fmt: skip
# As many seed topics as the target, and a scout with nothing to add: every topic must be accepted
# for the target to be reached, so the accepted set is the same whoever ran which synthesis.
SEEDS = ("logic puzzles, graph algorithms, scheduling, river crossings, cellular automata, voting rules,"
         " train timetables, magic squares")  # fmt: skip
FIXED_JOB = [*JOB[:1], SEEDS, *JOB[2:]]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(scripted_world_reply, latency_s=0.1) as fake:
        yield fake


def no_new_topics(messages: list[dict]) -> str:
    """The scripted world, with a scout that finds nothing: the frontier is the seed topics."""
    return "[]" if role_of(messages) == "scout" else scripted_world_reply(messages)


@pytest.fixture
def fixed_frontier_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(no_new_topics, latency_s=0.1) as fake:
        yield fake


def worker_environment(server: FakeOpenAI, folder: Path, database_url: str) -> dict[str, str]:
    """A worker's environment: its own folder, the shared database, quick beats and expiry."""
    return job_environment(
        server,
        folder,
        RESYN_DATABASE_URL=database_url,
        RESYN_EXPANSION_HEARTBEAT_S="0.3",
        RESYN_EXPANSION_WORKER_EXPIRY_S="5",
    )


def environments(database_url: str) -> list[dict]:
    """The job's rows; none while the workers are still setting the new database up."""
    query = "SELECT * FROM environments WHERE job = 'shared' ORDER BY created"
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        try:
            return connection.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def wait_for_a_synthesis_in_flight(
    database_url: str, processes: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], str]:
    """The first of `processes` seen with a synthesis that has finished a step and not yet its
    verdict, and that synthesis's id."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, process.communicate()
        for row, process in itertools.product(environments(database_url), processes):
            mine = row["worker"] is not None and f":{process.pid}:" in row["worker"]
            if mine and row["status"] == "running" and row["step"] is not None:
                return process, row["id"]
        time.sleep(0.05)
    raise AssertionError("no worker had a synthesis in flight")


def accepted_sources(folder: Path) -> set[str]:
    """The source hashes accepted in a single-worker workspace's SQLite library."""
    with sqlite3.connect(folder / "library.sqlite") as connection:
        rows = connection.execute("SELECT source_hash FROM environments WHERE status = 'accepted'")
        return {hash_ for (hash_,) in rows}


def test_three_workers_one_killed_mid_synthesis_finish_the_job_exactly(
    fixed_frontier_server: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    server = fixed_frontier_server
    reference = run_resyn(job_environment(server, tmp_path / "reference"), "expand", *FIXED_JOB)
    assert reference.returncode == 0 and f"target reached: {TARGET} accepted" in reference.stdout
    postgres_url = postgres_url.replace("postgresql://resyn@", f"postgresql://resyn:{PASSWORD}@")
    folders = [tmp_path / f"worker-{number}" for number in range(3)]  # as on three machines
    workers = [
        start_resyn(worker_environment(server, f, postgres_url), "expand", *FIXED_JOB) for f in folders
    ]
    doomed, orphan = wait_for_a_synthesis_in_flight(postgres_url, workers)
    survivors = [worker for worker in workers if worker is not doomed]
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate()
    for worker in survivors:
        stdout, stderr = worker.communicate(timeout=400)
        assert worker.returncode == 0, stderr
        assert f"target reached: {TARGET} accepted" in stdout
        assert PASSWORD not in stdout + stderr

    rows = environments(postgres_url)
    accepted = [row for row in rows if row["status"] == "accepted"]
    assert len(accepted) == TARGET  # exactly the target, job-wide
    assert not [row for row in rows if row["status"] == "running"]  # nothing left stuck
    assert len({row["source_hash"] for row in accepted}) == TARGET  # no environment accepted twice
    assert {row["source_hash"] for row in accepted} == accepted_sources(tmp_path / "reference")
    vectors = [np.frombuffer(row["embedding"], dtype=np.float32) for row in accepted]
    threshold = ExpansionSettings().duplicate_threshold
    for first, second in itertools.combinations(vectors, 2):  # no near-duplicate pair
        cosine = float(first @ second / (np.linalg.norm(first) * np.linalg.norm(second)))
        assert cosine < threshold
    taken_over = next(row for row in rows if row["id"] == orphan)
    assert taken_over["status"] != "running" and f":{doomed.pid}:" not in taken_over["worker"]
    assert len({row["worker"] for row in accepted}) >= 2  # the work was shared

    listed = run_resyn(worker_environment(server, tmp_path / "reader", postgres_url), "jobs", "--json")
    [job] = json.loads(listed.stdout)
    assert job["state"] == "finished" and job["accepted"] == TARGET
    assert len(job["workers"]) == 3 and not any(worker["alive"] for worker in job["workers"])
    written = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]  # logs, sources, caches
    with psycopg.connect(postgres_url) as connection:
        traced = connection.execute("SELECT string_agg(data, ' ') FROM trace_events").fetchone()[0]
    assert not [text for text in written if PASSWORD.encode() in text] and PASSWORD not in traced


def test_a_job_on_the_database_reads_from_any_folder_and_ctrl_c_stops_every_worker(
    server: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    slow_job = [*JOB[:3], "50", *JOB[4:]]  # a target far off: the job is stopped, not finished
    folders = [tmp_path / f"worker-{number}" for number in range(2)]
    workers = [start_resyn(worker_environment(server, f, postgres_url), "expand", *slow_job) for f in folders]
    reader = worker_environment(server, tmp_path / "reader", postgres_url)
    deadline = time.monotonic() + 180
    while not [row for row in environments(postgres_url) if row["status"] == "accepted"]:
        assert time.monotonic() < deadline, "no environment accepted in time"
        for worker in workers:
            assert worker.poll() is None, worker.communicate()
        time.sleep(0.1)
    [running] = json.loads(run_resyn(reader, "jobs", "--json").stdout)
    assert running["state"] == "running" and sum(worker["alive"] for worker in running["workers"]) == 2

    workers[0].send_signal(signal.SIGINT)  # Ctrl-C on one worker
    _, stderr = workers[0].communicate(timeout=120)
    assert workers[0].returncode == 130 and "interrupted" in stderr
    stdout, stderr = workers[1].communicate(timeout=120)  # the other stops at its next pick
    assert workers[1].returncode == 0, stderr
    assert f"stopped: {INTERRUPTED_ELSEWHERE}" in stdout
    [stopped] = json.loads(run_resyn(reader, "jobs", "--json").stdout)
    assert stopped["state"] == "interrupted" and not any(worker["alive"] for worker in stopped["workers"])
    report = run_resyn(reader, "report", "--job", "shared")
    assert report.returncode == 0, report.stderr
    assert "accepted" in report.stdout
    doctor = run_resyn(reader, "doctor")  # it checks SQLite files: said in one line, not pretended
    assert doctor.returncode == 2 and "PostgreSQL" in doctor.stderr and doctor.stderr.count("\n") == 1
    viewer = TestClient(
        create_app(tmp_path / "reader", database_url=postgres_url), base_url="http://127.0.0.1"
    )
    page = viewer.get("/")
    assert page.status_code == 200 and "shared" in page.text and "interrupted" in page.text
