"""Two rules with the same selection, peer and port sets accept the same
packets; keep the first.  Policies that share a selector and an allow list
(a common pattern: one per team, all saying "allow from monitoring") then
cost one rule."""

from __future__ import annotations

import dataclasses

from policyc.ir import PolicyNode, RuleGraph, RuleNode


def dedupe_rules(graph: RuleGraph) -> RuleGraph:
    seen: set[tuple[object, ...]] = set()
    out: list[PolicyNode] = []
    for node in graph.policies:
        kept: list[RuleNode] = []
        for rule in node.rules:
            # An audit rule never stands in for an enforced one, nor the reverse.
            key: tuple[object, ...] = (node.audit, rule.direction, rule.family, node.selected)
            key += (rule.peer_sets, rule.port_sets)
            if key not in seen:
                seen.add(key)
                kept.append(rule)
        out.append(dataclasses.replace(node, rules=tuple(kept)))
    return dataclasses.replace(graph, policies=tuple(out))
