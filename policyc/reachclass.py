"""Classes of interchangeable pods, so ``policyc diff`` evaluates one pair per
pair of classes instead of every pod pair (1,000 pods: a million pairs).

Two pods are interchangeable when, in both versions, every input of the
reference evaluator reads them alike: namespace (and so its labels), pod
labels, containerPorts, the IP families they hold, and for each of
their addresses which ipBlocks (with their excepts) of either version's
policies contain it.  A pod holding an address that another pod shares or
that is a node's address (loopback, least privilege and the node exemption
read the address itself) is a class of its own.  Pairs of classes in which
neither the source's egress nor the destination's ingress can differ between
the versions are not evaluated at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from policyc.evaluate import claimants_by_address
from policyc.model import Cluster, Direction, IPAddress, IPBlock, NetworkPolicy, Pod


def _blocks(clusters: Iterable[Cluster]) -> tuple[IPBlock, ...]:
    """Every ipBlock, and every ClusterNetworkPolicy ``networks`` CIDR (as a
    block without excepts), of ``clusters``."""
    found: dict[IPBlock, None] = {}
    for cluster in clusters:
        for pol in cluster.policies:
            for rule in pol.ingress + pol.egress:
                for peer in rule.peers or ():
                    if peer.ip_block is not None:
                        found[peer.ip_block] = None
        for cnp in cluster.cluster_policies:
            for cnp_rule in cnp.ingress + cnp.egress:
                for cnp_peer in cnp_rule.peers:
                    found.update((IPBlock(net), None) for net in cnp_peer.networks)
    return tuple(found)


def _special(cluster: Cluster) -> set[IPAddress]:
    """Addresses read for themselves: shared by several pods, or a node's."""
    out = {ip for ip, pods in claimants_by_address(cluster.pods).items() if len(pods) > 1}
    for node in cluster.nodes.values():
        out.update(node.addresses)
        out.update(cidr.network_address + 1 for cidr in node.pod_cidrs)
    return out


def _shape(pod: Pod, blocks: tuple[IPBlock, ...]) -> tuple[object, ...]:
    ips = sorted(pod.ips, key=lambda a: (a.version, int(a)))
    inside = tuple(tuple(b.contains(ip) for b in blocks) for ip in ips)
    families = tuple(ip.version for ip in ips)
    # The node is left out: the evaluator reads it only for shared addresses
    # (grouped per node) and node addresses, whose pods are classes of their own.
    return (pod.namespace, pod.labels, pod.ports, families, inside)


def pod_classes(old: Cluster, new: Cluster, keys: Iterable[str]) -> list[tuple[str, ...]]:
    """The pods ``keys`` (present in both) in classes, each sorted, in order."""
    blocks = _blocks((old, new))
    po = {p.key: p for p in old.pods}
    pn = {p.key: p for p in new.pods}
    special = _special(old) | _special(new)
    classes: dict[tuple[object, ...], list[str]] = {}
    for key in sorted(keys):
        a, b = po[key], pn[key]
        shape: tuple[object, ...] = (_shape(a, blocks), _shape(b, blocks))
        if special.intersection(a.ips + b.ips):
            shape = ("alone", key)
        classes.setdefault(shape, []).append(key)
    return [tuple(c) for c in classes.values()]


def _selecting(cluster: Cluster, pod: Pod, direction: Direction) -> list[NetworkPolicy]:
    return [
        pol
        for pol in cluster.policies
        if pol.namespace == pod.namespace
        and direction in pol.policy_types
        and pol.pod_selector.matches(pod.label_map)
    ]


def _dirty(
    old: Cluster, new: Cluster, key: str, direction: Direction, special: set[IPAddress]
) -> bool:
    """Can the verdicts of ``key``'s side in ``direction`` differ?  Only if
    the pod (labels, ports, addresses, node), its namespace's labels or the
    policies of that direction selecting it differ between the versions, or
    it holds an address read for itself (``_special``) in either, or any
    ClusterNetworkPolicy differs."""
    a = next(p for p in old.pods if p.key == key)
    b = next(p for p in new.pods if p.key == key)
    if (a.labels, a.ports, a.ips, a.node_name) != (b.labels, b.ports, b.ips, b.node_name):
        return True
    if special.intersection(a.ips + b.ips):
        return True
    if old.namespace(a.namespace) != new.namespace(b.namespace):
        return True
    if old.cluster_policies != new.cluster_policies:  # tiers: every pod may be dirty
        return True
    return _selecting(old, a, direction) != _selecting(new, b, direction)


def representatives(
    old: Cluster, new: Cluster, classes: list[tuple[str, ...]]
) -> Iterator[tuple[tuple[str, str], list[tuple[str, str]]]]:
    """One (src, dst) pod pair per pair of classes whose verdicts can differ
    (the source's egress side or the destination's ingress side is dirty:
    a verdict reads nothing else that differs), with the pod pairs it stands
    for (never a pod with itself)."""
    special = _special(old) | _special(new)
    egress = [_dirty(old, new, c[0], Direction.EGRESS, special) for c in classes]
    ingress = [_dirty(old, new, c[0], Direction.INGRESS, special) for c in classes]
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            if not (egress[i] or ingress[j]):
                continue
            members = [(s, d) for s in a for d in b if s != d]
            if members:
                yield members[0], members
