"""Model-written code that steps past the audit hook with `ctypes` is still contained by the OS
sandbox (bubblewrap): every assertion here is made on the host, after the attack ran.

Each attack is an environment whose `generate` calls libc directly. The validator runs it; then the
test looks for what the attack tried to leave behind (a file, bytes on a socket, a secret in a
question, a process) and validates a good file to show the pool carries on.
"""

from __future__ import annotations

import os
import pwd
import socket
import sysconfig
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from resyn.settings import Settings
from resyn.testing.jobs import run_resyn
from resyn.tools import harness
from resyn.tools.agent_tools import Toolbox
from resyn.tools.kernel import Kernel, sandbox_kernel_pids
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.os_sandbox import UNCONFINED_WARNING
from resyn.tools.sampler import sample_in_kernel
from resyn.tools.validator import Validator

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "valid_minimal.py").read_text()

pytestmark = pytest.mark.usefixtures("os_sandbox")


def hostile(attack: str, question: str = "f'What is {seed} + {difficulty}?'") -> str:
    """A well-formed environment whose `generate` first runs `attack` (libc through ctypes)."""
    return (
        textwrap.dedent(
            """
        import ctypes, os, socket, struct
        NAME = "escape-attempt"
        TOPIC = "escaping the sandbox"
        DESCRIPTION = "Adds two numbers, after trying to reach the host."
        libc = ctypes.CDLL(None)
        libc.fopen.restype = ctypes.c_void_p
        libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]

        def write_file(path, text):
            handle = libc.fopen(path.encode(), b"w")
            if handle:
                libc.fputs(text.encode(), handle)
                libc.fclose(handle)

        def read_file(path):
            try:
                with open(path, "rb") as handle:
                    return handle.read().decode("utf-8", "replace")
            except OSError as error:
                return f"unreadable: {error}"

        def attack(seed, difficulty):
        """
        )
        + textwrap.indent(textwrap.dedent(attack).strip(), "    ")
        + textwrap.dedent(
            f"""

        def generate(seed, difficulty):
            found = attack(seed, difficulty) or ""
            return {{"question": {question} + " " + found[:2000] + " Answer with the number.",
                    "witness": str(seed + difficulty), "meta": {{}}}}

        def verify(instance, answer):
            return 1.0 if answer.strip() == instance["witness"] else 0.0
        """
        )
    )


