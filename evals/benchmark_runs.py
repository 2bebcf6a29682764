"""A benchmark run kept on disk, and what it came to.

Every answered example is appended to `<data_dir>/evals/<run>.jsonl` the moment it finishes (the
first line holds the run's options), so a run stopped by Ctrl-C, a crash or an endpoint outage goes
on with `--resume RUN` and asks only what is missing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from resyn.evals.benchmark_data import BenchmarkError, Example


@dataclass
class RunOptions:
    benchmark: str
    model: str
    tasks: list[str] | None = None
    limit: int | None = None
    few_shot: bool = False


@dataclass
class Result:
    key: str
    task: str
    index: int
    target: str
    answer: str
    correct: bool
    response: str
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0


@dataclass
class RunFile:
    """A run's JSONL file: a header line with its options, then one line per answered example."""

    path: Path
    options: RunOptions
    done: dict[str, Result] = field(default_factory=dict)

    @classmethod
    def create(cls, path: Path, options: RunOptions) -> RunFile:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise BenchmarkError(
                f"a run named {path.stem} exists already: continue it with --resume {path.stem}"
            )
        path.write_text(json.dumps({"kind": "run", **asdict(options)}) + "\n", encoding="utf-8")
        return cls(path, options)

    @classmethod
    def open(cls, path: Path) -> RunFile:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise BenchmarkError(f"no run named {path.stem} in {path.parent}") from None
        try:
            header = json.loads(lines[0])
            header.pop("kind")
            options = RunOptions(**header)
        except (IndexError, ValueError, KeyError, TypeError):
            raise BenchmarkError(
                f"{path} is not a resyn benchmark run (its first line is not a run header)"
            ) from None
        run = cls(path, options)
        for line in lines[1:]:
            try:
                result = Result(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut short by a kill: that example is asked again
            run.done[result.key] = result
        if not path.read_bytes().endswith(b"\n"):  # a torn last line must not swallow the next result
            with path.open("a", encoding="utf-8") as out:
                out.write("\n")
        return run

    def append(self, result: Result) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
        self.done[result.key] = result


@dataclass
class Summary:
    benchmark: str
    model: str
    tasks: dict[str, tuple[int, int]]  # task → (correct, answered)
    missing: int  # examples still without an answer (endpoint failures): --resume asks them again

    @property
    def correct(self) -> int:
        return sum(correct for correct, _ in self.tasks.values())

    @property
    def answered(self) -> int:
        return sum(total for _, total in self.tasks.values())

    @property
    def accuracy(self) -> float:
        return self.correct / self.answered if self.answered else 0.0

    @property
    def macro_accuracy(self) -> float:
        return mean(correct / total for correct, total in self.tasks.values() if total) if self.tasks else 0.0

    @property
    def harmonic_accuracy(self) -> float:
        """BBEH's headline number: the harmonic mean of per-task accuracies (in %, each + 1, then − 1,
        so one task at zero does not zero the mean), as a fraction."""
        rates = [100 * correct / total for correct, total in self.tasks.values() if total]
        if not rates:
            return 0.0
        return (len(rates) / sum(1 / (rate + 1) for rate in rates) - 1) / 100

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "accuracy": round(self.accuracy, 4),
            "macro_accuracy": round(self.macro_accuracy, 4),
            "harmonic_accuracy": round(self.harmonic_accuracy, 4),
            "correct": self.correct,
            "answered": self.answered,
            "missing": self.missing,
            "tasks": {
                task: {
                    "correct": correct,
                    "answered": total,
                    "accuracy": round(correct / total, 4) if total else 0.0,
                }
                for task, (correct, total) in self.tasks.items()
            },
        }


def summarise(run: RunFile, examples: list[Example]) -> Summary:
    tasks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missing = 0
    for example in examples:
        result = run.done.get(example.key)
        if result is None:
            missing += 1
            continue
        tasks[example.task][0] += result.correct
        tasks[example.task][1] += 1
    return Summary(
        run.options.benchmark,
        run.options.model,
        {task: (counts[0], counts[1]) for task, counts in sorted(tasks.items())},
        missing,
    )
