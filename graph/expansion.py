"""The expansion job: many topics to a library of accepted environments, unattended and resumable.

`expand` runs a new job or resumes one by name through the job's scheduler
(`graph/expansion_graph.py`, diagram there), and records in the library how it stopped.

Durability: every synthesis of the job has a library row from the moment it starts and its own
checkpoint thread in the job's SQLite file; the job's record (`graph/job_record.py`) holds the rest.
After `kill -9`, resuming continues each synthesis that was in flight from its checkpoint, so no
finished LLM call is repeated and no environment is accepted twice. Counts and token totals are
always read back from the library, never accumulated, so a resumed job counts nothing twice.
"""

from __future__ import annotations

import contextlib
from typing import Any

from resyn.agents.resilience import EndpointDown, describe
from resyn.graph.expansion_graph import INTERRUPTED_ELSEWHERE, Events, ExpansionJob, run_job
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
    shared = runtime.library.claims.shared  # workers on a shared database need no workspace lock
    with contextlib.nullcontext() if shared else workspace_lock(runtime.settings.data_dir):
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
    elif (saved := library.job(options.name)) is not None:
        if not library.claims.shared:
            raise JobExists(f"a job named {options.name!r} exists; resume it with --resume {options.name}")
        options = JobOptions.model_validate(saved.options)  # another worker started it: join it
    job = ExpansionJob(runtime, options, on_event)
    runtime.watch_endpoints(job.on_endpoint)
    progress = await job.load_record()
    if resume is not None and not progress and job.counts().tried:
        raise WorkspaceDamaged(
            Workspace.of(runtime.settings).checkpoints,
            f"holds no progress of job {resume!r}, whose environments are in the library",
            "restore it from a backup, or start a new job",
        )
    if progress.get("stop_reason"):
        still_stopped = job.stop_reason(job.counts()) if changes else None
        if not changes or still_stopped:
            reason = still_stopped or progress["stop_reason"]
            library.save_job(options.name, options.model_dump(), "finished", reason)
            return options, reason
        await job.write_record(stop_reason=None)  # new budgets leave room: carry on
    library.save_job(options.name, options.model_dump(), "running")
    try:
        if progress:
            job.emit("job", job.resumed_line())
        else:
            # the seeds first: a worker joining the job once its record exists finds them
            added = await job.add_topics(options.seed_topics, "seed")
            await job.write_record(active_seconds=0.0, fruitless_scouts=0)  # the job exists from here on
            job.emit("job", f"started {options.name}: target {options.target}, seeds: {', '.join(added)}")
        reason = await run_job(job)
        await job.write_record(stop_reason=reason, active_seconds=job.active_seconds())
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
    state = "interrupted" if reason == INTERRUPTED_ELSEWHERE else "finished"
    library.save_job(options.name, options.model_dump(), state, reason)
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
