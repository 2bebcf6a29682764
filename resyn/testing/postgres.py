"""A throwaway PostgreSQL cluster for the tests and benchmarks: initdb and pg_ctl, on a Unix socket.

The cluster lives in a temporary folder for one test session and is stopped and deleted after.
PostgreSQL refuses to run as root, so under root (CI's containers) it runs as an unprivileged
user (Debian's `postgres`, or `nobody`) through `runuser`; the tests connect over the socket with
trust authentication, which only this machine's users can reach.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "resyn"


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or Debian's versioned one (not on PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _unprivileged_user() -> str | None:
    """Who runs the server: None for the current user, unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError("running as root, and no unprivileged user (postgres, nobody) to run PostgreSQL")


@contextlib.contextmanager
def throwaway_cluster(binaries: Path) -> Iterator[str]:
    """A started cluster; yields the URL of its `postgres` database, as the superuser `resyn`."""
    user = _unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix="resyn-pg-"))
    data, socket_dir = folder / "data", folder / "socket"
    socket_dir.mkdir()
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (folder, socket_dir):
            os.chown(path, account.pw_uid, account.pw_gid)
    as_user = ["runuser", "-u", user, "--"] if user else []

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)

    try:
        initdb, pg_ctl = str(binaries / "initdb"), str(binaries / "pg_ctl")
        run(initdb, "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=300"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        try:
            yield f"postgresql://{SUPERUSER}@/postgres?host={socket_dir}"
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the cluster; its URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?")
