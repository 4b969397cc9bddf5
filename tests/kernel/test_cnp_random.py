"""Random worlds mixing ClusterNetworkPolicy (v1alpha2), v1alpha1 AdminNetworkPolicy /
BaselineAdminNetworkPolicy and NetworkPolicy (``tests.support.randcnp.mixed``), applied on
the real kernel on both backends and checked cell by cell against the reference
evaluator (pods, node-1's address 192.0.2.10 and the outside host 192.0.2.50; TCP/UDP
80 and 81; see :mod:`tests.kernel.cnpworld`).

Every run draws a new seed and prints it (``policyc figures: cnp_random_seed=N``, and
in any failure); ``POLICYC_SEED=N`` replays that run.  ``POLICYC_CNP_KERNEL_EXAMPLES``
worlds per backend (default 12, about a third on IPv6); ``POLICYC_CNP_LONG=1`` also
applies half of them without the optimiser passes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.support.cnp_builders import WORKER
from tests.support.figures import count
from tests.support.randcnp import mixed
from tests.support.world import world

from .cnpworld import (
    BACKEND_NAMES,
    CnpLab,
    all_cells,
    apply,
    cluster_of,
    cnp_lab,
    expected,
    not_enforced,
    reset,
    wrong_cells,
)
from .kernelcheck import require_kernel

SEED = int(os.environ.get("POLICYC_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("POLICYC_CNP_KERNEL_EXAMPLES", "12"))
LONG = os.environ.get("POLICYC_CNP_LONG") == "1"  # also without the optimiser passes
print(f"test_cnp_random: POLICYC_SEED={SEED}")


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def cnpworld(request: pytest.FixtureRequest) -> Iterator[tuple[CnpLab, str]]:
    require_kernel()
    if reason := not_enforced():
        pytest.skip(f"the dataplane does not lower ClusterNetworkPolicy yet ({reason})")
    with cnp_lab() as w:
        reset(w.lab)
        yield w, str(request.param)


def test_random_worlds(cnpworld: tuple[CnpLab, str]) -> None:
    w, backend = cnpworld
    count("cnp_random_seed", SEED if backend == BACKEND_NAMES[0] else 0)

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        pols=mixed(),
        family=st.sampled_from((4, 4, 6)),
        opt=st.booleans() if LONG else st.just(True),
    )
    def one(pols: list[dict[str, Any]], family: int, opt: bool) -> None:
        cluster = cluster_of(world(pols, WORKER))
        apply(w.lab, backend, cluster, opt)
        want = expected(cluster, all_cells(w, family), family)
        wrong = wrong_cells(w.lab, want, family, backend)
        count(f"cnp_random_worlds_{backend}")
        count(f"cnp_random_policies_{backend}", len(pols))
        count(f"cnp_random_cells_{backend}", len(want))
        assert wrong == [], (
            f"POLICYC_SEED={SEED} {backend} IPv{family} opt={opt}: {len(wrong)} wrong cells\n"
            + "\n".join(wrong)
        )

    one()
