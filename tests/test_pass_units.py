"""Unit tests of the optimiser passes on hand-made graphs, and of the one
thing the golden pairs cannot show: sets merged by a pass keep working
incrementally (pod events patch elements only and reach the state a fresh
render gives), on both backends."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from backends import BACKENDS
from policyc.compiler import Compiler
from policyc.ir import Family, PolicyNode, RuleGraph, RuleNode, SetDef, SetKind
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.lower import lower
from policyc.model import Direction, Op, Peer, Protocol, Selector
from policyc.parse import build_cluster
from policyc.parse_policy import Requirement
from policyc.passes import optimise
from policyc.passes.aggregate_cidrs import aggregate_cidrs
from policyc.passes.hash_cons_sets import hash_cons_sets
from policyc.passes.merge_port_intervals import merge_port_intervals
from policyc.passes.subsume_rules import subsume_rules
from policyc.setspecs import peer_pods
from tests.support.world import dump, world

TCP, UDP = Protocol.TCP, Protocol.UDP
V4 = Family.V4
IN = Direction.INGRESS


def ip(text: str) -> Any:
    return ipaddress.ip_address(text)


def graph(
    rules: list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]], *sets: SetDef
) -> RuleGraph:
    nodes = tuple(
        RuleNode("x/p", IN, i, V4, peers, ports) for i, (peers, ports) in enumerate(rules)
    )
    sel = SetDef("sel4", SetKind.ADDR, V4, (ip("10.244.1.10"),), definition="select x *")
    return RuleGraph("node-1", (), (PolicyNode("x/p", IN, V4, "sel4", nodes),), (sel, *sets))


def ports(name: str, *elems: tuple[Protocol, int, int]) -> SetDef:
    return SetDef(name, SetKind.PORTS, None, elems)


def addrs(name: str, definition: str, *elems: str) -> SetDef:
    return SetDef(name, SetKind.ADDR, V4, tuple(map(ip, elems)), definition=definition)


def net(name: str, *ranges: tuple[str, str]) -> SetDef:
    return SetDef(name, SetKind.CIDR, V4, tuple((ip(a), ip(b)) for a, b in ranges))


def rules_of(g: RuleGraph) -> list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]]:
    return [(r.peer_sets, r.port_sets) for r in g.policies[0].rules]


def sets_of(g: RuleGraph) -> dict[str, SetDef]:
    return {s.name: s for s in g.sets}


def test_port_sets_become_maximal_intervals_per_protocol() -> None:
    g = graph(
        [(None, ("p",))],
        ports("p", (TCP, 80, 80), (TCP, 81, 81), (TCP, 82, 82), (UDP, 3, 9), (UDP, 1, 5)),
    )
    out = sets_of(merge_port_intervals(g))["p"]
    assert out.elements == ((TCP, 80, 82), (UDP, 1, 9))


def test_rules_with_other_peers_keep_their_ports_apart() -> None:
    a, b = addrs("a", "pods a", "10.244.1.1"), addrs("b", "pods b", "10.244.1.2")
    g = graph(
        [(("a",), ("p80",)), (("b",), ("p81",))],
        a,
        b,
        ports("p80", (TCP, 80, 80)),
        ports("p81", (TCP, 81, 81)),
    )
    assert merge_port_intervals(g).policies == g.policies


def test_pod_sets_equal_today_but_defined_otherwise_stay_apart() -> None:
    a = addrs("a", "pods x app=web", "10.244.1.1")
    b = addrs("b", "pods x tier=front", "10.244.1.1")
    c = addrs("c", "pods x app=web", "10.244.1.1")
    g = graph([(("a",), None), (("b",), None), (("c",), None)], a, b, c)
    out = hash_cons_sets(g)
    assert rules_of(out) == [(("a",), None), (("b",), None), (("a",), None)]
    assert "c" not in sets_of(out) and "b" in sets_of(out)


def test_sets_of_no_known_definition_are_never_merged() -> None:
    a, b = addrs("a", "", "10.244.1.1"), addrs("b", "", "10.244.1.1")
    g = graph([(("a",), None), (("b",), None)], a, b)
    assert hash_cons_sets(g) == g


def sel(*reqs: tuple[str, tuple[str, ...]]) -> Selector:
    return Selector(tuple(Requirement(k, Op.IN, vals) for k, vals in reqs))


OPS = sel(("team", ("ops",)))
WEB = sel(("app", ("web",)), ("tier", ("a", "b")))
WEB_SPELT_OTHERWISE = sel(("tier", ("b", "a")), ("app", ("web",)))
EVERY = Selector()
X_BY_NAME = sel(("kubernetes.io/metadata.name", ("x",)))


@pytest.mark.parametrize(
    ("one", "other", "equal"),
    [
        # An empty podSelector selects every pod, as an absent one does.
        (
            ([Peer(namespace_selector=OPS)], "x"),
            ([Peer(pod_selector=EVERY, namespace_selector=OPS)], "y"),
            True,
        ),
        # Requirements in another order; a peer twice.
        (
            ([Peer(pod_selector=WEB)] * 2, "x"),
            ([Peer(pod_selector=WEB_SPELT_OTHERWISE)], "x"),
            True,
        ),
        # A peer of every namespace covers the same pods of the own namespace.
        (
            ([Peer(pod_selector=WEB), Peer(pod_selector=WEB, namespace_selector=EVERY)], "x"),
            ([Peer(pod_selector=WEB, namespace_selector=EVERY)], "z"),
            True,
        ),
        (
            ([Peer(pod_selector=WEB)], "x"),
            ([Peer(pod_selector=WEB, namespace_selector=EVERY)], "x"),
            False,
        ),
        (([Peer(pod_selector=WEB)], "x"), ([Peer(pod_selector=WEB)], "z"), False),
        # The own namespace named by its kubernetes.io/metadata.name label.
        (
            ([Peer(pod_selector=WEB, namespace_selector=X_BY_NAME)], "x"),
            ([Peer(pod_selector=WEB)], "x"),
            True,
        ),
        (
            ([Peer(pod_selector=WEB, namespace_selector=X_BY_NAME)], "z"),
            ([Peer(pod_selector=WEB)], "z"),
            False,
        ),
    ],
)
def test_normal_definition_reads_peers_as_the_api_does(one: Any, other: Any, equal: bool) -> None:
    a, b = peer_pods(one[0], one[1], V4), peer_pods(other[0], other[1], V4)
    assert a.name != b.name
    assert (a.canonical == b.canonical) is equal


def test_cidr_sets_union_across_rules_that_differ_only_in_them() -> None:
    a = addrs("a", "pods a", "10.244.1.1")
    n1 = net("n1", ("192.0.2.0", "192.0.2.127"))
    n2 = net("n2", ("192.0.2.128", "192.0.2.199"), ("192.0.2.201", "192.0.2.255"))
    n3 = net("n3", ("198.51.100.0", "198.51.100.255"))
    p = ports("p", (TCP, 443, 443))
    g = graph([(("n1",), ("p",)), (("n2",), ("p",)), (("a", "n3"), ("p",))], a, n1, n2, n3, p)
    out = aggregate_cidrs(g)
    got = rules_of(out)
    assert len(got) == 2 and got[1] == (("a", "n3"), ("p",))
    (union,) = got[0][0] or ()
    assert sets_of(out)[union].elements == (
        (ip("192.0.2.0"), ip("192.0.2.199")),
        (ip("192.0.2.201"), ip("192.0.2.255")),
    )


def test_cidr_sets_take_the_fewest_intervals() -> None:
    n = net(
        "n", ("192.0.2.10", "192.0.2.20"), ("192.0.2.0", "192.0.2.9"), ("192.0.2.15", "192.0.2.30")
    )
    out = sets_of(aggregate_cidrs(graph([(("n",), None)], n)))["n"]
    assert out.elements == ((ip("192.0.2.0"), ip("192.0.2.30")),)


@pytest.mark.parametrize(
    ("covering", "covered", "dropped"),
    [
        ((None, ("p80_82",)), (("a",), ("p81",)), True),  # every peer, ports inside
        ((None, ("p80_82",)), (("a",), ("u81",)), False),  # other protocol
        ((None, ("p80_82",)), (("a",), None), False),  # every port is more
        ((("a", "n1"), None), (("n2",), ("p81",)), True),  # CIDR inside
        ((("a",), None), (("n1",), ("p81",)), False),  # a pod set covers no block
        ((("a",), ("p80_82",)), (("a",), ("p80_82",)), True),  # a copy: the first stays
    ],
)
def test_a_rule_another_covers_goes(covering: Any, covered: Any, dropped: bool) -> None:
    sets = (
        addrs("a", "pods a", "10.244.1.1"),
        net("n1", ("192.0.2.0", "192.0.2.255")),
        net("n2", ("192.0.2.64", "192.0.2.127")),
        ports("p80_82", (TCP, 80, 82)),
        ports("p81", (TCP, 81, 81)),
        ports("u81", (UDP, 81, 81)),
    )
    out = rules_of(subsume_rules(graph([covering, covered], *sets)))
    assert out == ([covering] if dropped else [covering, covered])


# -- incremental: pod events against sets the passes merged -----------------


def _policy(name: str, peers: list[dict[str, Any]], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "x"},
        "spec": {"podSelector": {}, "ingress": [{"from": peers, "ports": [{"port": port}]}]},
    }


# Two spellings of one peer (hash-consed), same peers on two ports (merged
# port rule), ipBlocks on one port (a union CIDR set).
POLICIES = [
    _policy("p1", [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}], 80),
    _policy("p2", [{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {}}], 81),
    _policy(
        "p3",
        [
            {"podSelector": {"matchLabels": {"pod": "b"}}},
            {"podSelector": {"matchLabels": {"pod": "b"}}},
        ],
        80,
    ),
    _policy("p4", [{"podSelector": {"matchLabels": {"pod": "b"}}}], 81),
    _policy("p5", [{"ipBlock": {"cidr": "192.0.2.0/25"}}], 443),
    _policy("p6", [{"ipBlock": {"cidr": "192.0.2.128/25", "except": ["192.0.2.200/32"]}}], 443),
]


# A pod of another node: a peer, and nothing of this node's bridge.
REMOTE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "r", "namespace": "y", "labels": {"pod": "b"}},
    "spec": {"nodeName": "node-2", "containers": [{"name": "c"}]},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.244.2.50"}]},
}


def _compiler(drop: tuple[str, ...] = (), remote: bool = False) -> Compiler:
    objs = [REMOTE] if remote else []
    objs += [
        o
        for o in world(POLICIES)
        if not (
            o["kind"] == "Pod" and f"{o['metadata']['namespace']}/{o['metadata']['name']}" in drop
        )
    ]
    return Compiler("node-1").load(
        build_cluster(parse_text(dump(objs), "<t>"), warn=lambda m: None)
    )


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_merged_sets_follow_pod_events_by_elements_only(backend: str) -> None:
    be = BACKENDS[backend]
    comp = _compiler()
    full = optimise(comp.graph())
    assert len(full.sets) < len(comp.graph().sets)  # the passes merged something
    programmed = be.render(lower(full))
    comp.changes()
    # A remote peer comes, local peers go, all is as it was.
    steps = (((), True), (("y/a", "x/b"), True), ((), False))
    for i, (drop, remote) in enumerate(steps):
        want = _compiler(drop, remote)
        for key in sorted(comp.pods):
            if key not in want.pods:
                comp.remove(Kind.POD, key)
        for key, pod in sorted(want.pods.items()):
            if key not in comp.pods:
                comp.put(pod)
        ch = comp.changes()
        assert not ch.rules and ch.dirty
        sets = {
            n: comp.set_def(n, elements=n in ch.reset) for n in sorted(ch.dirty) if n in comp.specs
        }
        fresh = be.render(lower(optimise(comp.graph())))
        tx = be.patch(programmed, ch, sets)
        # iptables patches no pod-interface change of a local pod (its
        # anti-spoofing rules are per pod): then the dataplane diffs.
        assert tx is not None or (backend == "iptables" and i > 0)
        tx = tx if tx is not None else be.diff(programmed, fresh)
        assert len(tx) > 0 and tx.after == fresh
        programmed = tx.after
