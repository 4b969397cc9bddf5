"""The backend-neutral lowered layer: chains of rules with typed matches.

Policy semantics live above this layer (compiler, lower); a backend only
renders these values (Felix's generictables idea).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policyc.ir import Family, SetDef


class Field(StrEnum):
    """What a set lookup is keyed on."""

    SADDR = "saddr"
    DADDR = "daddr"
    PROTO_DPORT = "proto.dport"
    DADDR_PROTO_DPORT = "daddr.proto.dport"
    IIF = "iif"  # the bridge port a frame entered from
    IIF_SADDR = "iif.saddr"
    IIF_ARP_SADDR = "iif.arp_saddr"


class Hook(StrEnum):
    FORWARD = "forward"  # stateful, inet: bridged (br_netfilter) and routed
    INPUT = "input"  # stateful, inet: to the node's own addresses
    BRIDGE_PREROUTING = "bridge-prerouting"  # stateless, per bridge port


@dataclass(frozen=True, slots=True)
class InSet:
    field: Field
    set: str
    family: Family | None
    negate: bool = False


@dataclass(frozen=True, slots=True)
class CtEstablished:
    """Replies and related packets of flows already allowed."""


@dataclass(frozen=True, slots=True)
class NeighbourDiscovery:
    """ICMPv6 neighbour solicitations and advertisements, which pods on one
    bridge exchange directly and which conntrack does not relate to a flow."""


@dataclass(frozen=True, slots=True)
class IfacePrefix:
    """The frame entered from a port whose name starts with ``prefix``."""

    prefix: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class LinkLocalIcmp6:
    """ICMPv6 neighbour solicitation/advertisement, router solicitation and MLD
    reports from the unspecified or a link-local source (ND, DAD, MLD).
    Router advertisements and redirects from pods stay dropped."""


@dataclass(frozen=True, slots=True)
class ArpProbe:
    """ARP with sender address 0.0.0.0 (RFC 5227 probes)."""


Match = InSet | CtEstablished | NeighbourDiscovery | IfacePrefix | LinkLocalIcmp6 | ArpProbe


class Verb(StrEnum):
    ACCEPT = "accept"
    DROP = "drop"
    RETURN = "return"
    JUMP = "jump"
    GOTO = "goto"
    # nft(8) "VERDICT MAP": look the key up in the map ``target``; a hit is the
    # element's verdict (``goto <group chain>``), a miss goes on to the next rule.
    VMAP = "vmap"


@dataclass(frozen=True, slots=True)
class Action:
    """``target``: a chain (JUMP, GOTO) or a verdict map (VMAP).  ``key`` and
    ``family``: what a VMAP looks up (``ip saddr vmap @disp_eg4``)."""

    verb: Verb
    target: str = ""
    key: Field | None = None
    family: Family | None = None


ACCEPT = Action(Verb.ACCEPT)
DROP = Action(Verb.DROP)
RETURN = Action(Verb.RETURN)


@dataclass(frozen=True, slots=True)
class Rule:
    matches: tuple[Match, ...]
    action: Action
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    hook: Hook | None = None


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Everything one node needs: chains for each hook and the sets they use."""

    forward: tuple[Chain, ...]
    bridge: tuple[Chain, ...]
    sets: tuple[SetDef, ...]  # forward-path sets (inet)
    bridge_sets: tuple[SetDef, ...]
