import json

from resyn.contract import CHECK_NAMES, ValidationReport, extract_answer


def test_answer_is_the_text_of_the_last_answer_pair() -> None:
    assert extract_answer("<answer>1</answer> no, wait: <answer> 2 </answer>") == " 2 "


def test_a_response_without_an_answer_pair_has_no_answer() -> None:
    assert extract_answer("the answer is 2") is None
    assert extract_answer("<answer>2") is None


def test_answers_may_span_lines() -> None:
    assert extract_answer("<answer>a\nb</answer>") == "a\nb"


def test_check_names_are_the_contracts() -> None:
    assert CHECK_NAMES == (
        "loads", "generates", "deterministic", "diverse", "witness_accepted",
        "rejects_wrong", "robust", "no_leak", "graded", "no_shortcut", "no_side_effects",
        "within_limits",
    )  # fmt: skip


def test_a_version_1_report_stays_readable() -> None:
    """Libraries written before v2 hold ten-check reports; they load and judge as they did."""
    v1_names = [name for name in CHECK_NAMES if name not in ("graded", "no_shortcut")]
    checks = [{"name": name, "passed": name != "no_leak", "detail": ""} for name in v1_names]
    report = ValidationReport.model_validate_json(
        json.dumps({"name": "old", "valid": False, "checks": checks, "seconds": 1.0})
    )
    assert [check.name for check in report.failures()] == ["no_leak"]
    assert report.check("within_limits").passed


def test_the_author_is_told_every_check_with_the_thresholds_it_is_judged_by() -> None:
    from resyn.agents.prompts import author_system_prompt
    from resyn.contract import LEAK_MIN_CHARS, MIN_INSTANCE_SPACE, SHORTCUT_SHARE

    system = author_system_prompt()
    assert "{contract_rules}" not in system
    for name in CHECK_NAMES:
        assert f"`{name}`" in system, name
    assert f"{LEAK_MIN_CHARS} or more characters" in system
    assert f"at least {MIN_INSTANCE_SPACE} distinct questions" in system
    assert f"at most {SHORTCUT_SHARE:.0%} of instances" in system
