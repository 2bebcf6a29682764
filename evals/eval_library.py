"""`resyn eval library`: a model's accuracy on held-out instances of the accepted environments.

Held-out means seeds no one has used: the evaluation takes the seeds right after the solver probe's,
which exports never draw (`resyn.seeds` states the whole policy). Instances are generated and answers
scored in the sandbox; each question is one call of the solver role's endpoint (bounded by
`concurrency` and the endpoint's own limiter), answered under the contract's `<answer>` convention.
An answer is correct when the environment's verify scores it 1.0, as in the probe.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import mean

from resyn.agents import solver
from resyn.agents.llm import ChatEndpoint
from resyn.contract import SampledInstance
from resyn.evals.export import difficulty_plan, exportable, sample_environment
from resyn.memory.library import Library
from resyn.memory.records import EnvironmentRecord
from resyn.seeds import held_out_seeds
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.sampler import SampleError
from resyn.tools.scoring import score_in_kernel


@dataclass
class Cell:
    """Answers of one environment at one difficulty."""

    solved: int = 0
    total: int = 0
    score_sum: float = 0.0  # verify's scores, for partial credit

    @property
    def accuracy(self) -> float:
        return self.solved / self.total if self.total else 0.0


@dataclass
class LibraryEval:
    model: str
    per_env: int
    difficulties: tuple[int, ...]
    cells: dict[str, dict[int, Cell]] = field(default_factory=dict)  # environment name → level → cell
    names: dict[str, str] = field(default_factory=dict)  # environment id → name
    failed: dict[str, str] = field(default_factory=dict)  # environment id → why it was not evaluated
    errors: int = 0  # questions the endpoint could not answer (counted as wrong)
    input_tokens: int = 0
    output_tokens: int = 0

    def by_difficulty(self) -> dict[int, Cell]:
        merged: dict[int, Cell] = defaultdict(Cell)
        for levels in self.cells.values():
            for level, cell in levels.items():
                merged[level].solved += cell.solved
                merged[level].total += cell.total
                merged[level].score_sum += cell.score_sum
        return dict(sorted(merged.items()))

    def overall(self) -> Cell:
        total = Cell()
        for cell in self.by_difficulty().values():
            total.solved, total.total = total.solved + cell.solved, total.total + cell.total
            total.score_sum += cell.score_sum
        return total

    def mean_environment_accuracy(self) -> float:
        """Each environment weighs the same, however many instances it has."""
        per_environment = [
            sum(cell.solved for cell in levels.values()) / max(1, sum(cell.total for cell in levels.values()))
            for levels in self.cells.values()
        ]
        return mean(per_environment) if per_environment else 0.0

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "per_env": self.per_env,
            "difficulties": list(self.difficulties),
            "overall": _cell_json(self.overall()),
            "mean_environment_accuracy": round(self.mean_environment_accuracy(), 4),
            "by_difficulty": {str(level): _cell_json(cell) for level, cell in self.by_difficulty().items()},
            "by_environment": {
                name: {str(level): _cell_json(cell) for level, cell in levels.items()}
                for name, levels in self.cells.items()
            },
            "failed": self.failed,
            "errors": self.errors,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
        }


def _cell_json(cell: Cell) -> dict:
    return {"solved": cell.solved, "total": cell.total, "accuracy": round(cell.accuracy, 4)}


async def evaluate_library(
    library: Library,
    endpoint: ChatEndpoint,
    pool: KernelPool,
    settings: Settings,
    *,
    per_env: int,
    difficulties: tuple[int, ...],
    concurrency: int = 8,
    include_contaminated: bool = True,
    on_answer: Callable[[], None] | None = None,
) -> LibraryEval:
    """Generate, ask, score: every accepted environment, `per_env` instances spread over the levels."""
    records, _ = exportable(library, include_contaminated)
    result = LibraryEval(model=endpoint.model_name, per_env=per_env, difficulties=difficulties)
    result.names = _display_names(records)
    limiter = asyncio.Semaphore(concurrency)

    async def ask(instance: SampledInstance) -> str | None:
        async with limiter:
            try:
                answered = await solver.answer(endpoint, instance.question)
            except Exception:  # an endpoint fault: the question counts as wrong, the run goes on
                result.errors += 1
                return None
            finally:
                if on_answer:
                    on_answer()
        result.input_tokens += answered.reply.input_tokens
        result.output_tokens += answered.reply.output_tokens
        return answered.answer

    async def one(record: EnvironmentRecord) -> None:
        name = result.names[record.id]
        plan = difficulty_plan(per_env, difficulties)
        seeds = held_out_seeds(max(plan.values(), default=0), settings)
        try:
            instances = await sample_environment(
                pool, record, {level: seeds[:count] for level, count in plan.items()}, settings
            )
        except SampleError as error:
            result.failed[record.id] = f"sampling failed: {error}"
            return
        answers = await asyncio.gather(*(ask(instance) for instance in instances))
        answered = [(instance, answer) for instance, answer in zip(instances, answers, strict=True) if answer]
        try:
            async with pool.lease() as kernel:
                scores = await score_in_kernel(kernel, record.source or "", answered, settings)
        except SampleError as error:
            result.failed[record.id] = f"scoring failed: {error}"
            return
        by_instance = {id(instance): score for (instance, _), score in zip(answered, scores, strict=True)}
        levels: dict[int, Cell] = {level: Cell() for level in plan if plan[level]}
        for instance in instances:
            score = by_instance.get(id(instance), 0.0)
            cell = levels[instance.difficulty]
            cell.total += 1
            cell.solved += score >= 1.0
            cell.score_sum += score
        result.cells[name] = levels

    await asyncio.gather(*(one(record) for record in records))
    result.cells = dict(sorted(result.cells.items()))
    return result


def _display_names(records: list[EnvironmentRecord]) -> dict[str, str]:
    """Environment id → its name, with the id added where two environments share a name."""
    names = [record.name or record.id for record in records]
    return {
        record.id: name if names.count(name) == 1 else f"{name} ({record.id[:8]})"
        for record, name in zip(records, names, strict=True)
    }
