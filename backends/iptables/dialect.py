"""The iptables dialect: lowered matches and actions as iptables tokens.

Only matches and actions are translated; the chains, their order and their
verdicts are the lowered ruleset's (docs/iptables.md):

* the forward chains live in ``filter`` and are entered from ``FORWARD``;
* the bridge anti-spoofing chain lives in ``raw`` and is entered from
  ``PREROUTING``, where br_netfilter shows IPv4/IPv6 frames from a bridge
  port with ``-m physdev`` before conntrack, routing or local delivery;
* ``accept`` in a hooked chain becomes ``RETURN``: like an nft base chain's
  accept, it ends policyc's verdict and lets other components' rules run;
* rules for ARP are listed as comments: iptables never sees ARP; the bridge
  chain is rendered for ebtables too (``backends.iptables.ebtables``), which drops
  spoofed ARP, other ethertypes and frames from unknown pod ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from backends.iptables.ipset import set_name
from backends.iptables.state import CHAIN_PREFIX
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
    Verb,
)
from policyc.errors import BackendError
from policyc.ir import PROTO_NAMES, Family, SetDef

FAMILIES = (Family.V4, Family.V6)
MAX_CHAIN = 28
TOOL = {Family.V4: "iptables", Family.V6: "ip6tables"}
# hook -> (table, builtin chain, policyc chain entered from it)
HOOKS = {
    Hook.FORWARD: ("filter", "FORWARD", CHAIN_PREFIX + "FORWARD"),
    Hook.INPUT: ("filter", "INPUT", CHAIN_PREFIX + "INPUT"),
    Hook.BRIDGE_PREROUTING: ("raw", "PREROUTING", CHAIN_PREFIX + "ANTISPOOF"),
}
TABLE_ORDER = ("raw", "filter")
ND_TYPES = ("135", "136")  # neighbour solicitation, advertisement
LINK_LOCAL_TYPES = ("135", "136", "133", "131", "143")  # + router solicitation, MLD reports
LINK_LOCAL_SOURCES = ("::/128", "fe80::/10")
MULTIPORT_MAX = 15  # a range counts twice
ARP = "arp"

MAX_COMMENT = 200


def chain_name(chain: Chain) -> str:
    if chain.hook is not None:
        return HOOKS[chain.hook][2]
    name = CHAIN_PREFIX + chain.name.upper().replace("_", "-")
    if len(name) > MAX_CHAIN or not re.fullmatch(r"[A-Z0-9-]+", name[len(CHAIN_PREFIX) :]):
        raise BackendError(f"Unsupported chain name for iptables: {chain.name!r}")
    return name


def rule_family(rule: Rule) -> Family | str | None:
    """The one family a rule can match (None: both), or ``"arp"``."""
    fams: set[Family | str] = set()
    for m in rule.matches:
        if isinstance(m, InSet) and m.field is Field.IIF_ARP_SADDR or isinstance(m, ArpProbe):
            fams.add(ARP)
        elif isinstance(m, InSet) and m.family is not None:
            fams.add(m.family)
        elif isinstance(m, NeighbourDiscovery | LinkLocalIcmp6):
            fams.add(Family.V6)
    if ARP in fams:
        return ARP
    if len(fams) > 1:
        raise BackendError(f"rule mixes address families: {rule!r}")
    return fams.pop() if fams else None


@dataclass(frozen=True, slots=True)
class Ctx:
    """What match rendering needs: the family and the IR sets by name."""

    family: Family
    sets: dict[str, SetDef]


def _set_match(ctx: Ctx, m: InSet, dirs: str) -> str:
    s = ctx.sets.get(m.set)
    if s is None:
        raise BackendError(f"rule refers to an unknown set {m.set!r}")
    name = set_name(s.name, ctx.family if s.family is None else None)
    return f"-m set {'! ' if m.negate else ''}--match-set {name} {dirs}"


def _multiport(ctx: Ctx, m: InSet) -> list[str]:
    """A PORTS set (proto, lo, hi) as one ``-p P -m multiport`` variant per
    protocol and chunk of at most 15 ports."""
    if m.negate:
        raise BackendError("Unsupported for iptables: a negated port set")
    by_proto: dict[str, list[str]] = {}
    for e in ctx.sets[m.set].elements:
        assert isinstance(e, tuple)
        proto, lo, hi = e
        by_proto.setdefault(PROTO_NAMES[proto], []).append(str(lo) if lo == hi else f"{lo}:{hi}")
    out = []
    for proto, ports in by_proto.items():
        if "0:65535" in ports:
            out.append(f"-p {proto}")
            continue
        chunks: list[list[str]] = [[]]
        for p in ports:
            if sum(1 + (":" in q) for q in chunks[-1]) + 1 + (":" in p) > MULTIPORT_MAX:
                chunks.append([])
            chunks[-1].append(p)
        for chunk in chunks:
            if len(chunk) == 1:
                out.append(f"-p {proto} --dport {chunk[0]}")
            else:
                out.append(f"-p {proto} -m multiport --dports {','.join(chunk)}")
    return out


def _port_variants(ctx: Ctx, m: InSet) -> list[str]:
    """A set keyed on the bridge port, one variant per member.

    The set match cannot look at the bridge port: the kernel reads the
    ``physdev`` flag of hash:net,iface from the match, and iptables' set match
    has no option for it.  So these sets become ``-m physdev`` rules, one per
    local pod port and address: they grow with the pods of this node only.
    """
    if m.negate:
        raise BackendError("Unsupported for iptables: a negated bridge-port set")
    s = ctx.sets.get(m.set)
    if s is None:
        raise BackendError(f"rule refers to an unknown set {m.set!r}")
    out = []
    for e in s.elements:
        if m.field is Field.IIF:
            out.append(f"-m physdev --physdev-in {e}")
            continue
        assert isinstance(e, tuple)
        iface, ip = e
        if Family.of(ip) is ctx.family:
            host = "/32" if ctx.family is Family.V4 else "/128"
            out.append(f"-s {ip}{host} -m physdev --physdev-in {iface}")
    return out


def match_variants(ctx: Ctx, m: Match) -> list[str]:
    """iptables arguments for a match; several strings mean "any of them"."""
    if isinstance(m, InSet):
        if m.field is Field.PROTO_DPORT:
            return _multiport(ctx, m)
        if m.field in (Field.IIF, Field.IIF_SADDR):
            return _port_variants(ctx, m)
        dirs = {
            Field.SADDR: "src",
            Field.DADDR: "dst",
            Field.DADDR_PROTO_DPORT: "dst,dst",
        }.get(m.field)
        if dirs is None:
            raise BackendError(f"Unsupported match for iptables: {m!r}")
        return [_set_match(ctx, m, dirs)]
    if isinstance(m, CtEstablished):
        return ["-m conntrack --ctstate RELATED,ESTABLISHED"]
    if isinstance(m, NeighbourDiscovery):
        return [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t}" for t in ND_TYPES]
    if isinstance(m, IfacePrefix):
        return [f"-m physdev {'! ' if m.negate else ''}--physdev-in {m.prefix}+"]
    if isinstance(m, LinkLocalIcmp6):
        return [
            f"-s {src} -p ipv6-icmp -m icmp6 --icmpv6-type {t}"
            for src in LINK_LOCAL_SOURCES
            for t in LINK_LOCAL_TYPES
        ]
    raise BackendError(f"Unsupported match for iptables: {m!r}")


def comment_text(text: str) -> str:
    """A comment as the comment match keeps it: printable ASCII only (no
    quote, backslash or control character), at most 200 bytes, well within
    the match's 255 and every restore tool's line limit."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return safe.replace('"', "'").replace("\\", "/")[:MAX_COMMENT]


