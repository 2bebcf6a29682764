"""The environment contract (v2) as types and thresholds: see docs/contract.md.

Everything that speaks the contract — kernel harness, validator, library, exporters — takes
its names and limits from here, so a change to the contract is a change to this one module.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, Field

CONTRACT_VERSION = 2

NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
NAME_LENGTH = (3, 64)
DIFFICULTIES = (1, 2, 3, 4, 5)
MAX_QUESTION_CHARS = 8_000
GENERATE_SECONDS = 2.0
VERIFY_SECONDS = 1.0
LEAK_MIN_CHARS = 6  # shorter witnesses ("8", "yes") appear in questions by coincidence
# diverse: questions drawn per difficulty to estimate the instance space (fewer when generate is slow)
DIVERSITY_DRAWS = 64
MIN_INSTANCE_SPACE = 100  # distinct questions per difficulty a training run needs at the least
REJECTION_FLOOR = 0.5  # rejects_wrong: share of other instances' witnesses verify must score below 1.0
# no_shortcut: a trick derived from the question may pay on at most this share of instances, and on
# at most SHORTCUT_MARGIN more than blind guessing (another instance's witness) pays
SHORTCUT_SHARE = 0.2
SHORTCUT_MARGIN = 0.2
GRADED_MIN_T = 3.0  # graded: a size must grow from level 1 to level 5 by this many standard errors

CHECK_NAMES = (
    "loads",
    "generates",
    "deterministic",
    "diverse",
    "witness_accepted",
    "rejects_wrong",
    "robust",
    "no_leak",
    "graded",
    "no_shortcut",
    "no_side_effects",
    "within_limits",
)


class Status(StrEnum):
    """An environment's status in the library: `running` while it is synthesized, then its verdict.

    Members are strings ("accepted" == Status.ACCEPTED), so the library, JSON output and traces
    hold the same text as ever. LangGraph state is the exception: its checkpoint serializer would
    store a member as a typed extension, so graph nodes write `status.value` there.
    """

    RUNNING = "running"  # its synthesis has begun and not yet ended
    ACCEPTED = "accepted"  # valid, novel, and (unless the probe was skipped) learnable by the solver
    INVALID = "invalid"  # it failed validation and the repairs were spent (or its reply held no code)
    UNSOLVABLE = "unsolvable"  # the solver solved too few of the probed instances
    TOO_EASY = "too_easy"  # the solver solved too many of the probed instances
    INVERTED = "inverted"  # pass rates rise with difficulty beyond noise: the knob means nothing
    DUPLICATE = "duplicate"  # too close to an environment already accepted
    OFF_TOPIC = "off_topic"  # written for another topic than the one it was asked for
    LLM_FAILURE = "llm_failure"  # the author or the solver could not be reached
    ERROR = "error"  # resyn itself failed on this environment (a bug, not the author's fault)

    @property
    def finished(self) -> bool:
        """Whether this is a verdict: every status but `running`."""
        return self is not Status.RUNNING


ANSWER_INSTRUCTION = (
    "Think step by step, then give your final answer between <answer> and </answer>, "
    "exactly in the format the question asks for."
)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_answer(response: str) -> str | None:
    """The text between the last <answer>…</answer> pair, or None when there is none."""
    matches = _ANSWER_TAG.findall(response)
    return matches[-1] if matches else None


class Instance(BaseModel):
    """One generated problem, as `generate` returns it."""

    question: str
    witness: str
    meta: dict = Field(default_factory=dict)


class SampledInstance(Instance):
    seed: int
    difficulty: int


class CheckResult(BaseModel):
    name: str
    passed: bool
    detail: str = ""
    skipped: bool = False


class ValidationReport(BaseModel):
    """The validator's answer for one environment source."""

    name: str | None
    valid: bool
    checks: list[CheckResult]
    seconds: float
    traceback: str | None = Field(default=None, description="the first failure's traceback, for repairs")

    def failed(self) -> list[CheckResult]:
        """Every check that did not pass, the skipped ones included."""
        return [check for check in self.checks if not check.passed]

    def failures(self) -> list[CheckResult]:
        """The checks that ran and failed: what a repair must fix and a verdict reports."""
        return [check for check in self.checks if not check.passed and not check.skipped]

    def check(self, name: str) -> CheckResult:
        return next(check for check in self.checks if check.name == name)
