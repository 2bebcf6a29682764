"""`resyn eval bbh|bbeh`: BIG-Bench Hard and BIG-Bench Extra Hard, asked of the solver's endpoint.

Each example is one call of the solver role's endpoint: zero-shot with the contract's `<answer>`
instruction, or (BBH, `few_shot`) the official 3-shot chain-of-thought prompt. The examples come
from `benchmark_data`, the replies are judged by `benchmark_scoring`, and each result is kept in the
resumable run file of `benchmark_runs`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.messages import HumanMessage

from resyn.agents import solver
from resyn.agents.llm import ChatEndpoint, Reply, ask
from resyn.evals.benchmark_data import Example, few_shot_prompt
from resyn.evals.benchmark_runs import Result, RunFile, Summary, summarise
from resyn.evals.benchmark_scoring import CORRECT, final_answer


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
