"""ipBlocks as the fewest address intervals, and one CIDR set per rule.

Guarantee: the accepted packets are unchanged, and

- every CIDR set holds sorted, disjoint, non-adjacent intervals (the fewest
  that cover its addresses), under its name, since its meaning is unchanged;
- in each policy node (one policy, direction and family), the rules that
  have the same port sets and the same other peer sets, and differ only in
  their CIDR sets, become one rule at the first one's place, whose CIDR sets
  are one set holding the union of their intervals.

Kubernetes API, IPBlock: "except is a slice of CIDRs that should not be
included within an IPBlock"; NetworkPolicyIngressRule.from: "If this field
is present and contains at least one item, this rule allows traffic only if
the traffic matches at least one item in the from list".  The builder
already cuts each block's excepts out of that block and unions a rule's
blocks (``setspecs.peer_blocks`` through ``intervals.block_ranges``); nothing
moved here.  This pass owns the normal form of every CIDR set in the graph
it is handed (it holds whoever made the set) and the union across rules.

Only static sets are made: ipBlocks are decided by the policies alone
(``setpool``), so pod events still change pod sets' elements only.
"""

from __future__ import annotations

import dataclasses

from policyc.ir import Element, PolicyNode, RuleGraph, RuleNode, SetKind
from policyc.passes.setpool import SetPool, cidr_intervals, with_rules


def _comment(names: list[str], pool: SetPool) -> str:
    parts = sorted({pool[n].comment.removeprefix("ipBlock: ") for n in names} - {""})
    return "ipBlock: " + " | ".join(parts) if parts else ""


def _merged(rules: list[RuleNode], node: PolicyNode, pool: SetPool) -> RuleNode:
    others: dict[str, None] = {}
    cidrs: dict[str, None] = {}
    for r in rules:
        for name in r.peer_sets or ():
            (cidrs if pool[name].kind is SetKind.CIDR else others)[name] = None
    if len(cidrs) > 1:
        elems: list[Element] = [e for n in cidrs for e in pool[n].elements]
        union = cidr_intervals(elems, node.family)
        cidrs = {pool.intern(SetKind.CIDR, node.family, union, _comment(list(cidrs), pool)): None}
    return dataclasses.replace(rules[0], peer_sets=(*others, *cidrs))


def _key(r: RuleNode, pool: SetPool) -> tuple[object, ...] | None:
    if r.peer_sets is None:
        return None  # every peer: nothing to union (subsume_rules' business)
    others = frozenset(n for n in r.peer_sets if pool[n].kind is not SetKind.CIDR)
    return (None if r.port_sets is None else frozenset(r.port_sets), others)


def _merge_node(node: PolicyNode, pool: SetPool) -> PolicyNode:
    groups: dict[object, list[RuleNode]] = {}
    for i, r in enumerate(node.rules):
        key = _key(r, pool)
        groups.setdefault(i if key is None else key, []).append(r)
    if all(len(g) == 1 for g in groups.values()):
        return node
    return with_rules(
        node, (_merged(g, node, pool) if len(g) > 1 else g[0] for g in groups.values())
    )


def aggregate_cidrs(graph: RuleGraph) -> RuleGraph:
    sets = tuple(
        dataclasses.replace(s, elements=cidr_intervals(s.elements, s.family))
        if s.kind is SetKind.CIDR
        else s
        for s in graph.sets
    )
    pool = SetPool(sets)
    policies = tuple(_merge_node(p, pool) for p in graph.policies)
    return dataclasses.replace(graph, policies=policies, sets=pool.sets())
