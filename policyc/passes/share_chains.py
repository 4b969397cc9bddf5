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

from policyc.ir import Group, RuleGraph


def _body(graph: RuleGraph, group: Group) -> tuple[object, ...]:
    """What decides a group chain's verdicts: its NetworkPolicy rules and
    whether it is isolated, then its Admin and Baseline rules with their
    actions, each tier in order (so tier order is part of the key)."""
    nodes = {(p.policy, p.direction, p.family): p for p in graph.policies}
    rules: list[object] = [group.direction, group.family]
    for key in group.policies:
        node = nodes.get((key, group.direction, group.family))
        if node is not None:
            rules.extend((r.peer_sets, r.port_sets) for r in node.rules)
    if group.admin or group.baseline:
        tiers = {(p.policy, p.direction, p.family): p for p in graph.tiers}
        rules.append(bool(group.policies))
        for word, keys in (("admin", group.admin), ("baseline", group.baseline)):
            rules.append(word)
            for key in keys:
                node = tiers.get((key, group.direction, group.family))
                if node is not None:
                    rules.extend((r.peer_sets, r.port_sets, r.action) for r in node.rules)
    return tuple(rules)


def share_chains(graph: RuleGraph) -> RuleGraph:
    first: dict[tuple[object, ...], str] = {}
    out: list[Group] = []
    for group in sorted(graph.groups, key=lambda g: g.name):
        body = _body(graph, group)
        canonical = first.setdefault(body, group.name)
        alias = canonical if canonical != group.name else ""
        out.append(dataclasses.replace(group, alias=alias))
    return dataclasses.replace(graph, groups=tuple(out))
