"""Random worlds mixing ClusterNetworkPolicy (v1alpha2 and v1alpha1) and NetworkPolicy:
properties the tiered evaluator must keep whatever the policies.

- The Admin tier only matters where it decides: with every Admin policy removed, a
  connection whose directions were not decided by the Admin tier keeps its verdict
  (likewise the Baseline tier).
- Admin policies whose rules all Pass, last in the Admin tier, change nothing.
- An Admin Deny of everything at priority 0 (first by name) denies every pod-to-pod
  connection; an Admin Accept of everything allows every one.
- The verdict is the conjunction of the two directions' decisions.
- The order of the objects in the input does not change any verdict (the tie-break).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.evaluate import Evaluator, Verdict
from policyc.evaluate_tiers import Decider
from policyc.load import parse_text
from policyc.model import Cluster
from policyc.parse import build_cluster
from tests.support.cnp_builders import Obj, R, admin, p_nets, p_ns, s_ns
from tests.support.figures import count
from tests.support.randcnp import mixed
from tests.support.world import dump, world

EXAMPLES = int(os.environ.get("POLICYC_CNP_RANDOM_EXAMPLES", "25"))
NODE, OUTSIDE = "192.0.2.10", "192.0.2.50"
PORTS = ((80, "tcp"), (81, "udp"))
RELABEL = {("Node", "", "node-1"): {"role": "worker"}}
TIERED = ("ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


def cluster(objs: Iterable[Obj]) -> Cluster:
    return build_cluster(parse_text(dump(world(list(objs), RELABEL)), "<random>"))


def cells(c: Cluster, family: int = 4) -> list[tuple[str, str, int, str]]:
    addrs = [str(ip) for p in c.pods for ip in p.ips if ip.version == family]
    extra = [NODE, OUTSIDE] if family == 4 else []
    return [
        (s, d, port, proto)
        for s in addrs + extra
        for d in addrs + extra
        if s != d and (s in addrs or d in addrs)
        for port, proto in PORTS
    ]


def verdicts(objs: Iterable[Obj], family: int = 4) -> dict[Any, Verdict]:
    c = cluster(objs)
    ev = Evaluator(c)
    out = {cell: ev.allowed(*cell) for cell in cells(c, family)}
    count("cnp_random_cells", len(out))
    return out


def _tier_of(o: Obj) -> str:
    if o["kind"] == "AdminNetworkPolicy":
        return "Admin"
    if o["kind"] == "BaselineAdminNetworkPolicy":
        return "Baseline"
    return str(o["spec"].get("tier", ""))


def without(objs: list[Obj], tier: str) -> list[Obj]:
    return [o for o in objs if o["kind"] not in TIERED or _tier_of(o) != tier]


def decided_by(v: Verdict, tier: Decider) -> bool:
    return any(d is not None and d.tier is tier for d in (v.egress, v.ingress))


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)


@SETTINGS
@given(objs=mixed(), family=st.sampled_from((4, 6)))
def test_a_tier_matters_only_where_it_decides(objs: list[Obj], family: int) -> None:
    count("cnp_random_worlds")
    full = verdicts(objs, family)
    for tier, decider in (("Admin", Decider.ADMIN), ("Baseline", Decider.BASELINE)):
        rest = verdicts(without(objs, tier), family)
        wrong = [
            (cell, full[cell].reason, rest[cell].reason)
            for cell in full
            if not decided_by(full[cell], decider) and full[cell].allowed != rest[cell].allowed
        ]
        assert wrong == [], f"{tier}: {wrong[:5]}"


@SETTINGS
@given(objs=mixed())
def test_verdict_is_both_directions_and_order_free(objs: list[Obj]) -> None:
    count("cnp_random_worlds")
    full = verdicts(objs)
    for cell, v in full.items():
        decided = [d for d in (v.egress, v.ingress) if d is not None]
        assert v.allowed == all(d.allowed for d in decided), (cell, v)
    assert verdicts(list(reversed(objs))) == full


@SETTINGS
@given(objs=mixed())
def test_admin_pass_changes_nothing(objs: list[Obj]) -> None:
    count("cnp_random_worlds")
    passing = [
        admin(
            f"zz-pass-{i}",
            1000,
            s_ns(),
            ingress=[R("Pass", (p_ns(),))],
            egress=[R("Pass", (p_ns(),))],
        )
        for i in range(2)
    ]
    before = {k: v.allowed for k, v in verdicts(objs).items()}
    after = {k: v.allowed for k, v in verdicts(objs + passing).items()}
    assert before == after


def _everything(action: str) -> Obj:
    peers = (p_ns(), p_nets("0.0.0.0/0", "::/0"))
    return admin("0-first", 0, s_ns(), ingress=[R(action, (p_ns(),))], egress=[R(action, peers)])


@SETTINGS
@given(objs=mixed(), action=st.sampled_from(("Deny", "Accept")))
def test_admin_everything_first_decides_every_pod_connection(objs: list[Obj], action: str) -> None:
    count("cnp_random_worlds")
    objs = copy.deepcopy(objs) + [_everything(action)]
    c = cluster(objs)
    pods = {str(ip) for p in c.pods for ip in p.ips}
    for (src, dst, _, _), v in verdicts(objs).items():
        if src in pods and dst in pods:
            assert v.allowed == (action == "Accept"), (src, dst, v)
            assert v.egress is not None and v.egress.tier is Decider.ADMIN
            assert v.egress.policy == "ClusterNetworkPolicy 0-first"
        elif src in pods and dst == NODE and action == "Deny":
            assert not v.allowed  # an Admin Deny toward the node's address: even its own node
