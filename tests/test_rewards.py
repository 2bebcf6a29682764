"""Reward functions as trainers call them: verl's compute_score, TRL's reward function, and the
reasoning-gym adapter, scoring exported rows with the environments' own verify in the sandbox."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_library import build_example_library

from resyn.evals.export import ExportOptions, export_library
from resyn.settings import Settings
from resyn.tools import rewards
from resyn.tools.ground_truth import GroundTruth
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.reasoning_gym_adapter import ResynDataset, read_rows
from resyn.tools.rewards import RewardItem, RewardScorer, RewardSetupError, item_from_completion

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # datasets must never reach for the hub here
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
async def export_dir(pool: KernelPool, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    library = build_example_library(tmp_path_factory.mktemp("workspace"))
    out = tmp_path_factory.mktemp("export") / "out"
    options = ExportOptions(out_dir=out, per_env=4, difficulties=(1, 3), test_fraction=0.2, seed=1)
    await export_library(library, options, settings, pool)
    return out


@pytest.fixture(scope="module")
def rows(export_dir: Path) -> list[dict]:
    return read_rows(export_dir / "train.jsonl")


@pytest.fixture(scope="module")
def configured(export_dir: Path) -> Iterator[RewardScorer]:
    """The process's default scorer, pointed at the export's bundle (its own two kernels)."""
    scorer = rewards.configure(export_dir / "environments")
    yield scorer
    scorer.close()


def witness(row: dict) -> str:
    return json.loads(row["reward_model"]["ground_truth"])["instance"]["witness"]


def test_compute_score_scores_a_correct_and_a_wrong_completion(
    rows: list[dict], configured: RewardScorer
) -> None:
    row = rows[0]
    truth = row["reward_model"]["ground_truth"]
    right = f"Let me think. 2 + 2 = 4.\n<answer>{witness(row)}</answer>"
    assert rewards.compute_score(row["data_source"], right, truth, row["extra_info"]) == 1.0
    assert rewards.compute_score(row["data_source"], "<answer>surely not this</answer>", truth) == 0.0


def test_a_ground_truth_reads_back_to_the_string_the_export_wrote(rows: list[dict]) -> None:
    truth = rows[0]["reward_model"]["ground_truth"]
    parsed = GroundTruth.parse(truth)
    assert parsed.environment_id == rows[0]["environment_id"] and parsed.source_sha256
    assert parsed.to_json() == truth
    assert GroundTruth.parse(json.loads(truth)) == parsed  # a dict, as datasets may hand it over
    with pytest.raises(RewardSetupError, match="not a resyn ground truth"):
        GroundTruth.parse("[1, 2]")


def test_a_completion_without_answer_tags_scores_zero(rows: list[dict], configured: RewardScorer) -> None:
    row = rows[0]
    assert rewards.compute_score(row["data_source"], witness(row), row["reward_model"]["ground_truth"]) == 0.0


def test_the_last_answer_pair_counts(rows: list[dict], configured: RewardScorer) -> None:
    row = rows[1]
    truth = row["reward_model"]["ground_truth"]
    assert (
        rewards.compute_score("", f"<answer>no</answer> then <answer>{witness(row)}</answer>", truth) == 1.0
    )
    assert (
        rewards.compute_score("", f"<answer>{witness(row)}</answer> then <answer>no</answer>", truth) == 0.0
    )


def test_the_batch_entry_scores_every_environment_in_order(
    rows: list[dict], configured: RewardScorer
) -> None:
    truths = [row["reward_model"]["ground_truth"] for row in rows]
    completions = [
        f"<answer>{witness(row)}</answer>" if index % 2 == 0 else "<answer>wrong</answer>"
        for index, row in enumerate(rows)
    ]
    scores = rewards.compute_score_batch([row["data_source"] for row in rows], completions, truths)
    assert len({row["environment_id"] for row in rows}) > 5
    assert scores == [1.0 if index % 2 == 0 else 0.0 for index in range(len(rows))]


def test_trl_reward_reads_the_reward_model_column_and_chat_completions(
    export_dir: Path, configured: RewardScorer, tmp_path: Path
) -> None:
    import datasets

    loaded = datasets.load_dataset(
        "json", data_files=str(export_dir / "test.jsonl"), split="train", cache_dir=str(tmp_path)
    )
    batch = loaded[:4]  # TRL hands every extra column to the reward function as a list
    completions = [
        [{"role": "assistant", "content": f"<answer>{witness({'reward_model': rm})}</answer>"}]
        for rm in batch["reward_model"]
    ]
    completions[2] = [{"role": "assistant", "content": "I give up."}]
    kwargs = {key: value for key, value in batch.items() if key != "prompt"}
    assert rewards.trl_reward(batch["prompt"], completions, **kwargs) == [1.0, 1.0, 0.0, 1.0]


def test_a_changed_source_is_refused_rather_than_scored(
    export_dir: Path, rows: list[dict], tmp_path: Path
) -> None:
    bundle = tmp_path / "environments"
    shutil.copytree(export_dir / "environments", bundle)
    path = bundle / f"{rows[0]['environment_id']}.py"
    path.write_text(path.read_text() + "\n# edited\n")
    scorer = RewardScorer(bundle)
    item = item_from_completion(rows[0]["reward_model"]["ground_truth"], "<answer>1</answer>")
    with pytest.raises(RewardSetupError, match="not the source this row was generated with"):
        scorer.score([item])
    scorer.close()


def test_without_a_bundle_the_error_says_where_to_point(rows: list[dict]) -> None:
    item = item_from_completion(rows[0]["reward_model"]["ground_truth"], "<answer>1</answer>")
    with pytest.raises(RewardSetupError, match="RESYN_ENVIRONMENTS_DIR"):
        RewardScorer(None).score([item])
    with pytest.raises(RewardSetupError, match="not a resyn ground truth"):
        item_from_completion('{"instance": {}}', "<answer>1</answer>")


CRASHY = """
NAME = "crashy"
TOPIC = "crashes"
DESCRIPTION = "Verify crashes the interpreter on one answer."

