"""The ClusterNetworkPolicy scenarios (``tests/support/cnp_scenarios*.py``, written from
the API documentation) on the real kernel, on both backends.

For every scenario the world is applied in the node namespace of one shared lab per
backend (:mod:`tests.kernel.cnpworld`: 9 pods, the node's own address 192.0.2.10 and a
host outside the cluster at 192.0.2.50), and every cell is probed with a real TCP
connect or UDP echo and compared with the reference evaluator:

* every ordered pair of endpoints of the scenario's family (pods, and on IPv4 the node
  and the outside host; one of the two is a pod) on TCP/UDP 80 and 81;
* the scenario's own probes (other ports, e.g. 79/tcp), where the kernel can send them.

A scenario marked ``probed=False`` (SCTP: this kernel has no SCTP sockets; the bridge
gateway) is rendered and checked by the kernel's tools (``nft -c -f``, ``ipset restore``
+ ``iptables-restore --test``), applied, and its TCP/UDP matrix probed; its own probes
are left to the evaluator test (tests/test_cnp_scenarios.py).

``POLICYC_CNP_LONG=1``: every IPv4 scenario is also probed on IPv6 and everything is
applied a second time without the optimiser passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.cnp_builders import CnpScenario
from tests.support.cnp_scenarios import CNP_SCENARIOS
from tests.support.figures import count
from tests.support.world import world

from .cnpworld import (
    BACKEND_NAMES,
    Cell,
    CnpLab,
    all_cells,
    apply,
    cluster_of,
    cnp_lab,
    expected,
    not_enforced,
    render_check,
    reset,
    wrong_cells,
)
from .kernelcheck import require_kernel

LONG = os.environ.get("POLICYC_CNP_LONG") == "1"
OPTS = (True, False) if LONG else (True,)


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def cnpworld(request: pytest.FixtureRequest) -> Iterator[tuple[CnpLab, str]]:
    require_kernel()
    if reason := not_enforced():
        pytest.skip(f"the dataplane does not lower ClusterNetworkPolicy yet ({reason})")
    with cnp_lab() as w:
        reset(w.lab)
        yield w, str(request.param)


def own_cells(w: CnpLab, s: CnpScenario) -> list[Cell]:
    """The scenario's own probes as cells (those between two endpoints of the world)."""
    out: list[Cell] = []
    for p in s.probes:
        src, dst = w.endpoint(p.src), w.endpoint(p.dst)
        if src is not None and dst is not None and p.proto in ("tcp", "udp"):
            out.append((src, dst, p.proto, p.port))
    return out


def families(s: CnpScenario) -> tuple[int, ...]:
    if s.family == 6:
        return (6,)
    return (4, 6) if LONG else (4,)


def test_every_scenario_is_here() -> None:
    assert len(CNP_SCENARIOS) >= 40
    assert sum(not s.probed for s in CNP_SCENARIOS) <= 5


@pytest.mark.parametrize("s", CNP_SCENARIOS, ids=[s.name for s in CNP_SCENARIOS])
def test_scenario(cnpworld: tuple[CnpLab, str], s: CnpScenario) -> None:
    w, backend = cnpworld
    cluster = cluster_of(world(s.policies + s.extra, s.relabel))
    if not s.probed:
        render_check(w, backend, cluster)
        count(f"cnp_rendered_{backend}")
    errors: list[str] = []
    for opt in OPTS:
        apply(w.lab, backend, cluster, opt)
        for family in families(s):
            cells = all_cells(w, family)
            if s.probed and family == s.family:
                cells += [c for c in own_cells(w, s) if c not in cells]
            want = expected(cluster, cells, family)
            count(f"cnp_cells_{backend}", len(want))
            wrong = wrong_cells(w.lab, want, family, backend)
            errors += [f"{backend} IPv{family}{'' if opt else ' no-opt'}: {e}" for e in wrong]
    count(f"cnp_scenarios_{backend}")
    assert errors == [], f"{s.name}: {len(errors)} wrong cells\n" + "\n".join(errors)
