"""`resyn ui` over a real workspace made by a short expansion job on scripted models: the pages
in-process, then the whole viewer as a user meets it — a subprocess driven by a headless browser."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from starlette.testclient import TestClient

from resyn.agents.llm import ChatEndpoint
from resyn.graph.expansion import JobOptions, expand
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.settings import Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel
from resyn.ui.pages import side_by_side
from resyn.ui.server import LOOPBACK_HOSTS, create_app

HOSTILE = "<script>window.pwned = 1</script>"


def lenient(reply: str, note: str) -> str:
    """The scripted author's reply with a verify that accepts any answer (fails `rejects_wrong`)."""
    head = reply.split("def verify")[0]
    return f"{head}def verify(instance: dict, answer: str) -> float:\n    return 1.0  # {note}\n```"


def author_who_learns_slowly() -> Callable[[list[BaseMessage]], str]:
    """The first environment stays lenient after its repair; the second is fixed by it."""
    calls = itertools.count(1)

    def reply(messages: list[BaseMessage]) -> str:
        good = scripted_world.author(messages)
        return {
            1: f"A first try {HOSTILE}\n\n" + lenient(good, "lenient"),
            2: lenient(good, "still lenient"),
            3: lenient(good, "lenient"),
        }.get(next(calls), good)

    return reply


@dataclass
class Workspace:
    data_dir: Path
    rejected: str  # invalid after one repair
    accepted: str  # repaired, then probed and accepted


