"""The contamination guard flags near-copies of BBH/BBEH inputs, and caches the embedded benchmark.

The benchmark data is read where it lies (`<repo>/../shared/data`); two small BBH tasks keep this fast.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from resyn.memory.contamination import BenchmarkDataMissing, ContaminationGuard
from resyn.memory.embeddings import Embedder
from resyn.settings import ExpansionSettings

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = ExpansionSettings().contamination_threshold
SMALL_TASKS = {"sports_understanding", "date_understanding"}


class CountingEmbedder(Embedder):
    """The shared embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__()
        self.inner = inner
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    for candidate in (REPO.parent / "shared" / "data", REPO / "shared" / "data"):
        if (candidate / "bbh").is_dir():
            return candidate
    pytest.skip("no BBH/BBEH data at ../shared/data or shared/data (see shared/data/README.md)")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def guard(data_dir: Path, embedder: Embedder) -> ContaminationGuard:
    return ContaminationGuard(data_dir, threshold=THRESHOLD, tasks=SMALL_TASKS, embedder=embedder)


@pytest.mark.parametrize(
    ("question", "task", "benchmark_input"),
    [
        (
            'Is this sentence plausible: "Elias Lindholm beat the buzzer"?',  # reworded
            "sports_understanding",
            'Is the following sentence plausible? "Elias Lindholm beat the buzzer."',
        ),
        (
            "Today is Christmas Eve of 1937. What is the date tomorrow in MM/DD/YYYY?",  # options cut
            "date_understanding",
            "Today is Christmas Eve of 1937. What is the date tomorrow in MM/DD/YYYY? Options: (A)",
        ),
    ],
)
def test_a_lightly_reworded_benchmark_question_is_flagged(
    guard: ContaminationGuard, question: str, task: str, benchmark_input: str
) -> None:
    match = guard.check(["How many vowels are in the word 'reasoning'?", question])
    assert match is not None
    assert (match.question, match.benchmark, match.task, match.example) == (question, "bbh", task, 0)
    assert THRESHOLD <= match.similarity <= 1.0
    assert match.snippet.startswith(benchmark_input)


def test_an_unrelated_question_passes(guard: ContaminationGuard) -> None:
    questions = [
        "Sort the list [14, 3, 27, 8, 5] in ascending order and report the sum of its first two numbers.",
        "Compute (17 × 23) − 4 and give the result modulo 9.",
    ]
    assert guard.check(questions) is None


def test_the_embedded_benchmark_is_cached_until_the_data_changes(
    data_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    (tmp_path / "bbh").mkdir()
    task_file = tmp_path / "bbh" / "sports_understanding.json"
    shutil.copyfile(data_dir / "bbh" / "sports_understanding.json", task_file)
    cache, counting = tmp_path / "benchmark-index", CountingEmbedder(embedder)

    first = ContaminationGuard(tmp_path, threshold=THRESHOLD, cache_dir=cache, embedder=counting)
    assert counting.texts == len(first) == 250

    ContaminationGuard(tmp_path, threshold=THRESHOLD, cache_dir=cache, embedder=counting)
    assert counting.texts == 250  # the second start embeds nothing

    task = json.loads(task_file.read_text())
    task["examples"].append(
        {"input": 'Is the following sentence plausible? "Ada scored a try."', "target": "yes"}
    )
    task_file.write_text(json.dumps(task))
    changed = ContaminationGuard(tmp_path, threshold=THRESHOLD, cache_dir=cache, embedder=counting)
    assert len(changed) == 251 and counting.texts == 250 + 251


def test_a_missing_or_empty_data_directory_says_where_it_looked(tmp_path: Path) -> None:
    for directory in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(BenchmarkDataMissing, match=re.escape(str(directory))) as raised:
            ContaminationGuard(directory, threshold=THRESHOLD)
        assert "\n" not in str(raised.value)
