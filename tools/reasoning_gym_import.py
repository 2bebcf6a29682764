"""A reasoning-gym task as a contract file: the source `resyn import reasoning-gym TASK` writes.

The file it renders is thin and self-describing, so `resyn validate` judges reasoning-gym's own code:

- `generate(seed, difficulty)` sets the task's curriculum to its global level `difficulty - 1`
  (reasoning-gym's `set_global_level`: an attribute with fewer levels stays at its last), builds the
  config with reasoning-gym's default ranges (each range spans the attribute's levels up to that
  one) and the seed, and returns the dataset's one entry: `question`, the entry's `answer` as the
  witness (for the few tasks whose answer is None, the correct answer their metadata carries), and
  in `meta` the config fields the curriculum sets (the sizes the `graded` check compares) plus the
  entry itself, JSON-safe.
- `verify(instance, answer)` rebuilds the entry from the instance and scores it with the task's
  `score_answer`, clamped to [0, 1]; anything that raises scores 0.0.

The file imports reasoning_gym, so it needs the validator's allow-list:
RESYN_VALIDATOR_ALLOWED_IMPORTS='["reasoning_gym"]'.
"""

from __future__ import annotations

import difflib
import inspect
from importlib import metadata
from string import Template
from types import ModuleType

INSTALL_HINT = "pip install 'resyn[reasoning-gym]'"
ALLOWED_IMPORTS = ["reasoning_gym"]


class ReasoningGymMissing(RuntimeError):
    """The optional `reasoning-gym` package is not installed."""


class TaskNotWrappable(ValueError):
    """The name is not a reasoning-gym task, or the task has no curriculum to map difficulty onto."""


_ENVIRONMENT = Template('''\
"""reasoning-gym's `$task` task as a resyn environment (contract v2).

Written by `resyn import reasoning-gym $task`
for reasoning-gym $version. generate builds the task's dataset for the seed, its curriculum at
global level difficulty - 1 (difficulty clamped to 1..5) with reasoning-gym's default ranges;
verify scores with the task's own score_answer. Validate it with
RESYN_VALIDATOR_ALLOWED_IMPORTS='["reasoning_gym"]' (docs/third_party.md).
"""

import json
import math
from functools import cache

from reasoning_gym.factory import DATASETS, create_curriculum, get_score_answer_fn

TASK = $task_literal
NAME = $name
TOPIC = $topic
DESCRIPTION = $description
# The config fields the curriculum sets: reported in meta, where the graded check compares them.
CURRICULUM_FIELDS = $fields
# Where a task whose entries have no answer keeps one correct answer instead.
EXAMPLE_ANSWER_KEYS = ("possible_answer", "example_answer", "example_correct_answer")


def generate(seed: int, difficulty: int) -> dict:
    curriculum = create_curriculum(TASK)
    curriculum.set_global_level(min(max(int(difficulty), 1), 5) - 1)
    config = curriculum.generate_configuration({"seed": seed, "size": 1})
    dataset_class, _ = DATASETS[TASK]
    entry = dataset_class(config=config)[0]
    sizes = {field: getattr(config, field) for field in CURRICULUM_FIELDS}
    saved = {"answer": entry["answer"], "metadata": entry["metadata"]}
    return {
        "question": entry["question"],
        "witness": _witness(entry),
        "meta": json.loads(json.dumps({**sizes, "entry": saved}, default=str)),
    }


def _witness(entry: dict) -> str | None:
    answer = entry["answer"]
    if answer is None:
        found = [entry["metadata"][key] for key in EXAMPLE_ANSWER_KEYS if key in entry["metadata"]]
        answer = found[0] if found else None
    return answer if answer is None or isinstance(answer, str) else json.dumps(answer)


@cache
def _score_answer():
    return get_score_answer_fn(TASK)


def verify(instance: dict, answer: str) -> float:
    try:
        saved = instance["meta"]["entry"]
        entry = {"question": instance["question"], "answer": saved["answer"], "metadata": saved["metadata"]}
        score = float(_score_answer()(answer, entry))
    except Exception:
        return 0.0
    return min(max(score, 0.0), 1.0) if math.isfinite(score) else 0.0
''')


def require_reasoning_gym() -> ModuleType:
    """The installed reasoning_gym package, or ReasoningGymMissing saying how to install it."""
    try:
        import reasoning_gym
    except ModuleNotFoundError:
        raise ReasoningGymMissing(f"reasoning-gym is not installed: {INSTALL_HINT}") from None
    return reasoning_gym


def environment_name(task: str) -> str:
    """The contract NAME of a task's environment: kebab-case, prefixed with its origin."""
    return "reasoning-gym-" + task.replace("_", "-")


def render_environment(task: str) -> str:
    """The source of the contract file that wraps `task`; TaskNotWrappable names close tasks."""
    require_reasoning_gym()
    from reasoning_gym.coaching import RangeAttributeDefinition
    from reasoning_gym.factory import CURRICULA, DATASETS, create_curriculum

    if task not in DATASETS:
        raise TaskNotWrappable(_unknown_task(task, sorted(DATASETS)))
    if task not in CURRICULA:
        raise TaskNotWrappable(
            f"reasoning-gym's {task} has no curriculum, so difficulty 1-5 cannot be mapped onto it"
        )
    fields: list[str] = []
    for attribute in create_curriculum(task).attributes.values():
        if isinstance(attribute, RangeAttributeDefinition):
            fields += [attribute.lower_field_name, attribute.upper_field_name]
        else:
            fields.append(attribute.field_name)
    return _ENVIRONMENT.substitute(
        task=task,
        task_literal=repr(task),
        version=metadata.version("reasoning-gym"),
        name=repr(environment_name(task)),
        topic=repr(task.replace("_", " ")),
        description=repr(_description(task, DATASETS[task][0])),
        fields=repr(tuple(fields)),
    )


def _unknown_task(task: str, known: list[str]) -> str:
    close = difflib.get_close_matches(task, known, n=5, cutoff=0.6)
    if close:
        return f"unknown reasoning-gym task {task!r}; close names: {', '.join(close)}"
    return f"unknown reasoning-gym task {task!r}; the {len(known)} tasks are: {', '.join(known)}"


def _description(task: str, dataset_class: type) -> str:
    """The dataset class's own first docstring line (not an inherited one), when it is a sentence."""
    first_line = inspect.cleandoc(vars(dataset_class).get("__doc__") or "").partition("\n")[0].strip()
    if not first_line or first_line.endswith(":"):
        return f"reasoning-gym's {task} task."
    return f"reasoning-gym's {task} task: {first_line[0].lower()}{first_line[1:].rstrip('.')}."
