"""`resyn report`: funnel, rejections, diversity, difficulty profile and tokens of the example library."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_library import build_example_library
from example_library import report as valid_report

from resyn.evals.report import STAGES, CorpusReport, build_report
from resyn.evals.report_html import render_html
from resyn.memory.embeddings import DIMENSIONS
from resyn.memory.library import Library


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_example_library(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def report(library: Library) -> CorpusReport:
    return build_report(library, cluster_threshold=0.75)


def test_the_funnel_follows_the_pipeline_and_says_where_each_was_lost(report: CorpusReport) -> None:
    assert [(stage.name, stage.count) for stage in report.funnel] == [
        ("started", 15), ("drafted", 15), ("valid", 14), ("novel", 13), ("solvable", 12),
        ("not trivial", 12), ("graded", 12), ("accepted", 12),
    ]  # fmt: skip
    lost = {stage.name: stage.lost for stage in report.funnel}
    assert lost["valid"] == {"invalid": 1} and lost["novel"] == {"duplicate": 1}
    assert lost["solvable"] == {"unsolvable": 1}


def test_too_easy_is_lost_at_not_trivial_and_inverted_at_graded(tmp_path: Path) -> None:
    library = build_example_library(tmp_path)
    for environment_id, status in (("e1efefefefef", "too_easy"), ("e2efefefefef", "inverted")):
        library.start(environment_id, "easy things", "scripted-author", "scripted-solver")
        library.record_attempt(environment_id, 1, "draft", "NAME = 'x'", valid_report(), None)
        library.finish(
            environment_id, status=status, reason=status, source="NAME = 'x'", report=valid_report(),
            pass_rates={str(level): 1.0 for level in range(1, 6)}, usage={},
        )  # fmt: skip
    lost = {stage.name: stage.lost for stage in build_report(library).funnel}
    assert lost["solvable"] == {"unsolvable": 1}  # the solver solved too_easy's probes: solvable
    assert lost["not trivial"] == {"too_easy": 1} and lost["graded"] == {"inverted": 1}


def test_rejections_come_with_reasons_and_failed_checks(report: CorpusReport) -> None:
    assert report.statuses == {"accepted": 12, "invalid": 1, "unsolvable": 1, "duplicate": 1}
    assert report.reasons["duplicate"].startswith("duplicate of")
    assert report.final_failed_checks == {"no_leak": 1}
    assert report.attempt_failed_checks == {"loads": 1, "generates": 1, "no_leak": 1}
    assert report.attempts["mean attempts"] == pytest.approx(16 / 15)


def test_similar_environments_cluster_and_every_one_has_a_nearest_neighbour(report: CorpusReport) -> None:
    diversity = report.diversity
    assert diversity is not None and diversity.embedded_now == 0  # the stored vectors sufficed
    assert diversity.clusters == [["grid-navigation", "shortest-path"]]
    assert diversity.singletons == 10
    assert len(diversity.nearest) == 12
    assert (
        diversity.nearest["shortest-path"]
        > 0.9
        > max(
            cosine
            for name, cosine in diversity.nearest.items()
            if name not in ("shortest-path", "grid-navigation")
        )
    )


def test_a_lower_threshold_joins_more(library: Library) -> None:
    loose = build_report(library, cluster_threshold=-1.0).diversity
    assert loose is not None and loose.clusters and len(loose.clusters[0]) == 12 and loose.singletons == 0


class CountingEmbedder:
    """Stands in for MiniLM: a fixed vector per text, and a record of what it was asked."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        rows = [np.random.default_rng(len(text)).standard_normal(DIMENSIONS) for text in texts]
        return np.asarray([row / np.linalg.norm(row) for row in rows], dtype=np.float32)


def test_accepted_environments_without_a_stored_vector_are_embedded(tmp_path: Path) -> None:
    library = build_example_library(tmp_path)
    library._db.execute(
        "UPDATE environments SET embedding = NULL WHERE name IN ('stack-machine', 'graph-coloring')"
    )
    embedder = CountingEmbedder()
    diversity = build_report(library, embedder=embedder).diversity
    assert diversity is not None and diversity.embedded_now == 2 and len(diversity.nearest) == 12
    assert sorted(text.split(":")[0] for text in embedder.texts) == ["graph-coloring", "stack-machine"]


def test_difficulty_profile_and_tokens(report: CorpusReport) -> None:
    accepted = [report.difficulty[level][0] for level in range(1, 6)]
    assert accepted == sorted(accepted, reverse=True) and accepted[0] > 0.5 > accepted[-1]
    assert all(report.difficulty[level][2] == 12 for level in range(1, 6))
    assert report.difficulty[1][1] < report.difficulty[1][0]  # the unsolvable one drags "all probed" down
    spent = report.tokens["input"] + report.tokens["output"]
    assert report.tokens["all syntheses per accepted environment"] == pytest.approx(spent / 12)


