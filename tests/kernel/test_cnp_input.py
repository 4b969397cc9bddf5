"""The tiers on the kernel, both backends: an Admin Deny drops what a
NetworkPolicy allows, a Baseline Deny yields to NetworkPolicy, and an Admin
Deny toward the bridge gateway (a node address: "including its own node")
drops a pod's traffic to it in the ``input`` hook while other pods still reach
it (a TCP reset comes back: "refused").  The full scenario runner is
``cnpkern``'s; this keeps the input hook and the tier order honest here."""

from __future__ import annotations

import pytest

from tests.support.cnp_builders import admin, baseline, p_nets, p_ns, rule, s_ns, s_pods, sel, tcp
from tests.support.scenarios import pods, pol
from tests.support.world import world

from .netlab import Lab
from .world import apply_world

GATEWAY = "10.244.1.1"


def objects() -> list[dict[str, object]]:
    return [
        # NetworkPolicy lets x/a receive TCP 80 from anyone in x and y.
        pol(
            "x",
            "np",
            {"matchLabels": {"pod": "a"}},
            ingress=[{"from": [pods(), {"namespaceSelector": {}}]}],
        ),
        # Admin: nobody in y reaches x on 80 (over the NetworkPolicy), x/b not the gateway.
        admin("no-y", 5, s_ns(ns="x"), ingress=[rule("Deny", p_ns(ns="y"), protocols=(tcp(80),))]),
        admin(
            "no-gw",
            6,
            s_pods(sel(ns="x"), sel(pod="b")),
            egress=[rule("Deny", p_nets(f"{GATEWAY}/32"))],
        ),
        # Baseline: deny everything into x; the NetworkPolicy isolates x/a, so
        # only x/b and x/c fall to it.
        baseline("iso-x", 1, s_ns(ns="x"), ingress=[rule("Deny", p_ns())]),
    ]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_tiers_and_input_hook(clean_lab: Lab, backend: str) -> None:
    lab = clean_lab
    apply_world(lab, world(objects()), "--backend", backend)
    xa, xb, xc, ya, za = (lab.pod(k) for k in ("x/a", "x/b", "x/c", "y/a", "z/a"))
    cases = {
        (ya, xa.addr(4), "tcp", 80): "timeout",  # Admin Deny over NetworkPolicy
        (ya, xa.addr(4), "tcp", 81): "ok",  # NetworkPolicy allows, Admin silent
        (za, xa.addr(4), "tcp", 80): "ok",  # NetworkPolicy allows
        (za, xc.addr(4), "tcp", 80): "timeout",  # Baseline Deny
        (xb, GATEWAY, "tcp", 80): "timeout",  # Admin Deny to its own node: input hook
        (xc, GATEWAY, "tcp", 80): "refused",  # reaches the node, nothing listens
    }
    got = {c: r.status for c, r in lab.probe_detailed(list(cases)).items()}
    assert got == cases
    if backend == "iptables":
        for tool in ("iptables", "ip6tables"):
            lab.node_exec(["sh", "-c", f"{tool}-save | grep -q POLICYC-INPUT"])


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_tiers_come_and_go(clean_lab: Lab, backend: str) -> None:
    """NetworkPolicy only, then with the tiers, then without: each apply
    diffs against what the kernel holds (the input chain comes and goes)."""
    lab = clean_lab
    xb, ya, xa = lab.pod("x/b"), lab.pod("y/a"), lab.pod("x/a")
    cases = [(xb, GATEWAY, "tcp", 80), (ya, xa.addr(4), "tcp", 80)]
    plain = [objects()[0]]
    for objs, want in ((plain, ["refused", "ok"]), (objects(), ["timeout", "timeout"])) * 2:
        apply_world(lab, world(objs), "--backend", backend)
        got = lab.probe_detailed(cases)
        assert [got[c].status for c in cases] == want, (len(objs), backend)
