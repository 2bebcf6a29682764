"""Which seeds each consumer of an environment's `generate(seed, difficulty)` uses, in one place.

Three consumers generate instances, and none may see another's, so that no measurement is taken on
instances a model could have trained on:

- **The held-out window** is `[synthesis.probe_seed, synthesis.probe_seed + HELD_OUT_SPAN)`
  (7,000,000 to 8,000,000 by default). Only the probe and the library evaluation draw from it.
- **The solver probe** (synthesis) asks the first `synthesis.probe_instances` seeds of the window,
  the same seeds at every difficulty: `probe_seeds`.
- **`resyn eval library`** asks the seeds right after the probe's, `probe_seed + probe_instances`
  on, the same seeds at every difficulty: `held_out_seeds`. They are new to the model under
  evaluation and to the probe's pass rates alike (and stay inside the window for any count up to
  `HELD_OUT_SPAN - probe_instances`).
- **`resyn export`** draws each environment's training seeds from `[0, 2**31)` outside the window,
  with a generator seeded by the export's `--seed` and the environment id: `training_seeds`. The
  same options give the same rows in any process; a new `--seed` gives other rows.

The probe and the evaluation take consecutive, disjoint ranges inside the window, and exports skip
the window entirely: no seed is used by two of them.
"""

from __future__ import annotations

import random

from resyn.settings import Settings

HELD_OUT_SPAN = 1_000_000  # seeds from probe_seed on are the probe's and the evals': never exported


def held_out_window(settings: Settings) -> range:
    """The seeds the probe and the library evaluation use, and exports never do."""
    first = settings.synthesis.probe_seed
    return range(first, first + HELD_OUT_SPAN)


def probe_seeds(settings: Settings) -> range:
    """The solver probe's seeds (the same at every difficulty): the start of the held-out window."""
    first = settings.synthesis.probe_seed
    return range(first, first + settings.synthesis.probe_instances)


def held_out_seeds(count: int, settings: Settings) -> list[int]:
    """Seeds for evaluation: right after the probe's, so neither the probe nor an export used them."""
    first = probe_seeds(settings).stop
    return list(range(first, first + count))


def training_seeds(environment_id: str, count: int, seed: int, settings: Settings) -> list[int]:
    """`count` distinct seeds for one environment, outside the held-out window of the probe and evals."""
    rng = random.Random(f"{seed}:{environment_id}")  # str seeds hash with sha512: the same in any process
    held_out = held_out_window(settings)
    seeds: list[int] = []
    chosen: set[int] = set()
    while len(seeds) < count:
        candidate = rng.randrange(2**31)
        if candidate not in held_out and candidate not in chosen:
            chosen.add(candidate)
            seeds.append(candidate)
    return seeds
