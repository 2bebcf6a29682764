"""The ground truth of an exported row: what a reward verifies an answer against.

`resyn export` writes it into each row's `reward_model.ground_truth` as a JSON string (so every
environment's `meta`, whatever its shape, fits one Parquet schema), and the reward functions and the
reasoning-gym adapter read it back:

    {"environment_id": "…", "instance": {"meta": …, "question": …, "witness": …}, "source_sha256": "…"}

The instance is whole, witness included, because the contract's `verify(instance, answer)` receives
it as `generate` returned it; the hash names the source the row was generated with.

`RewardSetupError` is defined here, the bottom of the reward modules, so that a ground truth that
cannot be read raises the same error as a row whose environment cannot be found or loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class RewardSetupError(RuntimeError):
    """A row's environment cannot be scored (missing, changed or broken source); says what to fix."""


@dataclass(frozen=True)
class GroundTruth:
    environment_id: str
    source_sha256: str | None  # None: any source of that id is accepted
    instance: dict[str, Any]

    def to_json(self) -> str:
        """The string `resyn export` writes (keys sorted, non-ASCII kept: the same bytes every time)."""
        payload = {
            "environment_id": self.environment_id,
            "source_sha256": self.source_sha256,
            "instance": self.instance,
        }
        return json.dumps(payload, ensure_ascii=False, sort_keys=True)

    @classmethod
    def parse(cls, ground_truth: str | Mapping[str, Any]) -> GroundTruth:
        """A row's ground truth, as the JSON string or its dict; RewardSetupError if it is not one."""
        try:
            data = json.loads(ground_truth) if isinstance(ground_truth, str) else dict(ground_truth)
            return cls(str(data["environment_id"]), data.get("source_sha256"), dict(data["instance"]))
        except (ValueError, TypeError, KeyError) as error:
            raise RewardSetupError(
                f"not a resyn ground truth ({type(error).__name__}: {error}); expected the JSON that "
                "`resyn export` writes in reward_model.ground_truth"
            ) from None
