"""A pool of warm sandboxed kernels, leased one environment at a time.

Between leases a kernel is reset (fresh namespace, no leftover modules, reseeded global random)
rather than restarted: a reset costs milliseconds, a restart most of a second (see
`evals/bench_validation.py`). A kernel is replaced instead of reset when the harness client
distrusts it (`harness.py` says when: it timed out, crashed, hit a limit, recorded a side effect,
had stdlib attributes monkeypatched, imported a compiled module that a reset cannot take back...),
when its lease ended in an exception, or when it has served `max_uses` leases. Every kernel of a
pool is started alike, allowed imports included (`KernelSettings.preload`), so a replaced kernel
is indistinguishable from the one it replaces.

Kernels start in their own session, so Ctrl-C in a terminal never reaches them; `close()` runs
on normal exit and on KeyboardInterrupt, and each kernel also exits by itself when its parent
process dies (ipykernel's parent poller), so no kernel outlives resyn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from resyn.settings import KernelSettings
from resyn.tools import harness
from resyn.tools.kernel import Kernel, KernelStartError, check_sandbox, remove_stale_workdirs


class KernelPool:
    """Warm kernels for untrusted code. `async with KernelPool(settings) as pool: ...`"""

    def __init__(self, settings: KernelSettings) -> None:
        self.settings = settings
        self._idle: list[Kernel] = []
        self._all: set[Kernel] = set()
        self._available = asyncio.Condition()
        self._replacing: set[asyncio.Task] = set()
        self._closed = False
        self._warming: asyncio.Task | None = None

    async def __aenter__(self) -> KernelPool:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Begin warming the kernels and return: the first lease waits for them (and raises if
        they could not start). A resumed job's first LLM calls need no kernel, so they need not
        wait the half second kernels take to start."""
        check_sandbox(self.settings)  # refuse at once, in one line, not at the first lease
        remove_stale_workdirs()
        kernels = [Kernel(self.settings) for _ in range(self.settings.pool_size)]
        self._all.update(kernels)
        self._warming = asyncio.create_task(self._warm(kernels))

    async def _warm(self, kernels: list[Kernel]) -> None:
        try:
            await asyncio.gather(*(kernel.start() for kernel in kernels))
        except BaseException:
            await asyncio.gather(*(kernel.shutdown() for kernel in kernels), return_exceptions=True)
            raise
        async with self._available:
            self._idle.extend(kernels)
            self._available.notify_all()

    async def close(self) -> None:
        self._closed = True
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
            with contextlib.suppress(BaseException):
                await self._warming
        for task in self._replacing:
            task.cancel()
        kernels, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(kernel.shutdown() for kernel in kernels), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def lease(self, avoid: Kernel | None = None) -> AsyncIterator[Kernel]:
        """A clean kernel for one environment. `avoid` asks for a different kernel than that one
        (the determinism check compares two kernels with different hash seeds)."""
        kernel = await self._take(avoid)
        try:
            yield kernel
        except BaseException:
            harness.distrust(kernel)  # the lease ended mid-use: its code may still be running
            raise
        finally:
            await self._give_back(kernel)

    async def ready(self) -> None:
        """Wait until the kernels have started; raises (to every caller) if they could not."""
        if self._warming is not None:
            await asyncio.shield(self._warming)

    async def _take(self, avoid: Kernel | None) -> Kernel:
        await self.ready()
        async with self._available:
            while True:
                if self._closed or len(self._all) < 2:
                    raise RuntimeError("the kernel pool is closed or lost its kernels")
                for kernel in self._idle:
                    if kernel is not avoid and (avoid is None or kernel.hash_seed != avoid.hash_seed):
                        self._idle.remove(kernel)
                        return kernel
                await self._available.wait()

    async def _give_back(self, kernel: Kernel) -> None:
        if not kernel.dirty and kernel.uses < self.settings.max_uses and await harness.reset(kernel):
            await self._return_idle(kernel)
        else:
            task = asyncio.create_task(self._replace(kernel))
            self._replacing.add(task)
            task.add_done_callback(self._replacing.discard)

    async def _replace(self, kernel: Kernel) -> None:
        try:
            await kernel.restart()
        except KernelStartError:
            async with self._available:
                self._all.discard(kernel)
                self._available.notify_all()
            return
        await self._return_idle(kernel)

    async def _return_idle(self, kernel: Kernel) -> None:
        kernel.dirty = False
        async with self._available:
            if self._closed:
                await kernel.shutdown()
                return
            self._idle.append(kernel)
            self._available.notify_all()
