"""The rule graph and the evaluator agree on shared addresses, without a kernel.

A packet is walked through the rule graph the way ``policyc.lower`` chains
it (node addresses, then egress of the source, then ingress of the
destination, each through the dispatch map to its group's policies, or for
an isolated address in no group through the shared-address chain, where a
rule passes when the own address is in the policy's selected set; then the
peer must be in one of the rule's peer sets and the port in one of its port
sets), over random policies and worlds in which guest pods share the
base pods' addresses, on two nodes.  A packet passes if every node that holds
a claimant of its source or destination lets it through (each node enforces
its own pods).  Every cell must match the reference evaluator.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.evaluate import Evaluator
from policyc.ir import DISPATCH_MAP, ISOLATED, NODE, Family, RuleGraph, RuleNode, SetKind
from policyc.model import Direction, IPAddress, Protocol
from policyc.pipeline import graph_of
from tests.support.randpol import policies
from tests.support.world import base_objects
from tests.test_incremental import cluster_of, pod_objects

BASE = base_objects()
NODES = ("node-1", "node-2")
PORTS = ((Protocol.TCP, 80), (Protocol.TCP, 81), (Protocol.UDP, 80))


def _in(elements: set[Any], kind: SetKind, value: Any) -> bool:
    """Element shapes as in ``policyc.ir``: CIDR (first, last), PORTS
    (proto, lo, hi); other kinds hold the value itself."""
    if kind is SetKind.CIDR:
        return any(lo.version == value.version and lo <= value <= hi for lo, hi in elements)
    if kind is SetKind.PORTS:
        proto, port = value
        return any(p == proto and lo <= port <= hi for p, lo, hi in elements)
    return value in elements


class Trace:
    def __init__(self, graph: RuleGraph) -> None:
        self.graph = graph
        self.sets: dict[str, set[Any]] = {s.name: set(s.elements) for s in graph.sets}
        self.kinds = {s.name: s.kind for s in graph.sets}

    def has(self, name: str, value: object) -> bool:
        """Membership; a set the optimiser dropped is empty."""
        return name in self.sets and _in(self.sets[name], self.kinds[name], value)

    def _rule(self, rule: RuleNode, peer: IPAddress, dst: IPAddress, proto: str, port: int) -> bool:
        if rule.peer_sets is not None and not any(self.has(s, peer) for s in rule.peer_sets):
            return False
        if rule.port_sets is None:
            return True
        return any(
            self.has(s, (proto, port) if self.kinds[s] is SetKind.PORTS else (dst, proto, port))
            for s in rule.port_sets
        )

    def _group(self, direction: Direction, own: IPAddress) -> tuple[str, ...] | None:
        """The policies of the group chain the dispatch map sends ``own`` to."""
        name = DISPATCH_MAP[direction] + Family.of(own).suffix
        chain = next((c for a, c in self.sets.get(name, ()) if a == own), None)
        if chain is None:
            return None
        return next(g.policies for g in self.graph.groups if g.name == chain)

    def allowed(self, src: IPAddress, dst: IPAddress, proto: str, port: int) -> bool:
        f = Family.of(src)
        if self.has(NODE + f.suffix, src) or self.has(NODE + f.suffix, dst):
            return True
        for direction, own, peer in ((Direction.EGRESS, src, dst), (Direction.INGRESS, dst, src)):
            group = self._group(direction, own)
            if group is None and not self.has(ISOLATED[direction] + f.suffix, own):
                continue
            if group is None and not self.graph.shared:
                return False  # isolated, in no group: fail closed
            if not any(
                self._rule(rule, peer, dst, proto, port)
                for node in self.graph.policies
                if node.direction is direction
                and node.family is f
                and (node.policy in group if group is not None else self.has(node.selected, own))
                for rule in node.rules
            ):
                return False
        return True


@st.composite
def worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The base world; some pods relabelled or moved onto another's address,
    and guests sharing the base pods' addresses (on node-1 or node-2)."""
    objs = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in BASE}
    for _ in range(draw(st.integers(1, 4))):
        pod = draw(pod_objects())
        objs[("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
    return list(objs.values()) + draw(policies())


@settings(max_examples=60, deadline=None)
@given(objs=worlds(), opt=st.booleans())
def test_graph_and_evaluator_agree_with_shared_addresses(
    objs: list[dict[str, Any]], opt: bool
) -> None:
    cluster = cluster_of(objs)
    ev = Evaluator(cluster)
    traces = {n: Trace(graph_of(cluster, n, opt)) for n in NODES}
    nodes_of: dict[IPAddress, set[str]] = {}
    for p in cluster.pods:
        for ip in p.ips:
            nodes_of.setdefault(ip, set()).add(p.node_name)
    addrs = sorted(ip for ip in nodes_of if ip.version == 4)
    wrong = [
        (str(s), str(d), proto, port)
        for s in addrs
        for d in addrs
        if s != d
        for proto, port in PORTS
        if all(traces[n].allowed(s, d, proto, port) for n in nodes_of[s] | nodes_of[d])
        != ev.allowed(s, d, port, proto).allowed
    ]
    assert wrong == []


def test_trace_sees_the_repro() -> None:
    from tests.test_shared_address import cluster, repro

    c = cluster(repro())
    trace = Trace(graph_of(c))
    src, db, real = (ipaddress.ip_address(a) for a in ("10.244.1.50", "10.244.1.10", "10.244.1.20"))
    assert not trace.allowed(src, db, Protocol.TCP, 80)
    assert trace.allowed(real, db, Protocol.TCP, 80)
