"""The sets a ClusterNetworkPolicy rule reads, named after their definition.

Kubernetes network-policy-api v1alpha2 (``clusternetworkpolicy_types.go``):

- ``namespaces``: "the set of namespaces from which traffic may come
  [or to which it goes]": every non-host-network pod of a matching namespace;
- ``pods``: "a given set of pod(s) in selected namespace(s)";
- ``networks``: "CIDRs ... cluster-internal traffic will be checked against
  the rule as well", so pod addresses match too: an interval set;
- ``nodes``: "matching on the IPs present in the node.Status.Addresses
  field of the node": the addresses of every matching Node in the cluster
  (not only this node's), kept by the builder on Node events;
- ``destinationNamedPort``: "selects a destination port on a pod based on
  the ContainerPort name", resolved per pod as NetworkPolicy named ports.

"Note that host-networked pods are not included in this type of peer":
``Membership.contribute`` never adds a hostNetwork pod to any set.

Shared addresses get least privilege as in the evaluator: a peer of an
``Accept`` or ``Pass`` rule holds an address only if every claimant matches
(``Claim.EVERY``), a peer of a ``Deny`` rule if any claimant does
(``Claim.ANY``); the claim is part of the definition, so both can coexist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from policyc.intervals import block_ranges
from policyc.ir import Element, Family, SetKind
from policyc.model import (
    Action,
    CNPPeer,
    IPAddress,
    IPBlock,
    IPNetwork,
    NamespacedPods,
    Node,
    Pod,
    PortSpec,
    Protocol,
    ProtocolPort,
    Selector,
    Subject,
)
from policyc.scopeindex import Scope
from policyc.setspecs import (
    Claim,
    SetSpec,
    World,
    named_ports,
    numeric_ports,
    pod_ips,
    spec_name,
)

NsLabels = Mapping[str, str]


def claim_of(action: Action) -> Claim:
    """A Deny matches a shared address if any claimant matches, Accept and Pass
    only if every claimant does (docs/clusternetworkpolicy.md)."""
    return Claim.ANY if action is Action.DENY else Claim.EVERY


def subject_selects(subject: Subject, pod: Pod, ns_labels: NsLabels) -> bool:
    """ "Note that host-networked pods are not included in subject selection"."""
    if pod.host_network:
        return False
    if subject.namespaces is not None:
        return subject.namespaces.matches(ns_labels)
    if subject.pods is not None:
        return subject.pods.namespace_selector.matches(
            ns_labels
        ) and subject.pods.pod_selector.matches(pod.label_map)
    return False


def pod_peers(peers: Iterable[CNPPeer]) -> list[NamespacedPods]:
    """``namespaces`` and ``pods`` peers as (namespace selector, pod selector)."""
    out = []
    for p in peers:
        if p.namespaces is not None:
            out.append(NamespacedPods(p.namespaces, Selector()))
        elif p.pods is not None:
            out.append(p.pods)
    return out


def peer_pods(peers: list[NamespacedPods], family: Family, claim: Claim) -> SetSpec:
    """The pods any of ``peers`` selects (both selectors must match)."""
    text = " | ".join(sorted({f"ns[{p.namespace_selector}] pod[{p.pod_selector}]" for p in peers}))

    def member(pod: Pod, world: World) -> Iterable[Element]:
        ns = world.ns_labels(pod.namespace)
        if any(
            p.namespace_selector.matches(ns) and p.pod_selector.matches(pod.label_map)
            for p in peers
        ):
            return pod_ips(pod, family)
        return ()

    definition = f"cnp-pods {claim} {text}"
    return SetSpec(
        spec_name("cpeer", definition, family),
        SetKind.ADDR,
        family,
        f"pods: {text}",
        definition,
        member,
        scopes=tuple(Scope(p.pod_selector, "", p.namespace_selector) for p in peers),
        claim=claim,
    )


def peer_networks(nets: Iterable[IPNetwork], family: Family) -> SetSpec | None:
    """``networks`` CIDRs of ``family`` as an interval set (None: none of it)."""
    version = 4 if family is Family.V4 else 6
    mine = sorted({n for n in nets if n.version == version}, key=str)
    if not mine:
        return None
    text = " | ".join(str(n) for n in mine)
    definition = f"blocks {text}"  # the same definition as an ipBlock list: one set
    return SetSpec(
        spec_name("net", definition, family),
        SetKind.CIDR,
        family,
        f"networks: {text}",
        definition,
        static=tuple(block_ranges([IPBlock(n) for n in mine], version)),
    )


def node_addresses(
    sels: Iterable[Selector], family: Family, nodes: Iterable[Node]
) -> list[IPAddress]:
    """The ``status.addresses`` of ``family`` of every Node a selector matches."""
    version = 4 if family is Family.V4 else 6
    found: set[IPAddress] = {
        a
        for n in nodes
        if any(s.matches(n.label_map) for s in sels)
        for a in n.addresses
        if a.version == version and not a.is_unspecified
    }
    return list(sorted(found, key=lambda a: (a.version, int(a))))


def peer_nodes(sels: list[Selector], family: Family, nodes: Iterable[Node]) -> SetSpec:
    """A set of Node addresses, keyed by its selectors; its elements are
    static here and refreshed by the builder when a Node changes."""
    text = " | ".join(sorted({str(s) for s in sels}))
    definition = f"nodes {text}"
    return SetSpec(
        spec_name("cnode", definition, family),
        SetKind.ADDR,
        family,
        f"nodes: {text}",
        definition,
        static=tuple(node_addresses(sels, family, nodes)),
    )


def numeric(protos: Iterable[ProtocolPort]) -> SetSpec | None:
    """``tcp``/``udp``/``sctp`` ``destinationPort`` numbers and ranges."""
    specs = [
        PortSpec(pp.protocol, pp.first, pp.last if pp.last != pp.first else None)
        for pp in protos
        if not pp.named and pp.protocol is not None
    ]
    return numeric_ports(specs) if specs else None


def named(protos: Iterable[ProtocolPort], family: Family, claim: Claim) -> SetSpec | None:
    """``destinationNamedPort``: the container port's own protocol applies,
    so the name is looked up under each protocol."""
    names = sorted({pp.named for pp in protos if pp.named})
    if not names:
        return None
    return named_ports([(n, p) for n in names for p in Protocol], family, claim)


__all__ = [
    "claim_of",
    "named",
    "node_addresses",
    "numeric",
    "peer_networks",
    "peer_nodes",
    "peer_pods",
    "subject_selects",
    "pod_peers",
]
