"""The sandboxed kernel and its pool: what untrusted code can and cannot do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from resyn.settings import KernelSettings
from resyn.tools import harness
from resyn.tools.kernel import KERNEL_DIR_PREFIX, Kernel, sandbox_kernel_pids
from resyn.tools.kernel_pool import KernelPool


async def test_a_kernel_sees_a_scrubbed_environment_and_its_own_directory(
    pool: KernelPool, fake_api_key: str
) -> None:
    async with pool.lease() as kernel:
        result = await kernel.execute("import os; _resyn_sandbox.reply([dict(os.environ), os.getcwd()])")
    environment, cwd = result.value
    assert fake_api_key not in str(environment)
    assert "OPENAI_API_KEY" not in environment
    assert environment["PYTHONHASHSEED"] == str(kernel.hash_seed)
    assert os.path.basename(cwd).startswith(KERNEL_DIR_PREFIX)
    assert (environment["HOME"], environment["TMPDIR"]) == (kernel.area.home, kernel.area.tmp)


async def test_a_reply_crosses_as_json(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await kernel.execute("_resyn_sandbox.reply({'a': [1, 2.5, None]}); print('hi'); 1 + 1")
    assert result.status == "ok"
    assert result.value == {"a": [1, 2.5, None]}
    assert result.stdout == "hi\n"
    assert result.display == "2"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("open('out.txt', 'w')", "file_write"),
        ("import os; os.open(os.path.join(os.getcwd(), 'x'), os.O_WRONLY | os.O_CREAT)", "file_write"),
        ("import os; os.remove('/etc/hostname')", "file_write"),
        ("import subprocess; subprocess.run(['true'])", "process"),
        ("import os; os.system('true')", "process"),
        ("import os; os.fork()", "process"),
        ("import socket; socket.socket().connect(('127.0.0.1', 9))", "socket"),
        ("import socket; socket.socket().bind(('127.0.0.1', 0))", "socket"),
        ("import os, signal; os.kill(os.getppid(), signal.SIGTERM)", "signal"),
    ],
)
async def test_forbidden_side_effects_are_refused_and_recorded(
    pool: KernelPool, code: str, kind: str
) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, code)
    assert result.status == "error"
    assert result.error.startswith("PermissionError")
    assert [event["kind"] for event in result.events] == [kind]
    assert kernel.dirty, "a kernel that saw a refused side effect is not reused"


async def test_reading_a_secret_looking_variable_is_recorded(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, "import os; os.environ.get('OPENAI_API_KEY')")
    assert result.status == "ok"
    assert result.events == [{"kind": "secret_read", "event": "os.environ", "detail": "OPENAI_API_KEY"}]


async def test_a_harness_call_without_a_usable_reply_distrusts_the_kernel(pool: KernelPool, settings) -> None:
    instance = {"question": "q", "witness": "w", "meta": {}}
    async with pool.lease() as kernel:
        with pytest.raises(harness.HarnessStopped) as stopped:
            await harness.score(kernel, [(instance, "w")], settings, key="not-kept")
    assert (stopped.value.function, stopped.value.status) == ("score_batch", "error")
    assert kernel.dirty, "the pool replaces a kernel whose harness call failed"


async def test_reading_files_is_allowed(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await kernel.execute("import os\nlen(open(os.__file__).read()) >= 0")
    assert (result.status, result.display, result.events) == ("ok", "True", [])


async def test_a_timeout_interrupts_and_the_kernel_keeps_its_state(settings) -> None:
    kernel = Kernel(settings.kernel)
    await kernel.start()
    try:
        await kernel.execute("x = 41")
        result = await kernel.execute("while True: pass", timeout=0.5)
        assert result.status == "timeout"
        assert (await kernel.execute("x + 1")).display == "42"
    finally:
        await kernel.shutdown()


async def test_a_kernel_that_ignores_interrupts_is_restarted(settings) -> None:
    kernel = Kernel(settings.kernel)
    await kernel.start()
    try:
        await kernel.execute("x = 41")
        stubborn = "import time\nwhile True:\n  try:\n    time.sleep(0.01)\n  except BaseException:\n    pass"
        result = await kernel.execute(stubborn, timeout=0.5)
        assert result.status == "timeout"
        after = await kernel.execute("'x' in globals()")
        assert (after.status, after.display) == ("ok", "False")
    finally:
        await kernel.shutdown()


@pytest.mark.parametrize("code", ["import os; os._exit(3)", "import ctypes; ctypes.string_at(0)"])
async def test_a_dying_kernel_is_detected_and_replaced(settings, code: str) -> None:
    kernel = Kernel(settings.kernel)
    await kernel.start()
    try:
        first_pid = kernel.pid
        result = await kernel.execute(code)
        assert result.status == "crashed"
        assert kernel.pid != first_pid
        assert (await kernel.execute("1 + 1")).display == "2"
    finally:
        await kernel.shutdown()


async def test_output_is_capped_and_says_so(pool: KernelPool, settings) -> None:
    async with pool.lease() as kernel:
        result = await kernel.execute("for _ in range(1000): print('x' * 999)")
    assert result.status == "ok"
    assert result.truncated
    assert len(result.stdout) == settings.kernel.output_limit_bytes


async def test_an_output_flood_is_stopped(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, "while True: print('x' * 10_000)")
    assert result.status == "limit"
    assert result.truncated


async def test_memory_is_limited(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, "block = bytearray(8 * 2**30)")
    assert result.status == "limit"
    assert result.error.startswith("MemoryError")


async def test_no_state_leaks_from_one_lease_to_the_next(pool: KernelPool, settings) -> None:
    rounds = settings.kernel.pool_size * 2
    for _ in range(rounds):
        async with pool.lease() as kernel:
            await kernel.execute("import colorsys\nleaked = 42")
    for _ in range(rounds):
        async with pool.lease() as kernel:
            result = await kernel.execute("import sys; ('leaked' in globals(), 'colorsys' in sys.modules)")
            assert result.display == "(False, False)"


async def test_a_kernel_whose_stdlib_was_monkeypatched_is_replaced(pool: KernelPool, settings) -> None:
    async with pool.lease() as kernel:
        await kernel.execute("import random; random.random = lambda: 0.5")
        tampered_pid = kernel.pid
    for _ in range(settings.kernel.pool_size * 2):
        async with pool.lease() as kernel:
            assert kernel.pid != tampered_pid
            result = await kernel.execute("import random; random.random() != 0.5")
            assert result.display == "True"


async def test_a_kernel_that_imported_a_compiled_module_is_replaced_not_reset(settings) -> None:
    """A reset drops the modules an environment imported; an extension module's state lives in C,
    beyond its reach, and some (numpy's) cannot be imported a second time in one process."""
    kernel = Kernel(settings.kernel)
    await kernel.start()
    try:
        await kernel.execute("import colorsys")  # pure Python: a reset takes it back
        assert await harness.reset(kernel)
        before = await kernel.execute("import sys\n'cmath' in sys.modules")
        assert before.display == "False", "cmath must not be preloaded for this test to mean anything"
        await kernel.execute("import cmath")
        assert not await harness.reset(kernel)
        assert kernel.dirty
    finally:
        await kernel.shutdown()


TIMED = textwrap.dedent(
    """
    import time
    NAME = "timed"
    TOPIC = "time limits"
    DESCRIPTION = "Spends its time as the seed says."

    def generate(seed, difficulty):
        if seed == 1:
            while True:
                pass
        if seed == 2:
            time.sleep(0.6)
        if seed == 3:
            time.sleep(3600)
        if seed == 4:
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
        return {"question": "What is 1 + 1?", "witness": "2", "meta": {}}

    def verify(instance, answer):
        return float(answer == instance["witness"])
    """
)
LIMIT_S = 0.2  # so the wall-clock backstop is 1 s


async def generated(kernel: Kernel, seed: int) -> dict:
    """generate(seed, 1) of TIMED under a 0.2 s limit, as the harness reports it."""
    loaded = await kernel.call("load", TIMED, [], 5.0, 1000)
    assert loaded.value["status"] == "ok", loaded.value
    result = await kernel.call("generate_batch", [[seed, 1]], LIMIT_S, 1000, timeout=30)
    return result.value[0]


async def test_a_call_is_stopped_by_its_cpu_time(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        call = await generated(kernel, seed=1)
    assert call["status"] == "timeout"
    assert call["error"].startswith("exceeded 0.2 s of CPU time")


async def test_waiting_past_the_limit_but_within_the_backstop_passes(pool: KernelPool) -> None:
    """The limit judges the computation (CPU time), not the machine's load or a wait."""
    async with pool.lease() as kernel:
        call = await generated(kernel, seed=2)
    assert call["status"] == "ok"
    assert call["seconds"] > LIMIT_S > call["cpu_seconds"]


async def test_a_batch_gives_up_after_two_calls_stopped_by_a_limit(pool: KernelPool) -> None:
    """A generator that hangs on every seed costs its limit twice per batch, not once per seed;
    the calls that finish in between do not count."""
    async with pool.lease() as kernel:
        await kernel.call("load", TIMED, [], 5.0, 1000)
        pairs = [[1, 1], [0, 1], [1, 2], [1, 3], [0, 2]]
        result = await kernel.call("generate_batch", pairs, LIMIT_S, 1000, timeout=30)
    assert [call["status"] for call in result.value] == ["timeout", "ok", "timeout", "skipped", "skipped"]


async def test_a_hang_is_stopped_by_the_wall_clock_backstop_after_one_retry(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        call = await generated(kernel, seed=3)
    assert call["status"] == "timeout"
    assert call["error"] == "ran 1 s of wall time (backstop, retried once)"


async def test_code_that_swallows_its_cpu_time_limit_ends_its_kernel(settings) -> None:
    kernel = Kernel(settings.kernel)
    await kernel.start()
    try:
        first_pid = kernel.pid
        loaded = await kernel.call("load", TIMED, [], 5.0, 1000)
        assert loaded.value["status"] == "ok"
        result = await kernel.call("generate_batch", [[4, 1]], LIMIT_S, 1000, timeout=30)
        assert result.status == "crashed"
        assert "caught its time limit" in result.error
        assert kernel.pid != first_pid
    finally:
        await kernel.shutdown()


async def test_without_the_os_sandbox_every_write_is_a_side_effect(tmp_path) -> None:
    """Unconfined, /tmp is the host's: there is no private place to write to."""
    kernel = Kernel(KernelSettings(sandbox="none"))
    await kernel.start()
    target = tmp_path / "written-by-a-kernel"
    try:
        result = await harness.run_code(kernel, f"open({str(target)!r}, 'w')")
        assert result.error.startswith("PermissionError")
        assert [event["kind"] for event in result.events] == ["file_write"]
        assert not target.exists()
    finally:
        await kernel.shutdown()


async def test_making_a_directory_that_exists_is_no_side_effect(pool: KernelPool) -> None:
    async with pool.lease() as kernel:
        result = await harness.run_code(kernel, "import os\nos.makedirs(os.getcwd(), exist_ok=True)")
    assert (result.status, result.events, kernel.dirty) == ("ok", [], False)


POOL_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from resyn.settings import KernelSettings
    from resyn.tools.kernel_pool import KernelPool

    async def main():
        async with KernelPool(KernelSettings()) as pool:
            async with pool.lease() as kernel:
                print(kernel.pid, flush=True)
                await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def _kernel_running(pid: int) -> bool:
    return pid in sandbox_kernel_pids()


def _wait_until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _kernel_running(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_no_kernel_outlives_its_parent(stop: signal.Signals) -> None:
    parent = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT], stdout=subprocess.PIPE, text=True)
    kernel_pid = int(parent.stdout.readline())
    assert _kernel_running(kernel_pid)
    parent.send_signal(stop)
    parent.wait(timeout=30)
    assert _wait_until_gone(kernel_pid, seconds=10), f"kernel {kernel_pid} outlived its parent ({stop.name})"
