"""A damaged workspace, as a user meets it: every command says what is wrong in one line on stderr
and exits 1 (never a traceback, never a silent reset), and nothing in the workspace is lost.

The commands run as real processes on a workspace made the way a job leaves it: a library with
accepted and rejected environments, their sources, traces, checkpoints, a topic graph and the
novelty cache. A read-only folder and a full disk are made for real: permission bits, with root's
capabilities dropped (root ignores the bits otherwise), and a file size limit of zero bytes.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from example_library import build_example_library
from starlette.testclient import TestClient

from resyn.graph.runtime import open_checkpointer
from resyn.memory.embeddings import DIMENSIONS, Embedder
from resyn.memory.library import Library
from resyn.memory.novelty import NoveltyMemory
from resyn.memory.topics import TopicGraph
from resyn.memory.traces import TraceStore
from resyn.memory.vector_index import VectorIndex
from resyn.settings import Settings
from resyn.testing.fake_openai import FakeOpenAI
from resyn.tracing import TraceEvent
from resyn.ui.server import create_app

ENVIRONMENT = "09ababababab"  # shortest-path, accepted
NO_ENDPOINT = {"RESYN_LLM_BASE_URL": "http://127.0.0.1:9/v1", "RESYN_LLM_MODEL": "nobody"}
READING = {
    "library list": ["library", "list", "--json"],
    "library show": ["library", "show", ENVIRONMENT],
    "trace": ["trace", ENVIRONMENT, "--json"],
    "report": ["report", "--json"],
    "export": ["export", "{out}", "--per-env", "1", "--difficulties", "1"],
    "ui": ["ui", "--port", "0"],
    "jobs": ["jobs", "--json"],
}
WRITING = {"expand": ["expand", "--seed-topics", "logic puzzles", "--target", "1", "--job", "new"]}
PR_CAPBSET_DROP = 24
PERMISSION_OVERRIDES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace as a finished job leaves it (made once; each test damages a copy)."""
    data_dir = tmp_path_factory.mktemp("made") / "resyn-data"
    library = build_example_library(data_dir)
    library.save_job("job-a", {"target": 12, "seed_topics": ["puzzles"]}, "finished", "target reached")
    stored = library.accepted_embeddings()
    index = VectorIndex(DIMENSIONS)
    index.add(
        [row for row, _, _ in stored], np.stack([np.frombuffer(blob, np.float32) for *_, blob in stored])
    )
    index.save(data_dir / "novelty.faiss")
    library.close()
    traces = TraceStore(data_dir)
    traces.add(TraceEvent("step", "draft", time.time(), 0.5, {"attempt": 1}, environment_id=ENVIRONMENT))
    traces.close()
    topics, rng = TopicGraph(), np.random.default_rng(0)
    for name in ("logic puzzles", "graph algorithms"):
        vector = rng.normal(size=DIMENSIONS).astype(np.float32)
        topics.add_topic(
            name, vector / np.linalg.norm(vector), origin="seed", parent=None, similar_threshold=0.9
        )
    topics.save(data_dir / "topics.json")

    async def checkpoints() -> None:
        async with open_checkpointer(Settings(data_dir=data_dir)):
            pass

    asyncio.run(checkpoints())
    return data_dir


@pytest.fixture
def workspace(made: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made, tmp_path / "resyn-data"))


