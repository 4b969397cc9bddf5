"""A rule that allows every peer on every port makes its policy's other rules
in that direction redundant: "rules are ORed"."""

from __future__ import annotations

import dataclasses

from policyc.ir import PolicyNode, RuleGraph


def subsume_rules(graph: RuleGraph) -> RuleGraph:
    out: list[PolicyNode] = []
    for node in graph.policies:
        everything = [r for r in node.rules if r.peer_sets is None and r.port_sets is None]
        if everything and len(node.rules) > 1:
            node = dataclasses.replace(node, rules=(everything[0],))
        out.append(node)
    return dataclasses.replace(graph, policies=tuple(out))
