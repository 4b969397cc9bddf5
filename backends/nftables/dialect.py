"""The one translation of the lowered layer into nftables objects.

Mostly data, as a sqlglot dialect: ``FIELDS`` (what a set lookup is keyed on
→ the nft expression), ``TRANSFORMS`` (match type → statements), ``HOOKS``,
``SET_TYPES`` and ``ELEMENTS`` (IR set kind → nft type and element value).
A match this table does not know raises BackendError("Unsupported …"); it is
never dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from backends.nftables.objects import (
    AnonSet,
    Chain,
    Concat,
    Ct,
    Expr,
    Flags,
    Iface,
    Match,
    Meta,
    Op,
    Payload,
    Prefix,
    Range,
    Rule,
    Set,
    SetRef,
    Stmt,
    Value,
    Verdict,
    VerdictElem,
    VMap,
)
from policyc import chains as low
from policyc.chains import Verb
from policyc.errors import BackendError
from policyc.ir import PROTO_NAMES, Family, SetDef, SetKind

# nft(8): "A comment is a single word or a double-quoted (") multi-word
# string": a quote inside it would end it, so quotes become apostrophes.
# nft -f reads a file in time quadratic in the words on one line (KERNEL-NOTES):
# comments are capped so that no emitted line grows with the data.
RULE_COMMENT_MAX = 120
SET_COMMENT_MAX = 200

# "type filter hook forward priority filter; policy accept;" (filter = 0)
HOOKS: dict[low.Hook, tuple[str, str, int, str]] = {
    low.Hook.FORWARD: ("filter", "forward", 0, "accept"),
    low.Hook.INPUT: ("filter", "input", 0, "accept"),
    low.Hook.BRIDGE_PREROUTING: ("filter", "prerouting", -300, "accept"),
}
ADDR_TYPE = {Family.V4: "ipv4_addr", Family.V6: "ipv6_addr"}
ND = ("nd-neighbor-solicit", "nd-neighbor-advert")
LINK_LOCAL_ICMP6 = ND + ("nd-router-solicit", "mld-listener-report", "mld2-listener-report")


def _addr(family: Family | None) -> str:
    return "ip" if family is Family.V4 else "ip6"


FIELDS: dict[low.Field, Callable[[str], Expr]] = {
    low.Field.SADDR: lambda k: Payload(k, "saddr"),
    low.Field.DADDR: lambda k: Payload(k, "daddr"),
    low.Field.PROTO_DPORT: lambda k: Concat((Meta("l4proto"), Payload("th", "dport"))),
    low.Field.DADDR_PROTO_DPORT: lambda k: Concat(
        (Payload(k, "daddr"), Meta("l4proto"), Payload("th", "dport"))
    ),
    low.Field.IIF: lambda k: Meta("iifname"),
    low.Field.IIF_SADDR: lambda k: Concat((Meta("iifname"), Payload(k, "saddr"))),
    low.Field.IIF_ARP_SADDR: lambda k: Concat((Meta("iifname"), Payload("arp", "saddr ip"))),
}


def _in_set(m: Any) -> tuple[Stmt, ...]:
    op = Op.NE if m.negate else Op.EQ
    return (Match(op, FIELDS[m.field](_addr(m.family)), SetRef(m.set)),)


TRANSFORMS: dict[type, Callable[[Any], tuple[Stmt, ...]]] = {
    low.InSet: _in_set,
    low.CtEstablished: lambda m: (Match(Op.IN, Ct("state"), Flags(("established", "related"))),),
    low.NeighbourDiscovery: lambda m: (Match(Op.EQ, Payload("icmpv6", "type"), AnonSet(ND)),),
    low.IfacePrefix: lambda m: (
        Match(Op.NE if m.negate else Op.EQ, Meta("iifname"), Iface(m.prefix + "*")),
    ),
    low.LinkLocalIcmp6: lambda m: (
        Match(Op.EQ, Payload("ip6", "saddr"), AnonSet(("::", Prefix("fe80::", 10)))),
        Match(Op.EQ, Payload("icmpv6", "type"), AnonSet(LINK_LOCAL_ICMP6)),
    ),
    low.ArpProbe: lambda m: (Match(Op.EQ, Payload("arp", "saddr ip"), "0.0.0.0"),),
}


def statements(m: low.Match) -> tuple[Stmt, ...]:
    fn = TRANSFORMS.get(type(m))
    if fn is None:
        raise BackendError(f"Unsupported match for nftables: {m!r}")
    return fn(m)


def comment(text: str, limit: int) -> str:
    """One bounded line: no quotes (they end an nft string), no control characters."""
    clean = text if text.isprintable() else "".join(c if c.isprintable() else " " for c in text)
    clean = clean.replace('"', "'")
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def rule(r: low.Rule, family: str, table: str, chain: str) -> Rule:
    stmts = tuple(s for m in r.matches for s in statements(m))
    a = r.action
    if a.verb is low.Verb.VMAP:
        # nft(8): "ip saddr vmap @map": the element's verdict, if any.
        if a.key is None:
            raise BackendError(f"Unsupported verdict map without a key: {r!r}")
        stmts += (VMap(FIELDS[a.key](_addr(a.family)), a.target),)
    else:
        stmts += (Verdict(a.verb, a.target),)
    return Rule(family, table, chain, stmts, comment(r.comment, RULE_COMMENT_MAX))


def chain(c: low.Chain, family: str, table: str) -> Chain:
    rules = tuple(rule(r, family, table, c.name) for r in c.rules)
    if c.hook is None:
        return Chain(family, table, c.name, rules)
    return Chain(family, table, c.name, rules, *HOOKS[c.hook])


def _set_types(addr: str) -> dict[SetKind, tuple[tuple[str, ...], tuple[str, ...]]]:
    interval = ("interval",)
    return {
        SetKind.ADDR: ((addr,), ()),
        SetKind.CIDR: ((addr,), interval),
        SetKind.PORTS: (("inet_proto", "inet_service"), interval),
        SetKind.NAMED: ((addr, "inet_proto", "inet_service"), ()),
        SetKind.IFACE_ADDR: (("ifname", addr), ()),
        SetKind.IFACE: (("ifname",), ()),
        SetKind.VMAP: ((addr,), ()),
    }


# (nft type per concatenated field, flags) by address family and IR set kind.
SET_TYPES = {f: _set_types(ADDR_TYPE[f] if f else "") for f in (Family.V4, Family.V6, None)}


def set_type(s: SetDef) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(nft type per concatenated field, flags) of an IR set."""
    return SET_TYPES[s.family][s.kind]


