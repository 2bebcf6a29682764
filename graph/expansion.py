"""The expansion job: many topics to a library of accepted environments, unattended and resumable.

`expand` runs a new job or resumes one by name through the expansion graph
(`graph/expansion_graph.py`, diagram there), and records in the library how it stopped.

Durability: the job's own state is small (the round, its batch, budgets used) and is checkpointed
after every step in the same SQLite file as the syntheses. After `kill -9`, resuming re-runs the
round that was in flight: each synthesis finds its own checkpoint (or its finished library row)
and continues, so no finished LLM call is repeated and no environment is accepted twice. Counts
and token totals are always read back from the library, never accumulated, so a replayed step
cannot count anything twice.
"""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.runnables import RunnableConfig

from resyn.agents.resilience import EndpointDown, describe
from resyn.graph.expansion_graph import EXPANSION_GRAPH, Events, ExpansionJob
from resyn.graph.jobs import (
    JobExists,
    JobFailed,
    JobOptions,
    UnknownJob,
    WorkspaceBusy,
    environment_id,
    job_log_path,
    workspace_lock,
)
from resyn.graph.runtime import SynthesisRuntime
from resyn.memory.workspace import Workspace, WorkspaceDamaged

__all__ = [
    "JobExists",
    "JobFailed",
    "JobOptions",
    "UnknownJob",
    "WorkspaceBusy",
    "environment_id",
    "expand",
    "job_log_path",
    "workspace_lock",
]


async def expand(
    runtime: SynthesisRuntime,
    options: JobOptions | None,
    *,
    resume: str | None = None,
    changes: dict[str, Any] | None = None,
    on_event: Events | None = None,
) -> tuple[JobOptions, str]:
    """Run a new job (`options`) or resume one by name; returns its options and why it stopped.

    `changes` (with `resume`) replaces budgets of the saved job — a higher target, more hours — and
    a finished job that the new budgets leave room for carries on from where it stopped."""
    with workspace_lock(runtime.settings.data_dir):
        return await _expand(runtime, options, resume, changes or {}, on_event)


async def _expand(
    runtime: SynthesisRuntime,
    options: JobOptions | None,
    resume: str | None,
    changes: dict[str, Any],
    on_event: Events | None,
) -> tuple[JobOptions, str]:
    library = runtime.library
    if resume is not None:
        saved = library.job(resume)
        if saved is None:
            raise UnknownJob(f"no job {resume!r} in {runtime.settings.data_dir}")
        options = JobOptions.model_validate({**saved.options, **changes})
    elif library.job(options.name) is not None:
        raise JobExists(f"a job named {options.name!r} exists; resume it with --resume {options.name}")
    job = ExpansionJob(runtime, options, on_event)
    runtime.watch_endpoints(job.on_endpoint)
    config: RunnableConfig = {
        "configurable": {"thread_id": f"job:{options.name}"},
        "recursion_limit": 1_000_000,
    }
    app = EXPANSION_GRAPH.copy(update={"checkpointer": runtime.checkpointer})  # compiled once, saving here
    saved_state = await app.aget_state(config)
    if resume is not None and not saved_state.values and job.counts().tried:
        raise WorkspaceDamaged(
            Workspace.of(runtime.settings).checkpoints,
            f"holds no progress of job {resume!r}, whose environments are in the library",
            "restore it from a backup, or start a new job",
        )
    if saved_state.values and not saved_state.next:
        still_stopped = job.stop_reason(saved_state.values, job.counts()) if changes else None
        if not changes or still_stopped:
            reason = still_stopped or saved_state.values["stop_reason"]
            library.save_job(options.name, options.model_dump(), "finished", reason)
            return options, reason
        # new budgets leave room: clear the stop, as if the last round had just been recorded
        await app.aupdate_state(config, {"stop_reason": None}, as_node="record")
    library.save_job(options.name, options.model_dump(), "running")
    try:
        if saved_state.values:
            job.emit("job", f"resumed {options.name} at round {saved_state.values.get('round', 0)}")
            start: dict[str, Any] | None = None
        else:
            added = await job.add_topics(options.seed_topics, "seed")
            job.emit("job", f"started {options.name}: target {options.target}, seeds: {', '.join(added)}")
            start = {"round": 0, "active_seconds": 0.0, "fruitless_scouts": 0}
        async for _chunk in app.astream(start, config, context=job, stream_mode="updates", durability="sync"):
            pass
    except EndpointDown as error:
        _stopped(job, "interrupted", f"paused: {error}")
        raise
    except WorkspaceDamaged as error:
        _stopped(job, "interrupted", str(error))  # as far as the damage lets it be written
        raise
    except Exception as error:
        job.log.exception("failed  %s", describe(error))  # the traceback, for whoever fixes it
        _stopped(job, "failed", describe(error))
        log = job_log_path(runtime.settings.data_dir, options.name)
        raise JobFailed(
            f"job {options.name} failed: {describe(error)} (traceback in {log}); "
            f"after fixing the cause: resyn expand --resume {options.name}"
        ) from error
    except BaseException:
        _stopped(job, "interrupted", "")
        raise
    final = await app.aget_state(config)
    reason = final.values.get("stop_reason", "finished")
    library.save_job(options.name, options.model_dump(), "finished", reason)
    job.emit("stop", reason)
    return options, reason


def _stopped(job: ExpansionJob, status: str, reason: str) -> None:
    """Record why the job stopped, as far as the workspace lets it: when the disk is what failed,
    this may fail too, and must not hide the first error."""
    with contextlib.suppress(Exception):
        job.runtime.library.save_job(job.options.name, job.options.model_dump(), status, reason)
    if reason:
        with contextlib.suppress(Exception):
            job.emit("stop", reason)
