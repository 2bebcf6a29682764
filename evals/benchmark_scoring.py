"""Whether a reply answers a BBH or BBEH example. The final answer is the last
`<answer>…</answer>` when there is one, else the whole reply; then

- BBH: exact match after normalising — the text after "the answer is", whitespace collapsed, a
  trailing period, bold and quotes stripped, case ignored; a target option "(B)" matches "(B)", "B"
  or "(B) the option's text";
- BBEH: the BBEH paper's fuzzy match — "The answer is"/"The final answer is" prefixes and LaTeX
  wrappers removed, lowercased, ", " → ",", first line only, a trailing period dropped; then equal,
  or an option letter with or without parentheses, or equal as numbers, or equal without quotes or
  surrounding brackets, or equal but for a trailing question mark.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from resyn.contract import extract_answer

_ANSWER_IS = re.compile(r"the (?:final )?answer is\s*:?\s*", re.IGNORECASE)
_OPTION = re.compile(r"^\(?([A-Za-z])\)?(?=$|[\s.:,)])")
_TARGET_OPTION = re.compile(r"^\([A-Z]\)$")


def final_answer(response: str) -> str:
    """The last <answer>…</answer> of a reply, else the whole reply."""
    tagged = extract_answer(response)
    return tagged if tagged is not None else response


def bbh_normalise(text: str) -> str:
    parts = _ANSWER_IS.split(text)
    text = parts[-1].strip().splitlines()[0] if len(parts) > 1 and parts[-1].strip() else text
    text = " ".join(text.replace("**", "").split())
    text = text.strip("`\"' ")
    return text[:-1].rstrip() if text.endswith(".") else text


def bbh_correct(answer: str, target: str) -> bool:
    prediction, target = bbh_normalise(answer), target.strip()
    if _TARGET_OPTION.match(target):
        option = _OPTION.match(prediction)
        return option is not None and option[1].upper() == target[1]
    return prediction.casefold() == " ".join(target.split()).casefold()


_BBEH_PREFIXES = ("The answer is:", "The final answer is ", "The final answer is: ", "The answer is ")


def _strip_latex(text: str) -> str:
    if len(text) > 1 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    for wrapper in ("boxed{", "text{", "texttt{"):
        if wrapper in text and text.endswith("}"):
            text = text[:-1].split(wrapper)[1]
    return text


def bbeh_normalise(text: str) -> str:
    answer = text.strip()
    for prefix in _BBEH_PREFIXES:
        if prefix in answer:
            answer = answer.split(prefix)[-1].strip()
    if answer.endswith("."):
        answer = answer[:-1]
    answer = _strip_latex(answer).lower().replace(", ", ",").replace("**", "")
    answer = answer.split("\n")[0]
    return answer[:-1] if answer.endswith(".") else answer


def bbeh_match(prediction: str, reference: str) -> bool:
    """The BBEH paper's fuzzy match of a normalised prediction and reference."""
    if prediction == reference:
        return True
    if len(prediction) == 3 and prediction[0] == "(" and prediction[-1] == ")":
        return prediction[1] == reference
    if len(reference) == 3 and reference[0] == "(" and reference[-1] == ")":
        return reference[1] == prediction
    try:
        if float(prediction) == float(reference):
            return True
    except ValueError:
        pass
    if prediction.replace("'", "") == reference.replace("'", ""):
        return True
    if prediction == f"[{reference}]" or reference == f"[{prediction}]":
        return True
    return prediction.endswith("?") and prediction[:-1] == reference


def bbeh_correct(answer: str, target: str) -> bool:
    return bbeh_match(bbeh_normalise(answer), target.strip().lower().replace(", ", ","))


CORRECT: dict[str, Callable[[str, str], bool]] = {"bbh": bbh_correct, "bbeh": bbeh_correct}
