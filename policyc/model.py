"""The slim, validated model of the cluster objects policyc reads
(NetworkPolicy and ClusterNetworkPolicy included).

Only the fields that decide reachability are kept.  Everything is frozen and
hashable so that the compiler can key caches and sets on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Labels = tuple[tuple[str, str], ...]


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class PolicyMode(StrEnum):
    """``metadata.annotations["policyc.io/mode"]`` of a policy (docs/observability.md)."""

    ENFORCE = "enforce"
    AUDIT = "audit"  # log what it would drop, drop nothing because of it


MODE_ANNOTATION = "policyc.io/mode"


class Op(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # "In: the label's value is in the set"; "NotIn: the key is absent or
        # its value is not in the set" (apimachinery labels.Requirement.Matches).
        if self.op is Op.IN:
            return labels.get(self.key) in self.values
        if self.op is Op.NOT_IN:
            return labels.get(self.key) not in self.values
        if self.op is Op.EXISTS:
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class Selector:
    """A label selector; the requirements are ANDed.  Empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        if not self.requirements:
            return "{}"
        parts = []
        for r in self.requirements:
            if r.op is Op.EXISTS:
                parts.append(r.key)
            elif r.op is Op.DOES_NOT_EXIST:
                parts.append("!" + r.key)
            else:
                word = "in" if r.op is Op.IN else "notin"
                parts.append(f"{r.key} {word} ({','.join(r.values)})")
        return ",".join(parts)


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, addr: IPAddress) -> bool:
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr in e for e in self.excepts)


@dataclass(frozen=True, slots=True)
class Peer:
    """One element of ``from``/``to``.  Exactly one of ip_block or a selector is set."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True, slots=True)
class PortSpec:
    protocol: Protocol = Protocol.TCP
    port: int | str | None = None  # None: all ports of the protocol
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    # "If this field is empty or missing, this rule matches all sources"
    # (and likewise for ports): both cases are ``None``.
    peers: tuple[Peer, ...] | None = None
    ports: tuple[PortSpec, ...] | None = None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: Selector
    policy_types: frozenset[Direction]
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()
    mode: PolicyMode = PolicyMode.ENFORCE

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def audit(self) -> bool:
        return self.mode is PolicyMode.AUDIT

    def rules(self, direction: Direction) -> tuple[PolicyRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: Protocol


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: Labels = ()
    node_name: str = ""
    ips: tuple[IPAddress, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False
    # The labels as a dict, built once: selectors read them per set.
    _label_map: dict[str, str] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_label_map", dict(self.labels))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label_map(self) -> dict[str, str]:
        return self._label_map


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels = ()

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    addresses: tuple[IPAddress, ...] = ()
    pod_cidrs: tuple[IPNetwork, ...] = ()
    # Read by ClusterNetworkPolicy ``nodes`` peers: "a way to select a set of
    # nodes in the cluster (based on the node's labels)".
    labels: Labels = ()

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


# -- ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) ---------------
# v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy objects are read
# into the same model (policyc.parse_anp); ``origin`` keeps the kind they were
# written as.  The quoted lines are from the API types of
# kubernetes-sigs/network-policy-api, bundle v0.2.0
# (apis/v1alpha2/clusternetworkpolicy_types.go).


class Tier(StrEnum):
    """ "Policy tiers are evaluated in the following order: Admin tier,
    NetworkPolicy tier, Baseline tier"."""

    ADMIN = "Admin"
    BASELINE = "Baseline"


class Action(StrEnum):
    """``Accept`` and ``Deny`` are final; "Pass: Skips all further
    ClusterNetworkPolicy rules in the current tier for the selected traffic,
    and passes evaluation to the next tier"."""

    ACCEPT = "Accept"
    DENY = "Deny"
    PASS = "Pass"


class Origin(StrEnum):
    """The kind an object was written as (its API ``kind``)."""

    CNP = "ClusterNetworkPolicy"
    ANP = "AdminNetworkPolicy"
    BANP = "BaselineAdminNetworkPolicy"


@dataclass(frozen=True, slots=True)
class NamespacedPods:
    """ "NamespacedPod allows the user to select a given set of pod(s) in
    selected namespace(s)": both selectors must match."""

    namespace_selector: Selector
    pod_selector: Selector


@dataclass(frozen=True, slots=True)
class Subject:
    """ "Exactly one field must be set.  Note that host-networked pods are not
    included in subject selection."  ``pods`` is None when ``namespaces`` is set."""

    namespaces: Selector | None = None
    pods: NamespacedPods | None = None


