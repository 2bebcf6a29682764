"""The validator against real environments: the examples pass, each defect fails its own check,
and hostile code is contained, classified, and leaves the validator working."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resyn.agents.exemplars import Exemplar, load_exemplars
from resyn.contract import CHECK_NAMES, ValidationReport
from resyn.settings import Settings
from resyn.tools import checks
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.validator import Validator

EXAMPLES = load_exemplars()
FIXTURES = Path(__file__).parent / "fixtures"
DEFECTIVE = sorted((FIXTURES / "defective").glob("*.py"))
HOSTILE = sorted((FIXTURES / "hostile").glob("*.py"))


def expected_failures(path: Path) -> set[str]:
    """The checks a fixture declares it must fail, from its first line `# expect-fail: a, b`."""
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# expect-fail:"), f"{path.name} must start with '# expect-fail:'"
    return {name.strip() for name in first_line.split(":", 1)[1].split(",")}


def failed_checks(report: ValidationReport) -> set[str]:
    return {check.name for check in report.failures()}


def explain(report: ValidationReport) -> str:
    return "; ".join(f"{check.name}: {check.detail}" for check in report.failed())


async def validate(pool: KernelPool, settings: Settings, path: Path) -> ValidationReport:
    return await Validator(pool, settings).validate(path.read_text())


def test_there_are_ten_examples_from_different_families() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("exemplar", EXAMPLES, ids=lambda exemplar: exemplar.name)
async def test_every_example_environment_is_valid(
    pool: KernelPool, settings: Settings, exemplar: Exemplar
) -> None:
    report = await Validator(pool, settings).validate(exemplar.source)
    assert report.valid, explain(report)
    assert [check.name for check in report.checks] == list(CHECK_NAMES)


def test_every_check_has_a_defective_fixture() -> None:
    assert {path.stem for path in DEFECTIVE} == set(CHECK_NAMES)


@pytest.mark.parametrize("path", DEFECTIVE, ids=lambda path: path.stem)
async def test_a_defective_environment_fails_exactly_its_check(
    pool: KernelPool, settings: Settings, path: Path
) -> None:
    report = await validate(pool, settings, path)
    assert not report.valid
    assert failed_checks(report) == expected_failures(path), explain(report)
    for check in report.failed():
        assert check.detail, f"{check.name} failed without saying why"


async def test_a_failed_check_names_the_seed_and_difficulty(pool: KernelPool, settings: Settings) -> None:
    report = await validate(pool, settings, FIXTURES / "defective" / "witness_accepted.py")
    detail = report.check("witness_accepted").detail
    assert "seed=" in detail and "difficulty=" in detail


async def test_a_file_that_does_not_load_skips_the_other_checks(pool: KernelPool, settings: Settings) -> None:
    report = await Validator(pool, settings).validate("raise RuntimeError('broken at import')\n")
    skipped = {check.name for check in report.checks if check.skipped}
    assert skipped == set(CHECK_NAMES) - {"loads", "no_side_effects", "within_limits"}
    assert "RuntimeError: broken at import" in report.check("loads").detail
    assert report.check("graded").detail == "not run: the file did not load"


BADLY_NAMED_LEAKY_SOURCE = """
import random

NAME = "My Puzzle"
TOPIC = "mental arithmetic"
DESCRIPTION = "Add up a list of six-digit numbers."


def generate(seed, difficulty):
    numbers = [random.randint(100_000, 999_999) for _ in range(2 * difficulty)]
    question = f"Add {numbers}. (The total is {sum(numbers)}.)"
    return {"question": question, "witness": str(sum(numbers)), "meta": {"numbers": numbers}}


def verify(instance, answer):
    return float(answer.strip() == str(sum(instance["meta"]["numbers"])))
