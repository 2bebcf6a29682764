from resyn.contract import CHECK_NAMES, extract_answer


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
        "rejects_wrong", "robust", "no_leak", "no_side_effects", "within_limits",
    )  # fmt: skip
