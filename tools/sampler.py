"""Generate instances of an environment in the sandbox (for `resyn sample` and the tools)."""

from __future__ import annotations

from collections.abc import Iterable

from resyn.contract import SampledInstance
from resyn.settings import Settings
from resyn.tools import checks, harness
from resyn.tools.harness import HarnessStopped
from resyn.tools.kernel import Kernel
from resyn.tools.kernel_pool import KernelPool


class SampleError(Exception):
    """The environment could not produce the instances asked for; the message says why."""


async def load_in_kernel(kernel: Kernel, source: str, settings: Settings) -> None:
    """Load an environment into a leased kernel, or say in one line why it does not load."""
    try:
        loaded = await harness.load(kernel, source, settings, expect_success=True)
    except HarnessStopped as stopped:
        raise SampleError(f"the file did not load: {stopped.error}") from None
    if loaded["status"] != "ok":
        raise SampleError(f"the file did not load: {loaded.get('error')}")
    passed, detail = checks.loads(loaded)
    if not passed:
        raise SampleError(detail)


async def sample_in_kernel(
    kernel: Kernel, source: str, difficulty: int, seeds: Iterable[int], settings: Settings
) -> list[SampledInstance]:
    await load_in_kernel(kernel, source, settings)
    pairs = [[seed, difficulty] for seed in seeds]
    try:
        generated = await harness.generate(kernel, pairs, settings, expect_success=True)
    except HarnessStopped as stopped:
        raise SampleError(f"generate stopped: {stopped.error}") from None
    instances = []
    for call in generated:
        failure = checks.generate_failure(call)
        if failure:
            raise SampleError(f"generate({checks.where(call)}) failed: {failure}")
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
