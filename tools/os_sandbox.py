"""The operating-system sandbox around every kernel: bubblewrap (`bwrap`).

The audit hook and rlimits inside the kernel (`kernel_sandbox.py`) are Python-level: code that
calls libc through `ctypes` walks past the hook. What contains such code is this layer, made by
the kernel's own OS: `bwrap` starts the kernel in new user, PID, network, IPC, UTS and cgroup
namespaces, as an unprivileged uid with no capabilities, in a new session, dying with resyn. Its
file system holds only the system's libraries and the Python installation (read-only), a private
`/tmp` (a size-capped tmpfs holding the kernel's HOME), a minimal `/proc` and `/dev`, and the
kernel's work directory, which also carries the connection file and the Unix sockets (jupyter-client's
`ipc` transport) resyn talks to it through; the network namespace has no interface but a loopback of
its own. Why bubblewrap and not firejail, nsjail or Landlock: docs/validation.md. `private_area`
tells the kernel's audit hook which writes land only in that tmpfs (docs/validation.md, "Writes
inside the sandbox").

Where the sandbox cannot be made (no `bwrap`, user namespaces disabled), resyn refuses to run
model-written code: `SandboxUnavailable`, one line saying how to fix it. `RESYN_KERNEL_SANDBOX=none`
opts out explicitly, and the first kernel then says on stderr that it runs unconfined.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from resyn.settings import SandboxMode

UNCONFINED_WARNING = (
    "warning: model-written code runs unconfined (RESYN_KERNEL_SANDBOX=none): "
    "it can read, write and run whatever this user can"
)
_NOBODY = "65534"  # the uid and gid inside: no file outside belongs to them
_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # symlinks into /usr on most systems
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
_INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap)"
_OPT_OUT_HINT = "or set RESYN_KERNEL_SANDBOX=none to run it unconfined"
PRIVATE_TMP = "/tmp"  # under bwrap: a tmpfs of the kernel's own, gone with it
PRIVATE_HOME = "/tmp/home"


class SandboxUnavailable(RuntimeError):
    """The OS sandbox cannot be made here, so model-written code is not run at all."""


def require_sandbox(mode: SandboxMode) -> None:
    """Before any kernel starts: check that the sandbox can be made, or say that there is none."""
    if mode == "none":
        announce_unconfined()
    else:
        require_bwrap()


@dataclass(frozen=True)
class PrivateArea:
    """A kernel's HOME and TMPDIR, and where its writes cannot reach anything outside its sandbox:
    below one of `inside` but not below one of `bound` (host folders mounted into it)."""

    home: str
    tmp: str
    inside: tuple[str, ...]
    bound: tuple[str, ...]


def private_area(workdir: str, mode: SandboxMode) -> PrivateArea:
    """Under bwrap: the private /tmp, except the work directory and any Python root bound into it.
    Unconfined there is no such place: HOME and TMPDIR are the work directory, and every write counts."""
    if mode == "none":
        return PrivateArea(home=workdir, tmp=workdir, inside=(), bound=())
    return PrivateArea(
        home=PRIVATE_HOME, tmp=PRIVATE_TMP, inside=(PRIVATE_TMP,), bound=(workdir, *_python_roots())
    )


def confined_command(command: list[str], workdir: str, mode: SandboxMode, tmp_size_mb: int) -> list[str]:
    """The kernel's command line, inside the sandbox (`bwrap`) or as it is (`none`)."""
    return command if mode == "none" else [*bwrap_arguments(workdir, tmp_size_mb), "--", *command]


def bwrap_arguments(workdir: str, tmp_size_mb: int) -> list[str]:
    """`bwrap` and its options for a kernel that writes only in `workdir` and its private /tmp."""
    arguments = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",  # `--unshare-all` only tries it; without it there is no fence worth the name
        "--uid", _NOBODY, "--gid", _NOBODY,
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",  # no controlling terminal: no keystrokes pushed into resyn's (TIOCSTI)
        *(["--disable-userns"] if _bwrap_version() >= (0, 8) else []),
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for path in _ROOT_LINKS:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    for path in _SYSTEM_FILES:
        arguments += ["--ro-bind-try", path, path]
    arguments += ["--proc", "/proc", "--dev", "/dev"]
    if _can_size_tmpfs():  # a tmpfs is held in memory, outside the kernel's RLIMIT_AS
        arguments += ["--size", str(tmp_size_mb * 1024 * 1024)]
    arguments += ["--tmpfs", PRIVATE_TMP, "--dir", PRIVATE_HOME]  # before the binds that may lie in /tmp
    for path in _python_roots():
        arguments += ["--ro-bind", path, path]
    arguments += ["--bind", workdir, workdir, "--chdir", workdir]
    return arguments


def _python_roots() -> list[str]:
    """The interpreter's installation and the virtualenv: what the kernel needs to import, no more."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots = {os.path.realpath(root) for root in roots} | roots
    kept = sorted(root for root in roots if os.path.isdir(root) and not root.startswith("/usr/"))
    return [root for root in kept if not any(root.startswith(other + "/") for other in kept)]


@functools.cache
def _can_size_tmpfs() -> bool:
    """`--size` came with bubblewrap 0.7, and a setuid bwrap refuses it."""
    executable = shutil.which("bwrap")
    setuid = executable is not None and bool(os.stat(executable).st_mode & stat.S_ISUID)
    return _bwrap_version() >= (0, 7) and not setuid


@functools.cache
def _bwrap_version() -> tuple[int, ...]:
    output = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, check=False).stdout
    digits = output.split()[-1] if output.split() else "0"
    return tuple(int(part) for part in digits.split(".") if part.isdigit())


@functools.cache
def require_bwrap() -> None:
    """Check once per process that `bwrap` is there and can make its namespaces here."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(
            f"cannot sandbox model-written code: bwrap not found; {_INSTALL_HINT}, {_OPT_OUT_HINT}"
        )
    with tempfile.TemporaryDirectory(prefix="resyn-bwrap-probe-") as workdir:
        probe = subprocess.run(
            [*bwrap_arguments(workdir, tmp_size_mb=1), "--", "true"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
        raise SandboxUnavailable(
            f"cannot sandbox model-written code: bwrap failed ({why}); user namespaces may be "
            f"disabled (sysctl kernel.unprivileged_userns_clone=1), {_OPT_OUT_HINT}"
        )


@functools.cache
def announce_unconfined() -> None:
    """Say once per process, on stderr, that kernels run without the OS sandbox."""
    print(UNCONFINED_WARNING, file=sys.stderr)


def exit_signal(exit_status: int | None, mode: SandboxMode) -> int | None:
    """The signal that ended a kernel: a negative status from the process itself, or bwrap's
    128 + N for the kernel it ran."""
    if exit_status is None:
        return None
    if exit_status < 0:
        return -exit_status
    if mode == "bwrap" and 128 < exit_status < 128 + 65:
        return exit_status - 128
    return None
