"""Hypothesis strategies for random ClusterNetworkPolicies (and v1alpha1
AdminNetworkPolicies and the BaselineAdminNetworkPolicy) over the e2e world,
mixed with random NetworkPolicies (:mod:`tests.support.randpol`).

Priorities come from a small range and names from a small set, so that equal
priorities, Pass chains and overlapping subjects happen often.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.support.cnp_builders import (
    Obj,
    R,
    anp,
    banp,
    cnp,
    named,
    p_nets,
    pnamed,
    pnum,
    prange,
    sel,
    tcp,
    udp,
)
from tests.support.randpol import NAMESPACES, PODS, policies, selector

NETWORKS = (
    "10.244.1.0/24",
    "10.244.1.13/32",
    "0.0.0.0/0",
    "192.0.2.10/32",
    "192.0.2.0/24",
    "2001:db8:244:1::/64",
    "::/0",
)
ACTIONS = ("Accept", "Deny", "Pass")


def _ns_pods() -> st.SearchStrategy[Obj]:
    return st.builds(
        lambda ns, pod: {"pods": {"namespaceSelector": ns, "podSelector": pod}},
        selector("ns", NAMESPACES),
        selector("pod", PODS),
    )


def subject() -> st.SearchStrategy[Obj]:
    return st.one_of(selector("ns", NAMESPACES).map(lambda s: {"namespaces": s}), _ns_pods())


def peer(egress: bool) -> st.SearchStrategy[Obj]:
    pods = st.one_of(selector("ns", NAMESPACES).map(lambda s: {"namespaces": s}), _ns_pods())
    if not egress:
        return pods
    nodes = st.sampled_from([{}, sel(role="worker"), sel(role="infra")]).map(lambda s: {"nodes": s})
    nets = st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=2, unique=True)
    return st.one_of(pods, nodes, nets.map(lambda cs: p_nets(*cs)))


def protocol(allow_named: bool) -> st.SearchStrategy[Obj]:
    ports = [tcp(80), tcp(81), udp(80), udp(81), tcp(80, 81), udp(80, 81)]
    if allow_named:
        ports += [named("serve-80-tcp"), named("serve-81-udp")]
    return st.sampled_from(ports)


@st.composite
def rule(draw: st.DrawFn, egress: bool, actions: tuple[str, ...] = ACTIONS) -> R:
    peers = tuple(draw(st.lists(peer(egress), min_size=1, max_size=2)))
    # CEL: no destinationNamedPort with networks/nodes peers.
    allow_named = not any("networks" in p or "nodes" in p for p in peers)
    protos = draw(st.lists(protocol(allow_named), max_size=2))
    return R(draw(st.sampled_from(actions)), peers, tuple(protos))


@st.composite
def cluster_policy(draw: st.DrawFn, index: int, priorities: tuple[int, int] = (0, 4)) -> Obj:
    """A v1alpha2 ClusterNetworkPolicy, or (a third of the time) a v1alpha1
    AdminNetworkPolicy with the same shape."""
    tier = draw(st.sampled_from(("Admin", "Baseline")))
    prio = draw(st.integers(*priorities))
    subj = draw(subject())
    ingress = draw(st.lists(rule(False), max_size=3))
    egress = draw(st.lists(rule(True), max_size=3))
    name = draw(st.sampled_from(("a", "b", "c"))) + f"-{index}"
    if tier == "Admin" and draw(st.integers(0, 2)) == 0:
        return anp(name, prio, subj, _v1(ingress), _v1(egress))
    return cnp(name, tier, prio, subj, ingress, egress)


def _v1_port(p: Obj) -> Obj:
    if "destinationNamedPort" in p:
        return pnamed(p["destinationNamedPort"])
    (proto, body), *_ = p.items()
    dest = body["destinationPort"]
    if "number" in dest:
        return pnum(dest["number"], proto.upper())
    return prange(dest["range"]["start"], dest["range"]["end"], proto.upper())


def _v1(rules: list[R], banp_: bool = False) -> list[R]:
    """v1alpha2 rules in v1alpha1 shape: Accept -> Allow, protocols -> ports."""
    out = []
    for r in rules:
        if banp_ and r.action == "Pass":
            continue
        action = "Allow" if r.action == "Accept" else r.action
        out.append(R(action, r.peers, tuple(_v1_port(p) for p in r.protocols), r.name))
    return out


@st.composite
def baseline_admin(draw: st.DrawFn) -> Obj:
    """The BaselineAdminNetworkPolicy ``default`` (Allow and Deny only)."""
    ingress = draw(st.lists(rule(False, ("Accept", "Deny")), max_size=2))
    egress = draw(st.lists(rule(True, ("Accept", "Deny")), max_size=2))
    return banp(draw(subject()), _v1(ingress, True), _v1(egress, True))


@st.composite
def mixed(draw: st.DrawFn, max_cluster: int = 3, max_np: int = 2) -> list[Obj]:
    """0..max_np random NetworkPolicies, 1..max_cluster cluster policies and,
    sometimes, the BaselineAdminNetworkPolicy."""
    out: list[Obj] = draw(policies(0, max_np, ("TCP", "UDP", None)))
    n = draw(st.integers(1, max_cluster))
    out += [draw(cluster_policy(i)) for i in range(n)]
    if draw(st.booleans()):
        out.append(draw(baseline_admin()))
    return out