def addr_range(lo: Any, hi: Any) -> Value:
    """An address interval as nft lists it: an address, a prefix, or a range.

    One element per merged interval, whatever its shape (nft splits a range
    into its own intervals when it loads it).  A prefix is a power-of-two
    span aligned on its size: two int tests, where ``summarize_address_range``
    built objects per interval."""
    if lo == hi:
        return addr(lo)
    first = int(lo)
    size = int(hi) - first + 1
    if size & (size - 1) == 0 and first & (size - 1) == 0:
        return Prefix(str(lo), lo.max_prefixlen - size.bit_length() + 1)
    return Range(str(lo), str(hi))


@functools.lru_cache(maxsize=1 << 16)
def addr(ip: Any) -> str:
    """An address's text.  Cached: one pod address sits in many sets, and
    ``ipaddress``'s ``str`` costs microseconds."""
    return str(ip)


def _ports(e: Any) -> Value:
    proto, lo, hi = e
    return Concat((PROTO_NAMES[proto], lo if lo == hi else Range(lo, hi)))


ELEMENTS: dict[SetKind, Callable[[Any], Value]] = {
    SetKind.ADDR: addr,
    SetKind.CIDR: lambda e: addr_range(*e),
    SetKind.PORTS: _ports,
    SetKind.NAMED: lambda e: Concat((addr(e[0]), PROTO_NAMES[e[1]], e[2])),
    SetKind.IFACE_ADDR: lambda e: Concat((Iface(e[0]), addr(e[1]))),
    SetKind.IFACE: Iface,
    # "map m { type ipv4_addr : verdict; elements = { 10.0.0.1 : goto c } }"
    SetKind.VMAP: lambda e: VerdictElem(addr(e[0]), Verb.GOTO, e[1]),
}
MAP_TYPE = {SetKind.VMAP: "verdict"}


def element(kind: SetKind, e: object) -> Value:
    return ELEMENTS[kind](e)


def set_(s: SetDef, family: str, table: str) -> Set:
    typ, flags = set_type(s)
    encode = ELEMENTS[s.kind]
    elements = dict.fromkeys(map(encode, s.elements))
    text = comment(s.comment, SET_COMMENT_MAX)
    return Set(family, table, s.name, typ, flags, elements, text, MAP_TYPE.get(s.kind, ""))
