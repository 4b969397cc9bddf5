"""Concatenated lookups: ``peer address . protocol . port`` in one interval set.

nft(8), SETS: "flags interval" and "Concatenation of data types ... using the
'.' operator"; the kernel's pipapo set type holds intervals in every field of
a concatenation (KERNEL-NOTES: ``10.244.0.0/28 . tcp . 80-90``).  Its
elements must not overlap (an overlapping add is "File exists"), so the
union of several rules' ``peers x ports`` is written as disjoint boxes.

Element shape (``SetKind.NET_PORTS``): ``(first, last, protocol, lo, hi)``,
addresses of one family, ports 0-65535 inclusive.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import cast

from policyc.chains import Field
from policyc.intervals import Range, union
from policyc.ir import PROTO_NAMES, Element, Family, Group, PolicyNode, RuleNode, SetKind
from policyc.model import Direction, Protocol

# A merged set holds at most this many boxes; past it the rules stay as
# they are (passes.concat_lookups).  It bounds the product |peer intervals|
# x |port intervals| that one merge may write into the kernel.
MAX_BOXES = 4096

Box = tuple[object, object, Protocol, int, int]


def port_field(kind: SetKind, direction: Direction) -> Field:
    """What a rule's port-side set is keyed on: ``meta l4proto . th dport``
    (PORTS), the destination's ``daddr . l4proto . dport`` (NAMED), or the
    peer's address with them (NET_PORTS: ingress peers are sources)."""
    if kind is SetKind.PORTS:
        return Field.PROTO_DPORT
    if kind is SetKind.NET_PORTS and direction is Direction.INGRESS:
        return Field.SADDR_PROTO_DPORT
    return Field.DADDR_PROTO_DPORT


def section_rules(
    group: Group, nodes: Mapping[tuple[str, Direction, Family], PolicyNode]
) -> Iterable[RuleNode]:
    """The rules of a group chain's NetworkPolicy section: a pass's merged
    rules if it made them, else its policies' rules in order."""
    if group.rules is not None:
        yield from group.rules
        return
    for key in group.policies:
        node = nodes.get((key, group.direction, group.family))
        yield from node.rules if node is not None else ()


def boxes(
    products: Iterable[tuple[list[Range], list[tuple[Protocol, int, int]]]],
    family: Family,
    limit: int = MAX_BOXES,
) -> tuple[Box, ...] | None:
    """The union of ``addresses x ports`` over ``products`` (int address
    ranges, ``(protocol, lo, hi)`` port ranges) as disjoint boxes, sorted by
    address, protocol, port; None if more than ``limit``.

    Per protocol, the address axis is cut at every range boundary; each
    piece gets the union of the port ranges of the products covering it,
    and neighbouring pieces with equal port ranges are joined."""
    by_proto: dict[Protocol, list[tuple[Range, Range]]] = {}
    for addrs, ports in products:
        for proto, lo, hi in ports:
            by_proto.setdefault(proto, []).extend((a, (lo, hi)) for a in addrs)
    if sum(len(p) for p in by_proto.values()) > limit:
        return None  # keeps the cut below within O(limit^2)
    make = ipaddress.IPv6Address if family is Family.V6 else ipaddress.IPv4Address
    out: list[tuple[int, str, Box]] = []
    for proto, pairs in by_proto.items():
        for (first, last), spans in _pieces(pairs):
            for lo, hi in spans:
                out.append((first, str(proto), (make(first), make(last), proto, lo, hi)))
                if len(out) > limit:
                    return None
    out.sort(key=lambda t: (t[0], t[1], t[2][3]))
    return tuple(b for _, _, b in out)


def _pieces(pairs: list[tuple[Range, Range]]) -> list[tuple[Range, tuple[Range, ...]]]:
    """Disjoint address pieces, each with its merged port ranges (none empty)."""
    cuts = sorted({a for (a, _), _ in pairs} | {b + 1 for (_, b), _ in pairs})
    out: list[tuple[Range, tuple[Range, ...]]] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        ports = tuple(union(p for (a, b), p in pairs if a <= start and end - 1 <= b))
        if not ports:
            continue
        if out and out[-1][0][1] == start - 1 and out[-1][1] == ports:
            out[-1] = ((out[-1][0][0], end - 1), ports)
        else:
            out.append(((start, end - 1), ports))
    return out


def box_text(e: Element) -> str:
    first, last, proto, lo, hi = cast(Box, e)
    addr = str(first) if first == last else f"{first}-{last}"
    port = str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{addr} . {PROTO_NAMES[proto]} . {port}"
