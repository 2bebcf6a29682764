"""BBH and BBEH examples, read where they lie: nothing is copied.

The data directory holds the official layouts (`bbh/<task>.json`, `bbh/cot-prompts/<task>.txt`,
`bbeh/bbeh_<task>.json`, `bbeh/mini.json`; each `{"examples": [{"input", "target"}, ...]}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MINI = "mini"  # BBEH Mini: bbeh/mini.json, 460 examples drawn from all tasks


class BenchmarkError(Exception):
    """The data or the run cannot be used as asked; one line that says what to do."""


@dataclass(frozen=True)
class Example:
    task: str
    index: int
    input: str
    target: str

    @property
    def key(self) -> str:
        return f"{self.task}/{self.index}"


def task_files(data_dir: Path, benchmark: str) -> dict[str, Path]:
    """Task name → file. BBEH tasks are named without their `bbeh_` prefix; `mini` is BBEH Mini."""
    folder = data_dir / benchmark
    if benchmark == "bbh":
        files = {path.stem: path for path in sorted(folder.glob("*.json"))}
    else:
        files = {path.stem.removeprefix("bbeh_"): path for path in sorted(folder.glob("bbeh_*.json"))}
        if (folder / "mini.json").is_file():
            files[MINI] = folder / "mini.json"
    if not files:
        raise BenchmarkError(
            f"no {benchmark.upper()} task files in {folder}: point --data at the directory that holds "
            f"{benchmark}/ in the official layout"
        )
    return files


def load_examples(
    data_dir: Path, benchmark: str, tasks: list[str] | None, limit: int | None
) -> list[Example]:
    """The chosen tasks' examples (the first `limit` of each). Default: every task (BBEH: not Mini)."""
    files = task_files(data_dir, benchmark)
    chosen = tasks or [task for task in files if task != MINI]
    unknown = [task for task in chosen if task.removeprefix("bbeh_") not in files]
    if unknown:
        raise BenchmarkError(f"unknown {benchmark} task(s): {', '.join(unknown)}; known: {', '.join(files)}")
    examples = []
    for task in chosen:
        name = task.removeprefix("bbeh_")
        try:
            rows = json.loads(files[name].read_text(encoding="utf-8"))["examples"]
        except (OSError, ValueError, KeyError) as error:
            raise BenchmarkError(f"cannot read {files[name]}: {error}") from None
        for index, row in enumerate(rows[:limit] if limit else rows):
            examples.append(Example(name, index, str(row["input"]), str(row["target"])))
    return examples


def few_shot_prompt(data_dir: Path, task: str) -> str:
    """BBH's official 3-shot chain-of-thought prompt for a task, without its canary header."""
    path = data_dir / "bbh" / "cot-prompts" / f"{task}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise BenchmarkError(f"no chain-of-thought prompt for {task} at {path}") from None
    return text.split("-----", 1)[-1].strip()
