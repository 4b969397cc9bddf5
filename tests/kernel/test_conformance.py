"""Kernel conformance: every scenario applied with ``policyc apply`` in a node
namespace, every ordered pod pair probed with real TCP connects and UDP
echoes, and the result compared cell by cell with the reference evaluator."""

from __future__ import annotations

import pytest

from tests.support.figures import count
from tests.support.scenarios import SCENARIOS, Scenario
from tests.support.world import world

from .netlab import Lab
from .world import check_world


def test_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 40
    assert sum(s.family == 6 for s in SCENARIOS) >= 5


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
@pytest.mark.parametrize("opt", [True, False], ids=["opt", "no-opt"])
def test_scenario(lab: Lab, scenario: Scenario, opt: bool) -> None:
    objs = world(scenario.policies, scenario.relabel)
    extra = () if opt else ("--no-opt",)
    diff = check_world(lab, objs, scenario.family, extra=extra)
    count("scenarios")
    assert diff == [], "\n".join(diff)
