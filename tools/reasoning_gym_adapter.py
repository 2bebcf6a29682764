"""A resyn export as a reasoning-gym dataset, for tools built around reasoning-gym's interface.

reasoning-gym's procedural datasets are sequences of `{"question", "answer", "metadata"}` entries with
a `score_answer(answer, entry) -> float` method; evaluation and training wrappers written for it only
touch that. `ResynDataset` offers the same over the rows of a `resyn export` (make one first):

    dataset = ResynDataset("export/", split="test")
    entry = dataset[0]
    dataset.score_answer(extract_answer(model_output), entry)   # the environment's own verify

- `question`: the row's prompt text (the instance's question and the contract's answer instruction);
- `answer`: the instance's witness, one correct answer (reasoning-gym's oracle answer);
- `metadata`: environment id and name, seed, difficulty, the row's ground truth, and the usual
  `source_dataset` / `source_index`.

Scoring goes through `resyn.tools.rewards` (warm sandboxed kernels) with the export's own bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from resyn.contract import extract_answer
from resyn.tools.ground_truth import GroundTruth
from resyn.tools.rewards import RewardItem, RewardScorer


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an exported split file (`.jsonl` or `.parquet`)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


class ResynDataset(Sequence[dict[str, Any]]):
    """The entries of one split of an export; `score_answer` verifies in the sandbox."""

    def __init__(
        self, export_dir: Path | str, split: str = "train", scorer: RewardScorer | None = None
    ) -> None:
        self.export_dir = Path(export_dir)
        manifest_path = self.export_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{self.export_dir} is not a resyn export (no manifest.json)")
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = self.manifest["files"]
        if split not in files:
            known = ", ".join(name for name in files if name != "manifest")
            raise KeyError(f"the export has no {split!r} split; it has: {known}")
        self.split = split
        self._rows = read_rows(self.export_dir / files[split])
        self._scorer = scorer
        self._owns_scorer = scorer is None

    @property
    def scorer(self) -> RewardScorer:
        if self._scorer is None:
            self._scorer = RewardScorer(self.export_dir / self.manifest["environments_dir"])
        return self._scorer

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        row = self._rows[index]
        truth = row["reward_model"]["ground_truth"]
        return {
            "question": row["prompt"][-1]["content"],
            "answer": GroundTruth.parse(truth).instance["witness"],
            "metadata": {
                "source_dataset": row["data_source"],
                "source_index": index,
                "environment_id": row["environment_id"],
                "environment_name": row["environment_name"],
                "seed": row["seed"],
                "difficulty": row["difficulty"],
                "ground_truth": truth,
            },
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[index] for index in range(len(self)))

    def score_answer(self, answer: str | None, entry: dict[str, Any]) -> float:
        """The environment's verify score of a final answer (a whole response with an <answer> pair
        is accepted too); None or an empty answer scores 0.0."""
        return self.score_answers([answer], [entry])[0]

    def score_answers(self, answers: Sequence[str | None], entries: Sequence[dict[str, Any]]) -> list[float]:
        """Many at once: one sandbox round trip per environment instead of one per answer."""
        items = []
        for answer, entry in zip(answers, entries, strict=True):
            if isinstance(answer, str) and "<answer>" in answer:
                answer = extract_answer(answer)
            truth = GroundTruth.parse(entry["metadata"]["ground_truth"])
            items.append(RewardItem.answering(truth, answer or None))
        return self.scorer.score(items)

    def close(self) -> None:
        if self._scorer is not None and self._owns_scorer:
            self._scorer.close()