def generate(seed, difficulty):
    return {"question": f"Say {seed}.", "witness": str(seed), "meta": {}}

def verify(instance, answer):
    if answer == "crash":
        import ctypes
        ctypes.string_at(0)  # a segmentation fault: the kernel dies
    if answer == "hang":
        while True:
            pass
    return 1.0 if answer.strip() == instance["witness"] else 0.0
"""


async def test_an_answer_that_kills_the_kernel_costs_only_its_own_score(
    pool: KernelPool, tmp_path: Path
) -> None:
    (tmp_path / "crashy.py").write_text(CRASHY)
    scorer = RewardScorer(tmp_path, pool=pool)
    instance = {"question": "Say 5.", "witness": "5", "meta": {}}
    answers = ["5", "crash", "5", "hang", "4"]
    items = [RewardItem("crashy", None, instance, answer) for answer in answers]
    assert await scorer.ascore(items) == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert await scorer.ascore(items[:1]) == [1.0]  # and the pool is still serving


def test_the_reasoning_gym_adapter_offers_entries_and_scores_answers(export_dir: Path) -> None:
    dataset = ResynDataset(export_dir, split="train")
    try:
        assert len(dataset) == len(read_rows(export_dir / "train.jsonl"))
        entry = dataset[3]
        assert set(entry) == {"question", "answer", "metadata"}
        assert entry["answer"] not in ("", None)
        assert {"environment_id", "seed", "difficulty", "source_dataset"} <= set(entry["metadata"])
        assert dataset.score_answer(entry["answer"], entry) == 1.0
        assert dataset.score_answer(f"so <answer>{entry['answer']}</answer>", entry) == 1.0
        assert dataset.score_answer("definitely wrong", entry) == 0.0
        assert dataset.score_answer(None, entry) == 0.0
        entries = list(dataset)
        assert dataset.score_answers([e["answer"] for e in entries], entries) == [1.0] * len(entries)
    finally:
        dataset.close()
    with pytest.raises(KeyError, match="no 'validation' split"):
        ResynDataset(export_dir, split="validation")
