"""The lowered ruleset as libnftables JSON objects (the watcher's dialect).

The text renderer (``backends/nftables.py``) and this one translate the same
typed matches; a kernel test checks that both program identical tables.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from policyc.chains import (
    ArpProbe,
    Chain,
    CtEstablished,
    Field,
    Hook,
    IfacePrefix,
    InSet,
    LinkLocalIcmp6,
    Match,
    NeighbourDiscovery,
    Rule,
)
from policyc.ir import PROTO_NAMES, Family, SetDef, SetKind

Json = dict[str, Any]
ADDR_TYPE = {Family.V4: "ipv4_addr", Family.V6: "ipv6_addr"}
HOOKS: dict[Hook, Json] = {
    Hook.FORWARD: {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"},
    Hook.BRIDGE_PREROUTING: {
        "type": "filter",
        "hook": "prerouting",
        "prio": -300,
        "policy": "accept",
    },
}
# Shared with the text renderer (backends/nftables.py): one table of types.
ND = ["nd-neighbor-solicit", "nd-neighbor-advert"]
LINK_LOCAL_ICMP6 = ND + ["nd-router-solicit", "mld-listener-report", "mld2-listener-report"]


def set_types(s: SetDef) -> tuple[list[str], bool]:
    """The nft type of a set (one type per concatenated field) and its interval flag."""
    addr = ADDR_TYPE[s.family] if s.family else ""
    return {
        SetKind.ADDR: ([addr], False),
        SetKind.CIDR: ([addr], True),
        SetKind.PORTS: (["inet_proto", "inet_service"], True),
        SetKind.NAMED: ([addr, "inet_proto", "inet_service"], False),
        SetKind.IFACE_ADDR: (["ifname", addr], False),
        SetKind.IFACE: (["ifname"], False),
    }[s.kind]


def set_header(s: SetDef, family: str, table: str) -> Json:
    types, interval = set_types(s)
    typ: Any = types[0] if len(types) == 1 else types
    out: Json = {"family": family, "table": table, "name": s.name, "type": typ}
    if interval:
        out["flags"] = ["interval"]
    return out


def addr_range(lo: Any, hi: Any) -> Any:
    """An address interval as nft writes it: an address, a prefix, or a range."""
    if lo == hi:
        return str(lo)
    nets = list(ipaddress.summarize_address_range(lo, hi))
    if len(nets) == 1:
        return {"prefix": {"addr": str(nets[0].network_address), "len": nets[0].prefixlen}}
    return {"range": [str(lo), str(hi)]}


def element(s: SetDef, e: Any) -> Any:
    """One set element as JSON; hashable forms are made by ``key``."""
    if s.kind is SetKind.ADDR:
        return str(e)
    if s.kind is SetKind.IFACE:
        return e
    if s.kind is SetKind.CIDR:
        return addr_range(*e)
    if s.kind is SetKind.PORTS:
        proto, lo, hi = e
        return {"concat": [PROTO_NAMES[proto], lo if lo == hi else {"range": [lo, hi]}]}
    if s.kind is SetKind.NAMED:
        ip, proto, port = e
        return {"concat": [str(ip), PROTO_NAMES[proto], port]}
    iface, ip = e
    return {"concat": [iface, str(ip)]}


def _payload(proto: str, field: str) -> Json:
    return {"payload": {"protocol": proto, "field": field}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _match(left: Any, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def match_json(m: Match) -> list[Json]:
    if isinstance(m, InSet):
        key = "ip" if m.family is Family.V4 else "ip6"
        lhs: Any = {
            Field.SADDR: _payload(key, "saddr"),
            Field.DADDR: _payload(key, "daddr"),
            Field.PROTO_DPORT: {"concat": [_meta("l4proto"), _payload("th", "dport")]},
            Field.DADDR_PROTO_DPORT: {
                "concat": [_payload(key, "daddr"), _meta("l4proto"), _payload("th", "dport")]
            },
            Field.IIF: _meta("iifname"),
            Field.IIF_SADDR: {"concat": [_meta("iifname"), _payload(key, "saddr")]},
            Field.IIF_ARP_SADDR: {"concat": [_meta("iifname"), _payload("arp", "saddr ip")]},
        }[m.field]
        return [_match(lhs, "@" + m.set, "!=" if m.negate else "==")]
    if isinstance(m, CtEstablished):
        return [_match({"ct": {"key": "state"}}, ["established", "related"], "in")]
    if isinstance(m, NeighbourDiscovery):
        return [_match(_payload("icmpv6", "type"), {"set": ND})]
    if isinstance(m, IfacePrefix):
        return [_match(_meta("iifname"), m.prefix + "*", "!=" if m.negate else "==")]
    if isinstance(m, LinkLocalIcmp6):
        link_local = {"set": ["::", {"prefix": {"addr": "fe80::", "len": 10}}]}
        return [
            _match(_payload("ip6", "saddr"), link_local),
            _match(_payload("icmpv6", "type"), {"set": LINK_LOCAL_ICMP6}),
        ]
    if isinstance(m, ArpProbe):
        return [_match(_payload("arp", "saddr ip"), "0.0.0.0")]
    raise NotImplementedError(f"Unsupported match for nftables JSON: {m!r}")


def rule_json(rule: Rule, family: str, table: str, chain: str) -> Json:
    expr: list[Json] = [x for m in rule.matches for x in match_json(m)]
    verb = rule.action.verb.value
    expr.append({verb: {"target": rule.action.target}} if rule.action.target else {verb: None})
    out: Json = {"family": family, "table": table, "chain": chain, "expr": expr}
    if rule.comment:
        out["comment"] = rule.comment[:120].replace('"', "'")
    return out


def chain_json(chain: Chain, family: str, table: str) -> Json:
    out: Json = {"family": family, "table": table, "name": chain.name}
    if chain.hook is not None:
        out.update(HOOKS[chain.hook])
    return out
