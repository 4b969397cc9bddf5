"""Random policies, checked on the kernel against the reference evaluator.

Each example is 1–3 random policies (about 2 on average); with 100 examples a
CI run checks well over 200 random policies.  Hypothesis picks a new seed on
every run; a failure prints the policies and the wrong cells.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings

from tests.support.figures import count
from tests.support.randpol import policies
from tests.support.world import world

from .netlab import Lab
from .world import PORTS4, check_world

EXAMPLES = int(os.environ.get("POLICYC_RANDOM_EXAMPLES", "100"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pols=policies())
def test_random_policies_v4(lab: Lab, pols: list[dict[str, object]]) -> None:
    diff = check_world(lab, world(pols), 4, PORTS4)
    count("random_policies", len(pols))
    count("random_examples")
    assert diff == [], "\n".join(diff)


@settings(
    max_examples=max(EXAMPLES // 6, 10),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pols=policies())
def test_random_policies_v6(lab: Lab, pols: list[dict[str, object]]) -> None:
    diff = check_world(lab, world(pols), 6, PORTS4)
    count("random_policies", len(pols))
    count("random_examples")
    assert diff == [], "\n".join(diff)
