"""Groups whose chains would hold the same rules share one chain.

The builder already gives pods with identical policy sets one group chain
(``Compiler.group_of``): the dispatch map's elements name it, so pod events
stay map-element changes.  Different policy sets often lower to the same
rules, e.g. a default-deny in each namespace (``{x/deny}`` and
``{y/deny}``: no rule, then drop), or an allow-all rule that subsumes the
rest.  This pass points every such group but the first (by name) at that
first group's chain: the later group's chain becomes one ``goto``.

Guarantee: a group chain's rules are its policies' rules in its policies'
order, then its direction's default; two groups with the same direction,
family and sequence of (peer sets, port sets) have chains that match the
same packets and end alike, so jumping to either gives the same verdict.
The dispatch map is untouched (``Group.alias`` is read only by the
lowering), so pod events stay element changes.
"""

from __future__ import annotations

import dataclasses

from policyc.ir import Group, PolicyNode, RuleGraph

PolicyKey = tuple[object, object, object]


def _body(nodes: dict[PolicyKey, PolicyNode], group: Group) -> tuple[object, ...]:
    rules: list[object] = [group.direction, group.family]
    for key in group.policies:
        node = nodes.get((key, group.direction, group.family))
        if node is not None:
            rules.extend((r.peer_sets, r.port_sets) for r in node.rules)
    return tuple(rules)


def share_chains(graph: RuleGraph) -> RuleGraph:
    first: dict[tuple[object, ...], str] = {}
    out: list[Group] = []
    # Indexed once: per group, it made the pass O(groups x policies) (58 s at L).
    nodes: dict[PolicyKey, PolicyNode] = {
        (p.policy, p.direction, p.family): p for p in graph.policies
    }
    for group in sorted(graph.groups, key=lambda g: g.name):
        body = _body(nodes, group)
        canonical = first.setdefault(body, group.name)
        alias = canonical if canonical != group.name else ""
        out.append(dataclasses.replace(group, alias=alias))
    return dataclasses.replace(graph, groups=tuple(out))