def resyn(
    data_dir: Path, *args: str, before: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command as a user runs it; `{out}` in the arguments is a fresh folder beside the workspace."""
    args = tuple(arg.replace("{out}", str(data_dir.parent / "exported")) for arg in args)
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RESYN_DATA_DIR": str(data_dir), **NO_ENDPOINT},
        preexec_fn=before,
    )


def files(data_dir: Path) -> dict[str, bytes]:
    """Every file's bytes, leaving out SQLite's -shm and -wal (its own, rebuilt or empty)."""
    return {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and not path.name.endswith(("-shm", "-wal"))
    }


def assert_one_line_error(done: subprocess.CompletedProcess[str], file: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and file in lines[0], lines[0]
    assert "Traceback" not in done.stdout
    return lines[0]


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, it is a note\n" * (path.stat().st_size // 37))


# ---- a damaged library ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [*READING, *WRITING])
@pytest.mark.parametrize("damage", [truncated, garbage])
def test_a_damaged_library_stops_every_command_in_one_line(
    workspace: Path, damage: Callable[[Path], None], command: str
) -> None:
    damage(workspace / "library.sqlite")
    before = files(workspace)

    done = resyn(workspace, *{**READING, **WRITING}[command])

    line = assert_one_line_error(done, f"{workspace / 'library.sqlite'}: damaged (")
    assert "restore it from a backup" in line
    assert files(workspace) == before
    assert not (workspace.parent / "exported").exists()


@pytest.mark.parametrize("state", ["missing", "empty"])
@pytest.mark.parametrize("command", ["library list", "trace", "report", "export", "ui", "jobs", "expand"])
def test_a_lost_library_beside_its_sources_is_reported_not_replaced(
    workspace: Path, state: str, command: str
) -> None:
    library = workspace / "library.sqlite"
    if state == "missing":
        library.unlink()
    else:
        library.write_bytes(b"")
    before = files(workspace)

    done = resyn(workspace, *{**READING, **WRITING}[command])

    line = assert_one_line_error(done, f"{library}: {state}")
    assert "12 sources in environments/" in line and "move" in line
    assert files(workspace) == before  # still missing, or still 0 bytes: no empty library in its place


def test_a_new_workspace_is_still_made_silently_and_reading_one_makes_nothing(tmp_path: Path) -> None:
    listed = resyn(tmp_path / "new", "library", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [] and listed.stderr == ""
    assert not (tmp_path / "new").exists()

    Library(tmp_path / "new").close()

    assert (tmp_path / "new" / "library.sqlite").stat().st_size > 0


def test_a_damaged_novelty_cache_is_rebuilt_without_a_word(workspace: Path) -> None:
    garbage(workspace / "novelty.faiss")
    library = Library(workspace)
    try:
        assert len(NoveltyMemory(library, Embedder()).index) == 12
    finally:
        library.close()


def test_the_viewer_shows_a_damaged_library_as_one_message(workspace: Path) -> None:
    garbage(workspace / "library.sqlite")
    page = TestClient(create_app(workspace), base_url="http://127.0.0.1").get("/")
    assert page.status_code == 503
    assert "library.sqlite: damaged (file is not a database)" in page.text


# ---- the topic graph and the checkpoints, met by a job ---------------------------------------------------


def expand_against_a_silent_endpoint(workspace: Path) -> subprocess.CompletedProcess[str]:
    with FakeOpenAI(lambda messages: "no reply expected") as server:
        done = subprocess.run(
            [sys.executable, "-m", "resyn", *WRITING["expand"]],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "RESYN_DATA_DIR": str(workspace),
                "RESYN_LLM_BASE_URL": server.url,
                "RESYN_LLM_MODEL": "fake-openai-server",
            },
        )
        assert server.requests == []
    return done


def assert_kept(workspace: Path, before: dict[str, bytes]) -> None:
    """Every file that was there is there, byte for byte (a job may add its lock and log)."""
    after = files(workspace)
    assert {name: after.get(name) for name in before} == before


def test_a_garbage_topic_graph_stops_a_job_in_one_line(workspace: Path) -> None:
    (workspace / "topics.json").write_text('{"version": 1, "graph": ')
    before = files(workspace)

    done = expand_against_a_silent_endpoint(workspace)

    line = assert_one_line_error(done, f"{workspace / 'topics.json'}: damaged (")
    assert line.endswith("restore it from a backup, or move it aside to start afresh")
    assert_kept(workspace, before)


def test_a_garbage_checkpoint_database_stops_a_job_in_one_line(workspace: Path) -> None:
    garbage(workspace / "checkpoints.sqlite")
    before = files(workspace)

    done = expand_against_a_silent_endpoint(workspace)

    assert "file is not a database" in assert_one_line_error(done, str(workspace))
    assert_kept(workspace, before)


# ---- a read-only workspace --------------------------------------------------------------------------------


def without_privileges() -> Callable[[], None] | None:
    """What the child runs before exec so that permission bits bind it: nothing for a plain user;
    for root, dropping from its bounding set the capabilities that override them (root then obeys
    the bits too). The others stay: bubblewrap needs them to build the kernels' sandbox."""
    if os.geteuid() != 0:
        return None

    def drop() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in PERMISSION_OVERRIDES:
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


@pytest.fixture
def read_only(workspace: Path) -> Iterator[Path]:
    paths = [workspace, *workspace.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~0o222)
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(workspace / 'probe')!r}, 'w')"],
        capture_output=True,
        preexec_fn=without_privileges(),
    )
    try:
        if probe.returncode == 0:
            pytest.skip("this machine lets the test's child processes write a read-only folder")
        yield workspace
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.mark.parametrize("command", [name for name in READING if name not in ("ui", "jobs")])
def test_a_read_only_workspace_can_be_read(read_only: Path, command: str) -> None:
    before = files(read_only)

    done = resyn(read_only, *READING[command], before=without_privileges())

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert files(read_only) == before
    assert not list(read_only.glob("*-shm"))  # not even SQLite's own files


def test_a_read_only_workspace_can_be_browsed(read_only: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "resyn", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RESYN_DATA_DIR": str(read_only)},
        preexec_fn=without_privileges(),
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline())
        assert url, server.stderr.read() if server.poll() is not None else "no URL"
        page = fetch(url.group(0) + f"environments/{ENVIRONMENT}")
        assert "shortest-path" in page
    finally:
        server.terminate()
        server.communicate(timeout=10)


