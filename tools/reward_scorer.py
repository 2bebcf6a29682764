"""`RewardScorer`: verify answers of exported rows in warm sandboxed kernels, many per round trip.

Trainers call rewards synchronously, thousands per step, so one scorer per process runs an event
loop on a background thread that holds a `KernelPool`, and each kernel keeps the environments it
loaded (loading one costs more than verifying). An environment's source is
`<environments dir>/<environment_id>.py`, the export's bundle (`EnvironmentSources`); its hash must
match the row's: a reward from a different source than the one the row was generated with is
refused. The trainer-facing functions over a per-process scorer are in `resyn.tools.rewards`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from resyn.settings import Settings
from resyn.tools import harness
from resyn.tools.ground_truth import GroundTruth, RewardSetupError
from resyn.tools.harness import HarnessStopped
from resyn.tools.kernel import Kernel
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.sampler import SampleError, load_in_kernel

ENVIRONMENTS_DIR_VARIABLE = "RESYN_ENVIRONMENTS_DIR"
MIN_CHUNK = 16  # answers of one environment worth sending to a second kernel in parallel
# A reward kernel only runs verify calls, and a restart costs about a second (the pool's default,
# 100 calls, would restart one every few training steps): replaced after this many calls instead.
KERNEL_USES = 5_000
MAX_LOADED = 512  # environments one kernel keeps loaded before it is reset
log = logging.getLogger("resyn.tools.rewards")  # the logger of the reward functions trainers load
T = TypeVar("T")


@dataclass(frozen=True)
class RewardItem:
    """One answer to score: the row's ground truth, parsed, and the extracted answer (None: no tags)."""

    environment_id: str
    source_sha256: str | None
    instance: dict[str, Any]
    answer: str | None

    @classmethod
    def answering(cls, truth: GroundTruth, answer: str | None) -> RewardItem:
        return cls(truth.environment_id, truth.source_sha256, truth.instance, answer)


class EnvironmentSources:
    """The exported bundle: `<dir>/<environment_id>.py`, read once, checked against the row's hash."""

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._sources: dict[str, tuple[str, str]] = {}

    def get(self, environment_id: str, expected_sha256: str | None) -> tuple[str, str]:
        """(source, its sha256) of an environment."""
        if environment_id not in self._sources:
            if self.directory is None:
                raise RewardSetupError(
                    f"no environments directory to find {environment_id} in: set {ENVIRONMENTS_DIR_VARIABLE} "
                    "to the export's environments/ folder, or call resyn.tools.rewards.configure(dir)"
                )
            if not environment_id.replace("-", "").isalnum():
                raise RewardSetupError(f"not an environment id: {environment_id!r}")
            path = self.directory / f"{environment_id}.py"
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as error:
                raise RewardSetupError(
                    f"cannot read environment {environment_id} at {path}: {error}"
                ) from None
            self._sources[environment_id] = (source, hashlib.sha256(source.encode()).hexdigest())
        source, digest = self._sources[environment_id]
        if expected_sha256 is not None and digest != expected_sha256:
            raise RewardSetupError(
                f"{self.directory}/{environment_id}.py is not the source this row was generated with "
                f"(sha256 {digest[:12]}…, the row wants {expected_sha256[:12]}…): use the export's own bundle"
            )
        return source, digest


@dataclass
class _Slot:
    """A kernel held between calls, and the environments (by source hash) loaded in it."""

    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    kernel: Kernel | None = None
    loaded: set[str] = field(default_factory=set)
    busy: bool = False
    last_used: int = 0
    seconds: float = 0.0  # spent in this lease: a lease has a CPU budget (kernel.cpu_seconds)


