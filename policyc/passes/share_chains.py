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
A ClusterNetworkPolicy Deny also keys on its policy and rule: its drop log
names them, so only Denies of the same rule share (drop attribution).
The dispatch map is untouched (``Group.alias`` is read only by the
lowering), so pod events stay element changes.
"""

from __future__ import annotations

import dataclasses

from policyc.concat import section_rules
from policyc.ir import Family, Group, PolicyNode, RuleGraph, RuleNode
from policyc.model import Action, Direction

PolicyKey = tuple[str, Direction, Family]


def _body(
    nodes: dict[PolicyKey, PolicyNode], tiers: dict[PolicyKey, PolicyNode], group: Group
) -> tuple[object, ...]:
    """What decides a group chain's verdicts: its NetworkPolicy rules and
    whether it is isolated, then its Admin and Baseline rules with their
    actions, each tier in order (so tier order is part of the key)."""
    # An audit chain ends in no drop: never the same as an enforced one.
    rules: list[object] = [group.audit, group.direction, group.family]
    rules.extend((r.peer_sets, r.port_sets) for r in section_rules(group, nodes))
    if group.admin or group.baseline:
        rules.append(bool(group.policies))
        for word, keys in (("admin", group.admin), ("baseline", group.baseline)):
            rules.append(word)
            for key in keys:
                node = tiers.get((key, group.direction, group.family))
                if node is not None:
                    # an audit policy's rules only log: never the same as enforced ones
                    rules.append(node.audit)
                    rules.extend(
                        (r.peer_sets, r.port_sets, r.action, _logged(r)) for r in node.rules
                    )
    return tuple(rules)


def _logged(rule: RuleNode) -> tuple[str, int] | None:
    """A Deny's identity: with ``--log-drops`` its log prefix names its policy
    and rule (``logprefix.rule_ref``), so two Denies of different policies
    never share a chain, or a drop would be attributed to the other one."""
    return (rule.policy, rule.index) if rule.action is Action.DENY else None


def share_chains(graph: RuleGraph) -> RuleGraph:
    first: dict[tuple[object, ...], str] = {}
    out: list[Group] = []
    # Indexed once: per group, it made the pass O(groups x policies) (58 s at L).
    nodes: dict[PolicyKey, PolicyNode] = {
        (p.policy, p.direction, p.family): p for p in graph.policies
    }
    tiers: dict[PolicyKey, PolicyNode] = {(p.policy, p.direction, p.family): p for p in graph.tiers}
    for group in sorted(graph.groups, key=lambda g: g.name):
        body = _body(nodes, tiers, group)
        canonical = first.setdefault(body, group.name)
        alias = canonical if canonical != group.name else ""
        out.append(dataclasses.replace(group, alias=alias))
    return dataclasses.replace(graph, groups=tuple(out))
