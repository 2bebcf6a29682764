"""The contract's rules as the author model is told them, rendered from the thresholds the checks use.

The author's system prompt (agents/prompts/author_system.txt) holds `{contract_rules}`; every number
below comes from resyn/contract.py, so the prompt cannot drift from what the validator applies.
"""

from __future__ import annotations

from resyn.contract import (
    DIVERSITY_DRAWS,
    GENERATE_SECONDS,
    GRADED_MIN_T,
    LEAK_MIN_CHARS,
    MAX_QUESTION_CHARS,
    MIN_INSTANCE_SPACE,
    NAME_LENGTH,
    REJECTION_FLOOR,
    SHORTCUT_MARGIN,
    SHORTCUT_SHARE,
    VERIFY_SECONDS,
)


def contract_rules() -> str:
    """One bullet per check, named as the validator's report names it."""
    rules = [
        f"`loads`: the file runs on Python 3.11 and defines NAME (kebab-case [a-z0-9-], "
        f"{NAME_LENGTH[0]}..{NAME_LENGTH[1]} characters), TOPIC, DESCRIPTION (non-empty strings), and "
        "generate and verify, each taking two positional arguments.",
        f"`generates`: generate returns {{question, witness, meta}}: question a non-empty str of at most "
        f"{MAX_QUESTION_CHARS:,} characters, the full text a solver sees, with the exact answer format; "
        "witness a str, one correct answer as a solver would write it, built while generating (plant "
        "the solution, then derive the puzzle); meta a JSON-serializable dict. difficulty is an int "
        "from 1 (easiest) to 5 (hardest): clamp anything else with "
        "`difficulty = max(1, min(5, int(difficulty)))`.",
        "`deterministic`: the same (seed, difficulty) gives the identical instance in two fresh "
        "kernels with different PYTHONHASHSEED. Use a local `random.Random(seed * 1000 + difficulty)`; "
        "never the global `random`, the clock, `hash()` of strings, or the iteration order of sets.",
        f"`diverse`: over {DIVERSITY_DRAWS} seeds per difficulty, questions repeat rarely enough that "
        f"every level is estimated to hold at least {MIN_INSTANCE_SPACE} distinct questions.",
        "`witness_accepted`: verify(instance, witness) == 1.0 for every instance. verify receives exactly "
        "what generate returned after a JSON round trip (tuples become lists, integer dict keys "
        "become strings). verify must accept every correct answer, not only the witness, where "
        "several are correct (any valid order, any shortest path).",
        f"`rejects_wrong`: verify scores exactly 0.0 for an empty answer and for junk, and below 1.0 "
        f"for at least {REJECTION_FLOOR:.0%} of other instances' witnesses (so small answer spaces "
        "such as yes/no are fine). A verifier that accepts everything fails here.",
        "`robust`: verify never raises and returns a float in [0, 1] for any answer: very long "
        'strings, unicode, "1e309", "NaN", JSON, code. Any malformed answer scores 0.0.',
        f"`no_leak`: a witness of {LEAK_MIN_CHARS} or more characters never appears verbatim in its "
        "question, unless the question offers a closed set of answers (other instances' answers "
        "appear in the questions at least half as often as their own, as in multiple choice).",
        f"`graded`: higher levels are genuinely harder (larger, deeper, more constraints), and meta "
        "reports the sizes difficulty sets: some number in meta (or the length of a list, string or "
        f"dict in it), or the question's length, is larger at level 5 than at level 1 by more than "
        f"{GRADED_MIN_T:g} standard errors over {DIVERSITY_DRAWS} seeds.",
        f"`no_shortcut`: answers derived cheaply from the question (each of its lines with or without "
        "a leading label, its sentences, quoted strings and listed options by position, its numbers "
        'by position and its largest and smallest, a contradiction like "(P ∧ ¬P)" for logic '
        f"questions) score 1.0 on at most {SHORTCUT_SHARE:.0%} of instances (or, in a small answer "
        "space where different questions often share their answer, such as yes/no, at most "
        f"{SHORTCUT_MARGIN:.0%} above how often they share it).",
        "`no_side_effects`: standard library only (unless the run allows more imports); no files, no "
        "network, no subprocesses, no signals, no printing needed; importing the file only defines "
        "names.",
        f"`within_limits`: one instance is generated in under {GENERATE_SECONDS:g} s and verified in "
        f"under {VERIFY_SECONDS:g} s of CPU time, at level 5 too; bound every loop (no `while True` "
        "without a cap). Exhaustive search is fine only while level 5 keeps it small (say so in a "
        "comment, e.g. 2^n assignments with n <= 10).",
    ]
    return "\n".join(f"- {rule}" for rule in rules)