async def validated_then_good(pool: KernelPool, settings: Settings, source: str) -> list[str]:
    """Validate `source`, sample it, then a good file; returns the sampled questions."""
    validator = Validator(pool, settings)
    await validator.validate(source)
    async with pool.lease() as kernel:
        try:
            questions = [
                instance.question
                for instance in await sample_in_kernel(kernel, source, 1, range(3), settings)
            ]
        except Exception:  # a refused or broken sample is fine: what matters is what reached the host
            questions = []
    assert (await validator.validate(VALID)).valid  # the pool goes on
    return questions


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host folder the kernel must not see (under the host's /tmp, hidden by the private one)."""
    return tmp_path


async def test_libc_system_runs_nothing_on_the_host(
    pool: KernelPool, settings: Settings, outside: Path
) -> None:
    proof = outside / "system-ran"
    await validated_then_good(pool, settings, hostile(f"libc.system(b'id > {proof}')"))
    assert not proof.exists()


async def test_no_file_appears_in_the_real_home(pool: KernelPool, settings: Settings) -> None:
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    proof = home / f"resyn-escape-{uuid.uuid4().hex}"
    attack = f"""
    import pwd
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = {str(home)!r}
    write_file({str(proof)!r}, "escaped")
    write_file(os.path.join(home, {proof.name!r}), "escaped")
    """
    try:
        await validated_then_good(pool, settings, hostile(attack))
        assert not proof.exists()
    finally:
        proof.unlink(missing_ok=True)


async def test_no_byte_reaches_a_listener_on_the_host_loopback(pool: KernelPool, settings: Settings) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        attack = f"""
        fd = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM
        address = struct.pack("=H", 2) + struct.pack("!H", {port}) + bytes([127, 0, 0, 1]) + bytes(8)
        if libc.connect(fd, address, len(address)) == 0:
            libc.write(fd, b"escaped", 7)
        """
        await validated_then_good(pool, settings, hostile(attack))
        with pytest.raises(TimeoutError):
            listener.accept()


async def test_files_outside_the_work_directory_cannot_be_read(
    pool: KernelPool, settings: Settings, outside: Path
) -> None:
    planted = outside / "planted.txt"
    planted.write_text("PLANTED-SECRET-1234")
    attack = f"return read_file({str(planted)!r}) + read_file('/etc/passwd')"
    questions = await validated_then_good(pool, settings, hostile(attack))
    assert questions, "the environment should still sample"
    assert not any("PLANTED-SECRET-1234" in question or "root:x:0" in question for question in questions)


def test_the_parents_environment_cannot_be_read(tmp_path: Path, fake_api_key: str) -> None:
    """`resyn sample`, started with an API key in its environment, on an environment that reads
    every /proc/PID/environ it can see (its parent's first): the key is in none of its output."""
    attack = """
    found = read_file(f"/proc/{os.getppid()}/environ")
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            found += read_file(f"/proc/{pid}/environ")
    return found.replace("\\0", " ")
    """
    path = tmp_path / "reads_environ.py"
    path.write_text(hostile(attack))
    env = {**os.environ, "RESYN_LLM_API_KEY": fake_api_key, "RESYN_DATA_DIR": str(tmp_path / "data")}
    sampled = run_resyn(env, "sample", str(path), "--json", timeout_s=120)
    assert sampled.returncode == 0, sampled.stderr
    assert "What is" in sampled.stdout  # it sampled, with whatever it found
    assert fake_api_key not in sampled.stdout + sampled.stderr


async def test_nothing_can_be_planted_in_site_packages(pool: KernelPool, settings: Settings) -> None:
    planted = Path(sysconfig.get_paths()["purelib"]) / f"resyn-planted-{uuid.uuid4().hex}.pth"
    try:
        await validated_then_good(pool, settings, hostile(f"write_file({str(planted)!r}, 'import os')"))
        assert not planted.exists()
    finally:
        planted.unlink(missing_ok=True)


async def test_a_forked_child_dies_with_its_kernel(settings: Settings, outside: Path) -> None:
    proof = outside / "orphan-wrote"
    attack = f"""
    if libc.fork() == 0:
        libc.setsid()
        libc.sleep(3)
        write_file({str(proof)!r}, "outlived")
        libc._exit(0)
    """
    before = set(sandbox_kernel_pids(owner=os.getpid()))
    async with KernelPool(settings.kernel) as own_pool:
        await validated_then_good(own_pool, settings, hostile(attack))
    time.sleep(4)
    assert not proof.exists()
    assert set(sandbox_kernel_pids(owner=os.getpid())) <= before  # nothing of that pool is left


async def test_signals_cannot_reach_outside(pool: KernelPool, settings: Settings) -> None:
    """Unconfined, this attack kills the test run itself: its parent is this process. (Never make it
    `kill(-1, SIGKILL)`: run unconfined as root, that ends every process on the machine.)"""
    attack = """
    libc.kill(os.getppid(), 9)  # in its own PID namespace the parent is the namespace's init
    """
    await validated_then_good(pool, settings, hostile(attack))  # this process lives on


async def test_run_python_is_contained_too(settings: Settings, outside: Path) -> None:
    proof = outside / "run-python-ran"
    code = f"import ctypes; ctypes.CDLL(None).system(b'id > {proof}; echo hi >> {proof}')"
    async with Toolbox(settings) as toolbox:
        result = await toolbox.call("run_python", {"code": code})
    assert result["status"] == "ok"
    assert not proof.exists()


def test_without_bubblewrap_no_code_runs_and_one_line_says_why(tmp_path: Path) -> None:
    no_bwrap = tmp_path / "bin"
    no_bwrap.mkdir()
    env = {**os.environ, "PATH": str(no_bwrap), "RESYN_DATA_DIR": str(tmp_path / "data")}
    refused = run_resyn(env, "validate", str(FIXTURES / "valid_minimal.py"), timeout_s=120)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: cannot sandbox model-written code: bwrap not found; install bubblewrap (Debian/Ubuntu: "
        "apt install bubblewrap), or set RESYN_KERNEL_SANDBOX=none to run it unconfined"
    ]

    unconfined = run_resyn(
        {**env, "RESYN_KERNEL_SANDBOX": "none"}, "validate", str(FIXTURES / "valid_minimal.py")
    )
    assert unconfined.returncode == 0, unconfined.stderr
    assert UNCONFINED_WARNING in unconfined.stderr


LIBRARY_CACHES = """
import os, shutil, tempfile
cache = os.path.expanduser("~/.cache/library")
os.makedirs(cache, exist_ok=True)
with open(os.path.join(cache, "index.json"), "w") as index:
    index.write("{}")
with tempfile.NamedTemporaryFile("w") as scratch:
    scratch.write("x")
folder = tempfile.mkdtemp()
open(os.path.join(folder, "part"), "w").close()
shutil.rmtree(folder)
os.replace(os.path.join(cache, "index.json"), "/tmp/index.json")
os.remove("/tmp/index.json")
"""


async def test_writes_inside_the_private_tmp_are_no_side_effects(pool: KernelPool) -> None:
    """What libraries do with their caches and temporary files lands in the kernel's own tmpfs."""
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, LIBRARY_CACHES)
    assert (result.status, result.error, result.events, kernel.dirty) == ("ok", None, [], False)


@pytest.mark.parametrize(
    "code",
    [
        "open('beside-the-connection-file', 'w')",  # relative: the work directory, bound from the host
        "import os; open(os.path.join(os.getcwd(), 'x'), 'w')",
        "import os; os.remove(os.path.join(os.getcwd(), '.kernel.json'))",
        "import os; os.symlink(os.getcwd(), '/tmp/work'); open('/tmp/work/x', 'w')",  # through /tmp
        "import os; os.chdir('/tmp'); open('relative', 'w')",  # relative to what, the event does not say
    ],
)
async def test_writes_that_may_reach_a_host_folder_are_side_effects(pool: KernelPool, code: str) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, code)
    assert result.error.startswith("PermissionError")
    assert [event["kind"] for event in result.events] == ["file_write"]
    assert kernel.dirty


async def test_the_private_tmp_holds_no_more_than_its_size(settings: Settings) -> None:
    kernel = Kernel(settings.kernel.model_copy(update={"tmp_size_mb": 1}))
    await kernel.start()
    try:
        result = await harness.run_code(kernel, "open('/tmp/big', 'wb').write(bytes(2 * 1024 * 1024))")
    finally:
        await kernel.shutdown()
    assert "No space left on device" in result.error