def fetch(url: str) -> str:
    """The page, once the server (bound before it starts serving) answers."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as page:
                return page.read().decode()
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_jobs_can_be_listed_in_a_read_only_workspace(read_only: Path) -> None:
    done = resyn(read_only, *READING["jobs"], before=without_privileges())
    assert done.returncode == 0, done.stderr
    assert [row["job"] for row in json.loads(done.stdout)] == ["job-a"]


def test_a_writing_command_in_a_read_only_workspace_says_so_in_one_line(read_only: Path) -> None:
    before = files(read_only)

    done = resyn(read_only, *WRITING["expand"], before=without_privileges())

    line = assert_one_line_error(done, f"{read_only / 'library.sqlite'}: cannot be written")
    assert f"make {read_only} writable" in line
    assert files(read_only) == before


# ---- a full disk ------------------------------------------------------------------------------------------


def on_a_full_disk() -> None:
    """No file may grow by a byte (writes fail with EFBIG, as they fail with ENOSPC on a full disk);
    SIGXFSZ ignored, so the write fails instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.parametrize("command", ["library list", "library show", "trace", "report"])
def test_a_full_disk_can_still_be_read(workspace: Path, command: str) -> None:
    before = files(workspace)

    done = resyn(workspace, *READING[command], before=on_a_full_disk)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert files(workspace) == before


def test_a_writing_command_on_a_full_disk_says_so_in_one_line(workspace: Path) -> None:
    before = files(workspace)

    done = resyn(workspace, *WRITING["expand"], before=on_a_full_disk)

    line = assert_one_line_error(done, f"{workspace / 'library.sqlite'}: cannot be read or written")
    assert "disk I/O error" in line and "free some disk space" in line
    assert files(workspace) == before
    assert all(wal.stat().st_size == 0 for wal in workspace.glob("*-wal"))


# ---- resyn doctor -----------------------------------------------------------------------------------------


def doctor(workspace: Path, before: Callable[[], None] | None = None) -> tuple[int, dict[str, dict]]:
    done = resyn(workspace, "doctor", "--json", before=before)
    report = json.loads(done.stdout)
    assert report["healthy"] == (done.returncode == 0), done.stderr
    return done.returncode, {finding["file"]: finding for finding in report["findings"]}


def test_the_doctor_finds_a_healthy_workspace_healthy(workspace: Path) -> None:
    code, findings = doctor(workspace)

    assert code == 0
    files_in_order = ["library.sqlite", "environments/", "checkpoints.sqlite", "topics.json", "novelty.faiss"]
    assert list(findings) == ["folder", "disk", *files_in_order]
    assert {finding["status"] for finding in findings.values()} == {"ok"}
    assert findings["library.sqlite"]["detail"].startswith("15 environments (12 accepted")
    assert findings["novelty.faiss"]["detail"] == "loads, 12 vectors"


def test_the_doctor_prints_one_line_per_file(workspace: Path) -> None:
    done = resyn(workspace, "doctor")
    assert done.returncode == 0
    assert [line.split()[:2] for line in done.stdout.splitlines()][2:4] == [
        ["ok", "library.sqlite"],
        ["ok", "environments/"],
    ]


@pytest.mark.parametrize(
    ("file", "damage", "found"),
    [
        ("library.sqlite", garbage, "damaged (file is not a database)"),
        ("library.sqlite", truncated, "damaged (database disk image is malformed)"),
        ("library.sqlite", lambda path: path.write_bytes(b""), "empty (0 bytes), yet"),
        ("checkpoints.sqlite", garbage, "damaged (file is not a database)"),
        ("topics.json", garbage, "damaged (Expecting value"),
    ],
    ids=["library-garbage", "library-truncated", "library-empty", "checkpoints-garbage", "topics-garbage"],
)
def test_the_doctor_names_the_damaged_file(
    workspace: Path, file: str, damage: Callable[[Path], None], found: str
) -> None:
    damage(workspace / file)
    before = files(workspace)

    code, findings = doctor(workspace)

    assert code == 1
    assert findings[file]["status"] == "damaged" and findings[file]["detail"].startswith(found)
    assert "restore it from a backup" in findings[file]["detail"]
    assert [name for name, finding in findings.items() if finding["status"] == "damaged"] == [file]
    assert files(workspace) == before


def test_the_doctor_finds_a_page_damaged_deep_inside_the_library(workspace: Path) -> None:
    library = workspace / "library.sqlite"
    pages = bytearray(library.read_bytes())
    pages[-8192:-4096] = b"\xff" * 4096  # one page of the file, not its header or schema
    library.write_bytes(bytes(pages))

    code, findings = doctor(workspace)

    assert code == 1 and findings["library.sqlite"]["status"] == "damaged"


def test_the_doctor_takes_a_stale_cache_and_a_lost_source_calmly(workspace: Path) -> None:
    garbage(workspace / "novelty.faiss")
    next((workspace / "environments").glob("shortest-path-*.py")).unlink()

    code, findings = doctor(workspace)

    assert code == 0
    assert findings["novelty.faiss"]["status"] == "ok" and "rebuilt" in findings["novelty.faiss"]["detail"]
    assert findings["environments/"]["status"] == "warning"
    assert findings["environments/"]["detail"].startswith("1 missing (shortest-path-09ababab.py)")


def test_the_doctor_reads_a_read_only_workspace_and_warns_of_it(read_only: Path) -> None:
    code, findings = doctor(read_only, before=without_privileges())

    assert code == 0
    assert findings["folder"]["status"] == "warning" and "read-only" in findings["folder"]["detail"]
    assert findings["library.sqlite"]["status"] == "ok"
