"""Cluster model -> rule graph, for the pods of one node."""

from __future__ import annotations

from collections.abc import Iterable

from policyc.errors import PolicycError
from policyc.intervals import block_ranges, union
from policyc.ir import (
    IFACE_ADDR,
    IFACES,
    ISOLATED,
    NODE,
    Endpoint,
    Family,
    PolicyNode,
    RuleGraph,
    RuleNode,
    SetDef,
    SetKind,
)
from policyc.model import (
    Cluster,
    Direction,
    IPAddress,
    NetworkPolicy,
    Peer,
    Pod,
    PolicyRule,
    Protocol,
    Selector,
)
from policyc.names import pod_iface, short_hash

FAMILIES = (Family.V4, Family.V6)


class SetTable:
    """Sets keyed by name; a name is the hash of its definition text."""

    def __init__(self) -> None:
        self.defs: dict[str, str] = {}
        self.sets: dict[str, SetDef] = {}

    def add(
        self,
        prefix: str,
        definition: str,
        kind: SetKind,
        family: Family | None,
        elements: Iterable[object],
        comment: str = "",
    ) -> str:
        name = f"{prefix}_{short_hash(definition, 10)}{family.suffix if family else ''}"
        if self.defs.setdefault(name, definition) != definition:
            raise PolicycError(f"set name collision on {name}: rename a policy")
        if name not in self.sets:
            elems = tuple(sorted(set(elements), key=_sort_key))
            self.sets[name] = SetDef(name, kind, family, elems, comment)
        return name


def _sort_key(elem: object) -> tuple[object, ...]:
    if isinstance(elem, tuple):
        return tuple(_sort_key(e) for e in elem)
    if isinstance(elem, Protocol):
        return (str(elem),)
    if isinstance(elem, str):
        return (elem,)
    return (getattr(elem, "version", 0), int(elem))  # type: ignore[call-overload]


