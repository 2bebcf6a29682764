"""`resyn eval bbh|bbeh`: BIG-Bench Hard and BIG-Bench Extra Hard, read where they lie.

The data directory holds the official layouts (`bbh/<task>.json`, `bbh/cot-prompts/<task>.txt`,
`bbeh/bbeh_<task>.json`, `bbeh/mini.json`; each `{"examples": [{"input", "target"}, ...]}`). Nothing
is copied. Each example is one call of the solver role's endpoint: zero-shot with the contract's
`<answer>` instruction, or (BBH, `few_shot`) the official 3-shot chain-of-thought prompt. The final
answer is the last `<answer>…</answer>` when there is one, else the whole reply; then

- BBH: exact match after normalising — the text after "the answer is", whitespace collapsed, a
  trailing period, bold and quotes stripped, case ignored; a target option "(B)" matches "(B)", "B"
  or "(B) the option's text";
- BBEH: the BBEH paper's fuzzy match — "The answer is"/"The final answer is" prefixes and LaTeX
  wrappers removed, lowercased, ", " → ",", first line only, a trailing period dropped; then equal,
  or an option letter with or without parentheses, or equal as numbers, or equal without quotes or
  surrounding brackets, or equal but for a trailing question mark.

Every answered example is appended to `<data_dir>/evals/<run>.jsonl` the moment it finishes (the
first line holds the run's options), so a run stopped by Ctrl-C, a crash or an endpoint outage goes
on with `--resume RUN` and asks only what is missing.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from langchain_core.messages import HumanMessage

from resyn.agents import solver
from resyn.agents.llm import ChatEndpoint, Reply, ask
from resyn.contract import extract_answer

BENCHMARKS = ("bbh", "bbeh")
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


# --- data -----------------------------------------------------------------------------------


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


# --- scoring ----------------------------------------------------------------------------------

_ANSWER_IS = re.compile(r"the (?:final )?answer is\s*:?\s*", re.IGNORECASE)
_OPTION = re.compile(r"^\(?([A-Za-z])\)?(?=$|[\s.:,)])")
_TARGET_OPTION = re.compile(r"^\([A-Z]\)$")


def final_answer(response: str) -> str:
    """The last <answer>…</answer> of a reply, else the whole reply."""
    tagged = extract_answer(response)
    return tagged if tagged is not None else response


def bbh_normalise(text: str) -> str:
    parts = _ANSWER_IS.split(text)
    text = parts[-1].strip().splitlines()[0] if len(parts) > 1 and parts[-1].strip() else text
    text = " ".join(text.replace("**", "").split())
    text = text.strip("`\"' ")
    return text[:-1].rstrip() if text.endswith(".") else text


def bbh_correct(answer: str, target: str) -> bool:
    prediction, target = bbh_normalise(answer), target.strip()
    if _TARGET_OPTION.match(target):
        option = _OPTION.match(prediction)
        return option is not None and option[1].upper() == target[1]
    return prediction.casefold() == " ".join(target.split()).casefold()


_BBEH_PREFIXES = ("The answer is:", "The final answer is ", "The final answer is: ", "The answer is ")


def _strip_latex(text: str) -> str:
    if len(text) > 1 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    for wrapper in ("boxed{", "text{", "texttt{"):
        if wrapper in text and text.endswith("}"):
            text = text[:-1].split(wrapper)[1]
    return text


def bbeh_normalise(text: str) -> str:
    answer = text.strip()
    for prefix in _BBEH_PREFIXES:
        if prefix in answer:
            answer = answer.split(prefix)[-1].strip()
    if answer.endswith("."):
        answer = answer[:-1]
    answer = _strip_latex(answer).lower().replace(", ", ",").replace("**", "")
    answer = answer.split("\n")[0]
    return answer[:-1] if answer.endswith(".") else answer


def bbeh_match(prediction: str, reference: str) -> bool:
    """The BBEH paper's fuzzy match of a normalised prediction and reference."""
    if prediction == reference:
        return True
    if len(prediction) == 3 and prediction[0] == "(" and prediction[-1] == ")":
        return prediction[1] == reference
    if len(reference) == 3 and reference[0] == "(" and reference[-1] == ")":
        return reference[1] == prediction
    try:
        if float(prediction) == float(reference):
            return True
    except ValueError:
        pass
    if prediction.replace("'", "") == reference.replace("'", ""):
        return True
    if prediction == f"[{reference}]" or reference == f"[{prediction}]":
        return True
    return prediction.endswith("?") and prediction[:-1] == reference


def bbeh_correct(answer: str, target: str) -> bool:
    return bbeh_match(bbeh_normalise(answer), target.strip().lower().replace(", ", ","))


CORRECT: dict[str, Callable[[str, str], bool]] = {"bbh": bbh_correct, "bbeh": bbeh_correct}


# --- runs -------------------------------------------------------------------------------------


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


async def run_benchmark(
    run: RunFile,
    examples: list[Example],
    endpoint: ChatEndpoint,
    *,
    data_dir: Path,
    concurrency: int = 8,
    on_result: Callable[[Result | None], None] | None = None,
) -> Summary:
    """Ask every example the run has not answered yet, at most `concurrency` at a time; append
    each result as it comes. An example whose call keeps failing (past the endpoint's retries and
    outage limit) is left for `--resume`."""
    correct = CORRECT[run.options.benchmark]
    limiter = asyncio.Semaphore(concurrency)
    tasks = sorted({example.task for example in examples})
    prompts = {task: few_shot_prompt(data_dir, task) for task in tasks} if run.options.few_shot else {}

    async def one(example: Example) -> None:
        async with limiter:
            started = time.perf_counter()
            try:
                reply = await _ask(example, endpoint, prompts)
            except Exception:  # the endpoint kept failing: this example stays missing
                if on_result:
                    on_result(None)
                return
            text = reply.text
            answer = final_answer(text)
            result = Result(
                key=example.key,
                task=example.task,
                index=example.index,
                target=example.target,
                answer=answer[:2000],
                correct=correct(answer, example.target),
                response=text,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                seconds=round(time.perf_counter() - started, 3),
            )
            run.append(result)
            if on_result:
                on_result(result)

    await asyncio.gather(*(one(example) for example in examples if example.key not in run.done))
    return summarise(run, examples)


async def _ask(example: Example, endpoint: ChatEndpoint, prompts: dict[str, str]) -> Reply:
    """One example asked, zero-shot or (when its task has a prompt) with the few-shot prompt."""
    if example.task in prompts:
        message = f"{prompts[example.task]}\n\nQ: {example.input}\nA: Let's think step by step."
        return await ask(endpoint, [HumanMessage(message)])
    return (await solver.answer(endpoint, example.input)).reply
