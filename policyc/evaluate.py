"""The reference evaluator: a direct reading of the NetworkPolicy API.

It shares no code with the compiler past the model, so it can serve as the
oracle for golden, property and kernel tests, and it powers ``explain``.

An address held by more than one live pod (its *claimants*) gets least
privilege, as in the compiled sets (docs/dataplane.md, "Shared addresses"):
the address is isolated if any claimant is; it matches a peer and resolves a
named port only if every claimant does; a policy's rules allow on its behalf
only if the policy selects every claimant (claimants on different nodes are
judged per node, as each node enforces its own pods).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from policyc.evaluate_tiers import Decider, Decision, Tiers
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
    Tier,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A connection's verdict.  ``egress``/``ingress`` name the deciding tier,
    policy and rule of each direction (None: the direction has no pod, so
    nothing decides it); ``egress_by``/``ingress_by`` are the NetworkPolicy
    rules that allowed it (kept for older readers)."""

    allowed: bool
    reason: str
    egress_by: tuple[str, ...] = ()  # "ns/policy egress[i]" that allowed it
    ingress_by: tuple[str, ...] = ()
    egress: Decision | None = None
    ingress: Decision | None = None

    def __bool__(self) -> bool:
        return self.allowed


class Evaluator:
    """``audited=False``: the enforced verdict, audit-mode policies ignored;
    ``audited=True``: the verdict as if every audit-mode policy were enforced
    (docs/observability.md, "Audit mode")."""

    def __init__(self, cluster: Cluster, audited: bool = False) -> None:
        self.cluster = cluster
        self.audited = audited
        self.claimants: dict[IPAddress, tuple[Pod, ...]] = claimants_by_address(cluster.pods)
        self.tiers = Tiers(cluster, audited)
        self.node_ips: dict[str, set[IPAddress]] = {}
        for node in cluster.nodes.values():
            ips = set(node.addresses)
            for cidr in node.pod_cidrs:
                ips.add(cidr.network_address + 1)  # the bridge gateway
            self.node_ips[node.name] = ips

    def pods_at(self, ip: IPAddress) -> tuple[Pod, ...]:
        """The live pods holding ``ip`` (hostNetwork pods hold none), by key."""
        return self.claimants.get(ip, ())

    def pod_at(self, ip: IPAddress) -> Pod | None:
        """The first claimant of ``ip`` by namespace and name, or None."""
        pods = self.pods_at(ip)
        return pods[0] if pods else None

    def peer_matches(self, peer: Peer, policy_ns: str, ip: IPAddress, pod: Pod | None) -> bool:
        """Does ``peer`` match address ``ip`` held by ``pod`` (None: no pod)?"""
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
        peer: tuple[Pod, ...],
        proto: Protocol,
        port: int,
        dst: tuple[Pod, ...],
    ) -> bool:
        """Does ``rule`` match?  ``peer``/``dst``: the claimants of the peer
        and destination addresses.  A shared address matches only as every
        claimant would: each claimant of the peer address matches some peer
        of the rule, each claimant of the destination resolves some port."""
        ports = rule.ports
        if ports is not None and not _every(
            dst, lambda d: any(self.port_matches(s, proto, port, d) for s in ports)
        ):
            return False
        peers = rule.peers
        if peers is None:
            return True
        return _every(
            peer, lambda p: any(self.peer_matches(x, policy.namespace, peer_ip, p) for x in peers)
        )

    def selecting(self, pod: Pod, direction: Direction) -> list[NetworkPolicy]:
        labels = pod.label_map
        return [
            pol
            for pol in self.cluster.policies
            if pol.namespace == pod.namespace
            and (self.audited or not pol.audit)
            and direction in pol.policy_types
            and pol.pod_selector.matches(labels)
        ]

    def _side(
        self,
        pods: tuple[Pod, ...],
        direction: Direction,
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        proto: Protocol,
        port: int,
        dst: tuple[Pod, ...],
    ) -> tuple[bool, tuple[str, ...]]:
        """Is ``direction`` allowed for the address held by ``pods``?

        Each node enforces this side for its own claimants, so the claimants
        are judged per node, and every node's group must allow: a group is
        isolated if any of its claimants is selected by a policy of that
        direction; then only the rules of policies that select every claimant
        of the group allow.
        """
        groups: dict[str, list[Pod]] = {}
        for p in pods:
            groups.setdefault(p.node_name, []).append(p)
        ok, by = True, tuple[str, ...]()
        for group in groups.values():
            g_ok, g_by = self._group_side(group, direction, peer_ip, peer, proto, port, dst)
            ok, by = ok and g_ok, by + tuple(b for b in g_by if b not in by)
        return ok, by

    def _group_side(
        self,
        pods: list[Pod],
        direction: Direction,
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        proto: Protocol,
        port: int,
        dst: tuple[Pod, ...],
    ) -> tuple[bool, tuple[str, ...]]:
        chosen = [self.selecting(p, direction) for p in pods]
        if not any(chosen):
            return True, ()
        keys = set.intersection(*({pol.key for pol in c} for c in chosen))
        word = "ingress" if direction is Direction.INGRESS else "egress"
        by = tuple(
            f"{pol.key} {word}[{i}]"
            for pol in chosen[0]
            if pol.key in keys
            for i, rule in enumerate(pol.rules(direction))
            if self.rule_matches(rule, pol, peer_ip, peer, proto, port, dst)
        )
        return bool(by), by

    def _exempt(
        self, src_ip: IPAddress, dst_ip: IPAddress, srcs: tuple[Pod, ...], dsts: tuple[Pod, ...]
    ) -> Verdict | None:
        if srcs and src_ip == dst_ip:
            # A pod dialling its own address never leaves its network namespace;
            # the upstream netpol e2e suite likewise allows loopback.
            return Verdict(True, "loopback: the packet never leaves the pod")
        for pods, other in ((srcs, dst_ip), (dsts, src_ip)):
            # "traffic to and from the node where a Pod is running is always allowed"
            # (The node's own addresses are exempt in the ruleset whichever
            # claimant holds the pod address.)
            for p in pods:
                if other in self.node_ips.get(p.node_name, set()):
                    return Verdict(True, f"node traffic: {other} is an address of {p.node_name}")
        return None

    def _who(self, ip: IPAddress, pods: tuple[Pod, ...]) -> str:
        if not pods:
            return str(ip)
        if len(pods) == 1:
            return pods[0].key
        names = ", ".join(p.key for p in pods)
        return f"{ip} (shared by {names}: least privilege)"

    def allowed(
        self, src: IPAddress | str, dst: IPAddress | str, port: int, proto: Protocol | str
    ) -> Verdict:
        """Is a new connection src -> dst:port/proto allowed?

        Each direction is decided on its own (egress at the source pod,
        ingress at the destination pod) through the tiers
        (:meth:`decide`); the connection passes only if both allow.  A
        shared address passes only what every one of its claimants would
        pass, as source and as destination (it may pass less).
        """
        src_ip, dst_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        proto = Protocol(proto.upper() if isinstance(proto, str) else proto)
        srcs, dsts = self.pods_at(src_ip), self.pods_at(dst_ip)
        exempt = self._exempt(src_ip, dst_ip, srcs, dsts)
        if exempt is not None and (src_ip == dst_ip or not self.cluster.cluster_policies):
            # Loopback never leaves the pod; without ClusterNetworkPolicy the
            # node exemption decides the whole connection.
            why = Decision(True, Decider.EXEMPT, rule=exempt.reason)
            return Verdict(
                True, exempt.reason, egress=why if srcs else None, ingress=why if dsts else None
            )
        # "traffic to and from the node where a Pod is running is always
        # allowed" binds NetworkPolicy only (docs/clusternetworkpolicy.md).
        np_exempt = exempt is not None
        e = i = None
        if srcs:
            e = self.decide(srcs, Direction.EGRESS, dst_ip, dsts, proto, port, np_exempt)
        if dsts:
            i = self.decide(dsts, Direction.INGRESS, src_ip, srcs, proto, port, np_exempt)
        e_by = self._by(e)
        if e is not None and not e[0].allowed:
            return Verdict(False, self._denied(src_ip, srcs, "egress", e[0]), egress=e[0])
        if i is not None and not i[0].allowed:
            reason = self._denied(dst_ip, dsts, "ingress", i[0])
            return Verdict(False, reason, e_by, egress=e and e[0], ingress=i[0])
        reason = exempt.reason if exempt is not None and self._default(e, i) else "allowed"
        return Verdict(True, reason, e_by, self._by(i), e and e[0], i and i[0])

    @staticmethod
    def _by(d: tuple[Decision, tuple[str, ...]] | None) -> tuple[str, ...]:
        return d[1] if d is not None else ()

    @staticmethod
    def _default(*ds: tuple[Decision, tuple[str, ...]] | None) -> bool:
        return all(d is None or d[0].tier in (Decider.DEFAULT, Decider.EXEMPT) for d in ds)

    def _denied(self, ip: IPAddress, pods: tuple[Pod, ...], word: str, d: Decision) -> str:
        who = self._who(ip, pods)
        if d.tier is Decider.NETWORK_POLICY:
            return f"{word} of {who} denied: no rule of its policies matches"
        return f"{word} of {who} denied by the {d.tier} tier: {d.policy} {d.rule}"

    def decide(
        self,
        pods: tuple[Pod, ...],
        direction: Direction,
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        proto: Protocol,
        port: int,
        np_exempt: bool = False,
    ) -> tuple[Decision, tuple[str, ...]]:
        """One direction at the address held by ``pods``: Admin tier, then
        NetworkPolicy if isolated (and not node traffic), then Baseline, then
        allow.  Returns the decision and the NetworkPolicy rules that allowed."""
        hit = self.tiers.verdict(Tier.ADMIN, pods, direction, peer_ip, peer, proto, port)
        if hit is not None:
            return hit, ()
        dst = pods if direction is Direction.INGRESS else peer
        if not np_exempt:
            ok, by = self._side(pods, direction, peer_ip, peer, proto, port, dst)
            if not ok:
                isolating = {pol.key for p in pods for pol in self.selecting(p, direction)}
                return Decision(False, Decider.NETWORK_POLICY, ", ".join(sorted(isolating))), ()
            if by:
                pol, _, rule = by[0].partition(" ")
                return Decision(True, Decider.NETWORK_POLICY, pol, rule), by
        hit = self.tiers.verdict(Tier.BASELINE, pods, direction, peer_ip, peer, proto, port)
        if hit is not None:
            return hit, ()
        tier = Decider.EXEMPT if np_exempt else Decider.DEFAULT
        return Decision(True, tier), ()


