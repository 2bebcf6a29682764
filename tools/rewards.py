"""Reward functions for RL trainers: score a completion with its environment's own `verify`.

Trainers call rewards synchronously, thousands per step, so scoring runs in warm sandboxed kernels
owned by one `RewardScorer` per process: an event loop on a background thread holds a `KernelPool`,
and each kernel keeps the environments it loaded (loading one costs more than verifying). A row of a
`resyn export` says what to verify (see docs/export.md):

    reward_model.ground_truth = '{"environment_id": ..., "source_sha256": ..., "instance": {...}}'

and the environment's source is `<environments dir>/<environment_id>.py`, the export's bundle, found
through `configure(dir)`, the `environments_dir` keyword, or `RESYN_ENVIRONMENTS_DIR`. Its hash must
match the row's: a reward from a different source than the one the row was generated with is refused.

- verl: `custom_reward_function.path` = this file, `.name` = `compute_score` (or `compute_score_batch`
  with verl's batch reward manager).
- TRL: `GRPOTrainer(reward_funcs=[trl_reward], ...)`; the dataset's `reward_model` column reaches it.

A completion without an `<answer>…</answer>` pair scores 0.0 without calling `verify` (CONTRACT.md);
a `verify` that raises, hangs or crashes scores 0.0. A row whose environment cannot be found or
loaded raises `RewardSetupError`: silently zero rewards would waste a training run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from resyn.contract import VERIFY_SECONDS, extract_answer
from resyn.settings import Settings
from resyn.tools.kernel import Kernel
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.sampler import SampleError, load_in_kernel
from resyn.tools.scoring import scores_of

ENVIRONMENTS_DIR_VARIABLE = "RESYN_ENVIRONMENTS_DIR"
KERNELS_VARIABLE = "RESYN_REWARD_KERNELS"
MIN_CHUNK = 16  # answers of one environment worth sending to a second kernel in parallel
# A reward kernel only runs verify calls, and a restart costs about a second (the pool's default,
# 100 calls, would restart one every few training steps): replaced after this many calls instead.
KERNEL_USES = 5_000
MAX_LOADED = 512  # environments one kernel keeps loaded before it is reset
log = logging.getLogger(__name__)
T = TypeVar("T")


class RewardSetupError(RuntimeError):
    """A row's environment cannot be scored (missing, changed or broken source); says what to fix."""


@dataclass(frozen=True)
class RewardItem:
    """One answer to score: the row's ground truth, parsed, and the extracted answer (None: no tags)."""

    environment_id: str
    source_sha256: str | None
    instance: dict[str, Any]
    answer: str | None


