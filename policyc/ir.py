"""The rule graph: local endpoints -> policies that select them -> rules ->
peer sets and port sets.

Every set is named after its *definition* (a selector and its namespace
scope, a list of ipBlocks, a list of ports), never after its members, so a
pod that comes or goes changes set elements and never a rule or a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address

from policyc.model import Action, Direction, IPAddress, Protocol


class Family(StrEnum):
    V4 = "ip"
    V6 = "ip6"

    @property
    def suffix(self) -> str:
        return "4" if self is Family.V4 else "6"

    @classmethod
    def of(cls, addr: IPAddress) -> Family:
        return cls.V4 if addr.version == 4 else cls.V6


class SetKind(StrEnum):
    ADDR = "addr"  # single addresses (pods)
    CIDR = "cidr"  # address intervals (ipBlocks minus except, node addresses)
    PORTS = "ports"  # protocol . port interval
    NAMED = "named"  # address . protocol . port (resolved named ports)
    IFACE_ADDR = "iface_addr"  # pod interface . address (anti-spoofing)
    IFACE = "iface"  # pod interfaces
    VMAP = "vmap"  # address -> the group chain that decides for it (dispatch)
    NET_PORTS = "net_ports"  # peer address interval . protocol . port interval


# Element shapes, by kind:
#   ADDR: IPAddress; CIDR: (first, last); PORTS: (Protocol, lo, hi);
#   NAMED: (IPAddress, Protocol, port); IFACE_ADDR: (iface, IPAddress); IFACE: iface;
#   VMAP: (IPAddress, chain name) -- a verdict map: the address goes to that chain
#   NET_PORTS: (first, last, Protocol, lo, hi) -- disjoint boxes (passes.concat_lookups)
Element = object


@dataclass(frozen=True, slots=True)
class SetDef:
    """A named set.  ``definition`` is the builder's canonical text of what
    decides membership (``setspecs.SetSpec.canonical``): two sets with equal
    kind, family and definition hold equal elements after every event, so
    ``passes.hash_cons_sets`` may give them one name.  Empty: unknown (sets
    made by hand or by a pass), never merged on it."""

    name: str
    kind: SetKind
    family: Family | None
    elements: tuple[Element, ...]
    comment: str = ""
    definition: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A local pod: its interface carries its addresses and nothing else."""

    namespace: str
    name: str
    iface: str
    ips: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class RuleNode:
    """One ingress/egress rule of one policy, for one address family.

    ``peer_sets`` lists the sets any of which the peer address must be in;
    ``None`` means every peer.  ``port_sets`` likewise for destination ports:
    PORTS sets match ``proto . dport``, NAMED sets ``daddr . proto . dport``.
    """

    policy: str
    direction: Direction
    index: int
    family: Family
    peer_sets: tuple[str, ...] | None
    port_sets: tuple[str, ...] | None
    # A rule a pass made from several (``passes.concat_lookups``): its label.
    note: str = ""
    # A ClusterNetworkPolicy rule's action; None for a NetworkPolicy rule
    # (which only allows).
    action: Action | None = None

    @property
    def label(self) -> str:
        if self.note:
            return self.note
        word = "ingress" if self.direction is Direction.INGRESS else "egress"
        return f"{self.policy} {word}[{self.index}]"


@dataclass(frozen=True, slots=True)
class PolicyNode:
    """A policy's effect in one direction and family on the local pods in ``selected``."""

    policy: str
    direction: Direction
    family: Family
    selected: str
    rules: tuple[RuleNode, ...]
    # ``policyc.io/mode: audit``: its rules never allow and it isolates no
    # pod; only an audit-only pod's log chain reads them (docs/observability.md).
    audit: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """The local pods of one direction and family that exactly ``policies``
    (keys ``namespace/name``, sorted) select: they share the chain ``name``,
    which the dispatch map (``DISPATCH_MAP``) sends their addresses to.  The
    name is a hash of (direction, policies), so it is stable across events."""

    name: str
    direction: Direction
    family: Family
    policies: tuple[str, ...]
    # Another group whose chain holds the same rules (``passes.share_chains``):
    # this group's chain is then one ``goto`` to it.
    alias: str = ""
    # Only audit-mode policies select these pods: the chain logs what they
    # would drop and drops nothing (docs/observability.md, "Audit mode").
    audit: bool = False
    # The NetworkPolicy section's rules when a pass merged them
    # (``passes.concat_lookups``); None: its policies' rules, in order.
    rules: tuple[RuleNode, ...] | None = None
    # The ClusterNetworkPolicies (``Kind name``) whose subject selects the
    # pods and that have rules for ``direction``, Admin and Baseline tier,
    # each in evaluation order (``ClusterNetworkPolicy.order``).
    admin: tuple[str, ...] = ()
    baseline: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleGraph:
    node: str
    endpoints: tuple[Endpoint, ...]
    policies: tuple[PolicyNode, ...]
    sets: tuple[SetDef, ...]
    groups: tuple[Group, ...] = ()  # the groups some local pod is in, by name
    # Some address has more than one live claimant: the lowering adds the
    # shared-address chains, which read the policies' selected sets.
    shared: bool = False
    # The ClusterNetworkPolicy rules, one node per (policy, direction,
    # family), ``selected`` empty: groups name them (``Group.admin``,
    # ``Group.baseline``) and the lowering keeps their order.  Passes that
    # rewrite rules leave them alone; those that rename sets rename here too.
    tiers: tuple[PolicyNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in the rule graph since the builder last said.

    ``rules``: policies changed, so chains and the list of sets may differ.
    ``dirty``: sets whose elements changed in any way; ``reset``: sets created,
    deleted or rebuilt whole (their per-element deltas are not kept);
    ``added``/``removed``: per set, the elements that became or stopped being
    members (only for dirty sets not in ``reset``).
    """

    rules: bool = False
    dirty: frozenset[str] = frozenset()
    reset: frozenset[str] = frozenset()
    added: Mapping[str, frozenset[Element]] = field(default_factory=dict)
    removed: Mapping[str, frozenset[Element]] = field(default_factory=dict)


# Well-known set names (per family suffix 4/6 where relevant).
NODE = "node"  # the node's own addresses and bridge gateways
ISOLATED = {Direction.INGRESS: "iso_in", Direction.EGRESS: "iso_eg"}
# The dispatch verdict maps (VMAP): pod address -> its group chain.
DISPATCH_MAP = {Direction.INGRESS: "disp_in", Direction.EGRESS: "disp_eg"}
GROUP_PREFIX = {Direction.INGRESS: "in", Direction.EGRESS: "eg"}
IFACE_ADDR = "spoof"  # pod interface . pod address
IFACES = "ifaces"  # every known pod interface

PROTO_NAMES = {Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.SCTP: "sctp"}


def sort_key(elem: object) -> tuple[object, ...]:
    """Elements in a stable order: strings (interface names, protocols) by
    text, addresses by family then value, numbers (ports) by value; tuples
    (concatenations) part by part.  Called once per element of every set
    written, so the common types are tested first and by identity."""
    t = type(elem)
    if t is IPv4Address:
        return (4, elem._ip)  # type: ignore[attr-defined]
    if t is tuple:
        return tuple(map(sort_key, elem))  # type: ignore[call-overload]
    if t is str or isinstance(elem, str):
        return (0, elem)
    return (getattr(elem, "version", 0), int(elem))  # type: ignore[call-overload]
