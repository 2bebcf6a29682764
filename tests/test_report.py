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

from resyn.evals.report import CorpusReport, build_report, render_html
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
        ("started", 15), ("drafted", 15), ("valid", 14), ("novel", 13), ("solvable", 12), ("accepted", 12),
    ]  # fmt: skip
    lost = {stage.name: stage.lost for stage in report.funnel}
    assert lost["valid"] == {"invalid": 1} and lost["novel"] == {"duplicate": 1}
    assert lost["solvable"] == {"unsolvable": 1}


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


def test_the_html_page_is_self_contained(report: CorpusReport) -> None:
    page = render_html(report)
    assert page.count("<svg") == 3  # funnel, nearest-neighbour histogram, difficulty profile
    assert "grid-navigation, shortest-path" in page
    assert not re.search(r"<script|<link|<img|src=|url\((?!#)", page)  # url(#id): links within a chart
    assert not re.search(r"https?://(?!www\.w3\.org/)", page)  # only the SVG and XLink namespaces


def test_an_empty_library_reports_without_charts_it_cannot_draw(tmp_path: Path) -> None:
    empty = build_report(Library(tmp_path))
    assert [stage.count for stage in empty.funnel] == [0] * 6 and empty.diversity is None
    assert "<html" in render_html(empty)


def resyn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=cwd, env={**os.environ, **env}
    )


def test_the_command_prints_tables_and_writes_the_page(library: Library, tmp_path: Path) -> None:
    done = resyn("report", "--html", "report.html", cwd=tmp_path, RESYN_DATA_DIR=str(library.data_dir))
    assert done.returncode == 0, done.stderr
    for title in ("funnel", "verdicts", "failed checks", "difficulty profile", "tokens", "diversity"):
        assert title in done.stdout
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_the_command_without_a_library_is_a_one_line_error(tmp_path: Path) -> None:
    done = resyn("report", cwd=tmp_path, RESYN_DATA_DIR=str(tmp_path / "none"))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: no library in {tmp_path / 'none'}: set RESYN_DATA_DIR to the workspace"
    )
