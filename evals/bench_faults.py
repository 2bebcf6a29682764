"""Benchmark: `resyn expand` against a faulty endpoint, as real processes on a loopback fake server.

    python -m resyn.evals.bench_faults [--share 0.25] [--outage-s 20] [--parts kinds,outage,resume]

1. Fault kinds: one job per kind, that kind injected into `--share` of the requests (each request
   faulted at most twice in a row), against a clean run's accepted set. A row says how many faults
   were met, whether the accepted set is the clean run's, and what the job ended with.
2. Outage: the endpoint goes away for `--outage-s` seconds mid-job, longer than the retries last;
   the timeline is read from the job's log.
3. Resume: a job killed with SIGKILL mid-job, then `resyn expand --resume`: seconds from starting
   the process to its first LLM request (and, for scale, what `resyn --help` costs).

The models are the scripted world (never real model output); the default job is small (target 6,
3 in flight, 3 probe questions per level) so the whole benchmark takes a few minutes.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resyn.contract import Status
from resyn.graph.jobs import job_log_path
from resyn.memory.workspace import Workspace
from resyn.testing.fake_openai import FAULT_KINDS, FakeOpenAI, Faults, scripted_world_reply
from resyn.testing.jobs import JOB, command, job_environment


def environment(server: FakeOpenAI, data_dir: Path) -> dict[str, str]:
    return job_environment(
        server,
        data_dir,
        RESYN_LLM_TIMEOUT_S="1.5",
        RESYN_LLM_RETRY_INITIAL_S="0.2",
        RESYN_LLM_OUTAGE_CHECK_MAX_S="4",
    )


def outcome(data_dir: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    with sqlite3.connect(Workspace(data_dir).library) as db:
        accepted = db.execute(
            "SELECT id, topic FROM environments WHERE status = ? ORDER BY id", (Status.ACCEPTED,)
        )
        counts = db.execute("SELECT status, COUNT(*) FROM environments GROUP BY status")
        return accepted.fetchall(), dict(counts.fetchall())


def run_job(server: FakeOpenAI, data_dir: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        command("expand", *JOB, "--job", "k"),
        capture_output=True,
        text=True,
        env=environment(server, data_dir),
        timeout=900,
    )
    return time.monotonic() - started, done


def wait_until(condition: Callable[[], bool], limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the job made too few calls")
        time.sleep(0.01)


def fault_kinds(console: Console, workdir: Path, share: float) -> None:
    with FakeOpenAI(scripted_world_reply) as server:
        clean_s, done = run_job(server, workdir / "clean")
    reference, _ = outcome(workdir / "clean")
    table = Table(title=f"{share:.0%} of requests faulted, one kind per job (clean run: {clean_s:.0f} s)")
    for column in ("fault", "requests", "faults met", "same accepted set", "verdicts", "exit", "wall s"):
        table.add_column(column)
    for kind in FAULT_KINDS:
        with FakeOpenAI(scripted_world_reply, faults=Faults(share=share, kinds=(kind,))) as server:
            seconds, done = run_job(server, workdir / kind)
        accepted, counts = outcome(workdir / kind)
        verdicts = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
        table.add_row(
            kind,
            str(len(server.requests)),
            str(server.faulted[kind]),
            "yes" if accepted == reference else "NO",
            verdicts,
            str(done.returncode),
            f"{seconds:.0f}",
        )
    console.print(table)


def outage(console: Console, workdir: Path, outage_s: float) -> None:
    data_dir = workdir / "outage"
    with FakeOpenAI(scripted_world_reply, latency_s=0.02) as server:
        process = subprocess.Popen(
            command("expand", *JOB, "--job", "k"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(server, data_dir),
        )
        wait_until(lambda: len(server.requests) >= 40)
        went_down = time.time()
        server.go_down()
        time.sleep(outage_s)
        server.come_back()
        came_back = time.time()
        process.communicate(timeout=600)
    _, counts = outcome(data_dir)
    table = Table(title=f"the endpoint down for {outage_s:.0f} s mid-job (exit {process.returncode})")
    table.add_column("at s")
    table.add_column("what")
    table.add_row("0", "endpoint goes down (connections refused)")
    rows = []
    for line in job_log_path(data_dir, "k").read_text().splitlines():
        stamp, kind, rest = line[:19], line[20:29].strip(), line[29:]
        at = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) - went_down
        if kind in ("paused", "resumed", "stop") or (
            at > -1 and kind in (Status.ACCEPTED, Status.LLM_FAILURE)
        ):
            rows.append((at, f"log: {kind} {rest[:90]}"))
    rows.append((came_back - went_down, "endpoint comes back"))
    for at, what in sorted(rows):
        table.add_row(f"{at:+.0f}", what)
    verdicts = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
    table.add_row("", f"verdicts: {verdicts}")
    console.print(table)


def resume_latency(console: Console, workdir: Path) -> None:
    data_dir = workdir / "resume"
    with FakeOpenAI(scripted_world_reply, latency_s=0.05) as server:
        env = environment(server, data_dir)
        process = subprocess.Popen(command("expand", *JOB, "--job", "k"), env=env, stdout=subprocess.DEVNULL)
        wait_until(lambda: len(server.requests) >= 30)
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = len(server.requests)
        started = time.monotonic()
        resumed = subprocess.Popen(command("expand", "--resume", "k"), env=env, stdout=subprocess.DEVNULL)
        wait_until(lambda: len(server.requests) > before)
        first_call = time.monotonic() - started
        resumed.wait(timeout=600)
    started = time.monotonic()
    subprocess.run(command("--help"), capture_output=True, check=True)
    help_s = time.monotonic() - started
    table = Table(title="resume after kill -9")
    table.add_column("measure")
    table.add_column("seconds")
    table.add_row("`resyn expand --resume k` start → first LLM request", f"{first_call:.2f}")
    table.add_row("`resyn --help` (Python and CLI start-up alone)", f"{help_s:.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.25)
    parser.add_argument("--outage-s", type=float, default=20.0)
    parser.add_argument("--parts", default="kinds,outage,resume", help="which measurements to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="resyn-bench-faults-") as workdir:
        if "kinds" in parts:
            fault_kinds(console, Path(workdir), args.share)
        if "outage" in parts:
            outage(console, Path(workdir), args.outage_s)
        if "resume" in parts:
            resume_latency(console, Path(workdir))


if __name__ == "__main__":
    main()
