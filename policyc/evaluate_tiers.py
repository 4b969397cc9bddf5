"""The ClusterNetworkPolicy tiers of the reference evaluator.

One direction of one connection is decided at one pod (egress at the
source, ingress at the destination), tier by tier (issue 10, "Semantics";
``spec.tier`` in ``clusternetworkpolicy_types.go``):

1. Admin, by ascending priority, rules in order: "If Admin tier has made a
   final decision (Accept or Deny) on a connection, then no further
   evaluation is done"; ``Pass`` "skips all further ClusterNetworkPolicy
   rules in the current tier".
2. NetworkPolicy, if the pod is isolated for the direction.
3. Baseline, the same way; there ``Pass`` gives no verdict.
4. Default allow.

This module holds steps 1 and 3; :mod:`policyc.evaluate` runs all four.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from policyc.model import (
    Action,
    Cluster,
    ClusterNetworkPolicy,
    CNPPeer,
    CNPRule,
    Direction,
    IPAddress,
    NamespacedPods,
    Node,
    Pod,
    Protocol,
    Subject,
    Tier,
    contains_any,
)


class Decider(StrEnum):
    """Who decided one direction (:attr:`Decision.tier`)."""

    ADMIN = "Admin"
    NETWORK_POLICY = "NetworkPolicy"
    BASELINE = "Baseline"
    DEFAULT = "Default"  # no tier decided: "all pods can communicate with each other"
    EXEMPT = "Exempt"  # loopback, or node traffic for NetworkPolicy (no tier decided)


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict of one direction and what gave it.

    ``policy``: ``ClusterNetworkPolicy name`` (or the v1alpha1 kind) for the
    Admin and Baseline tiers; ``ns/name`` of the NetworkPolicies for the
    NetworkPolicy tier (the isolating ones, comma-separated, on a denial).
    ``rule``: ``egress[0] "name"`` (ClusterNetworkPolicy) or ``egress[0]``
    (NetworkPolicy); "" when no rule decided (a default deny, default allow).
    """

    allowed: bool
    tier: Decider
    policy: str = ""
    rule: str = ""

    def __str__(self) -> str:
        word = "allowed" if self.allowed else "denied"
        by = " ".join(p for p in (self.policy, self.rule) if p)
        return f"{word} by {self.tier}" + (f": {by}" if by else "")


@dataclass(frozen=True, slots=True)
class TierHit:
    """A rule of a tier that matched: its action, policy and rule index."""

    action: Action
    policy: ClusterNetworkPolicy
    index: int
    direction: Direction

    def decision(self) -> Decision:
        word = "ingress" if self.direction is Direction.INGRESS else "egress"
        return Decision(
            self.action is Action.ACCEPT,
            Decider(self.policy.tier.value),
            self.policy.key,
            self.policy.rule_label(word, self.index),
        )


def _every_or_any(action: Action) -> Callable[[Iterable[bool]], bool]:
    """Shared addresses get least privilege: an Accept (or Pass, which can
    only widen what lower tiers give) matches only if every claimant does, a
    Deny if any does."""
    return any if action is Action.DENY else all


class Tiers:
    """The Admin and Baseline tiers of a cluster, in evaluation order."""

    def __init__(self, cluster: Cluster, audited: bool = False) -> None:
        """``audited``: audit-mode policies count as enforced; else they are absent."""
        self.cluster = cluster
        held = [p for p in cluster.cluster_policies if audited or not p.audit]
        ordered = sorted(held, key=lambda p: (p.order, p.tier))
        self.by_tier: dict[Tier, tuple[ClusterNetworkPolicy, ...]] = {
            t: tuple(p for p in ordered if p.tier is t) for t in Tier
        }
        self.nodes: Mapping[str, Node] = cluster.nodes

    def _ns_labels(self, pod: Pod) -> dict[str, str]:
        return self.cluster.namespace(pod.namespace).label_map

    def _pods_match(self, sel: NamespacedPods, pod: Pod) -> bool:
        return sel.namespace_selector.matches(self._ns_labels(pod)) and sel.pod_selector.matches(
            pod.label_map
        )

    def selects(self, subject: Subject, pod: Pod) -> bool:
        """ "Note that host-networked pods are not included in subject selection."."""
        if pod.host_network:
            return False
        if subject.namespaces is not None:
            return subject.namespaces.matches(self._ns_labels(pod))
        if subject.pods is not None:
            return self._pods_match(subject.pods, pod)
        return False

    def peer_matches(self, peer: CNPPeer, ip: IPAddress, pod: Pod | None) -> bool:
        """Does ``peer`` match the remote address ``ip`` held by ``pod``?"""
        if peer.networks:
            return contains_any(peer.networks, ip)
        if peer.nodes is not None:
            # "It selects the nodeIPs as the peer type by matching on the IPs
            # present in the node.Status.Addresses field of the node."
            return any(
                ip in n.addresses and peer.nodes.matches(n.label_map) for n in self.nodes.values()
            )
        # "Note that host-networked pods are not included in this type of
        # peer": they hold no pod address, so ``pod`` is None for them.
        if pod is None or pod.host_network:
            return False
        if peer.namespaces is not None:
            return peer.namespaces.matches(self._ns_labels(pod))
        if peer.pods is not None:
            return self._pods_match(peer.pods, pod)
        return False

    def rule_matches(
        self,
        rule: CNPRule,
        remote_ip: IPAddress,
        remote: tuple[Pod, ...],
        proto: Protocol,
        port: int,
        dst: tuple[Pod, ...],
    ) -> bool:
        """ "If any element matches the ... traffic then the specified action
        is applied", restricted by ``protocols`` when given."""
        quant = _every_or_any(rule.action)
        protos = rule.protocols
        if protos is not None and not quant(
            any(pp.matches(proto, port, d) for pp in protos) for d in (dst or (None,))
        ):
            return False
        return quant(
            any(self.peer_matches(x, remote_ip, r) for x in rule.peers) for r in (remote or (None,))
        )

    def first_hit(
        self,
        tier: Tier,
        pod: Pod,
        direction: Direction,
        remote_ip: IPAddress,
        remote: tuple[Pod, ...],
        proto: Protocol,
        port: int,
    ) -> TierHit | None:
        """The first rule of ``tier`` that matches at ``pod``, in priority and
        rule order; None if none does."""
        dst = (pod,) if direction is Direction.INGRESS else remote
        for pol in self.by_tier[tier]:
            if not self.selects(pol.subject, pod):
                continue
            rules = pol.ingress if direction is Direction.INGRESS else pol.egress
            for i, rule in enumerate(rules):
                if self.rule_matches(rule, remote_ip, remote, proto, port, dst):
                    return TierHit(rule.action, pol, i, direction)
        return None

    def verdict(
        self,
        tier: Tier,
        pods: tuple[Pod, ...],
        direction: Direction,
        remote_ip: IPAddress,
        remote: tuple[Pod, ...],
        proto: Protocol,
        port: int,
    ) -> Decision | None:
        """The final decision of ``tier`` for the address held by ``pods``, or
        None (no rule matched, or ``Pass``).  Several claimants: a Deny at any
        of them denies; an Accept counts only if every claimant accepts."""
        if not self.by_tier[tier]:
            return None
        hits = [self.first_hit(tier, p, direction, remote_ip, remote, proto, port) for p in pods]
        for hit in hits:
            if hit is not None and hit.action is Action.DENY:
                return hit.decision()
        if hits and all(h is not None and h.action is Action.ACCEPT for h in hits):
            first = hits[0]
            return first.decision() if first is not None else None
        return None
