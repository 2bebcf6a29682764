"""Reward functions for RL trainers: score a completion with its environment's own `verify`.

A row of a `resyn export` says what to verify in `reward_model.ground_truth` (`GroundTruth`, see
docs/export.md):

    reward_model.ground_truth = '{"environment_id": ..., "instance": {...}, "source_sha256": ...}'

and the environment's source is `<environments dir>/<environment_id>.py`, the export's bundle, found
through `configure(dir)`, the `environments_dir` keyword, or `RESYN_ENVIRONMENTS_DIR`. Its hash must
match the row's: a reward from a different source than the one the row was generated with is refused.
Scoring runs in warm sandboxed kernels, owned by one `RewardScorer` per process
(`resyn.tools.reward_scorer`).

- verl: `custom_reward_function.path` = this file, `.name` = `compute_score` (or `compute_score_batch`
  with verl's batch reward manager).
- TRL: `GRPOTrainer(reward_funcs=[trl_reward], ...)`; the dataset's `reward_model` column reaches it.

A completion without an `<answer>…</answer>` pair scores 0.0 without calling `verify` (docs/contract.md);
a `verify` that raises, hangs or crashes scores 0.0. A row whose environment cannot be found or
loaded raises `RewardSetupError`: silently zero rewards would waste a training run.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resyn.contract import extract_answer
from resyn.settings import Settings
from resyn.tools.ground_truth import GroundTruth, RewardSetupError
from resyn.tools.reward_scorer import ENVIRONMENTS_DIR_VARIABLE, RewardItem, RewardScorer

__all__ = [
    "RewardItem",
    "RewardScorer",
    "RewardSetupError",
    "compute_score",
    "compute_score_batch",
    "configure",
    "default_scorer",
    "item_from_completion",
    "trl_reward",
]

KERNELS_VARIABLE = "RESYN_REWARD_KERNELS"


def item_from_completion(ground_truth: str | dict[str, Any], completion: str) -> RewardItem:
    """What to score for one completion: its row's ground truth and the answer between its tags."""
    return RewardItem.answering(GroundTruth.parse(ground_truth), extract_answer(completion))


_default: RewardScorer | None = None
_default_pid: int | None = None
# Held while the scorer is looked at and replaced (not while one closes): verl's reward loop makes its
# first calls from many threads at once, and they must share one scorer, not close each other's.
_default_lock = threading.Lock()


def configure(
    environments_dir: Path | str | None = None, settings: Settings | None = None, kernels: int | None = None
) -> RewardScorer:
    """Set up this process's reward functions: where the environment sources are (else the variable
    RESYN_ENVIRONMENTS_DIR) and how many kernels score (else RESYN_REWARD_KERNELS, else the kernel
    pool size). Replaces (and closes) the scorer they used before; returns the new one."""
    scorer = _new_scorer(environments_dir, settings, kernels)
    with _default_lock:
        previous = _install(scorer)
    if previous is not None:
        previous.close()
    return scorer


def default_scorer(environments_dir: Path | str | None = None) -> RewardScorer:
    """The process's scorer, made on first use (and anew in a forked child: threads do not fork)."""
    wanted = Path(environments_dir) if environments_dir is not None else None
    with _default_lock:
        current = _default if _default_pid == os.getpid() else None
        if current is not None and (wanted is None or current.sources.directory == wanted):
            return current
        scorer = _new_scorer(environments_dir)
        previous = _install(scorer)
    if previous is not None:
        previous.close()
    return scorer


def _new_scorer(
    environments_dir: Path | str | None, settings: Settings | None = None, kernels: int | None = None
) -> RewardScorer:
    """A scorer (it starts no kernel before it scores) with the variables' defaults filled in."""
    directory = environments_dir or os.environ.get(ENVIRONMENTS_DIR_VARIABLE) or None
    try:
        kernels = kernels or int(os.environ.get(KERNELS_VARIABLE) or 0) or None
    except ValueError:
        raise RewardSetupError(f"{KERNELS_VARIABLE} must be a whole number of kernels") from None
    return RewardScorer(directory, settings, kernels=kernels)


def _install(scorer: RewardScorer) -> RewardScorer | None:
    """Make `scorer` the process's (under _default_lock); returns the one it replaces, to close."""
    global _default, _default_pid
    previous = _default if _default_pid == os.getpid() else None
    _default, _default_pid = scorer, os.getpid()
    return previous


@atexit.register
def _close_default() -> None:
    if _default is not None and _default_pid == os.getpid():
        _default.close()


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | dict[str, Any],
    extra_info: dict[str, Any] | None = None,
    environments_dir: str | None = None,
    **_kwargs: Any,
) -> float:
    """verl's reward signature: the score of one response (`environments_dir` via reward_kwargs)."""
    [score] = default_scorer(environments_dir).score([item_from_completion(ground_truth, solution_str)])
    return score


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[str | dict[str, Any]],
    extra_infos: Sequence[dict[str, Any] | None] | None = None,
    environments_dir: str | None = None,
    **_kwargs: Any,
) -> list[float]:
    """verl's batch reward manager signature: all of a step's responses in one call (fastest)."""
    items = [
        item_from_completion(truth, text) for truth, text in zip(ground_truths, solution_strs, strict=True)
    ]
    return default_scorer(environments_dir).score(items)


def trl_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL's GRPO reward function: dataset columns arrive as keyword lists (`reward_model`, or a
    `ground_truth` column); a conversational completion is scored on its last message."""
    if "ground_truth" in kwargs:
        truths = list(kwargs["ground_truth"])
    elif "reward_model" in kwargs:
        truths = [entry["ground_truth"] for entry in kwargs["reward_model"]]
    else:
        raise RewardSetupError("trl_reward needs the dataset's reward_model (or ground_truth) column")
    texts = [_completion_text(completion) for completion in completions]
    items = [item_from_completion(truth, text) for truth, text in zip(truths, texts, strict=True)]
    return default_scorer().score(items)


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return str(completion or "")
