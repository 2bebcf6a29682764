"""What `resyn doctor` finds in a workspace: one finding per file, each ok, a warning or damage.

Opening a workspace checks only what is cheap (memory/database.py); the doctor reads everything:
`PRAGMA integrity_check` of both databases, the topic graph, the novelty cache, and the accepted
sources against the library rows that point at them. It only reads: both databases are opened
read-only, and nothing is created or repaired, so it is safe on a workspace in trouble.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from resyn.contract import Status
from resyn.memory.damage import WorkspaceDamaged, remedy
from resyn.memory.database import Database, open_database
from resyn.memory.layout import ENVIRONMENTS, LIBRARY, NOVELTY, TOPICS
from resyn.memory.workspace import Workspace

STATUSES = ("ok", "warning", "damaged")
SOURCES = f"{ENVIRONMENTS}/"
LOW_DISK_BYTES = 100 * 2**20
_LIBRARY_TABLES = {"environments", "jobs", "attempts"}


@dataclass
class Finding:
    file: str  # a name in the workspace ("library.sqlite", "environments/"), or "folder" or "disk"
    status: str  # one of STATUSES
    detail: str


def examine(data_dir: Path) -> list[Finding]:
    """Every check, in the order a person reads them: the folder, then file by file."""
    workspace = Workspace(data_dir)
    findings = [_folder(data_dir), _disk(data_dir)]
    library, accepted = _library(workspace)
    findings += library
    findings.append(_database(workspace.checkpoints, "none (nothing to resume)"))
    findings.append(_topics(workspace.topics))
    findings.append(_novelty(workspace.novelty_index, accepted))
    return findings


def _damaged(file: str, error: WorkspaceDamaged) -> Finding:
    return Finding(file, "damaged", f"{error.problem}; {error.remedy}")


def _folder(data_dir: Path) -> Finding:
    if os.access(data_dir, os.W_OK):
        return Finding("folder", "ok", f"{data_dir} is writable")
    return Finding(
        "folder", "warning", f"{data_dir} is read-only: commands that only read work, writing ones stop"
    )


def _disk(data_dir: Path) -> Finding:
    free = shutil.disk_usage(data_dir).free
    text = f"{free / 2**30:.1f} GiB free" if free >= 2**30 else f"{free / 2**20:.0f} MiB free"
    if free < LOW_DISK_BYTES:
        return Finding("disk", "warning", f"{text}: writing commands may stop when it runs out")
    return Finding("disk", "ok", text)


@dataclass
class _Contents:
    summary: str
    paths: set[str]  # file names the rows point at
    accepted: set[int]  # row ids of accepted environments with a novelty vector


def _library(workspace: Workspace) -> tuple[list[Finding], set[int] | None]:
    """The library's finding, its sources' finding, and the accepted rows with vectors (None when
    the library cannot be read)."""
    try:
        contents = _read_library(workspace)
    except WorkspaceDamaged as error:
        return [_damaged(LIBRARY, error), _sources(workspace, None)], None
    if contents is None:
        return [Finding(LIBRARY, "ok", "none yet (a new workspace)"), _sources(workspace, set())], set()
    return [Finding(LIBRARY, "ok", contents.summary), _sources(workspace, contents.paths)], contents.accepted


def _read_library(workspace: Workspace) -> _Contents | None:
    database = workspace.open_library(read_only=True)
    try:
        if not database.read_only:  # no library yet: open_library's empty stand-in
            return None
        _check_integrity(database)
        tables = database.tables()
        if missing := ", ".join(sorted(_LIBRARY_TABLES - tables)):
            problem = f"damaged (no {missing} table)"
            raise WorkspaceDamaged(database.path, problem, remedy("damaged", database.path))
        counts = database.execute("SELECT status, COUNT(*) FROM environments GROUP BY status ORDER BY 2 DESC")
        jobs = database.one("SELECT COUNT(*) FROM jobs")[0]
        paths = database.execute("SELECT path FROM environments WHERE path IS NOT NULL")
        columns = {row["name"] for row in database.execute("PRAGMA table_info(environments)")}
        accepted = []
        if "embedding" in columns:  # an older library has none until a writing command upgrades it
            accepted = database.execute(
                "SELECT rowid FROM environments WHERE status = ? AND embedding IS NOT NULL",
                (Status.ACCEPTED,),
            )
    finally:
        database.close()
    by_status = ", ".join(f"{count} {status}" for status, count in counts) or "none"
    environments = _count(sum(row[1] for row in counts), "environment")
    traces = "" if "trace_events" in tables else "; no traces yet"
    return _Contents(
        summary=f"{environments} ({by_status}), {_count(jobs, 'job')}; integrity ok{traces}",
        paths={Path(row[0]).name for row in paths},
        accepted={row[0] for row in accepted},
    )


def _sources(workspace: Workspace, named: set[str] | None) -> Finding:
    """The `.py` files of accepted environments against the rows that name them (None: the rows
    could not be read). A mismatch is a warning: the library rows hold every source too."""
    files = {path.name for path in workspace.environments.glob("*.py")}
    if named is None:
        return Finding(SOURCES, "ok", f"{len(files)} sources (not checked: the library is unreadable)")
    problems = []
    if missing := sorted(named - files):
        problems.append(f"{len(missing)} missing ({_some(missing)})")
    if unnamed := sorted(files - named):
        problems.append(f"{len(unnamed)} that no library row points at ({_some(unnamed)})")
    if problems:
        return Finding(SOURCES, "warning", "; ".join(problems) + "; the library rows hold the sources")
    return Finding(SOURCES, "ok", f"{len(files)} sources, each with its library row")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")


def _check_integrity(database: Database) -> None:
    """WorkspaceDamaged when `PRAGMA integrity_check` finds anything: its first complaint."""
    rows = [row[0] for row in database.execute("PRAGMA integrity_check")]
    if rows != ["ok"]:
        more = f" and {len(rows) - 1} more problems" if len(rows) > 1 else ""
        raise WorkspaceDamaged(database.path, f"damaged ({rows[0]}{more})", remedy("damaged", database.path))


def _database(path: Path, absent: str) -> Finding:
    if not path.exists():
        return Finding(path.name, "ok", absent)
    try:
        database = open_database(path, read_only=True)
        try:
            _check_integrity(database)
        finally:
            database.close()
    except WorkspaceDamaged as error:
        return _damaged(path.name, error)
    return Finding(path.name, "ok", "integrity ok")


def _topics(path: Path) -> Finding:
    from resyn.memory.topics import TopicGraph

    if not path.exists():
        return Finding(TOPICS, "ok", "none yet (made by the first expansion job)")
    try:
        topics = TopicGraph.load(path)
    except WorkspaceDamaged as error:
        return _damaged(TOPICS, error)
    return Finding(TOPICS, "ok", f"{len(topics)} topics")


def _novelty(path: Path, accepted: set[int] | None) -> Finding:
    from resyn.memory.embeddings import DIMENSIONS
    from resyn.memory.vector_index import VectorIndex

    if not path.exists():
        return Finding(NOVELTY, "ok", "none (a cache, built from the library on first use)")
    if accepted is not None and VectorIndex.load(path, DIMENSIONS, accepted) is not None:
        return Finding(NOVELTY, "ok", f"loads, {len(accepted)} vectors")
    return Finding(NOVELTY, "ok", "unreadable or stale: a cache, rebuilt from the library on next use")
