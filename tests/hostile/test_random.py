"""The random part: seeded fixture mutations and API-valid hostile clusters.

A new seed each run (printed in the header; ``POLICYC_SEED`` reproduces it,
``POLICYC_HOSTILE_SCALE`` multiplies the counts).  Nothing here is xfailed:
a finding fails the test unless its kind is in ``known.KNOWN_FAILING``, and
every finding is counted in the figures either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.clusters import cluster
from tests.hostile.drive import BACKENDS, Verdict, judge
from tests.hostile.mutate import mutation
from tests.hostile.seed import SEED, scale

MUTATIONS = max(1, round(40 * scale()))
CLUSTERS = max(1, round(15 * scale()))


def _fail_message(verdict: Verdict, bad: list[str]) -> str:
    return f"POLICYC_SEED={SEED}: {verdict.report()}\nunknown: {bad}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", range(MUTATIONS))
def test_mutation(index: int, backend: str, tmp_path: Path, scratch_netns: str) -> None:
    verdict = judge(mutation(SEED, index), backend, tmp_path / "run", scratch_netns)
    bad = [str(f) for f in verdict.unknown()]
    assert not bad, _fail_message(verdict, bad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", range(CLUSTERS))
def test_valid_cluster(index: int, backend: str, tmp_path: Path, scratch_netns: str) -> None:
    verdict = judge(cluster(SEED, index), backend, tmp_path / "run", scratch_netns)
    bad = [str(f) for f in verdict.unknown()]
    assert not bad, _fail_message(verdict, bad)
