"""ClusterNetworkPolicy -> rule graph nodes: one ``PolicyNode`` per
direction and family, one ``RuleNode`` per rule that can match in that
family, carrying the rule's action.

"Rules are evaluated in the order they appear": the nodes keep the written
order (``RuleNode.index``), and the groups name the policies in evaluation
order (``ClusterNetworkPolicy.order``), so the lowering never reorders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from policyc import cnp_sets
from policyc.ir import Family, PolicyNode, RuleNode
from policyc.model import ClusterNetworkPolicy, CNPRule, Direction, Node, Selector
from policyc.setspecs import SetSpec

Ref = Callable[[SetSpec], str]


def rules_of(pol: ClusterNetworkPolicy, direction: Direction) -> tuple[CNPRule, ...]:
    return pol.ingress if direction is Direction.INGRESS else pol.egress


def rule_node(
    pol: ClusterNetworkPolicy,
    direction: Direction,
    index: int,
    family: Family,
    ref: Ref,
    nodes: Iterable[Node],
) -> RuleNode | None:
    """The rule in ``family``; None if none of its peers can match there
    (e.g. only IPv6 ``networks`` in IPv4)."""
    rule = rules_of(pol, direction)[index]
    claim = cnp_sets.claim_of(rule.action)
    names: list[str] = []
    pods = cnp_sets.pod_peers(rule.peers)
    if pods:
        names.append(ref(cnp_sets.peer_pods(pods, family, claim)))
    nets = cnp_sets.peer_networks((n for p in rule.peers for n in p.networks), family)
    if nets is not None:
        names.append(ref(nets))
    sels: list[Selector] = [p.nodes for p in rule.peers if p.nodes is not None]
    if sels:
        names.append(ref(cnp_sets.peer_nodes(sels, family, nodes)))
    if not names:
        return None
    ports: tuple[str, ...] | None = None
    if rule.protocols is not None:
        found = [
            ref(s)
            for s in (
                cnp_sets.numeric(rule.protocols),
                cnp_sets.named(rule.protocols, family, claim),
            )
            if s is not None
        ]
        ports = tuple(found)
    return RuleNode(pol.key, direction, index, family, tuple(names), ports, action=rule.action)


def policy_node(
    pol: ClusterNetworkPolicy, direction: Direction, family: Family, ref: Ref, nodes: Iterable[Node]
) -> PolicyNode:
    found = (
        rule_node(pol, direction, i, family, ref, nodes)
        for i in range(len(rules_of(pol, direction)))
    )
    rules = tuple(r for r in found if r is not None)
    return PolicyNode(pol.key, direction, family, "", rules, audit=pol.audit)