class Compiler:
    def __init__(self, cluster: Cluster, node: str | None = None) -> None:
        self.cluster = cluster
        self.node = node
        self.live = [p for p in cluster.pods if not p.host_network]
        self.local = [p for p in self.live if node is None or p.node_name == node]
        self.sets = SetTable()

    def ips(self, pods: Iterable[Pod], family: Family) -> list[IPAddress]:
        return [ip for p in pods for ip in p.ips if Family.of(ip) is family]

    # -- selection -----------------------------------------------------
    def selected(self, pol: NetworkPolicy) -> list[Pod]:
        return [
            p
            for p in self.local
            if p.namespace == pol.namespace and pol.pod_selector.matches(p.label_map)
        ]

    def selection_set(self, pol: NetworkPolicy, family: Family) -> str:
        definition = f"select {pol.namespace} {pol.pod_selector}"
        return self.sets.add(
            "sel",
            definition,
            SetKind.ADDR,
            family,
            self.ips(self.selected(pol), family),
            comment=f"local pods of {pol.namespace} matching {pol.pod_selector}",
        )

    # -- peers ---------------------------------------------------------
    def peer_pods(self, peer: Peer, policy_ns: str) -> list[Pod]:
        out = []
        for pod in self.live:
            if peer.namespace_selector is None:
                if pod.namespace != policy_ns:
                    continue
            elif not peer.namespace_selector.matches(
                self.cluster.namespace(pod.namespace).label_map
            ):
                continue
            if peer.pod_selector is None or peer.pod_selector.matches(pod.label_map):
                out.append(pod)
        return out

    def peer_sets(self, rule: PolicyRule, pol: NetworkPolicy, family: Family) -> tuple[str, ...]:
        assert rule.peers is not None
        names = []
        selectors = [p for p in rule.peers if p.ip_block is None]
        if selectors:
            text = " | ".join(sorted(_peer_text(p) for p in selectors))
            pods = {pod for p in selectors for pod in self.peer_pods(p, pol.namespace)}
            names.append(
                self.sets.add(
                    "peer",
                    f"pods {pol.namespace} {text}",
                    SetKind.ADDR,
                    family,
                    self.ips(pods, family),
                    comment=f"pods: {text}",
                )
            )
        blocks = [p.ip_block for p in rule.peers if p.ip_block is not None]
        version = 4 if family is Family.V4 else 6
        fam_blocks = [b for b in blocks if b.cidr.version == version]
        if fam_blocks:
            text = " | ".join(sorted(_block_text(b) for b in fam_blocks))
            names.append(
                self.sets.add(
                    "net",
                    f"blocks {text}",
                    SetKind.CIDR,
                    family,
                    block_ranges(fam_blocks, version),
                    comment=f"ipBlock: {text}",
                )
            )
        return tuple(names)

    # -- ports ---------------------------------------------------------
    def port_sets(self, rule: PolicyRule, family: Family) -> tuple[str, ...]:
        assert rule.ports is not None
        names = []
        numeric = [s for s in rule.ports if not isinstance(s.port, str)]
        if numeric:
            elems = []
            for s in numeric:
                if s.port is None:
                    elems.append((s.protocol, 1, 65535))
                else:
                    assert isinstance(s.port, int)
                    elems.append((s.protocol, s.port, s.end_port or s.port))
            elems = _merge_ports(elems)
            text = " ".join(f"{p}:{lo}-{hi}" for p, lo, hi in elems)
            names.append(self.sets.add("port", f"ports {text}", SetKind.PORTS, None, elems))
        named = sorted({(s.port, s.protocol) for s in rule.ports if isinstance(s.port, str)})
        if named:
            # "a named port ... resolves against the destination pod's container ports"
            elems2 = [
                (ip, proto, cp.port)
                for pod in self.live
                for cp in pod.ports
                for name, proto in named
                if cp.name == name and cp.protocol == proto
                for ip in pod.ips
                if Family.of(ip) is family
            ]
            text = " ".join(f"{n}/{p}" for n, p in named)
            names.append(
                self.sets.add(
                    "named",
                    f"named {text}",
                    SetKind.NAMED,
                    family,
                    elems2,
                    comment=f"named ports: {text}",
                )
            )
        return tuple(names)

    # -- graph ---------------------------------------------------------
    def policy_node(self, pol: NetworkPolicy, direction: Direction, family: Family) -> PolicyNode:
        rules = []
        for i, rule in enumerate(pol.rules(direction)):
            peers = None if rule.peers is None else self.peer_sets(rule, pol, family)
            if peers == ():
                continue  # e.g. only IPv6 ipBlocks: nothing to match in IPv4
            ports = None if rule.ports is None else self.port_sets(rule, family)
            rules.append(RuleNode(pol.key, direction, i, family, peers, ports))
        return PolicyNode(pol.key, direction, family, self.selection_set(pol, family), tuple(rules))

    def compile(self) -> RuleGraph:
        nodes: list[PolicyNode] = []
        for pol in self.cluster.policies:
            for direction in (Direction.INGRESS, Direction.EGRESS):
                if direction in pol.policy_types:
                    nodes.extend(self.policy_node(pol, direction, f) for f in FAMILIES)
        self.isolation_sets()
        self.node_sets()
        endpoints = self.endpoints()
        self.spoof_sets(endpoints)
        return RuleGraph(
            node=self.node or "",
            endpoints=tuple(endpoints),
            policies=tuple(nodes),
            sets=tuple(self.sets.sets[k] for k in sorted(self.sets.sets)),
        )

    def isolation_sets(self) -> None:
        for direction, prefix in ISOLATED.items():
            pods = {
                p
                for pol in self.cluster.policies
                if direction in pol.policy_types
                for p in self.selected(pol)
            }
            for f in FAMILIES:
                name = prefix + f.suffix
                self.sets.sets[name] = SetDef(
                    name,
                    SetKind.ADDR,
                    f,
                    tuple(sorted(set(self.ips(pods, f)), key=_sort_key)),
                    comment=f"local pods isolated for {direction.value.lower()}",
                )

    def node_sets(self) -> None:
        nodes = [n for n in self.cluster.nodes.values() if self.node is None or n.name == self.node]
        addrs: set[IPAddress] = set()
        for n in nodes:
            addrs.update(n.addresses)
            addrs.update(c.network_address + 1 for c in n.pod_cidrs)
        for f in FAMILIES:
            name = NODE + f.suffix
            elems = tuple(sorted((a for a in addrs if Family.of(a) is f), key=_sort_key))
            self.sets.sets[name] = SetDef(
                name, SetKind.ADDR, f, elems, comment="node addresses and bridge gateways"
            )

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(p.namespace, p.name, pod_iface(p.namespace, p.name), p.ips) for p in self.local
        ]

    def spoof_sets(self, endpoints: list[Endpoint]) -> None:
        for f in FAMILIES:
            name = IFACE_ADDR + f.suffix
            elems = tuple(
                sorted(
                    ((e.iface, ip) for e in endpoints for ip in e.ips if Family.of(ip) is f),
                    key=_sort_key,
                )
            )
            self.sets.sets[name] = SetDef(
                name, SetKind.IFACE_ADDR, f, elems, comment="pod interface . pod address"
            )
        self.sets.sets[IFACES] = SetDef(
            IFACES,
            SetKind.IFACE,
            None,
            tuple(sorted(e.iface for e in endpoints)),
            comment="known pod interfaces",
        )


def _merge_ports(elems: list[tuple[Protocol, int, int]]) -> list[tuple[Protocol, int, int]]:
    """Overlapping ranges of one protocol become one (interval sets reject overlaps)."""
    out: list[tuple[Protocol, int, int]] = []
    for proto in sorted({p for p, _, _ in elems}, key=str):
        ranges = union((lo, hi) for p, lo, hi in elems if p is proto)
        out.extend((proto, lo, hi) for lo, hi in ranges)
    return out


def _peer_text(peer: Peer) -> str:
    ns = "<own>" if peer.namespace_selector is None else str(peer.namespace_selector)
    pod = "*" if peer.pod_selector is None else str(peer.pod_selector)
    return f"ns[{ns}] pod[{pod}]"


def _block_text(block: object) -> str:
    from policyc.model import IPBlock

    assert isinstance(block, IPBlock)
    exc = ",".join(str(e) for e in block.excepts)
    return f"{block.cidr}" + (f" except {exc}" if exc else "")


def compile_cluster(cluster: Cluster, node: str | None = None) -> RuleGraph:
    return Compiler(cluster, node).compile()


__all__ = ["Compiler", "compile_cluster", "Selector"]
