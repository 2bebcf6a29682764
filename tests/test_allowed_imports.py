"""Allowed imports (`validator.allowed_imports`): every kernel imports them when it starts, before its
audit hook is armed, and keeps them across resets; a kernel that imported compiled modules since then
is replaced rather than reset, so a verdict never depends on what a kernel ran before."""

from __future__ import annotations

from pathlib import Path

import pytest

from resyn.contract import ValidationReport
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator

FIXTURES = Path(__file__).parent / "fixtures"
IMPORTS = FIXTURES / "imports"
UNGUARDED_CHECKS = ("loads", "no_side_effects", "within_limits")


def allowing(settings: Settings, *modules: str) -> Settings:
    """The test settings with an allow-list; built anew, so that the kernels preload it too."""
    validator = settings.validator.model_copy(update={"allowed_imports": list(modules)})
    return Settings(kernel=settings.kernel, validator=validator)


async def validated_in_a_fresh_pool(settings: Settings, *paths: Path) -> list[ValidationReport]:
    """Validate the files one after the other on one new pool."""
    return await sources_validated_in_a_fresh_pool(settings, *(path.read_text() for path in paths))


async def sources_validated_in_a_fresh_pool(settings: Settings, *sources: str) -> list[ValidationReport]:
    async with KernelPool(settings.kernel) as pool:
        validator = Validator(pool, settings)
        return [await validator.validate(source) for source in sources]


async def kernel_pids(pool: KernelPool) -> set[int | None]:
    """The processes of a pool of two: a restarted kernel has a new one."""
    async with pool.lease() as first, pool.lease(avoid=first) as second:
        return {first.pid, second.pid}


def verdicts(report: ValidationReport) -> dict[str, bool]:
    return {check.name: check.passed for check in report.checks}


def explain(report: ValidationReport) -> str:
    return "; ".join(f"{check.name}: {check.detail}" for check in report.failed())


def test_the_kernels_preload_exactly_the_allow_list(settings: Settings) -> None:
    assert allowing(settings, "numpy", "matplotlib").kernel.preload == ["numpy", "matplotlib"]
    assert allowing(settings).kernel.preload == []


async def test_a_library_that_creates_its_config_directory_as_it_imports_loads_cleanly(
    settings: Settings,
) -> None:
    """matplotlib creates ~/.config/matplotlib when imported: harmless before the guard is armed."""
    [report] = await validated_in_a_fresh_pool(allowing(settings, "matplotlib"), IMPORTS / "color_mixing.py")
    for name in UNGUARDED_CHECKS:
        assert report.check(name).passed, explain(report)


async def test_allowed_imports_are_imported_once_per_kernel_and_kept_across_resets(
    settings: Settings,
) -> None:
    allowed = allowing(settings, "matplotlib")
    source = (IMPORTS / "color_mixing.py").read_text()
    async with KernelPool(allowed.kernel) as pool:
        kernels = await kernel_pids(pool)
        for _ in range(3):
            assert (await Validator(pool, allowed).validate(source)).check("loads").passed
        async with pool.lease() as kernel:  # reset after the last environment, which imported matplotlib
            preloaded = await kernel.execute("import sys\n'matplotlib' in sys.modules")
        assert preloaded.display == "True"
        assert await kernel_pids(pool) == kernels, "no kernel was restarted to import matplotlib again"


async def test_an_allowed_import_that_failed_when_the_kernel_started_fails_loads_and_says_why(
    settings: Settings,
) -> None:
    plain = (FIXTURES / "valid_minimal.py").read_text()
    allowed = allowing(settings, "resyn_missing_library")
    needs_it, without_it = await sources_validated_in_a_fresh_pool(
        allowed, "import resyn_missing_library\n" + plain, plain
    )
    assert (
        "allowed import resyn_missing_library failed when the kernel started: ModuleNotFoundError"
        in needs_it.check("loads").detail
    )
    assert without_it.check("loads").passed, "the kernels started and work: " + explain(without_it)


async def test_a_verdict_does_not_depend_on_what_the_kernels_ran_before(settings: Settings) -> None:
    """numpy is allowed; `numpy.fft` is a compiled module numpy imports only when asked, and a second
    import of it in one process fails. After a file whose import failed once numpy.fft was in, files
    that need it get the verdicts they get alone: the kernels that imported it were replaced."""
    allowed = allowing(settings, "numpy")
    good = [IMPORTS / "dominant_frequency.py", IMPORTS / "spectrum_peaks.py"]
    alone = [(await validated_in_a_fresh_pool(allowed, path))[0] for path in good]
    failed, *after = await validated_in_a_fresh_pool(allowed, IMPORTS / "fft_import_fails.py", *good, *good)
    assert "cannot import name 'spectrum'" in failed.check("loads").detail
    assert all(report.check("loads").passed for report in alone), [explain(report) for report in alone]
    assert [verdicts(report) for report in after] == [verdicts(report) for report in alone * 2], [
        explain(report) for report in after
    ]


async def test_a_reasoning_gym_task_loads_without_side_effects(settings: Settings) -> None:
    """The case the allow-list is for: reasoning_gym imports matplotlib (a config directory and a
    font cache), numpy and more."""
    pytest.importorskip("reasoning_gym")
    allowed = allowing(settings, "reasoning_gym")
    [report] = await validated_in_a_fresh_pool(allowed, IMPORTS / "reasoning_gym_chain_sum.py")
    for name in UNGUARDED_CHECKS:
        assert report.check(name).passed, explain(report)
