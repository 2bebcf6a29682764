"""An expansion job's bookkeeping: its options, its environments' ids, its event log, the
workspace lock it holds, and the errors it can end with."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from resyn.memory.workspace import Workspace


class JobOptions(BaseModel):
    """What `resyn expand` was asked; saved with the job so `--resume` needs only its name."""

    name: str
    seed_topics: list[str]
    target: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_hours: float | None = Field(None, gt=0)
    max_environments: int | None = Field(None, ge=1)


class JobFailed(RuntimeError):
    """resyn's own machinery failed (a bug, a full disk): the job is marked failed, resumable."""


class JobExists(ValueError):
    """A new job was given the name of an existing one."""


class UnknownJob(LookupError):
    """`--resume` named no job of this workspace."""


class WorkspaceBusy(RuntimeError):
    """Another expansion job runs in this workspace (they would both write its topic graph)."""


def environment_id(job: str, number: int) -> str:
    """The id of the job's `number`-th synthesis (from 0): the same topic tried twice gets two."""
    return hashlib.sha256(f"{job}/synthesis/{number}".encode()).hexdigest()[:12]


@contextlib.contextmanager
def workspace_lock(data_dir: Path) -> Iterator[None]:
    """Held while a job runs; the OS releases it when the process dies, even by kill -9."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(Workspace(data_dir).expand_lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkspaceBusy(
                f"another resyn expand is running in {data_dir}; wait for it or stop it"
            ) from None
        yield


def job_log_path(data_dir: Path, job: str) -> Path:
    return Workspace(data_dir).jobs / f"{job}.log"


def event_log(path: Path) -> logging.Logger:
    """A logger that appends one line per event to the job's log file (and nowhere else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"resyn.job.{path.stem}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not any(getattr(handler, "baseFilename", None) == str(path.resolve()) for handler in logger.handlers):
        handler = _StrictFileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
    return logger


class _StrictFileHandler(logging.FileHandler):
    """A log write that fails (a full disk) raises, to end the job in one line, instead of
    logging's own traceback on stderr and a job that goes on without its log."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise
