"""Why one NetworkPolicy rule did not match a packet, in words.

``rule_miss`` names each part of the rule that failed: the port (against
the rule's ``ports``), or each peer of ``from``/``to`` with the selector
requirement that did not match and the label the pod or namespace has.  A
rule's *distance* is how many of its two parts (peers, ports) failed, so the
closest rules come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policyc.evaluate import Evaluator
from policyc.model import (
    IPAddress,
    NetworkPolicy,
    Op,
    Peer,
    Pod,
    PolicyRule,
    PortSpec,
    Protocol,
    Requirement,
    Selector,
)


@dataclass(frozen=True, slots=True)
class Miss:
    """A rule (``ns/name ingress[i]``) that did not admit the packet and why."""

    rule: str
    distance: int
    reasons: tuple[str, ...]


def label_text(key: str, labels: Mapping[str, str]) -> str:
    return f"{key}={labels[key]}" if key in labels else f"no label {key}"


def failed_requirement(sel: Selector, labels: Mapping[str, str]) -> Requirement | None:
    return next((r for r in sel.requirements if not r.matches(labels)), None)


def requirement_text(r: Requirement) -> str:
    if r.op is Op.EXISTS:
        return f"{r.key} exists"
    if r.op is Op.DOES_NOT_EXIST:
        return f"{r.key} does not exist"
    if r.op is Op.IN and len(r.values) == 1:
        return f"{r.key}={r.values[0]}"
    return f"{r.key} {'in' if r.op is Op.IN else 'notin'} ({','.join(r.values)})"


def peer_miss(ev: Evaluator, peer: Peer, policy_ns: str, ip: IPAddress, pod: Pod | None) -> str:
    """Why ``peer`` does not match ``ip`` held by ``pod``: the selector and
    the label it wanted, and the label the pod or namespace has."""
    if peer.ip_block is not None:
        block = peer.ip_block
        hit = next((e for e in block.excepts if ip in e), None)
        if hit is not None:
            return f"ipBlock {block.cidr}: {ip} is in except {hit}"
        return f"ipBlock {block.cidr}: {ip} is outside it"
    if pod is None:
        return f"{_selectors(peer)}: {ip} is not a pod's address"
    if peer.namespace_selector is None and pod.namespace != policy_ns:
        # "If NamespaceSelector is also not set, this selects pods in the
        # policy's own namespace."
        where = f"selects pods of namespace {policy_ns} only, not {pod.namespace}"
        return f"podSelector {peer.pod_selector}: {where}"
    if peer.namespace_selector is not None:
        ns = ev.cluster.namespace(pod.namespace)
        r = failed_requirement(peer.namespace_selector, ns.label_map)
        if r is not None:
            got = label_text(r.key, ns.label_map)
            return f"namespaceSelector wants {requirement_text(r)}: namespace {ns.name} has {got}"
    if peer.pod_selector is not None:
        r = failed_requirement(peer.pod_selector, pod.label_map)
        if r is not None:
            got = label_text(r.key, pod.label_map)
            return f"podSelector wants {requirement_text(r)}: pod {pod.key} has {got}"
    return f"{_selectors(peer)}: matches {pod.key}"


def _selectors(peer: Peer) -> str:
    parts = []
    if peer.namespace_selector is not None:
        parts.append(f"namespaceSelector {peer.namespace_selector}")
    if peer.pod_selector is not None:
        parts.append(f"podSelector {peer.pod_selector}")
    return " ".join(parts) or "peer"


def port_text(spec: PortSpec) -> str:
    if spec.port is None:
        return f"any/{spec.protocol}"
    if spec.end_port is not None:
        return f"{spec.port}-{spec.end_port}/{spec.protocol}"
    return f"{spec.port}/{spec.protocol}"


def rule_miss(
    ev: Evaluator,
    label: str,
    rule: PolicyRule,
    policy: NetworkPolicy,
    peer_ip: IPAddress,
    peer: tuple[Pod, ...],
    port: tuple[Protocol, int],
    dsts: tuple[Pod, ...],
    selecting_all: set[str],
) -> Miss:
    """Why ``rule`` of ``policy`` did not admit the packet to ``port``
    (protocol, number) (see module doc)."""
    proto, number = port
    reasons: list[str] = []
    if policy.key not in selecting_all:
        # Least privilege for a shared address (policyc.evaluate).
        reasons.append(f"{policy.key} does not select every pod sharing the address")
    ports, peers = rule.ports, rule.peers
    port_failed = ports is not None and not all(
        any(ev.port_matches(s, proto, number, d) for s in ports) for d in (dsts or (None,))
    )
    if ports is not None and port_failed:
        wanted = ", ".join(port_text(s) for s in ports) or "none"
        reasons.append(f"port {number}/{proto} is not among ports {wanted}")
    peer_failed = False
    if peers is not None:
        # "If this field is present and contains at least one item, this rule
        # allows traffic only if the traffic matches at least one item."
        misfits = [
            p
            for p in peer or (None,)
            if not any(ev.peer_matches(x, policy.namespace, peer_ip, p) for x in peers)
        ]
        if misfits:
            who = misfits[0]
            peer_failed = True
            reasons += [
                f"peer[{i}] {peer_miss(ev, x, policy.namespace, peer_ip, who)}"
                for i, x in enumerate(peers)
            ]
    return Miss(label, int(port_failed) + int(peer_failed), tuple(reasons))
