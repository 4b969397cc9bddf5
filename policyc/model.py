"""The slim, validated model of the cluster objects policyc reads.

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


@dataclass(frozen=True, slots=True)
class Cluster:
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    pods: tuple[Pod, ...] = ()
    nodes: Mapping[str, Node] = field(default_factory=dict)
    policies: tuple[NetworkPolicy, ...] = ()

    def namespace(self, name: str) -> Namespace:
        """Namespaces named by pods but absent from the input still carry the
        label the API server sets on every namespace."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name, (("kubernetes.io/metadata.name", name),))
        return ns
