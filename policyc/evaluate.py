"""The reference evaluator: a direct reading of the NetworkPolicy API.

It shares no code with the compiler past the model, so it can serve as the
oracle for golden, property and kernel tests, and it powers ``explain``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from policyc.model import (
    Cluster,
    Direction,
    IPAddress,
    NetworkPolicy,
    Peer,
    Pod,
    PolicyRule,
    PortSpec,
    Protocol,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str
    egress_by: tuple[str, ...] = ()  # "ns/policy egress[i]" that allowed it
    ingress_by: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


class Evaluator:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.by_ip: dict[IPAddress, Pod] = {}
        for pod in cluster.pods:
            if not pod.host_network:
                for ip in pod.ips:
                    self.by_ip[ip] = pod
        self.node_ips: dict[str, set[IPAddress]] = {}
        for node in cluster.nodes.values():
            ips = set(node.addresses)
            for cidr in node.pod_cidrs:
                ips.add(cidr.network_address + 1)  # the bridge gateway
            self.node_ips[node.name] = ips

    def pod_at(self, ip: IPAddress) -> Pod | None:
        return self.by_ip.get(ip)

    def peer_matches(self, peer: Peer, policy_ns: str, ip: IPAddress, pod: Pod | None) -> bool:
        if peer.ip_block is not None:
            # ipBlock matches any address in range, pod IPs included (as the
            # upstream e2e tests expect).
            return peer.ip_block.contains(ip)
        if pod is None:
            return False
        if peer.namespace_selector is None:
            # "If NamespaceSelector is also not set, this selects pods in the
            # policy's own namespace."
            if pod.namespace != policy_ns:
                return False
        elif not peer.namespace_selector.matches(self.cluster.namespace(pod.namespace).label_map):
            return False
        return peer.pod_selector is None or peer.pod_selector.matches(pod.label_map)

    @staticmethod
    def port_matches(spec: PortSpec, proto: Protocol, port: int, dst: Pod | None) -> bool:
        if spec.protocol != proto:
            return False
        if spec.port is None:
            return True
        if isinstance(spec.port, int):
            hi = spec.end_port if spec.end_port is not None else spec.port
            return spec.port <= port <= hi
        # A named port resolves against the destination pod's container ports.
        if dst is None:
            return False
        return any(
            cp.name == spec.port and cp.protocol == proto and cp.port == port for cp in dst.ports
        )

    def rule_matches(
        self,
        rule: PolicyRule,
        policy: NetworkPolicy,
        peer_ip: IPAddress,
        peer: Pod | None,
        proto: Protocol,
        port: int,
        dst: Pod | None,
    ) -> bool:
        if rule.ports is not None and not any(
            self.port_matches(s, proto, port, dst) for s in rule.ports
        ):
            return False
        if rule.peers is None:
            return True
        return any(self.peer_matches(p, policy.namespace, peer_ip, peer) for p in rule.peers)

    def selecting(self, pod: Pod, direction: Direction) -> list[NetworkPolicy]:
        labels = pod.label_map
        return [
            pol
            for pol in self.cluster.policies
            if pol.namespace == pod.namespace
            and direction in pol.policy_types
            and pol.pod_selector.matches(labels)
        ]

    def _side(
        self,
        pod: Pod,
        direction: Direction,
        peer_ip: IPAddress,
        peer: Pod | None,
        proto: Protocol,
        port: int,
        dst: Pod | None,
    ) -> tuple[bool, tuple[str, ...]]:
        if pod.host_network:
            return True, ()
        policies = self.selecting(pod, direction)
        if not policies:
            return True, ()
        word = "ingress" if direction is Direction.INGRESS else "egress"
        by = tuple(
            f"{pol.key} {word}[{i}]"
            for pol in policies
            for i, rule in enumerate(pol.rules(direction))
            if self.rule_matches(rule, pol, peer_ip, peer, proto, port, dst)
        )
        return bool(by), by

    def allowed(
        self, src: IPAddress | str, dst: IPAddress | str, port: int, proto: Protocol | str
    ) -> Verdict:
        """Is a new connection src -> dst:port/proto allowed?"""
        src_ip, dst_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        proto = Protocol(proto.upper() if isinstance(proto, str) else proto)
        src_pod, dst_pod = self.pod_at(src_ip), self.pod_at(dst_ip)
        if src_pod is not None and src_pod is dst_pod:
            # A pod dialling its own address never leaves its network namespace;
            # the upstream netpol e2e suite likewise allows loopback.
            return Verdict(True, "loopback: the packet never leaves the pod")
        for pod, other in ((src_pod, dst_ip), (dst_pod, src_ip)):
            # "traffic to and from the node where a Pod is running is always allowed"
            if pod is not None and other in self.node_ips.get(pod.node_name, set()):
                return Verdict(True, f"node traffic: {other} is an address of {pod.node_name}")
        e_ok, e_by = True, tuple[str, ...]()
        if src_pod is not None:
            e_ok, e_by = self._side(
                src_pod, Direction.EGRESS, dst_ip, dst_pod, proto, port, dst_pod
            )
        i_ok, i_by = True, tuple[str, ...]()
        if dst_pod is not None:
            i_ok, i_by = self._side(
                dst_pod, Direction.INGRESS, src_ip, src_pod, proto, port, dst_pod
            )
        if not e_ok:
            who = src_pod.key if src_pod else str(src_ip)
            return Verdict(False, f"egress of {who} denied: no rule of its policies matches")
        if not i_ok:
            who = dst_pod.key if dst_pod else str(dst_ip)
            return Verdict(False, f"ingress of {who} denied: no rule of its policies matches", e_by)
        return Verdict(True, "allowed", e_by, i_by)
