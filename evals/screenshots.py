"""Screenshots of `resyn ui`'s main pages, for the docs: `python -m resyn.evals.screenshots OUT_DIR`.

It builds a workspace in a temporary directory — a short expansion job on scripted models (real
environments, with their timelines, attempts, probes and LLM calls) beside a recorded history
(`record_history`: a finished job of 120 environments, one interrupted and resumed, one running)
— serves it with `resyn ui`, and saves PNGs of the jobs, a job's progress, the environments list
and an environment page, 1280 px wide, with Debian's chromium driven by Playwright (a dev
dependency). `tests/test_ui.py` browses the same history.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from resyn.contract import Status
from resyn.graph.jobs import environment_id
from resyn.memory.library import Library
from resyn.memory.traces import TraceStore
from resyn.memory.workspace import Workspace
from resyn.tracing import TraceEvent

TOPICS = [
    "interval scheduling", "logic puzzles", "queue simulations", "string rewriting", "bit manipulation",
    "calendar arithmetic", "inventory ledgers", "tiling puzzles", "cipher decoding", "elevator scheduling",
    "matrix rotations", "tournament brackets", "unit conversions", "parsing arithmetic", "recipe scaling",
    "train timetables", "bank reconciliation", "sudoku variants", "packing boxes", "clock angles",
]  # fmt: skip
REASONS = {
    Status.ACCEPTED: "valid, and the solver solved {rate}% of the probes (d1=0.90, d2=0.70, d3=0.50)",
    Status.INVALID: "still invalid after 2 repairs: rejects_wrong: verify accepted a wrong answer for seed=3",
    Status.UNSOLVABLE: "the solver solved 0% of the probes (d1=0.00, d2=0.00, d3=0.00)",
    Status.TOO_EASY: "the solver solved 100% of the probes (d1=1.00, d2=1.00, d3=1.00)",
    Status.INVERTED: "pass rates rise with difficulty beyond noise (d1=0.20, d2=0.50, d3=0.90)",
    Status.LLM_FAILURE: "the author could not be reached: timed out after 120 s",
}
VERDICTS = (
    [Status.ACCEPTED] * 8
    + [Status.INVALID] * 5
    + [Status.UNSOLVABLE] * 4
    + [Status.TOO_EASY] * 4
    + [
        Status.DUPLICATE,
        Status.INVERTED,
        Status.LLM_FAILURE,
    ]
)


@dataclass
class History:
    """The recorded jobs, by name, and environments worth pointing at."""

    finished: str = "nightly"  # 120 environments over two and a half hours
    interrupted: str = "overnight"  # stopped with Ctrl-C, resumed, stopped again: 3 unfinished
    running: str = "live"  # runs as long as the process that recorded it: 3 in flight
    duplicate: str = ""  # a duplicate environment of the finished job
    duplicate_of: str = ""  # the accepted environment it duplicates
    in_flight: list[str] = field(default_factory=list)  # the running job's syntheses in flight
    unfinished: list[str] = field(default_factory=list)  # the interrupted job's


def record_history(data_dir: Path, now: float | None = None) -> History:
    """Write three jobs' worth of library rows and trace events, dated back from `now`, through the
    calls the expansion makes (`Library.start`, `progress`, `finish`, `save_job`, …). Nothing runs."""
    now = now or time.time()
    history = History()
    library, traces = Library(data_dir), TraceStore(data_dir)
    recorder = _Recorder(library, traces, random.Random(17))
    try:
        start = now - 3 * 3600
        end = recorder.job(history.finished, start, 120, 75.0) + 20
        traces.add(_job_event(history.finished, "stop", end, "environment budget spent: 120 tried"))
        library.save_job(history.finished, _options(history.finished, 60), "finished", "120 tried")
        recorder.jobs[history.finished] = (start, end)
        history.duplicate, history.duplicate_of = recorder.duplicate

        start = now - 7 * 3600
        stopped = recorder.job(history.interrupted, start, 18, 110.0)
        history.unfinished = recorder.in_flight(history.interrupted, 18, stopped - 200)
        traces.add(_job_event(history.interrupted, "stop", stopped, "interrupted"))
        resumed = now - 4 * 3600
        line = f"resumed {history.interrupted}: 3 unfinished continue"
        traces.add(_job_event(history.interrupted, "job", resumed, line))
        end = recorder.verdicts(history.interrupted, 21, 10, resumed, 140.0) + 40
        traces.add(_job_event(history.interrupted, "stop", end, "interrupted"))
        library.save_job(history.interrupted, _options(history.interrupted, 60), "interrupted", "interrupted")
        recorder.jobs[history.interrupted] = (start, end)

        start = now - 20 * 60
        last = recorder.job(history.running, start, 9, 100.0)
        history.in_flight = recorder.in_flight(history.running, 9, now - 90)
        library.save_job(history.running, _options(history.running, 30), "running")  # this process's pid
        recorder.jobs[history.running] = (start, last)
    finally:
        traces.close()
        library.close()
    _backdate(data_dir, recorder.dates, recorder.jobs)
    return history


@dataclass
class _Recorder:
    library: Library
    traces: TraceStore
    rng: random.Random
    dates: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (created, updated)
    jobs: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (created, updated)
    tokens: dict[str, int] = field(default_factory=dict)  # the job's so far, as its events count them
    accepted: list[str] = field(default_factory=list)
    duplicate: tuple[str, str] = ("", "")

    def job(self, name: str, start: float, count: int, every: float) -> float:
        """A job's start at `start`, a scout call and `count` verdicts about `every` seconds apart;
        the last one's time (its caller saves the job's final state)."""
        self.library.save_job(name, _options(name, 60), "running")
        line = f"started {name}: seeds: logic puzzles, queue simulations"
        self.traces.add(_job_event(name, "job", start, line))
        scout = {"input_tokens": 900, "output_tokens": 300}
        self.library.record_job_progress(name, scout, active_seconds=count * every)
        self.tokens[name] = 1200
        self.traces.add(_job_event(name, "scout", start + 5, "+6 topics: …", tokens=self.tokens[name]))
        return self.verdicts(name, 0, count, start + 10, every)

    def verdicts(self, job: str, first_number: int, count: int, start: float, every: float) -> float:
        at = start
        for number in range(first_number, first_number + count):
            at += every * self.rng.uniform(0.6, 1.4)
            status = self.rng.choice(VERDICTS) if self.accepted else Status.ACCEPTED
            self.verdict(job, number, status, at)
        return at

    def verdict(self, job: str, number: int, status: Status, at: float) -> None:
        identifier, topic = environment_id(job, number), self.rng.choice(TOPICS)
        self.library.start(identifier, topic, "scripted-author", "scripted-solver", job=job)
        reason = REASONS.get(status, "").format(rate=self.rng.choice((40, 50, 60, 70)))
        if status == Status.DUPLICATE:
            original = self.rng.choice(self.accepted)
            reason = f"duplicate of {original} ({topic.replace(' ', '-')}): cosine 0.947 ≥ 0.92"
            self.duplicate = self.duplicate[0] or identifier, self.duplicate[1] or original
        author = {"input_tokens": self.rng.randint(1500, 5000), "output_tokens": self.rng.randint(400, 1500)}
        solver = {"input_tokens": self.rng.randint(500, 2000), "output_tokens": self.rng.randint(50, 300)}
        usage = {key: author[key] + solver[key] for key in author}
        self.library.finish(
            identifier,
            status=status,
            reason=reason,
            source="NAME = 'recorded'",
            report=None,
            pass_rates={"1": 0.9, "2": 0.7, "3": 0.5} if status == Status.ACCEPTED else None,
            usage=usage,
            role_usage={"author": author, "solver": solver},
            name=f"{topic.replace(' ', '-')}-{number}" if status == Status.ACCEPTED else None,
        )
        if status == Status.ACCEPTED:
            self.accepted.append(identifier)
        self.dates[identifier] = (at - self.rng.uniform(60, 300), at)
        self.tokens[job] += sum(usage.values())
        line = f"{identifier} {topic}"
        self.traces.add(_job_event(job, "start", self.dates[identifier][0], line, environment_id=identifier))
        line += f": {reason}"
        self.traces.add(
            _job_event(
                job, status.value, at, line, environment_id=identifier, status=status, tokens=self.tokens[job]
            )
        )

    def in_flight(self, job: str, first_number: int, started: float) -> list[str]:
        """Three syntheses begun at `started`: one drafted, one validated, one answering probes."""
        identifiers = []
        runs = (["draft"], ["draft", "validate"], ["draft", "validate", "sample_probe", "novelty", "solve"])
        for offset, steps in enumerate(runs):
            identifier, topic = environment_id(job, first_number + offset), self.rng.choice(TOPICS)
            self.library.start(identifier, topic, "scripted-author", "scripted-solver", job=job)
            at = started
            for step in steps:
                at += 12
                role = {"draft": "author", "solve": "solver"}.get(step)
                usage = self._call(identifier, job, role, step, at - 4) if role else {}
                self.traces.add(TraceEvent("step", step, at - 12, 12.0, {}, identifier, job))
                self.library.progress(identifier, step, {role: usage} if role else {})
            self.dates[identifier] = (started, at)
            identifiers.append(identifier)
        return identifiers

    def _call(self, identifier: str, job: str, role: str, step: str, at: float) -> dict[str, int]:
        usage = {"input_tokens": self.rng.randint(900, 2400), "output_tokens": self.rng.randint(200, 900)}
        data = {"role": role, "model": f"scripted-{role}", "messages": [], "reply": "…", **usage}
        self.traces.add(TraceEvent("llm_call", role, at, 4.0, data, identifier, job, step))
        return usage


def _options(name: str, target: int) -> dict[str, object]:
    return {"name": name, "seed_topics": ["logic puzzles", "queue simulations"], "target": target}


def _job_event(job: str, name: str, at: float, line: str, **data: object) -> TraceEvent:
    return TraceEvent("job", name, at, 0.0, {"line": line, **data}, job=job)


def _backdate(
    data_dir: Path, environments: dict[str, tuple[float, float]], jobs: dict[str, tuple[float, float]]
) -> None:
    """Date the rows as if they were written over hours: the library stamps its rows with the
    time of the call, and has no call to write the past."""
    with contextlib.closing(sqlite3.connect(Workspace(data_dir).library)) as db, db:
        db.executemany(
            "UPDATE environments SET created=?, updated=? WHERE id=?",
            [(created, updated, key) for key, (created, updated) in environments.items()],
        )
        db.executemany("UPDATE jobs SET created=?, updated=? WHERE name=?",
                       [(created, updated, key) for key, (created, updated) in jobs.items()])  # fmt: skip


# ---- the screenshots ----------------------------------------------------------------------------------


async def scripted_job(data_dir: Path) -> str:
    """A short expansion job on scripted models, as `tests/test_ui.py` runs it; an accepted id."""
    from resyn.agents.llm import ChatEndpoint
    from resyn.graph.expansion import JobOptions, expand
    from resyn.graph.runtime import open_runtime
    from resyn.memory.embeddings import Embedder
    from resyn.settings import Settings, SynthesisSettings
    from resyn.testing import scripted_world
    from resyn.testing.scripted import ScriptedChatModel

    settings = Settings(data_dir=data_dir, synthesis=SynthesisSettings(max_repairs=1, probe_instances=3))
    limiter = asyncio.Semaphore(8)
    scripts = {
        "author": scripted_world.author,
        "solver": scripted_world.solver,
        "scout": scripted_world.scout,
    }
    endpoints = {
        role: ChatEndpoint(role, f"scripted-{role}", ScriptedChatModel(script=script), limiter)
        for role, script in scripts.items()
    }
    options = JobOptions(name="demo", seed_topics=["graph algorithms"], target=1, concurrency=1)
    async with open_runtime(settings, endpoints, Embedder()) as runtime:
        await expand(runtime, options)
    library = Library(data_dir, read_only=True)
    try:
        return next(record.id for record in library.environments(Status.ACCEPTED) if record.job == "demo")
    finally:
        library.close()


@contextlib.contextmanager
def served(data_dir: Path) -> Iterator[str]:
    """`resyn ui --port 0` on the workspace, as a user starts it; its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "resyn", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "RESYN_DATA_DIR": str(data_dir)},
    )
    try:
        found = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline())
        if found is None:
            raise SystemExit("error: resyn ui did not start")
        yield found.group(0)
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def shoot(url: str, out_dir: Path, chromium: str, history: History, environment: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = {
        "jobs.png": ("", None),
        "job-progress.png": (f"jobs/{history.finished}", None),
        "job-running.png": (f"jobs/{history.running}", None),
        "environments.png": ("environments?page=2", None),
        "environment.png": (f"environments/{environment}", None),
        "environment-probe.png": (f"environments/{environment}", "#probe"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        for name, (path, anchor) in shots.items():
            page.goto(url + path)
            if anchor:  # that section at the top of the shot
                page.locator(anchor).evaluate("element => element.scrollIntoView()")
            page.screenshot(path=out_dir / name)
        browser.close()
    return [out_dir / name for name in shots]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m resyn.evals.screenshots OUT_DIR", file=sys.stderr)
        return 2
    chromium = os.environ.get("RESYN_TEST_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        print(
            "error: no chromium binary: `apt-get install chromium`, or set RESYN_TEST_CHROMIUM",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="resyn-screenshots-") as scratch:
        data_dir = Path(scratch) / "resyn-data"
        environment = asyncio.run(scripted_job(data_dir))
        history = record_history(data_dir)
        with served(data_dir) as url:
            for path in shoot(url, Path(argv[0]), chromium, history, environment):
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
