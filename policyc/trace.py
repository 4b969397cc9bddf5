"""Walk one packet through a lowered ``Ruleset``, with no kernel.

``trace(ruleset, packet)`` returns the verdict and every rule the packet
matched on its way (chain, rule index, comment), so tests can prove the
optimised and unoptimised rulesets and the reference evaluator agree, and
``explain`` can show the path.  The model is the one the backends render:

* the bridge ``prerouting`` hook (stateless) when the packet names the bridge
  port it entered from, then the inet ``forward`` hook (stateful), or
  ``input`` for a packet to the node's own addresses when the ruleset has
  an input chain (ClusterNetworkPolicy);
* the packet opens a NEW connection: ``CtEstablished`` never matches, and
  neither do ND, ARP or ICMPv6 matches, since the packet is TCP, UDP or SCTP;
* base chains have ``policy accept`` (``backends/nftables.py`` HOOKS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

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
    Ruleset,
    Verb,
)
from policyc.ir import NODE, Family, SetDef, SetKind
from policyc.model import IPAddress, Protocol

JUMP_STACK = 16  # the kernel's NFT_JUMP_STACK_SIZE (include/net/netfilter/nf_tables.h)


class TraceError(Exception):
    """The ruleset cannot be walked: an unknown match, set or chain, or a loop."""


class Verdict(StrEnum):
    ACCEPT = "accept"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Packet:
    """The first packet of a connection ``src -> dst:dport/protocol``.

    ``iifname``: the bridge port the frame entered from (for the bridge hook's
    anti-spoofing); ``None`` when it did not come from a bridge port.
    """

    src: IPAddress
    dst: IPAddress
    protocol: Protocol
    dport: int
    iifname: str | None = None

    def __post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise ValueError(f"{self.src} and {self.dst} are not of one IP family")
        if not 0 <= self.dport <= 65535:
            raise ValueError(f"port {self.dport} out of range 0-65535")

    @property
    def family(self) -> Family:
        return Family.of(self.src)


@dataclass(frozen=True, slots=True)
class Step:
    """A rule the packet matched; ``index == len(chain.rules)`` is the chain's
    end (base chain: its policy; other chains: an implicit return)."""

    hook: Hook
    chain: str
    index: int
    comment: str
    verb: Verb
    target: str = ""


@dataclass(frozen=True, slots=True)
class Trace:
    verdict: Verdict
    steps: tuple[Step, ...]

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ACCEPT


def _key(field: Field, kind: SetKind, p: Packet) -> object:
    """The packet's key for ``field`` against a set of ``kind``: what
    ``ip saddr @s``, ``meta l4proto . th dport @s`` etc. look up."""
    match field, kind:
        case Field.SADDR | Field.DADDR, SetKind.ADDR | SetKind.CIDR:
            return p.src if field is Field.SADDR else p.dst
        case Field.PROTO_DPORT, SetKind.PORTS:
            return p.protocol, p.dport
        case Field.DADDR_PROTO_DPORT, SetKind.NAMED:
            return p.dst, p.protocol, p.dport
        case Field.IIF, SetKind.IFACE:
            return p.iifname
        case Field.IIF_SADDR | Field.IIF_ARP_SADDR, SetKind.IFACE_ADDR:
            # "arp saddr ip" exists only in ARP frames: no TCP/UDP/SCTP key.
            return (p.iifname, p.src) if field is Field.IIF_SADDR else None
    raise TraceError(f"a {kind} set cannot be looked up with {field}")


def _in_set(m: InSet, sets: Mapping[str, SetDef], p: Packet) -> bool:
    s = sets.get(m.set)
    if s is None:
        raise TraceError(f"rule reads set {m.set!r}, which the ruleset does not define")
    if m.family is not None and s.family is not None and m.family is not s.family:
        raise TraceError(f"set {m.set!r} holds {s.family} keys, the rule looks up {m.family}")
    key = _key(m.field, s.kind, p)
    if key is None:
        return False  # the packet has no such field, negated or not
    if s.kind is SetKind.CIDR:  # "flags interval": first-last address ranges
        a = cast(IPAddress, key)
        ranges = cast(tuple[tuple[IPAddress, IPAddress], ...], s.elements)
        hit = any(lo.version == a.version and int(lo) <= int(a) <= int(hi) for lo, hi in ranges)
    elif s.kind is SetKind.PORTS:  # "meta l4proto . th dport", dport an interval
        proto, port = cast(tuple[Protocol, int], key)
        ports = cast(tuple[tuple[Protocol, int, int], ...], s.elements)
        hit = any(pr == proto and lo <= port <= hi for pr, lo, hi in ports)
    else:
        hit = key in s.elements
    return hit != m.negate


def _vmap(
    key: Field | None, family: Family | None, s: SetDef | None, name: str, p: Packet
) -> str | None:
    """The chain a verdict map sends ``p`` to (``ip saddr vmap @m``), or None."""
    if s is None or s.kind is not SetKind.VMAP or key not in (Field.SADDR, Field.DADDR):
        raise TraceError(f"rule looks up verdict map {name!r}, which is no address map")
    if family is not None and family is not p.family:
        return None
    addr = p.src if key is Field.SADDR else p.dst
    elements = cast(tuple[tuple[IPAddress, str], ...], s.elements)
    return next((chain for a, chain in elements if a == addr), None)


def matches(m: Match, sets: Mapping[str, SetDef], p: Packet) -> bool:
    """Does ``p`` satisfy ``m``?  Raises ``TraceError`` for a match it does not know."""
    if isinstance(m, InSet):
        # "ip saddr" implies "meta nfproto ipv4": a lookup of the other family
        # never matches, negated or not.
        if m.family is not None and m.family is not p.family:
            return False
        return _in_set(m, sets, p)
    if isinstance(m, IfacePrefix):
        return p.iifname is not None and p.iifname.startswith(m.prefix) != m.negate
    if isinstance(m, CtEstablished | NeighbourDiscovery | LinkLocalIcmp6 | ArpProbe):
        return False  # a NEW TCP/UDP/SCTP packet: never a reply, ND, MLD or ARP
    raise TraceError(f"unsupported match {m!r}")


def _walk(hook: Hook, chains: tuple[Chain, ...], sets: Mapping[str, SetDef], p: Packet) -> Trace:
    """Walk one hook's chains as nft(8), VERDICT STATEMENT, says:

    "jump: ... The current position in the ruleset is pushed to a call stack";
    "goto: Similar to jump, but the current position is not pushed to the call
    stack"; "return: ... continue evaluation at the next rule in the last
    chain. If issued in a base chain, it is equivalent to the base chain policy."
    """
    by_name = {c.name: c for c in chains}
    base = [c for c in chains if c.hook is hook]
    if len(base) != 1:
        raise TraceError(f"{len(base)} base chains for hook {hook}, expected 1")
    steps: list[Step] = []
    stack: list[tuple[Chain, int]] = []
    chain, i = base[0], 0
    budget = 1 + JUMP_STACK * sum(len(c.rules) + 1 for c in chains)
    while (budget := budget - 1) > 0:
        if i == len(chain.rules):
            # A base chain's end applies its policy; another chain's returns.
            verb = Verb.RETURN if stack else Verb.ACCEPT
            steps.append(Step(hook, chain.name, i, "end of chain", verb))
            if not stack:
                return Trace(Verdict.ACCEPT, tuple(steps))
            chain, i = stack.pop()
            continue
        rule = chain.rules[i]
        # Every match is evaluated: an unknown one raises even after a miss.
        if not all([matches(m, sets, p) for m in rule.matches]):
            i += 1
            continue
        verb, target = rule.action.verb, rule.action.target
        if verb is Verb.VMAP:
            hit = _vmap(rule.action.key, rule.action.family, sets.get(target), target, p)
            if hit is None:  # nft(8): no element, no verdict: the next rule
                i += 1
                continue
            verb, target = Verb.GOTO, hit
        steps.append(Step(hook, chain.name, i, rule.comment, verb, target))
        if verb in (Verb.ACCEPT, Verb.DROP):
            return Trace(Verdict(verb.value), tuple(steps))
        if verb is Verb.RETURN:
            if not stack:  # "return" from the base chain: its policy
                return Trace(Verdict.ACCEPT, tuple(steps))
            chain, i = stack.pop()
            continue
        if target not in by_name:
            raise TraceError(f"{chain.name}[{i}] {verb} to unknown chain {target!r}")
        if verb is Verb.JUMP:
            if len(stack) == JUMP_STACK:
                raise TraceError(f"jump stack deeper than {JUMP_STACK} at {chain.name}[{i}]")
            stack.append((chain, i + 1))
        chain, i = by_name[target], 0
    raise TraceError(f"loop in the {hook} chains: the walk never ends")


def trace(ruleset: Ruleset, packet: Packet) -> Trace:
    """The verdict of ``ruleset`` on ``packet`` and the rules it matched.

    The bridge hook runs first (only for a frame from a bridge port); a drop
    there ends the walk.  Raises ``TraceError`` for what it cannot model.
    """
    steps: tuple[Step, ...] = ()
    if packet.iifname is not None:
        sets = {s.name: s for s in ruleset.bridge_sets}
        bridged = _walk(Hook.BRIDGE_PREROUTING, ruleset.bridge, sets, packet)
        if not bridged.allowed:
            return bridged
        steps = bridged.steps
    sets = {s.name: s for s in ruleset.sets}
    hook = Hook.INPUT if _to_node(ruleset, sets, packet) else Hook.FORWARD
    fwd = _walk(hook, ruleset.forward, sets, packet)
    return Trace(fwd.verdict, steps + fwd.steps)


def _to_node(ruleset: Ruleset, sets: Mapping[str, SetDef], p: Packet) -> bool:
    """Is ``p`` for this node (its addresses and bridge gateways: the
    ``node`` set), so it takes the ``input`` hook?  Only when the ruleset
    has an input chain (ClusterNetworkPolicy in force); without one the
    packet is walked through ``forward``, which accepts it as node traffic."""
    if not any(c.hook is Hook.INPUT for c in ruleset.forward):
        return False
    node = sets.get(NODE + p.family.suffix)
    return node is not None and p.dst in node.elements