def render_action(chain: Chain, rule: Rule) -> tuple[str, str]:
    verb, target = rule.action.verb, rule.action.target
    if verb is Verb.ACCEPT:
        if chain.hook is None:
            raise BackendError(f"Unsupported for iptables: accept in non-hook chain {chain.name}")
        return ("-j", "RETURN")  # end policyc's verdict, let other components' rules run
    if verb in (Verb.JUMP, Verb.GOTO):
        flag = "-j" if verb is Verb.JUMP else "-g"
        return (flag, chain_name(Chain(target, ())))
    return {Verb.DROP: ("-j", "DROP"), Verb.RETURN: ("-j", "RETURN")}[verb]


def rule_variants(ctx: Ctx, rule: Rule) -> list[tuple[str, ...]]:
    """One lowered rule's match tokens, one tuple per iptables rule (the
    product of its matches' variants; none: an empty per-port set)."""
    variants: list[tuple[str, ...]] = [()]
    for m in rule.matches:
        variants = [v + tuple(alt.split()) for v in variants for alt in match_variants(ctx, m)]
    if rule.comment:
        tail = ("-m", "comment", "--comment", comment_text(rule.comment))
        variants = [v + tail for v in variants]
    return variants


def map_targets(ctx: Ctx, rule: Rule) -> list[str]:
    """The group chains a VMAP rule's map sends to, sorted ([] for another
    family's map)."""
    if rule.action.family not in (None, ctx.family):
        return []
    s = ctx.sets.get(rule.action.target)
    if s is None:
        raise BackendError(f"rule looks up an unknown map {rule.action.target!r}")
    return sorted({e[1] for e in s.elements})  # type: ignore[index]


def map_rules(ctx: Ctx, rule: Rule) -> list[tuple[tuple[str, ...], tuple[str, str]]]:
    """A VMAP rule as one ``-m set --match-set <group> src -g <group chain>``
    per group: iptables has no verdict map, so the dispatch costs one set
    lookup per group of the node (never per policy)."""
    dirs = {Field.SADDR: "src", Field.DADDR: "dst"}.get(rule.action.key or Field.IIF)
    if dirs is None:
        raise BackendError(f"Unsupported verdict map key for iptables: {rule.action.key}")
    tail = ("-m", "comment", "--comment", comment_text(rule.comment)) if rule.comment else ()
    return [
        (("-m", "set", "--match-set", set_name(c), dirs, *tail), ("-g", chain_name(Chain(c, ()))))
        for c in map_targets(ctx, rule)
    ]


def _targets(ctx: Ctx, chain: Chain) -> Iterable[str]:
    for r in chain.rules:
        if r.action.verb is Verb.VMAP:
            yield from map_targets(ctx, r)
        elif r.action.verb in (Verb.JUMP, Verb.GOTO) and rule_family(r) in (None, ctx.family):
            yield r.action.target


def reachable(chains: tuple[Chain, ...], ctx: Ctx) -> list[Chain]:
    """The chains a family's hooks can reach, in the ruleset's order."""
    by_name = {c.name: c for c in chains}
    seen: set[str] = set()
    todo = [c.name for c in chains if c.hook is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in by_name:
            raise BackendError(f"jump to an unknown chain {name!r}")
        seen.add(name)
        todo.extend(_targets(ctx, by_name[name]))
    return [c for c in chains if c.name in seen]
