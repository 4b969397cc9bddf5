"""Ports as maximal intervals, and one rule for each list of peers.

Guarantee: the accepted packets are unchanged, and

- every PORTS set holds maximal intervals per protocol, sorted (80, 81, 82
  become 80-82; overlapping ``port``/``endPort`` ranges become one), under
  its name, since its meaning is unchanged;
- in each policy node (one policy, direction and family), the rules with
  the same peer sets become one rule, at the first one's place: its port
  sets are one PORTS set holding the union of their numeric ports, and
  their named-port sets; every port if any of them allowed every port.

Kubernetes API, NetworkPolicyIngressRule.ports: "If this field is empty or
missing, this rule matches all ports ... If this field is present and
contains at least one item, then this rule allows traffic only if the
traffic matches at least one port in the list"; rules are ORed, so
``peers x P1`` or ``peers x P2`` is ``peers x (P1 | P2)``.

Only static sets are made: the union of numeric ports is decided by the
policies alone (``setpool``).  Named-port sets are pod-driven and are kept
as they are, beside the union.
"""

from __future__ import annotations

import dataclasses

from policyc.ir import Element, PolicyNode, RuleGraph, RuleNode, SetKind
from policyc.passes.setpool import SetPool, port_intervals, with_rules


def _merged(rules: list[RuleNode], pool: SetPool) -> RuleNode:
    first = rules[0]
    if any(r.port_sets is None for r in rules):
        return dataclasses.replace(first, port_sets=None)
    numeric: list[Element] = []
    named: dict[str, None] = {}
    for r in rules:
        for name in r.port_sets or ():
            if pool[name].kind is SetKind.PORTS:
                numeric.extend(pool[name].elements)
            else:
                named[name] = None
    ports = list(named)
    if numeric:
        ports.insert(0, pool.intern(SetKind.PORTS, None, port_intervals(numeric), ""))
    return dataclasses.replace(first, port_sets=tuple(ports))


def _merge_node(node: PolicyNode, pool: SetPool) -> PolicyNode:
    groups: dict[frozenset[str] | None, list[RuleNode]] = {}
    for r in node.rules:
        key = None if r.peer_sets is None else frozenset(r.peer_sets)
        groups.setdefault(key, []).append(r)
    if all(len(g) == 1 for g in groups.values()):
        return node
    return with_rules(node, (_merged(g, pool) if len(g) > 1 else g[0] for g in groups.values()))


def merge_port_intervals(graph: RuleGraph) -> RuleGraph:
    sets = tuple(
        dataclasses.replace(s, elements=port_intervals(s.elements))
        if s.kind is SetKind.PORTS
        else s
        for s in graph.sets
    )
    pool = SetPool(sets)
    policies = tuple(_merge_node(p, pool) for p in graph.policies)
    return dataclasses.replace(graph, policies=policies, sets=pool.sets())
