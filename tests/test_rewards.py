"""Reward functions as trainers call them: verl's compute_score, TRL's reward function, and the
reasoning-gym adapter, scoring exported rows with the environments' own verify in the sandbox."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from example_library import build_example_library

from resyn.evals.export import ExportOptions, export_library
from resyn.settings import Settings
from resyn.tools import rewards
from resyn.tools.ground_truth import GroundTruth
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.reasoning_gym_adapter import ResynDataset, read_rows
from resyn.tools.rewards import RewardItem, RewardScorer, RewardSetupError, item_from_completion

if TYPE_CHECKING:
    import functools

    from omegaconf import DictConfig
    from transformers import PreTrainedTokenizerFast
    from verl import DataProto

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


def load_like_verl(path: Path) -> ModuleType:
    """What verl 0.7–0.9's `load_extern_object(path, name)` does with a file path (verl/utils/
    import_utils.py, `load_module`): execute the file as a fresh module under a made-up name, never
    registered in sys.modules (so a module-level @dataclass under postponed annotations fails)."""
    spec = importlib.util.spec_from_file_location(f"custom_module_{hash(os.path.abspath(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reward_file_loads_and_scores_when_executed_from_its_path(
    export_dir: Path, rows: list[dict]
) -> None:
    """As verl's reward loop calls it: the file executed from its path, then compute_score once per
    sample from a thread pool, all at once, the first calls racing to set up the scorer."""
    module = load_like_verl(Path(rewards.__file__))
    assert module.__name__ not in sys.modules and module.compute_score is not rewards.compute_score
    reward_kwargs = {"environments_dir": str(export_dir / "environments")}  # verl's reward_kwargs
    completions, expected = half_right(rows[:8])

    def score(row: dict, completion: str) -> float:
        return module.compute_score(
            data_source=row["data_source"],
            solution_str=completion,
            ground_truth=row["reward_model"]["ground_truth"],
            extra_info=row["extra_info"],
            **reward_kwargs,
        )

    try:
        with ThreadPoolExecutor(max_workers=8) as threads:
            assert list(threads.map(score, rows[:8], completions)) == expected
    finally:
        module.default_scorer().close()


def test_first_calls_from_many_threads_at_once_share_one_scorer(export_dir: Path) -> None:
    module = load_like_verl(Path(rewards.__file__))  # a fresh module: no scorer yet
    start = threading.Barrier(8)

    def first_call(_: int) -> RewardScorer:
        start.wait()
        return module.default_scorer(export_dir / "environments")

    with ThreadPoolExecutor(max_workers=8) as threads:
        scorers = list(threads.map(first_call, range(8)))
    assert len({id(scorer) for scorer in scorers}) == 1
    scorers[0].close()


# verl itself, where it is installed (not a dependency: see docs/export.md for a CPU-only install).


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A real tokenizer built offline: one token per byte, so any text decodes back exactly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={char: index for index, char in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=alphabet[0])


def verl_batch(rows: list[dict], completions: list[str], tokenizer: PreTrainedTokenizerFast) -> DataProto:
    """A verl DataProto as the rollout hands it to the reward: left-padded prompts, right-padded
    responses, one attention mask over both, and the rows' columns as non-tensor arrays."""
    import numpy as np
    import torch
    from verl import DataProto

    def padded(texts: list[str], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = [tokenizer.encode(text) for text in texts]
        width = max(len(ids) for ids in encoded)
        ids, mask = torch.zeros(len(texts), width, dtype=torch.long), torch.zeros(len(texts), width)
        for index, row_ids in enumerate(encoded):
            span = slice(width - len(row_ids), width) if left else slice(0, len(row_ids))
            ids[index, span], mask[index, span] = torch.tensor(row_ids), 1
        return ids, mask.long()

    prompts, prompt_mask = padded([row["prompt"][0]["content"] for row in rows], left=True)
    responses, response_mask = padded(completions, left=False)
    return DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "attention_mask": torch.cat([prompt_mask, response_mask], dim=1),
        },
        non_tensors={
            key: np.array([copy.deepcopy(row[key]) for row in rows], dtype=object)  # verl edits extra_info
            for key in ("data_source", "reward_model", "extra_info")
        },
    )


def verl_reward_config(path: str, name: str, export_dir: Path) -> DictConfig:
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": path,
                    "name": name,
                    "reward_kwargs": {"environments_dir": str(export_dir / "environments")},
                },
                "reward_manager": {"source": "register", "name": "naive", "module": {"path": None}},
                "sandbox_fusion": None,
            }
        }
    )


def half_right(rows: list[dict]) -> tuple[list[str], list[float]]:
    completions = [
        f"Thinking… <answer>{witness(row)}</answer>" if index % 2 == 0 else "<answer>no idea</answer>"
        for index, row in enumerate(rows)
    ]
    return completions, [1.0 if index % 2 == 0 else 0.0 for index in range(len(rows))]


def close_module_scorer(reward_fn: functools.partial) -> None:
    """Close the scorer of the module verl loaded `reward_fn` from (by file path: a copy of
    resyn.tools.rewards with a scorer of its own; by pkg://: the process's default)."""
    raw_fn = reward_fn.args[0]  # get_custom_reward_fn's partial(_call_with_kwargs, raw_fn, kwargs)
    raw_fn.__globals__["default_scorer"]().close()


@pytest.mark.parametrize("form", ["file", "pkg"])
async def test_verl_reward_loop_scores_an_exported_batch(
    export_dir: Path, rows: list[dict], form: str
) -> None:
    """verl ≥ 0.7's trainer path: load_reward_manager (the custom function, by file path or pkg://)
    and the reward loop's NaiveRewardManager, one run_single per sample, all at once."""
    pytest.importorskip("verl", reason="verl is not installed (docs/export.md: a CPU-only install)")
    from verl.trainer.ppo.reward import load_reward_manager

    path = rewards.__file__ if form == "file" else "pkg://resyn.tools.rewards"
    manager = load_reward_manager(verl_reward_config(path, "compute_score", export_dir), byte_tokenizer())
    completions, expected = half_right(rows[:8])
    data = verl_batch(rows[:8], completions, manager.tokenizer)
    try:
        results = await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))
    finally:
        close_module_scorer(manager.compute_score)
    assert [result["reward_score"] for result in results] == expected


def test_verl_batch_reward_manager_scores_an_exported_batch(export_dir: Path, rows: list[dict]) -> None:
    """verl ≤ 0.6's `reward_model.reward_manager=batch` (still shipped as verl.workers.reward_manager):
    compute_score_batch gets the whole batch; each score lands on the response's last token."""
    pytest.importorskip("verl", reason="verl is not installed (docs/export.md: a CPU-only install)")
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import BatchRewardManager

    config = verl_reward_config(rewards.__file__, "compute_score_batch", export_dir)
    compute_score_batch = get_custom_reward_fn(config)
    tokenizer = byte_tokenizer()
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=compute_score_batch)
    completions, expected = half_right(rows)
    data = verl_batch(rows, completions, tokenizer)
    try:
        reward_tensor = manager(data)
    finally:
        close_module_scorer(compute_score_batch)
    assert reward_tensor.sum(dim=1).tolist() == expected
    last_tokens = [len(tokenizer.encode(text)) - 1 for text in completions]
    assert [reward_tensor[index, last].item() for index, last in enumerate(last_tokens)] == expected
