"""Generate instances of an environment in the sandbox (for `resyn sample` and the tools)."""

from __future__ import annotations

from collections.abc import Iterable

from resyn.contract import GENERATE_SECONDS, SampledInstance
from resyn.settings import Settings
from resyn.tools import checks
from resyn.tools.kernel import Kernel
from resyn.tools.kernel_pool import KernelPool


class SampleError(Exception):
    """The environment could not produce the instances asked for; the message says why."""


async def load_in_kernel(kernel: Kernel, source: str, settings: Settings) -> None:
    """Load an environment into a leased kernel, or say in one line why it does not load."""
    output_limit = settings.kernel.output_limit_bytes
    load_seconds = settings.validator.load_timeout_s
    loaded = await kernel.call(
        "load",
        source,
        settings.validator.allowed_imports,
        load_seconds,
        output_limit,
        timeout=load_seconds + 5,
    )
    if not loaded.ok or loaded.value["status"] != "ok":
        kernel.dirty = True
        raise SampleError(f"the file did not load: {(loaded.value or {}).get('error') or loaded.error}")
    passed, detail = checks.loads(loaded.value)
    if not passed:
        raise SampleError(detail)


async def sample_in_kernel(
    kernel: Kernel, source: str, difficulty: int, seeds: Iterable[int], settings: Settings
) -> list[SampledInstance]:
    await load_in_kernel(kernel, source, settings)
    output_limit = settings.kernel.output_limit_bytes
    pairs = [[seed, difficulty] for seed in seeds]
    generated = await kernel.call(
        "generate_batch", pairs, GENERATE_SECONDS, output_limit, timeout=len(pairs) * GENERATE_SECONDS + 5
    )
    if not generated.ok:
        raise SampleError(f"generate stopped: {generated.error}")
    instances = []
    for call in generated.value:
        problem = call.get("error") or call.get("problem") or checks.shape_problem(call.get("instance"))
        if call["status"] != "ok" or problem:
            kernel.dirty = True
            raise SampleError(f"generate({checks.where(call)}) failed: {problem or call['status']}")
        instances.append(
            SampledInstance(seed=call["seed"], difficulty=call["difficulty"], **call["instance"])
        )
    return instances


async def sample_instances(
    source: str, difficulty: int, seeds: Iterable[int], settings: Settings
) -> list[SampledInstance]:
    """Instances of one difficulty for the given seeds, from a short-lived pool."""
    async with KernelPool(settings.kernel) as pool, pool.lease() as kernel:
        return await sample_in_kernel(kernel, source, difficulty, seeds, settings)
