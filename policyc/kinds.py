"""The kinds policyc reads, their model objects, and the key that names one.

A source hands the rule-graph builder either a validated model object (add or
change) or a :class:`Key` (delete): deletes need no made-up object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from policyc.model import ClusterNetworkPolicy, Namespace, NetworkPolicy, Node, Pod

Model = Namespace | Node | Pod | NetworkPolicy | ClusterNetworkPolicy


class Kind(StrEnum):
    """The API ``kind`` of an object policyc reads."""

    NAMESPACE = "Namespace"
    NODE = "Node"
    POD = "Pod"
    NETWORK_POLICY = "NetworkPolicy"
    # policy.networking.k8s.io, all cluster-scoped ("scope=Cluster"); the
    # v1alpha1 kinds are read into the ClusterNetworkPolicy model.
    CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"
    ADMIN_NETWORK_POLICY = "AdminNetworkPolicy"
    BASELINE_ADMIN_NETWORK_POLICY = "BaselineAdminNetworkPolicy"

    @property
    def cluster_policy(self) -> bool:
        """One of the three kinds read into :class:`ClusterNetworkPolicy`."""
        return self in CLUSTER_POLICY_KINDS

    @property
    def namespaced(self) -> bool:
        return self in (Kind.POD, Kind.NETWORK_POLICY)

    @classmethod
    def of(cls, obj: Model) -> Kind:
        """The kind of a model object; TypeError for anything else."""
        if isinstance(obj, ClusterNetworkPolicy):
            return cls(obj.origin.value)
        kind = _KIND_OF_TYPE.get(type(obj))
        if kind is None:
            raise TypeError(f"not a policyc model object: {type(obj).__name__}")
        return kind


CLUSTER_POLICY_KINDS = frozenset(
    {Kind.CLUSTER_NETWORK_POLICY, Kind.ADMIN_NETWORK_POLICY, Kind.BASELINE_ADMIN_NETWORK_POLICY}
)

_KIND_OF_TYPE: dict[type, Kind] = {
    Namespace: Kind.NAMESPACE,
    Node: Kind.NODE,
    Pod: Kind.POD,
    NetworkPolicy: Kind.NETWORK_POLICY,
}


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """One object's identity: ``namespace`` is "" for cluster-scoped kinds."""

    kind: Kind
    namespace: str
    name: str

    @property
    def id(self) -> str:
        """The builder's key: ``namespace/name``, or ``name`` for cluster-scoped kinds."""
        return f"{self.namespace}/{self.name}" if self.kind.namespaced else self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @classmethod
    def of(cls, obj: Model) -> Key:
        """The key of a model object."""
        kind = Kind.of(obj)
        ns = obj.namespace if isinstance(obj, Pod | NetworkPolicy) else ""
        return cls(kind, ns, obj.name)

    @classmethod
    def of_api(cls, kind: Kind, data: Mapping[str, Any]) -> Key:
        """The key of an API object (a dict), read from ``metadata`` alone.

        "Namespace ... An empty namespace is equivalent to the "default"
        namespace" (ObjectMeta.namespace): kubectl puts such objects there.
        """
        meta = data.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        name = str(meta.get("name") or "")
        ns = str(meta.get("namespace") or "default") if kind.namespaced else ""
        return cls(kind, ns, name)
