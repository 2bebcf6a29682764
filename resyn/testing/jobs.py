"""`resyn expand` as a real process against the fake server: the job, its environment, its runs.

Shared by the CLI tests and the fault benchmark, so they run the very same job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from resyn.testing.fake_openai import FakeOpenAI

JOB = ["--seed-topics", "logic puzzles, graph algorithms, scheduling", "--target", "6", "--concurrency", "3"]
# One synthesis at a time: the schedule no longer depends on which synthesis ends first, so what the
# job accepts is a function of the scripted world alone (the tests that compare two runs use it).
SERIAL_JOB = [*JOB[:-1], "1"]


def job_environment(server: FakeOpenAI, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment, with every role on `server` and the workspace in `data_dir`."""
    return {
        **os.environ,
        "RESYN_LLM_BASE_URL": server.url,
        "RESYN_LLM_MODEL": "fake-openai-server",
        "RESYN_DATA_DIR": str(data_dir),
        "RESYN_SYNTHESIS_PROBE_INSTANCES": "3",
        **settings,
    }


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "resyn", *args]


def run_resyn(env: dict[str, str], *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout_s, env=env)


def start_resyn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