class RewardScorer:
    """Scores answers in warm kernels; `score` is synchronous (for trainers), `ascore` async.

    Its own pool of `kernels` kernels (default: settings.kernel.pool_size) starts on the first call
    and lives until `close()` or the end of the process. Each kernel keeps every environment it has
    loaded (up to MAX_LOADED) until it is reset, so scoring an answer is one round trip however the
    rows of a batch are mixed; answers are grouped by environment and sent to a kernel that has it.
    `pool` shares a running pool instead (async use on that pool's loop only): kernels are then
    leased per chunk and given back at once, so other users of the pool are not starved.

    Environments loaded side by side in one kernel share its interpreter between resets; that is
    sound for environments the validator accepted (no side effects), and the pool still checks for
    tampering at every reset, replacing a kernel whose standard library was patched.
    """

    def __init__(
        self,
        environments_dir: Path | str | None = None,
        settings: Settings | None = None,
        pool: KernelPool | None = None,
        kernels: int | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.sources = EnvironmentSources(environments_dir)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool = pool
        self._owns_pool = pool is None
        limits = pool.settings if pool is not None else self.settings.kernel
        if pool is None:
            size = max(2, kernels or limits.pool_size)  # the pool needs two (for the determinism check)
            limits = limits.model_copy(
                update={"pool_size": size, "max_uses": max(limits.max_uses, KERNEL_USES)}
            )
        self.limits = limits
        self._slots = [_Slot() for _ in range(limits.pool_size)]
        self._free: asyncio.Condition | None = None
        self._starting: asyncio.Lock | None = None
        self._lock = threading.Lock()
        self._clock = 0

    # --- synchronous surface -------------------------------------------------------------------

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        """Scores in [0, 1], one per item, in order. Blocks; call it from any thread but the
        scorer's own loop."""
        return self._run(self.ascore(items))

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="resyn-rewards", daemon=True
                )
                self._thread.start()
            loop = self._loop
        if threading.current_thread() is self._thread:
            raise RuntimeError("RewardScorer.score was called from its own event loop; await ascore instead")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    # --- the work, on the scorer's loop (or the caller's, through ascore) ----------------------

    async def ascore(self, items: Sequence[RewardItem]) -> list[float]:
        scores = [0.0] * len(items)
        groups: dict[str, list[int]] = defaultdict(list)
        sources: dict[str, str] = {}
        for index, item in enumerate(items):
            if item.answer is None:
                continue  # no <answer> pair: 0.0 without calling verify
            source, digest = self.sources.get(item.environment_id, item.source_sha256)
            sources[digest] = source
            groups[digest].append(index)
        if not groups:
            return scores
        await self._ensure_pool()
        spare = max(1, len(self._slots) // len(groups))  # kernels an environment may spread over
        plan = [(digest, chunk) for digest, indices in groups.items() for chunk in _chunks(indices, spare)]
        results = await asyncio.gather(
            *(self._score_chunk(digest, sources[digest], [items[i] for i in chunk]) for digest, chunk in plan)
        )
        for (_, chunk), chunk_scores in zip(plan, results, strict=True):
            for index, value in zip(chunk, chunk_scores, strict=True):
                scores[index] = value
        return scores

    async def _ensure_pool(self) -> None:
        if self._starting is None:
            self._starting, self._free = asyncio.Lock(), asyncio.Condition()
        async with self._starting:
            if self._pool is None:
                pool = KernelPool(self.limits)
                await pool.start()
                self._pool = pool

    async def _score_chunk(self, digest: str, source: str, items: list[RewardItem]) -> list[float]:
        slot = await self._take(digest)
        try:
            try:
                kernel = await self._kernel_with(slot, digest, source)
            except SampleError as error:
                await self._release(slot)
                environment = items[0].environment_id
                raise RewardSetupError(f"environment {environment} does not load: {error}") from None
            scored, seconds = await _verify_batch(kernel, digest, items, self.settings)
            slot.seconds += seconds
            if (
                kernel.dirty
                or kernel.uses >= self.limits.max_uses
                or slot.seconds > self.limits.cpu_seconds / 4
            ):
                await self._release(slot)  # the pool resets (renewing the CPU budget) or replaces it
        finally:
            await self._give(slot)
        if scored is not None:
            return scored
        if len(items) == 1:
            log.warning("verify of %s stopped the kernel; the answer scores 0.0", items[0].environment_id)
            return [0.0]
        # the kernel died under the batch: score each answer alone, so one bad answer costs only itself
        return [score for item in items for score in await self._score_chunk(digest, source, [item])]

    async def _kernel_with(self, slot: _Slot, digest: str, source: str) -> Kernel:
        """The slot's kernel with the environment loaded (leasing a kernel, or resetting a full one)."""
        if slot.kernel is not None and digest in slot.loaded:
            return slot.kernel
        if len(slot.loaded) >= MAX_LOADED:
            await self._release(slot)
        if slot.kernel is None:
            assert self._pool is not None
            slot.kernel = await slot.stack.enter_async_context(self._pool.lease())
        await load_in_kernel(slot.kernel, source, self.settings)
        try:
            await harness.keep(slot.kernel, digest)
        except HarnessStopped as stopped:
            raise SampleError(f"the loaded environment could not be kept: {stopped.error}") from None
        slot.loaded.add(digest)
        return slot.kernel

    async def _release(self, slot: _Slot) -> None:
        """Give the kernel back to the pool, which resets it: every loaded environment is gone."""
        stack, slot.stack, slot.kernel = slot.stack, contextlib.AsyncExitStack(), None
        slot.loaded, slot.seconds = set(), 0.0
        await stack.aclose()

    async def _take(self, digest: str) -> _Slot:
        """An idle slot: one that has the environment loaded, else an empty one, else the least
        recently used."""
        assert self._free is not None
        async with self._free:
            while True:
                idle = [slot for slot in self._slots if not slot.busy]
                if idle:
                    slot = next((slot for slot in idle if digest in slot.loaded), None) or min(
                        idle, key=lambda slot: (slot.kernel is not None, slot.last_used)
                    )
                    self._clock += 1
                    slot.busy, slot.last_used = True, self._clock
                    return slot
                await self._free.wait()

    async def _give(self, slot: _Slot) -> None:
        assert self._free is not None
        if not self._owns_pool:
            await self._release(slot)  # a shared pool's kernels go back after each use
        async with self._free:
            slot.busy = False
            self._free.notify()

    async def _aclose(self) -> None:
        for slot in self._slots:
            with contextlib.suppress(Exception):
                await self._release(slot)
        if self._pool is not None and self._owns_pool:
            await self._pool.close()
        self._pool = None


async def _verify_batch(
    kernel: Kernel, digest: str, items: list[RewardItem], settings: Settings
) -> tuple[list[float] | None, float]:
    """verify() of each answer, in one round trip that also selects the environment among those
    the kernel has loaded; None if the kernel died; and the seconds it took."""
    answers = [(item.instance, item.answer) for item in items]
    try:
        return await harness.score(kernel, answers, settings, key=digest)
    except HarnessStopped as stopped:
        return None, stopped.seconds


def _chunks(indices: list[int], kernels: int) -> list[list[int]]:
    """Split one environment's answers over up to `kernels` kernels, never into chunks under MIN_CHUNK."""
    parts = max(1, min(kernels, len(indices) // MIN_CHUNK))
    size = -(-len(indices) // parts)
    return [indices[start : start + size] for start in range(0, len(indices), size)]
