"""A group chain's allow rules as few set lookups as their shapes allow.

A group chain's NetworkPolicy section is its policies' rules, each
``peer set . port set -> return``, then drop.  Every rule returns, so their
order does not matter and any two may be ORed into one (Kubernetes API,
NetworkPolicySpec.ingress: "traffic is allowed if it matches at least one
ingress rule across all of the NetworkPolicy objects whose podSelector
matches the pod").  This pass merges, per group chain:

- **ipBlock peers x numeric ports** -> one ``NET_PORTS`` set looked up with
  ``ip saddr . meta l4proto . th dport`` (egress: ``daddr``), ``flags
  interval``: the union of peer intervals x port intervals as disjoint
  boxes (``policyc.concat.boxes``).  Merged even when it is one rule: two
  lookups become one.
- **ipBlock peers, every port** -> one CIDR set (when two or more lookups).
- **every peer x numeric ports** -> one PORTS set (when two or more lookups).
- Everything else stays a rule as it was: pod-selector peers (ADDR sets)
  and named ports (NAMED sets).  A rule mixing shapes is split: its ipBlock
  peers merge, its pod peers stay (``peers`` is ORed, so the split is exact).

Only static sets merge (CIDR, PORTS: ``passes.setpool``), decided by the
policies alone, so the merged sets change only when a policy does (a full
render) and a pod event stays an element change on the builder's own sets.
Merging pod-driven sets would need derived, refcounted deltas; it is not
done.  A ``NET_PORTS`` set holds at most ``policyc.concat.MAX_BOXES``
elements; past it a group's ipBlock x port rules stay as they are.

Guarantee: the accepted packets are unchanged; the merged rules go to
``Group.rules`` (the lowering reads them instead of the policies' rules);
policy nodes, and so the shared-address chains, are untouched; a group
whose section nothing merges keeps ``rules`` None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from policyc.concat import MAX_BOXES, boxes, section_rules
from policyc.errors import PolicycError
from policyc.intervals import Range
from policyc.ir import Element, Family, Group, RuleGraph, RuleNode, SetDef, SetKind
from policyc.passes.setpool import SetPool, cidr_int_ranges, cidr_intervals, port_intervals
from policyc.setspecs import short_hash

Ports = list[tuple[object, int, int]]


@dataclass
class _Parts:
    """One group's rules, split by shape (each item keeps its source rule)."""

    kept: list[RuleNode] = field(default_factory=list)
    cat: list[tuple[RuleNode, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    peer_only: list[tuple[RuleNode, tuple[str, ...]]] = field(default_factory=list)
    port_only: list[tuple[RuleNode, tuple[str, ...]]] = field(default_factory=list)

    def add(self, rule: RuleNode, kinds: dict[str, SetKind]) -> None:
        peers, ports = rule.peer_sets, rule.port_sets
        num = tuple(s for s in ports or () if kinds[s] is SetKind.PORTS)
        named = tuple(s for s in ports or () if kinds[s] is not SetKind.PORTS)
        if peers is None:
            if ports is None:
                self.kept.append(rule)
                return
            self.port_only.append((rule, num))
            if named:
                self.kept.append(dataclasses.replace(rule, port_sets=named))
            return
        static = tuple(s for s in peers if kinds[s] is SetKind.CIDR)
        pods = tuple(s for s in peers if kinds[s] is not SetKind.CIDR)
        if pods:
            self.kept.append(dataclasses.replace(rule, peer_sets=pods))
        if not static:
            return
        if ports is None:
            self.peer_only.append((rule, static))
            return
        if num:
            self.cat.append((rule, static, num))
        if named:
            self.kept.append(dataclasses.replace(rule, peer_sets=static, port_sets=named))


def _note(rules: Iterable[RuleNode]) -> str:
    labels = list(dict.fromkeys(r.label for r in rules))
    more = f" (+{len(labels) - 1} merged)" if len(labels) > 1 else ""
    return labels[0] + more


def _merged(group: Group, parts: list[RuleNode], peers: str | None, ports: str | None) -> RuleNode:
    return RuleNode(
        "",
        group.direction,
        0,
        group.family,
        None if peers is None else (peers,),
        None if ports is None else (ports,),
        _note(parts),
    )


def _net_ports(pool: SetPool, family: Family, elems: tuple[Element, ...], n: int) -> str:
    """The NET_PORTS set holding ``elems``, named after them."""
    text = " ".join(map(str, elems))
    name = f"cat_{short_hash(text, 10)}{family.suffix}"
    known = pool.by_name.get(name)
    if known is not None and known.elements != elems:
        raise PolicycError(f"set name collision on {name}: rename a policy")
    comment = f"{n} rules: peer . protocol . port"
    pool.by_name[name] = known or SetDef(name, SetKind.NET_PORTS, family, elems, comment)
    return name


def _cat_rules(group: Group, parts: _Parts, pool: SetPool) -> list[RuleNode] | None:
    """The ipBlock x port rules as one NET_PORTS lookup; None: over the bound."""
    products: list[tuple[list[Range], Ports]] = []
    for _, peers, ports in parts.cat:
        addrs = cidr_int_ranges(e for s in peers for e in pool[s].elements)
        products.append((addrs, [e for s in ports for e in port_intervals(pool[s].elements)]))
    elems = boxes(products, group.family, MAX_BOXES)  # type: ignore[arg-type]
    if elems is None:
        return None
    if not elems:
        return []  # no address or no port: the rules match nothing
    name = _net_ports(pool, group.family, elems, len(parts.cat))
    return [_merged(group, [r for r, _, _ in parts.cat], None, name)]


def _merge_group(
    group: Group, rules: Iterable[RuleNode], kinds: dict[str, SetKind], pool: SetPool
) -> Group:
    parts = _Parts()
    for r in rules:
        parts.add(r, kinds)
    out, merged = list(parts.kept), False
    cat = _cat_rules(group, parts, pool) if parts.cat else None
    if cat is not None:
        out.extend(cat)
        merged = True
    else:
        out.extend(dataclasses.replace(r, peer_sets=p, port_sets=q) for r, p, q in parts.cat)
    if sum(len(p) for _, p in parts.peer_only) > 1:
        elems = cidr_intervals(
            (e for _, p in parts.peer_only for s in p for e in pool[s].elements), group.family
        )
        if elems:
            name = pool.intern(SetKind.CIDR, group.family, elems, "ipBlocks of several rules")
            out.append(_merged(group, [r for r, _ in parts.peer_only], name, None))
        merged = True
    else:
        out.extend(dataclasses.replace(r, peer_sets=p, port_sets=None) for r, p in parts.peer_only)
    if sum(len(p) for _, p in parts.port_only) > 1:
        elems = port_intervals(e for _, p in parts.port_only for s in p for e in pool[s].elements)
        if elems:
            name = pool.intern(SetKind.PORTS, None, elems, "")
            out.append(_merged(group, [r for r, _ in parts.port_only], None, name))
        merged = True
    else:
        out.extend(
            dataclasses.replace(r, peer_sets=None, port_sets=p) for r, p in parts.port_only if p
        )
    return dataclasses.replace(group, rules=tuple(out)) if merged else group


def concat_lookups(graph: RuleGraph) -> RuleGraph:
    kinds = {s.name: s.kind for s in graph.sets}
    nodes = {(p.policy, p.direction, p.family): p for p in graph.policies}
    pool = SetPool(graph.sets)
    groups = tuple(_merge_group(g, section_rules(g, nodes), kinds, pool) for g in graph.groups)
    return dataclasses.replace(graph, groups=groups, sets=pool.sets())