def test_the_report_is_plain_data(report: CorpusReport) -> None:
    data = json.loads(json.dumps(dataclasses.asdict(report)))  # what `resyn report --json` prints
    assert data["funnel"][-1] == {"name": "accepted", "count": 12, "lost": {}}
    assert data["models"] == {"author": ["scripted-author"], "solver": ["scripted-solver"]}


def test_the_html_page_is_self_contained(report: CorpusReport) -> None:
    page = render_html(report, viewer="http://127.0.0.1:8765")
    assert page.count("<svg") == 2  # nearest-neighbour histogram, difficulty profile
    assert not re.search(r"<script|<link|<img|src=|url\((?!#)", page)  # url(#id): links within a chart
    # nothing is fetched: the only addresses are the SVG namespaces and links to the viewer
    assert not re.search(r"https?://(?!www\.w3\.org/|127\.0\.0\.1:8765/environments/)", page)


def test_the_html_page_draws_the_funnel_once_and_links_each_environment(report: CorpusReport) -> None:
    page = render_html(report, viewer="http://127.0.0.1:8765")
    assert page.count("Funnel") == 1 and page.count("<meter") == len(report.funnel)
    viewer = "http://127.0.0.1:8765/environments/"
    # the cluster names, the duplicate's reason and each verdict's example link to the viewer
    assert f'<a href="{viewer}09ababababab">shortest-path</a>' in page
    assert f'duplicate of <a href="{viewer}09ababababab">09ababababab</a>' in page
    assert f'<a href="{viewer}f2cdcdcdcdcd">f2cdcdcdcdcd</a>' in page
    assert "max-width:60rem" not in page  # the page uses its width
    assert "the whole library" in page and "author: scripted-author" in page


def test_an_empty_library_reports_without_charts_it_cannot_draw(tmp_path: Path) -> None:
    empty = build_report(Library(tmp_path))
    assert [stage.count for stage in empty.funnel] == [0] * len(STAGES) and empty.diversity is None
    assert "<html" in render_html(empty)


def resyn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=cwd, env={**os.environ, **env}
    )


def test_the_command_prints_tables_and_writes_the_page(library: Library, tmp_path: Path) -> None:
    done = resyn(
        "report", "--html", "report.html", cwd=tmp_path, RESYN_DATA_DIR=str(library.data_dir), COLUMNS="120"
    )
    assert done.returncode == 0, done.stderr
    for title in ("funnel", "verdicts", "failed checks", "difficulty profile", "tokens", "diversity"):
        assert title in done.stdout
    assert "<svg" in (tmp_path / "report.html").read_text()
    # what each number is: syntheses and validations failing a check; a share as a percentage
    assert "syntheses (final report)" in done.stdout and "validations (all attempts)" in done.stdout
    assert re.search(r"syntheses valid at the first draft[\s│]+\d+%", done.stdout)
    assert re.search(r"the whole library · \d{4}-\d\d-\d\d \d\d:\d\d · author: scripted-author", done.stdout)


def test_the_report_of_one_job_counts_only_its_environments(tmp_path: Path) -> None:
    library = build_example_library(tmp_path)
    library.save_job("night", {"target": 1, "seed_topics": ["easy things"]}, "finished", "target reached")
    library.start("e3efefefefef", "easy things", "scripted-author", "scripted-solver", job="night")
    library.finish(
        "e3efefefefef", status="too_easy", reason="too easy", source="NAME = 'x'", report=valid_report(),
        pass_rates={str(level): 1.0 for level in range(1, 6)},
        usage={"input_tokens": 70, "output_tokens": 30},
    )  # fmt: skip
    library.record_job_progress("night", {"input_tokens": 8, "output_tokens": 2}, 60.0)
    scoped = build_report(library, job="night")
    assert scoped.statuses == {"too_easy": 1} and scoped.job == "night"
    assert scoped.tokens["total"] == library.job_usage("night").total == 110  # the scout's included
    assert scoped.tokens["on environments not accepted"] == 100
    done = resyn("report", "--job", "night", "--json", cwd=tmp_path, RESYN_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tokens"]["total"] == 110
    unknown = resyn("report", "--job", "nope", cwd=tmp_path, RESYN_DATA_DIR=str(tmp_path))
    assert unknown.returncode == 2 and unknown.stderr.strip() == f"error: no job 'nope' in {tmp_path}"


def test_the_command_without_a_library_is_a_one_line_error(tmp_path: Path) -> None:
    done = resyn("report", cwd=tmp_path, RESYN_DATA_DIR=str(tmp_path / "none"))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: no library in {tmp_path / 'none'}: set RESYN_DATA_DIR to the workspace"
    )
