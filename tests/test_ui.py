"""`resyn ui` over a real workspace made by a short expansion job on scripted models, and over a
recorded history of three jobs (finished, interrupted, running; `resyn.evals.screenshots`): the
pages in-process, then the whole viewer as a user meets it — a subprocess driven by a headless
browser."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from starlette.testclient import TestClient

from resyn.agents.llm import ChatEndpoint
from resyn.contract import Status
from resyn.evals.screenshots import History, record_history
from resyn.graph.expansion import JobOptions, expand
from resyn.graph.runtime import open_runtime
from resyn.memory.embeddings import Embedder
from resyn.memory.library import Library
from resyn.settings import Settings, SynthesisSettings
from resyn.testing import scripted_world
from resyn.testing.scripted import ScriptedChatModel
from resyn.ui.charts import Verdict, progress_chart
from resyn.ui.server import LOOPBACK_HOSTS, create_app
from resyn.ui.story import probe_rows, side_by_side

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


def test_each_probe_call_names_the_instance_it_answered(client: TestClient, workspace: Workspace) -> None:
    page = client.get(f"/environments/{workspace.accepted}").text
    table = re.search(r'<table id="instances">.*?</table>', page, re.DOTALL).group(0)
    cells = re.findall(r'<td class="num">(\d+)</td>\s*<td class="num muted">(\d+)</td>', table)
    calls = re.findall(
        r"<strong>solver</strong> in solve · <span class=\"probe\">difficulty (\d+), seed (\d+)", page
    )
    assert len(calls) == len(cells) == 15
    assert sorted(calls) == sorted(cells)  # every answer's call, tied to its own instance
    assert 'title="right: verify scored it 1">✓<' in page  # the synthesis's own score of the answer
    assert "This trace holds no scores" not in page


def test_a_recorded_score_marks_each_answer_right_or_wrong() -> None:
    instances = [{"difficulty": 1, "seed": 7, "question": "q", "witness": "12"}] * 3
    steps = [
        {"name": "solve", "span": "a", "data": {"answers": [{"index": 0, "answer": "12"}]}},
        {"name": "solve", "span": "b", "data": {"answers": [{"index": 1, "answer": "13"}]}},
        {
            "name": "solve",
            "span": "c",
            "data": {"answers": [{"index": 2, "answer": None, "error": "timeout"}]},
        },
        {"name": "score_probe", "span": "d", "data": {"scores": [1.0, 0.0, None]}},
    ]
    marks = [row["mark"] for row in probe_rows(instances, steps)]
    assert [mark and mark["symbol"] for mark in marks] == ["✓", "✗", None]
    assert marks[1]["title"] == "wrong: verify scored it 0"


# ---- a recorded history: finished, interrupted and running jobs -----------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, History]:
    data_dir = tmp_path_factory.mktemp("ui-history") / "resyn-data"
    return data_dir, record_history(data_dir)


@pytest.fixture
def recorded(history: tuple[Path, History]) -> TestClient:
    return TestClient(create_app(history[0], LOOPBACK_HOSTS), base_url="http://127.0.0.1")


REFRESH = '<meta http-equiv="refresh" content="5">'


def test_an_interrupted_jobs_syntheses_in_flight_are_unfinished_not_running(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    name, unfinished = history[1].interrupted, history[1].unfinished
    row = re.search(rf'<tr>\s*<td><a href="/jobs/{name}">.*?</tr>', recorded.get("/").text, re.DOTALL).group(
        0
    )
    assert "interrupted" in row and "3 unfinished (resume continues them)" in row
    assert "running" not in row
    page = recorded.get(f"/jobs/{name}").text
    assert f"3 unfinished (resume continues them): <code>resyn expand --resume {name}</code>" in page
    assert '<span class="status unfinished">unfinished 3</span>' in page and "running 3" not in page
    assert REFRESH not in page
    environment = recorded.get(f"/environments/{unfinished[0]}").text
    assert 'id="verdict">unfinished<' in environment and REFRESH not in environment


def test_a_running_jobs_pages_reload_and_show_each_synthesis_step_and_tokens(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    data_dir, recorded_jobs = history
    page = recorded.get(f"/jobs/{recorded_jobs.running}").text
    assert REFRESH in page and "<script" not in page.lower()
    table = re.search(r'<table id="in-progress">.*?</table>', page, re.DOTALL).group(0)
    library = Library(data_dir, read_only=True)
    in_flight = [library.get(identifier) for identifier in recorded_jobs.in_flight]
    library.close()
    for record, step in zip(in_flight, ["after draft", "after validate", "after solve"], strict=True):
        assert record.tokens > 0
        row = rf"{record.id}.*?<td>{step}</td>\s*<td class=\"num\">{record.tokens:,}</td>"
        assert re.search(row, table, re.DOTALL)  # its step and its tokens so far
    latest = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(record.updated for record in in_flight)))
    assert f'last update <span id="last-update">{latest}</span>' in page  # its latest news, not its start
    assert REFRESH in recorded.get("/").text
    assert REFRESH in recorded.get(f"/environments/{recorded_jobs.in_flight[0]}").text
    assert REFRESH not in recorded.get(f"/jobs/{recorded_jobs.finished}").text


def test_a_job_page_charts_accepted_tokens_and_verdicts_over_time(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    data_dir, recorded_jobs = history
    page = recorded.get(f"/jobs/{recorded_jobs.interrupted}").text
    chart = re.search(r'<svg class="chart" id="progress".*?</svg>', page, re.DOTALL).group(0)
    library = Library(data_dir, read_only=True)
    counts = library.job_counts(recorded_jobs.interrupted)
    total = library.job_usage(recorded_jobs.interrupted).total
    library.close()
    for status, count in counts.present().items():
        if status != Status.RUNNING:
            lane = re.search(rf'<g class="lane {status}">.*?</g>', chart, re.DOTALL).group(0)
            assert f">{status} {count}<" in lane and lane.count("<circle") == count
    assert chart.count('<polyline class="accepted"') == chart.count('<polyline class="tokens"') == 1
    assert f">{total:,}<" in chart  # the tokens line ends at the job's total
    assert chart.count('class="resume"') == 1  # it was resumed once


def test_the_viewer_shows_the_job_token_totals_resyn_jobs_prints(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    listed_jobs = subprocess.run(
        [sys.executable, "-m", "resyn", "jobs", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RESYN_DATA_DIR": str(history[0])},
        check=True,
    )
    jobs = json.loads(listed_jobs.stdout)
    assert len(jobs) == 3
    listed_here = recorded.get("/").text
    for job in jobs:
        page = recorded.get(f"/jobs/{job['job']}").text
        assert f'<span id="job-tokens">{job["tokens"]:,}</span>' in page
        row = re.search(rf'<td><a href="/jobs/{job["job"]}">.*?</tr>', listed_here, re.DOTALL).group(0)
        assert f'<td class="num">{job["tokens"]:,}</td>' in row


def rows_of(page: str) -> list[list[str]]:
    """The environments table's rows as their cells' text."""
    table = re.search(r'<table id="environments">.*?</table>', page, re.DOTALL).group(0)
    return [
        [
            re.sub(r"<[^>]+>|\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL)
    ]


def test_environment_lists_come_in_pages_and_sort_by_any_column_keeping_the_filters(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    total = 120 + 31 + 12
    first = recorded.get("/environments").text
    assert len(rows_of(first)) == 50 and f"showing 1–50 of {total}" in first
    assert 'rel="next" href="/environments?page=2"' in first and 'rel="prev"' not in first
    last = recorded.get("/environments", params={"page": "4"}).text
    assert len(rows_of(last)) == total - 150 and f"showing 151–{total} of {total}" in last
    assert 'rel="prev" href="/environments?page=3"' in last and 'rel="next"' not in last

    job = f"/jobs/{history[1].finished}"
    narrowed = recorded.get(job, params={"status": "accepted", "sort": "tokens", "order": "asc"}).text
    tokens = [int(row[5].replace(",", "")) for row in rows_of(narrowed)]
    assert tokens == sorted(tokens) and {row[3] for row in rows_of(narrowed)} == {"accepted"}
    assert f'href="{job}?status=accepted&amp;order=asc&amp;sort=tokens&amp;page=2"' not in narrowed  # < 50
    assert (
        f'href="{job}?status=accepted&amp;sort=tokens" title="sort by tokens">tokens ▲' in narrowed
    )  # a click flips the order
    assert f'href="{job}?status=accepted&amp;sort=topic"' in narrowed  # the other columns keep the filter
    by_topic = rows_of(recorded.get("/environments", params={"sort": "topic", "page": "2"}).text)
    topics = [row[2] for row in by_topic]
    assert topics == sorted(topics, key=str.casefold)


def test_a_bad_sort_order_or_page_is_a_one_line_bad_request(recorded: TestClient) -> None:
    for query, message in [
        (
            {"sort": "size"},
            "unknown sort &#39;size&#39;: sort by one of created, updated, topic, status, tokens",
        ),
        ({"order": "up"}, "unknown order &#39;up&#39;: asc or desc"),
        ({"page": "0"}, "page &#39;0&#39; is not a page number (1, 2, …)"),
    ]:
        page = recorded.get("/environments", params=query)
        assert page.status_code == 400 and f'<p class="note">{message}</p>' in page.text


def test_a_duplicate_links_to_the_environment_it_duplicates(
    recorded: TestClient, history: tuple[Path, History]
) -> None:
    original = history[1].duplicate_of
    link = f'duplicate of <a href="/environments/{original}"><code>{original}</code></a>'
    assert link in recorded.get(f"/environments/{history[1].duplicate}").text
    assert link in recorded.get("/environments", params={"status": "duplicate"}).text


def test_the_progress_chart_places_verdicts_on_the_time_axis() -> None:
    verdicts = [Verdict("a", "accepted", 110.0), Verdict("b", "invalid", 150.0)]
    tokens = [(110.0, 500), (150.0, 700), (200.0, 800)]  # the last: the job's total now
    chart = progress_chart(verdicts, tokens, start=100.0, end=200.0, resumes=[130.0, 900.0], target=1)
    accepted, tokens = chart["panels"]
    assert accepted["top_label"] == "1" and tokens["top_label"] == "800"
    left, right = chart["left"], chart["right"]
    assert accepted["points"].split()[0] == f"{left},{accepted['y_base']}"  # 0 at the start
    assert accepted["points"].split()[-1] == f"{right},{accepted['y_top']}"  # the target, on to the end
    dots = {lane["status"]: [dot["x"] for dot in lane["dots"]] for lane in chart["lanes"]}
    width = right - left
    assert dots == {
        "accepted": [pytest.approx(left + width * 0.1)],
        "invalid": [pytest.approx(left + width * 0.5)],
    }
    assert chart["resumes"] == [pytest.approx(left + width * 0.3)]  # a time past the axis is not drawn
    assert progress_chart([], [(1.0, 10)], 0.0, 1.0, []) is None


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


@contextlib.contextmanager
def serving(data_dir: Path, log: Path) -> Iterator[str]:
    """`resyn ui --port 0` on the workspace, as a user starts it; its URL."""
    with log.open("w") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "resyn", "ui", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "RESYN_DATA_DIR": str(data_dir)},
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


@pytest.fixture
def served(workspace: Workspace, tmp_path: Path) -> Iterator[str]:
    with serving(workspace.data_dir, tmp_path / "ui.log") as url:
        yield url


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


def test_a_running_jobs_page_follows_it_and_a_long_list_comes_in_pages(chromium: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    expect = sync_api.expect
    data_dir = tmp_path / "resyn-data"
    recorded_jobs = record_history(data_dir)  # this test writes to it: a workspace of its own

    with serving(data_dir, tmp_path / "ui.log") as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        page.goto(f"{url}jobs/{recorded_jobs.running}")
        expect(page.locator("#job-state")).to_have_text("running")
        drafting = page.locator("#in-progress tbody tr").first
        expect(drafting).to_contain_text("after draft")
        library = Library(data_dir)  # the synthesis moves on while nobody touches the page
        library.progress(recorded_jobs.in_flight[0], "validate", {})
        library.close()
        expect(drafting).to_contain_text("after validate", timeout=20_000)  # the page reloaded itself

        page.goto(f"{url}environments")
        rows, matched = page.locator("#environments tbody tr"), page.locator("#matched")
        expect(rows).to_have_count(50)
        expect(matched).to_have_text("showing 1–50 of 163")
        page.locator("#pages-top").get_by_role("link", name="next →").click()
        expect(matched).to_have_text("showing 51–100 of 163")
        page.locator("#environments thead").get_by_role("link", name="tokens").click()
        expect(matched).to_have_text("showing 1–50 of 163")  # a new order starts on page 1
        tokens = [
            int(text.replace(",", "")) for text in page.locator("#environments td.num").all_inner_texts()
        ]
        assert tokens == sorted(tokens, reverse=True)
        page.select_option("select[name=status]", "accepted")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#environments tbody tr .status").first).to_have_text("accepted")
        assert "sort=tokens" in page.url  # the filter keeps the sort
        browser.close()
