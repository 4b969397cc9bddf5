"""One seed per run: printed in the pytest header, reproduced with POLICYC_SEED.

Every generator draws from ``rng(seed, *names)``, a ``random.Random`` keyed by
the seed and the input's identity, so one input can be rebuilt without the
others.
"""

from __future__ import annotations

import os
import random

SEED_ENV = "POLICYC_SEED"
SIZE_ENV = "POLICYC_HOSTILE_SCALE"


def session_seed() -> int:
    """``$POLICYC_SEED`` if set (decimal), else a fresh 32-bit seed.

    Raises ValueError if the variable is set but not an integer.
    """
    text = os.environ.get(SEED_ENV, "").strip()
    if text:
        return int(text, 0)
    return random.SystemRandom().randrange(2**32)


SEED = session_seed()


def rng(seed: int, *names: object) -> random.Random:
    """A generator private to one input: same (seed, names), same draws."""
    return random.Random(":".join([str(seed), *map(str, names)]))


def scale() -> float:
    """Multiplier for the number of random inputs (``$POLICYC_HOSTILE_SCALE``, default 1)."""
    return float(os.environ.get(SIZE_ENV, "1") or "1")