@dataclass(frozen=True, slots=True)
class CNPPeer:
    """One element of ``from``/``to``: exactly one field is set (``networks``
    counts as set when non-empty).  ``nodes`` and ``networks`` are egress only."""

    namespaces: Selector | None = None
    pods: NamespacedPods | None = None
    nodes: Selector | None = None
    networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class ProtocolPort:
    """One element of ``protocols``.

    ``protocol`` and the inclusive range ``first``..``last`` for ``tcp``,
    ``udp`` or ``sctp`` (``destinationPort.number`` gives first == last;
    a v1alpha1 port with no number never occurs: its schema requires one).
    ``named`` for ``destinationNamedPort``: "selects a destination port on a
    pod based on the ContainerPort name"; then ``protocol`` is None and the
    container port's own protocol applies.
    """

    protocol: Protocol | None
    first: int = 0
    last: int = 0
    named: str = ""

    def matches(self, proto: Protocol, port: int, dst: Pod | None) -> bool:
        """Does a packet to ``port``/``proto`` of ``dst`` (None: no pod) match?"""
        if self.named:
            if dst is None:
                return False
            return any(
                cp.name == self.named and cp.protocol == proto and cp.port == port
                for cp in dst.ports
            )
        return self.protocol == proto and self.first <= port <= self.last

    def __str__(self) -> str:
        if self.named:
            return f"port {self.named}"
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.protocol}/{span}"


@dataclass(frozen=True, slots=True)
class CNPRule:
    """One ingress or egress rule.  ``protocols`` None: "If unspecified,
    protocol-specific attributes will not be used to match traffic"."""

    name: str
    action: Action
    peers: tuple[CNPPeer, ...]
    protocols: tuple[ProtocolPort, ...] | None = None


@dataclass(frozen=True, slots=True)
class ClusterNetworkPolicy:
    """A validated ClusterNetworkPolicy (or a converted v1alpha1 object).

    ``priority`` is 0..1000: "Policies with lower priority values have higher
    precedence".  Rules keep their written order: "a rule that appears at the
    top of the ingress rules would take the highest precedence".
    """

    name: str
    tier: Tier
    priority: int
    subject: Subject
    ingress: tuple[CNPRule, ...] = ()
    egress: tuple[CNPRule, ...] = ()
    origin: Origin = Origin.CNP
    # ``policyc.io/mode: audit``: its Deny rules log "would drop" and drop
    # nothing; its Accept and Pass decide nothing (docs/observability.md).
    mode: PolicyMode = PolicyMode.ENFORCE

    @property
    def audit(self) -> bool:
        return self.mode is PolicyMode.AUDIT

    @property
    def key(self) -> str:
        """``Kind name``: the object's identity (cluster-scoped, per kind)."""
        return f"{self.origin} {self.name}"

    @property
    def order(self) -> tuple[int, str, str]:
        """The evaluation order inside a tier: ascending priority, then, for
        equal priorities (left undefined upstream), the name in code-point
        order, then the origin kind (docs/clusternetworkpolicy.md)."""
        return (self.priority, self.name, str(self.origin))

    def rule_label(self, direction: str, index: int) -> str:
        """``ingress[2] "name"``: how explain names a rule."""
        rules = self.ingress if direction == "ingress" else self.egress
        name = rules[index].name
        return f'{direction}[{index}] "{name}"' if name else f"{direction}[{index}]"


def contains_any(networks: tuple[IPNetwork, ...], ip: IPAddress) -> bool:
    """Does one of ``networks`` hold ``ip``?  ("cluster-internal traffic will
    be checked against the rule as well": pod addresses match too.)"""
    return any(ip.version == n.version and ip in n for n in networks)


@dataclass(frozen=True, slots=True)
class Cluster:
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    pods: tuple[Pod, ...] = ()
    nodes: Mapping[str, Node] = field(default_factory=dict)
    policies: tuple[NetworkPolicy, ...] = ()
    # ClusterNetworkPolicies (and converted v1alpha1 objects), in tier order
    # (:attr:`ClusterNetworkPolicy.order`).
    cluster_policies: tuple[ClusterNetworkPolicy, ...] = ()

    def namespace(self, name: str) -> Namespace:
        """Namespaces named by pods but absent from the input still carry the
        label the API server sets on every namespace."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name, (("kubernetes.io/metadata.name", name),))
        return ns
