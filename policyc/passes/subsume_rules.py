"""Rules another rule of the same chain already allows are dropped.

Guarantee: the accepted packets are unchanged.  Rule ``s`` is dropped when a
rule ``r`` of a policy node with the same selected set, direction and family
(so of the same chain, matching the same local pods) covers it, and ``r``
is kept or covered in turn (containment is transitive; of rules that cover
each other the first stays):

- peers: ``r`` allows every peer, or each peer set of ``s`` is one of
  ``r``'s, or is a CIDR set whose intervals lie inside ``r``'s CIDR sets;
- ports: ``r`` allows every port, or each port set of ``s`` is one of
  ``r``'s, or is a PORTS set whose intervals lie inside ``r``'s PORTS sets.

So a rule with every peer and every port makes its policy's other rules in
that direction redundant, and a rule with every peer (``peer_sets=None``)
drops every rule whose ports it contains.  Kubernetes API,
NetworkPolicySpec.ingress: "If this field is empty then this NetworkPolicy
does not allow any traffic ... rules are ORed" (traffic allowed by any rule
is allowed), so an allow the chain already grants adds nothing.

Chains of more than ``GROUP_MAX`` rules for one selected set are compared
only with the every-peer, every-port rule (pairs would cost their square).
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass

from policyc.intervals import Range
from policyc.ir import PolicyNode, RuleGraph, RuleNode, SetKind
from policyc.passes.setpool import SetPool, cidr_int_ranges, port_intervals

GROUP_MAX = 256


@dataclass(frozen=True, slots=True)
class Reach:
    """What one rule allows, for containment: set names, and the intervals
    of its static sets (CIDR as ints; ports per protocol)."""

    peers: frozenset[str] | None
    cidrs: tuple[Range, ...]
    ports: frozenset[str] | None
    port_ranges: dict[object, list[Range]]

    @staticmethod
    def of(r: RuleNode, pool: SetPool) -> Reach:
        cidr = [
            e for n in r.peer_sets or () if pool[n].kind is SetKind.CIDR for e in pool[n].elements
        ]
        numeric = [
            e for n in r.port_sets or () if pool[n].kind is SetKind.PORTS for e in pool[n].elements
        ]
        by_proto: dict[object, list[Range]] = {}
        for proto, lo, hi in port_intervals(numeric):
            by_proto.setdefault(proto, []).append((lo, hi))
        return Reach(
            None if r.peer_sets is None else frozenset(r.peer_sets),
            tuple(cidr_int_ranges(cidr)),
            None if r.port_sets is None else frozenset(r.port_sets),
            by_proto,
        )


def _inside(
    ranges: list[Range] | tuple[Range, ...], within: list[Range] | tuple[Range, ...]
) -> bool:
    """Every range of ``ranges`` inside one of ``within`` (sorted, maximal)."""
    for lo, hi in ranges:
        i = bisect.bisect_right(within, (lo, float("inf"))) - 1
        if i < 0 or within[i][1] < hi:
            return False
    return True


def _covers(r: Reach, s: Reach, pool: SetPool) -> bool:
    if r.peers is not None:
        if s.peers is None:
            return False
        for n in s.peers - r.peers:
            if pool[n].kind is not SetKind.CIDR or not _inside(
                cidr_int_ranges(pool[n].elements), r.cidrs
            ):
                return False
    if r.ports is not None:
        if s.ports is None:
            return False
        for n in s.ports - r.ports:
            if pool[n].kind is not SetKind.PORTS:
                return False
            for proto, lo, hi in port_intervals(pool[n].elements):
                if not _inside([(lo, hi)], r.port_ranges.get(proto, [])):
                    return False
    return True


def _dropped(rules: list[RuleNode], pool: SetPool) -> set[int]:
    """Indices (in ``rules``) of the rules another one covers."""
    if len(rules) > GROUP_MAX:
        every = [i for i, r in enumerate(rules) if r.peer_sets is None and r.port_sets is None]
        return set(range(len(rules))) - set(every[:1]) if every else set()
    reach = [Reach.of(r, pool) for r in rules]
    out = set()
    for i, s in enumerate(reach):
        for j, r in enumerate(reach):
            if i != j and _covers(r, s, pool) and (j < i or not _covers(s, r, pool)):
                out.add(i)
                break
    return out


def subsume_rules(graph: RuleGraph) -> RuleGraph:
    pool = SetPool(graph.sets)
    chains: dict[tuple[object, ...], list[tuple[int, int]]] = {}
    for k, node in enumerate(graph.policies):
        # Audit rules lower to other chains than enforced ones: never compared.
        key = (node.audit, node.selected, node.direction, node.family)
        chains.setdefault(key, []).extend((k, i) for i in range(len(node.rules)))
    gone: set[tuple[int, int]] = set()
    for members in chains.values():
        if len(members) > 1:
            rules = [graph.policies[k].rules[i] for k, i in members]
            gone.update(members[i] for i in _dropped(rules, pool))
    if not gone:
        return graph
    out: list[PolicyNode] = [
        dataclasses.replace(
            node, rules=tuple(r for i, r in enumerate(node.rules) if (k, i) not in gone)
        )
        for k, node in enumerate(graph.policies)
    ]
    return dataclasses.replace(graph, policies=tuple(out))
