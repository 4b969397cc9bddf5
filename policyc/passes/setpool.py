"""What the passes share: the normal form of static sets, sets named after
their content, and renaming sets in rules.

Static sets (``CIDR``: ipBlock intervals, ``PORTS``: ``(protocol, lo, hi)``)
are decided by the policies alone: pod events never change their elements
(``setspecs.peer_blocks``, ``setspecs.numeric_ports`` have no ``member``).
So a pass may merge them, split them or give them new names: the new sets
change only when a policy does, and then the watcher renders the ruleset
again (``ir.Changes.rules``).  Pod-driven sets are never merged by
content, only renamed to a set whose definition is the same
(``passes.hash_cons_sets``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import cast

from policyc.errors import PolicycError
from policyc.intervals import Range, union
from policyc.ir import Element, Family, PolicyNode, RuleGraph, RuleNode, SetDef, SetKind
from policyc.model import IPAddress, Protocol
from policyc.setspecs import ports_definition, spec_name

STATIC = (SetKind.CIDR, SetKind.PORTS)
# Read by the dispatch and bridge chains by name: never renamed or dropped.
FIXED_PREFIXES = ("node", "iso_", "disp_", "spoof", "ifaces")

PortInterval = tuple[Protocol, int, int]
AddrRange = tuple[IPAddress, IPAddress]


def port_intervals(elems: Iterable[Element]) -> tuple[PortInterval, ...]:
    """PORTS elements as maximal intervals per protocol (80, 81, 82 -> 80-82;
    overlapping and adjacent ranges joined), sorted by protocol then port,
    as ``setspecs.numeric_ports`` makes them."""
    by_proto: dict[Protocol, list[Range]] = {}
    for proto, lo, hi in cast(Iterable[PortInterval], elems):
        by_proto.setdefault(proto, []).append((lo, hi))
    return tuple(
        (proto, lo, hi) for proto in sorted(by_proto, key=str) for lo, hi in union(by_proto[proto])
    )


def cidr_int_ranges(elems: Iterable[Element]) -> list[Range]:
    """CIDR elements ``(first, last)`` as sorted, disjoint, non-adjacent int ranges."""
    return union((int(lo), int(hi)) for lo, hi in cast(Iterable[AddrRange], elems))


def cidr_intervals(elems: Iterable[Element], family: Family | None) -> tuple[Element, ...]:
    """CIDR elements as the fewest intervals covering the same addresses."""
    make = ipaddress.IPv6Address if family is Family.V6 else ipaddress.IPv4Address
    return tuple((make(lo), make(hi)) for lo, hi in cidr_int_ranges(elems))


def normal_elements(s: SetDef) -> tuple[Element, ...]:
    """A static set's elements in normal form (others as they are)."""
    if s.kind is SetKind.PORTS:
        return port_intervals(s.elements)
    if s.kind is SetKind.CIDR:
        return cidr_intervals(s.elements, s.family)
    return s.elements


def content_name(kind: SetKind, family: Family | None, elems: tuple[Element, ...]) -> str:
    """A static set's name from its normal elements.  Port sets are named as
    the builder names them (``setspecs.ports_definition``), so a merged set
    equal to one a policy wrote is that set."""
    if kind is SetKind.PORTS:
        return spec_name("port", ports_definition(elems), None)  # type: ignore[arg-type]
    text = " ".join(f"{lo}-{hi}" for lo, hi in cast(Iterable[AddrRange], elems))
    return spec_name("net", f"ranges {text}", family)


class SetPool:
    """The graph's sets, plus the static sets a pass makes, by content."""

    def __init__(self, sets: Iterable[SetDef]) -> None:
        self.by_name = {s.name: s for s in sets}
        self.by_content = {
            (s.kind, s.family, normal_elements(s)): s.name
            for s in sorted(self.by_name.values(), key=lambda s: s.name, reverse=True)
            if s.kind in STATIC
        }

    def __getitem__(self, name: str) -> SetDef:
        return self.by_name[name]

    def intern(
        self, kind: SetKind, family: Family | None, elems: tuple[Element, ...], comment: str
    ) -> str:
        """The name of a static set holding ``elems`` (normal form): one the
        graph has, else a new one named by :func:`content_name`.
        PolicycError if that name is taken by other elements."""
        key = (kind, family, elems)
        known = self.by_content.get(key)
        if known is not None:
            return known
        name = content_name(kind, family, elems)
        if name in self.by_name:
            raise PolicycError(f"set name collision on {name}: rename a policy")
        self.by_name[name] = SetDef(name, kind, family, elems, comment)
        self.by_content[key] = name
        return name

    def sets(self) -> tuple[SetDef, ...]:
        return tuple(sorted(self.by_name.values(), key=lambda s: s.name))


def renamed(names: tuple[str, ...] | None, rename: Mapping[str, str]) -> tuple[str, ...] | None:
    """``names`` with each renamed, each once, in their first order."""
    if names is None:
        return None
    return tuple(dict.fromkeys(rename.get(n, n) for n in names))


def rename_sets(graph: RuleGraph, rename: Mapping[str, str]) -> RuleGraph:
    """Every reference to a set in ``rename`` points to its new name instead."""

    def rule(r: RuleNode) -> RuleNode:
        return dataclasses.replace(
            r, peer_sets=renamed(r.peer_sets, rename), port_sets=renamed(r.port_sets, rename)
        )

    policies = tuple(
        dataclasses.replace(
            p, selected=rename.get(p.selected, p.selected), rules=tuple(map(rule, p.rules))
        )
        for p in graph.policies
    )
    tiers = tuple(dataclasses.replace(p, rules=tuple(map(rule, p.rules))) for p in graph.tiers)
    return dataclasses.replace(graph, policies=policies, tiers=tiers)


def with_rules(node: PolicyNode, rules: Iterable[RuleNode]) -> PolicyNode:
    return dataclasses.replace(node, rules=tuple(rules))