def audit_verdicts(
    cluster: Cluster, src: IPAddress | str, dst: IPAddress | str, port: int, proto: str
) -> tuple[Verdict, Verdict]:
    """(enforced, audited) verdicts of one connection: the audited one reads
    every ``policyc.io/mode: audit`` policy as enforced."""
    return (
        Evaluator(cluster).allowed(src, dst, port, proto),
        Evaluator(cluster, audited=True).allowed(src, dst, port, proto),
    )


def _every(pods: tuple[Pod, ...], test: Callable[[Pod | None], bool]) -> bool:
    """``test`` holds for every claimant, or for "no pod" when there is none."""
    return all(test(p) for p in pods) if pods else test(None)


def claimants_by_address(pods: Iterable[Pod]) -> dict[IPAddress, tuple[Pod, ...]]:
    """Address -> the live pods holding it, by namespace and name.

    hostNetwork pods hold the node's addresses and claim none; pods that are
    not Running or Pending never reach the model (``policyc.parse``).
    """
    found: dict[IPAddress, list[Pod]] = {}
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if not pod.host_network:
            for ip in pod.ips:
                found.setdefault(ip, []).append(pod)
    return {ip: tuple(ps) for ip, ps in found.items()}


def shared_addresses(pods: Iterable[Pod]) -> dict[IPAddress, tuple[Pod, ...]]:
    """The addresses held by more than one live pod, with their claimants."""
    return {ip: ps for ip, ps in claimants_by_address(pods).items() if len(ps) > 1}


def shared_address_warnings(pods: Iterable[Pod]) -> list[str]:
    """One line per address held by more than one live pod, naming its claimants."""
    shared = shared_addresses(pods)
    return [
        f"address {ip} is held by {len(shared[ip])} live pods "
        f"({', '.join(p.key for p in shared[ip])}): least privilege, it gets only "
        "what every one of them would get"
        for ip in sorted(shared, key=lambda a: (a.version, int(a)))
    ]