"""


async def test_a_bad_name_does_not_hide_the_real_defects(pool: KernelPool, settings: Settings) -> None:
    report = await Validator(pool, settings).validate(BADLY_NAMED_LEAKY_SOURCE)
    assert "NAME 'My Puzzle' is not kebab-case" in report.check("loads").detail
    assert {"loads", "no_leak", "deterministic"} <= failed_checks(report), explain(report)
    assert "appears verbatim in the question" in report.check("no_leak").detail
    deterministic = report.check("deterministic").detail
    assert "gave a different question in a second kernel" in deterministic
    assert "the global random module" in deterministic


def generated(seed: int, question: str, numbers: list[int]) -> dict:
    instance = {"question": question, "witness": str(len(numbers)), "meta": {"numbers": numbers}}
    return {"status": "ok", "seed": seed, "difficulty": 2, "instance": instance}


def test_a_nondeterministic_question_shows_both_versions_where_they_differ() -> None:
    shared = "Route the delivery trucks through " + "the depot, " * 20  # 254 characters both share
    first = [generated(seed, f"{shared}then stop at A{seed}.", [seed]) for seed in range(40)]
    second = [generated(seed, f"{shared}then stop at B{seed}.", [seed]) for seed in range(40)]
    passed, detail = checks.deterministic(first, second)
    assert passed is False
    one, two = detail.split(" in a second kernel: ")[1].split(" (and ")[0].split(" vs ")
    assert "A0." in one and "B0." in two  # the difference itself, not the start both share
    assert len(one) <= checks.CONTRAST_CHARS + 4 and len(two) <= checks.CONTRAST_CHARS + 4
    assert "generate(seed=0, difficulty=2) gave a different question" in detail
    assert "(and 39 more of the 40 instances compared)" in detail


def test_a_nondeterministic_meta_names_the_field_and_both_values() -> None:
    question = "What is the sum? Answer with one integer."
    passed, detail = checks.deterministic(
        [generated(7, question, [1, 2, 3])], [generated(7, question, [1, 2, 4])]
    )
    assert passed is False
    assert "gave a different meta.numbers[2] in a second kernel: '3' vs '4';" in detail


MALFORMED_SOURCE = """
NAME = "no-witness"
TOPIC = "nothing"
DESCRIPTION = "Returns instances without a witness."


def generate(seed, difficulty):
    return {"question": f"What is {seed}?", "witness": None, "meta": {}}


def verify(instance, answer):
    return 0.0
"""


async def test_checks_with_no_well_formed_instance_are_skipped_not_passed(
    pool: KernelPool, settings: Settings
) -> None:
    report = await Validator(pool, settings).validate(MALFORMED_SOURCE)
    assert not report.valid
    assert "witness must be a str" in report.check("generates").detail
    for name in (
        "diverse",
        "witness_accepted",
        "rejects_wrong",
        "robust",
        "no_leak",
        "graded",
        "no_shortcut",
    ):
        check = report.check(name)
        assert check.skipped and not check.passed and check.detail, name


async def test_a_rejected_witness_is_shown_with_the_instance_verify_got(
    pool: KernelPool, settings: Settings
) -> None:
    report = await validate(pool, settings, FIXTURES / "defective" / "witness_accepted.py")
    detail = report.check("witness_accepted").detail
    assert "for the witness '" in detail and "after a JSON round trip" in detail
    assert "more of the 40 instances)" in detail  # how many more, and of what


@pytest.mark.parametrize("path", HOSTILE, ids=lambda path: path.stem)
async def test_a_hostile_environment_is_contained_and_classified(
    pool: KernelPool, settings: Settings, path: Path, fake_api_key: str
) -> None:
    report = await validate(pool, settings, path)
    assert not report.valid
    assert expected_failures(path) <= failed_checks(report), explain(report)
    assert fake_api_key not in report.model_dump_json()
    after = await validate(pool, settings, FIXTURES / "valid_minimal.py")
    assert after.valid, "the validator must keep working after a hostile environment: " + explain(after)


async def test_no_api_key_reaches_a_report_or_an_instance(
    pool: KernelPool, settings: Settings, fake_api_key: str
) -> None:
    from resyn.tools.sampler import sample_in_kernel

    source = (FIXTURES / "hostile" / "read_api_key.py").read_text()
    report = await Validator(pool, settings).validate(source)
    assert "OPENAI_API_KEY" in report.check("no_side_effects").detail
    async with pool.lease() as kernel:
        instances = await sample_in_kernel(kernel, source, 1, range(3), settings)
    assert fake_api_key not in report.model_dump_json()
    assert all(fake_api_key not in instance.model_dump_json() for instance in instances)


async def test_a_well_behaved_environment_leaves_the_pool_warm(pool: KernelPool, settings: Settings) -> None:
    """Kernels are reset, not restarted, between environments that did nothing wrong."""
    from resyn.tools.kernel import sandbox_kernel_pids

    await validate(pool, settings, FIXTURES / "valid_minimal.py")
    before = set(sandbox_kernel_pids(owner=os.getpid()))
    for exemplar in EXAMPLES[:3]:
        assert (await Validator(pool, settings).validate(exemplar.source)).valid
    assert set(sandbox_kernel_pids(owner=os.getpid())) == before