def parse_ground_truth(ground_truth: str | dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(environment id, source hash, instance) from a row's ground truth (a JSON string or its dict)."""
    try:
        data = json.loads(ground_truth) if isinstance(ground_truth, str) else dict(ground_truth)
        return str(data["environment_id"]), data.get("source_sha256"), dict(data["instance"])
    except (ValueError, TypeError, KeyError) as error:
        raise RewardSetupError(
            f"not a resyn ground truth ({type(error).__name__}: {error}); expected the JSON that "
            "`resyn export` writes in reward_model.ground_truth"
        ) from None


def item_from_completion(ground_truth: str | dict[str, Any], completion: str) -> RewardItem:
    environment_id, digest, instance = parse_ground_truth(ground_truth)
    return RewardItem(environment_id, digest, instance, extract_answer(completion))


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
        kept = await slot.kernel.call("keep", digest)
        if not kept.ok or kept.value is not True:
            slot.kernel.dirty = True
            raise SampleError(f"the loaded environment could not be kept: {kept.error}")
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
    payload = json.dumps([[item.instance, item.answer] for item in items])
    code = (
        f"import json\nassert _resyn_sandbox.select({digest!r})\n"
        f"_resyn_sandbox.reply(_resyn_sandbox.score_batch(json.loads({payload!r}), {VERIFY_SECONDS!r}, "
        f"{settings.kernel.output_limit_bytes!r}))"
    )
    result = await kernel.execute(code, timeout=len(items) * VERIFY_SECONDS + 5)
    if not result.ok:
        kernel.dirty = True
        return None, result.duration
    return scores_of(kernel, result.value), result.duration


def _chunks(indices: list[int], kernels: int) -> list[list[int]]:
    """Split one environment's answers over up to `kernels` kernels, never into chunks under MIN_CHUNK."""
    parts = max(1, min(kernels, len(indices) // MIN_CHUNK))
    size = -(-len(indices) // parts)
    return [indices[start : start + size] for start in range(0, len(indices), size)]


# --- the per-process default scorer and the trainer-facing functions ---------------------------

_default: RewardScorer | None = None
_default_pid: int | None = None
_default_lock = threading.Lock()


def configure(
    environments_dir: Path | str | None = None, settings: Settings | None = None, kernels: int | None = None
) -> RewardScorer:
    """Set up this process's reward functions: where the environment sources are (else the variable
    RESYN_ENVIRONMENTS_DIR) and how many kernels score (else RESYN_REWARD_KERNELS, else the kernel
    pool size). Replaces (and closes) the scorer they used before; returns the new one."""
    global _default, _default_pid
    directory = environments_dir or os.environ.get(ENVIRONMENTS_DIR_VARIABLE) or None
    try:
        kernels = kernels or int(os.environ.get(KERNELS_VARIABLE) or 0) or None
    except ValueError:
        raise RewardSetupError(f"{KERNELS_VARIABLE} must be a whole number of kernels") from None
    scorer = RewardScorer(directory, settings, kernels=kernels)
    with _default_lock:
        previous = _default if _default_pid == os.getpid() else None
        _default, _default_pid = scorer, os.getpid()
    if previous is not None:
        previous.close()
    return scorer


def default_scorer(environments_dir: Path | str | None = None) -> RewardScorer:
    """The process's scorer, made on first use (and anew in a forked child: threads do not fork)."""
    with _default_lock:
        current = _default if _default_pid == os.getpid() else None
    wanted = Path(environments_dir) if environments_dir is not None else None
    if current is None or (wanted is not None and current.sources.directory != wanted):
        return configure(environments_dir)
    return current


@atexit.register
def _close_default() -> None:
    if _default is not None and _default_pid == os.getpid():
        _default.close()


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | dict[str, Any],
    extra_info: dict[str, Any] | None = None,
    environments_dir: str | None = None,
    **_kwargs: Any,
) -> float:
    """verl's reward signature: the score of one response (`environments_dir` via reward_kwargs)."""
    [score] = default_scorer(environments_dir).score([item_from_completion(ground_truth, solution_str)])
    return score


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[str | dict[str, Any]],
    extra_infos: Sequence[dict[str, Any] | None] | None = None,
    environments_dir: str | None = None,
    **_kwargs: Any,
) -> list[float]:
    """verl's batch reward manager signature: all of a step's responses in one call (fastest)."""
    items = [
        item_from_completion(truth, text) for truth, text in zip(ground_truths, solution_strs, strict=True)
    ]
    return default_scorer(environments_dir).score(items)


def trl_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL's GRPO reward function: dataset columns arrive as keyword lists (`reward_model`, or a
    `ground_truth` column); a conversational completion is scored on its last message."""
    if "ground_truth" in kwargs:
        truths = list(kwargs["ground_truth"])
    elif "reward_model" in kwargs:
        truths = [entry["ground_truth"] for entry in kwargs["reward_model"]]
    else:
        raise RewardSetupError("trl_reward needs the dataset's reward_model (or ground_truth) column")
    texts = [_completion_text(completion) for completion in completions]
    items = [item_from_completion(truth, text) for truth, text in zip(truths, texts, strict=True)]
    return default_scorer().score(items)


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return str(completion or "")