@pytest.fixture(scope="module")
async def workspace(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    data_dir = tmp_path_factory.mktemp("ui-workspace")
    job_settings = settings.model_copy(
        update={"data_dir": data_dir, "synthesis": SynthesisSettings(max_repairs=1, probe_instances=3)}
    )
    limiter = asyncio.Semaphore(8)
    scripts = {
        "author": author_who_learns_slowly(),
        "solver": scripted_world.solver,
        "scout": scripted_world.scout,
    }
    endpoints = {
        role: ChatEndpoint(role, f"scripted-{role}", ScriptedChatModel(script=script), limiter)
        for role, script in scripts.items()
    }
    options = JobOptions(
        name="demo",
        seed_topics=["logic puzzles", "graph algorithms"],
        target=1,
        concurrency=1,
        max_environments=3,
    )
    async with open_runtime(job_settings, endpoints, Embedder()) as runtime:
        await expand(runtime, options)
    library = Library(data_dir)
    statuses = {record.status: record.id for record in library.environments()}
    library.close()
    assert set(statuses) == {"invalid", "accepted"}, statuses
    return Workspace(data_dir, statuses["invalid"], statuses["accepted"])


@pytest.fixture
def client(workspace: Workspace) -> TestClient:
    return TestClient(create_app(workspace.data_dir, LOOPBACK_HOSTS), base_url="http://127.0.0.1")


def test_the_jobs_page_lists_each_job_with_its_verdicts(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/jobs/demo"' in page.text
    assert "finished" in page.text and "target reached: 1 accepted" in page.text
    assert "accepted 1" in page.text and "invalid 1" in page.text


def listed(page: str) -> set[str]:
    """The environment ids in a page's environments table."""
    table = re.search(r'<table id="environments">.*?</table>', page, re.DOTALL)
    return set(re.findall(r'href="/environments/(\w+)"', table.group(0))) if table else set()


def test_a_jobs_environments_filter_by_status_topic_and_reason(
    client: TestClient, workspace: Workspace
) -> None:
    both = {workspace.accepted, workspace.rejected}
    assert listed(client.get("/jobs/demo").text) == both
    assert listed(client.get("/jobs/demo", params={"status": "invalid"}).text) == {workspace.rejected}
    assert listed(client.get("/environments", params={"topic": "GRAPH"}).text) == {workspace.accepted}
    by_reason = client.get("/environments", params={"reason": "rejects_wrong", "job": "demo"}).text
    assert listed(by_reason) == {workspace.rejected}
    nothing = client.get("/environments", params={"reason": "no such reason"}).text
    assert listed(nothing) == set() and "0 environments match" in nothing


def test_an_environment_page_tells_its_whole_story(client: TestClient, workspace: Workspace) -> None:
    page = client.get(f"/environments/{workspace.accepted}").text
    assert 'id="verdict">accepted<' in page
    assert "Attempt 1 · draft" in page and "invalid: rejects_wrong" in page
    assert "Attempt 2 · repair" in page
    assert re.search(r'class="removed">\s*return 1\.0  # lenient<', page)  # the side-by-side diff
    assert re.search(r'class="added">\s*try:<', page)
    assert page.count('<rect class="rate"') == 5  # a bar per difficulty
    assert "In this graph algorithms exercise the recorded values are" in page  # a probe question
    assert 'solve <span class="muted">×15</span>' in page  # the parallel probe answers, one row
    assert "Write a new environment for the topic: graph algorithms" in page  # an LLM message


def test_untrusted_text_is_shown_as_text_and_no_script_can_run(
    client: TestClient, workspace: Workspace
) -> None:
    page = client.get(f"/environments/{workspace.rejected}")
    assert "A first try &lt;script&gt;window.pwned = 1&lt;/script&gt;" in page.text
    assert "<script" not in page.text.lower()
    assert "-&gt; float" in page.text  # the environment's code is escaped too
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_unknown_ids_get_a_not_found_page(client: TestClient) -> None:
    for path in ("/environments/no-such-id", "/jobs/no-such-job", "/elsewhere"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text and "back to the jobs" in page.text


def test_the_viewer_is_read_only_and_answers_only_to_loopback_names(client: TestClient) -> None:
    assert client.post("/").status_code == 405
    assert "read-only" in client.delete("/environments").text
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_an_empty_workspace_gets_a_friendly_page_and_stays_empty(tmp_path: Path) -> None:
    empty = TestClient(create_app(tmp_path / "resyn-data"), base_url="http://127.0.0.1")
    for path in ("/", "/environments"):
        page = empty.get(path)
        assert page.status_code == 200 and "Nothing here yet" in page.text
    assert empty.get("/environments/abc").status_code == 404
    assert not (tmp_path / "resyn-data").exists()


def test_a_unified_diff_becomes_side_by_side_rows() -> None:
    diff = "--- previous\n+++ attempt 2\n@@ -3,4 +3,4 @@\n a\n-b\n-c\n+B\n d\n+e\n"
    rows = [
        (row["kind"], row["left_no"], row["left"], row["right_no"], row["right"])
        for row in side_by_side(diff)
    ]
    assert rows == [
        ("hunk", None, "@@ -3,4 +3,4 @@", None, None),
        ("same", 3, "a", 3, "a"),
        ("change", 4, "b", 4, "B"),
        ("removed", 5, "c", None, None),
        ("same", 6, "d", 5, "d"),
        ("added", None, None, 6, "e"),
    ]


def test_a_taken_port_is_a_one_line_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "resyn", "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RESYN_DATA_DIR": str(tmp_path)},
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


# ---- in a real browser ----------------------------------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    """Debian's chromium (what .ci/run installs), or the one RESYN_TEST_CHROMIUM names."""
    found = os.environ.get("RESYN_TEST_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if found is None:
        pytest.skip("no chromium binary on this machine: `apt-get install chromium` (as .ci/run does)")
    return found


@pytest.fixture
def served(workspace: Workspace, tmp_path: Path) -> Iterator[str]:
    """`resyn ui --port 0` on the workspace, as a user starts it; its URL."""
    log = tmp_path / "ui.log"
    with log.open("w") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "resyn", "ui", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "RESYN_DATA_DIR": str(workspace.data_dir)},
        )
    try:
        first_line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", first_line)
        assert found, first_line + log.read_text()
        yield found.group(0)
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def test_a_user_browses_from_the_jobs_to_an_environments_story(
    chromium: str, served: str, workspace: Workspace
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    expect = sync_api.expect

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        page.goto(served)
        expect(page.locator("h1")).to_have_text("Jobs")
        page.get_by_role("link", name="demo", exact=True).click()
        expect(page.locator("h1")).to_contain_text("Job demo")
        rows = page.locator("#environments tbody tr")
        expect(rows).to_have_count(2)

        page.select_option("select[name=status]", "invalid")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("rejects_wrong")
        rows.first.get_by_role("link", name=workspace.rejected).click()

        expect(page.locator("#verdict")).to_have_text("invalid")
        failed = page.locator("table.checks tr.check.failed td:first-child")
        expect(failed.first).to_have_text("rejects_wrong")
        expect(page.locator("table.diff td.removed")).to_contain_text("# lenient")
        expect(page.locator("table.diff td.added")).to_contain_text("# still lenient")
        first_call = page.locator("details.llm-call").first
        reply = first_call.locator(".message pre").last
        expect(reply).to_be_hidden()
        first_call.locator("summary").click()
        expect(reply).to_be_visible()
        expect(reply).to_contain_text(f"A first try {HOSTILE}")  # shown as text...
        assert page.evaluate("typeof window.pwned") == "undefined"  # ...and never run

        page.go_back()
        page.locator("#status-counts").get_by_text("accepted 1").click()
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link", name=workspace.accepted).click()
        expect(page.locator("#verdict")).to_have_text("accepted")
        expect(page.locator("svg#pass-rates g.bar")).to_have_count(5)
        expect(page.locator("svg#pass-rates g.bar").first).to_contain_text("100%")
        expect(page.locator("#instances tbody tr").first).to_contain_text(
            "In this graph algorithms exercise the recorded values are"
        )
        expect(page.locator(".timeline")).to_contain_text("valid, and the solver solved 60% of the probes")
        browser.close()
