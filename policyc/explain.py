"""``policyc explain``: why a connection is allowed or denied, in both directions.

``explain(cluster, src, dst, port)`` returns an ``Explained``: for each pair of
addresses of one family, each direction's isolating policies, the rule that
admitted the packet or the closest rules and why each failed, and the path of
the packet through the compiled ruleset of each node that enforces it.  The
verdict is the reference evaluator's; the tracer must agree, or
``Disagreement`` is raised (a bug in the compiler or the evaluator).

Endpoints are ``ns/name`` (every address of the pod) or an IP; ports are a
number or a named port resolved against the destination pod's containerPorts.
Rendering is in ``policyc.explain_render``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from policyc.chains import Ruleset
from policyc.errors import InputError, PolicycError, clipped, printable
from policyc.evaluate import Evaluator
from policyc.evaluate_tiers import Decider
from policyc.explain_rules import Miss, rule_miss
from policyc.explain_tiers import TierLine, tier_lines
from policyc.model import (
    Cluster,
    Direction,
    IPAddress,
    NetworkPolicy,
    Pod,
    Protocol,
)
from policyc.names import pod_iface
from policyc.trace import Packet, Step, trace

MAX_CLOSEST = 3
ICMP = {"icmp", "icmpv6", "icmp6", "ipv6-icmp", "ping"}
# "IANA_SVC_NAME": at most 15 lowercase letters, digits and '-' (ContainerPort.name).
PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class Disagreement(PolicycError):
    """The tracer's verdict over the compiled ruleset differs from the evaluator's."""


@dataclass(frozen=True, slots=True)
class PortQuery:
    """A destination port; ``name``: the containerPort name it was resolved from."""

    port: int
    protocol: Protocol
    name: str = ""

    def __str__(self) -> str:
        text = f"{self.port}/{self.protocol}"
        return f"{self.name} ({text})" if self.name else text


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address of a side; ``pods``: the live pods holding it (keys)."""

    ip: IPAddress
    pods: tuple[str, ...]

    @property
    def who(self) -> str:
        return ", ".join(self.pods) if self.pods else str(self.ip)


@dataclass(frozen=True, slots=True)
class Side:
    """One direction: egress of the source or ingress of the destination.

    ``isolated_by``: the policies (``ns/name``) of this direction selecting
    the pod; ``allowed_by``: the rules (``ns/name ingress[i]``) that admit the
    packet; ``closest``: on a denial, the nearest rules and why each failed.
    ``tiers``: what the ClusterNetworkPolicy tiers did, in evaluation order
    (``policyc.explain_tiers``); the last is the verdict when it is final.
    """

    direction: Direction
    subject: str
    is_pod: bool
    isolated_by: tuple[str, ...]
    allowed: bool
    allowed_by: tuple[str, ...] = ()
    closest: tuple[Miss, ...] = ()
    tiers: tuple[TierLine, ...] = ()

    @property
    def decided(self) -> TierLine | None:
        """The Admin or Baseline line that gave this direction's verdict, or None."""
        return self.tiers[-1] if self.tiers and self.tiers[-1].final else None


@dataclass(frozen=True, slots=True)
class Hop:
    """The packet's walk through one node's compiled ruleset."""

    node: str
    iifname: str | None
    allowed: bool
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """One address pair.  ``exempt``: the evaluator's reason when no policy
    can apply (loopback, node traffic), else empty."""

    src: Endpoint
    dst: Endpoint
    allowed: bool
    exempt: str
    egress: Side
    ingress: Side
    hops: tuple[Hop, ...]


@dataclass(frozen=True, slots=True)
class Explained:
    src: str
    dst: str
    port: PortQuery
    cases: tuple[Explanation, ...]

    @property
    def allowed(self) -> bool:
        """Allowed for every address pair (both families when both are asked)."""
        return all(c.allowed for c in self.cases)


def parse_port(text: str) -> tuple[int | str, Protocol | None]:
    """``PORT[/PROTOCOL]`` or ``NAME[/PROTOCOL]``: (1..65535 or a port name,
    the protocol or None).  InputError for ICMP, a bad number, name or
    protocol, and for an empty one after the slash (``80/``)."""
    port, slash, proto = text.partition("/")
    # NetworkPolicyPort.protocol: "The protocol (TCP, UDP, or SCTP) which
    # traffic must match."
    if proto.lower() in ICMP or port.lower() in ICMP:
        raise InputError(
            f"port {clipped(printable(text))!r}: ICMP has no ports; NetworkPolicy "
            "ports match TCP, UDP or SCTP only (spec.ingress[].ports[].protocol)"
        )
    if slash and proto.upper() not in {p.value for p in Protocol}:
        raise InputError(
            f"port {clipped(printable(text))!r}: want PORT[/PROTOCOL] with PROTOCOL "
            "one of TCP, UDP, SCTP"
        )
    protocol = Protocol(proto.upper()) if proto else None
    if port.isascii() and port.isdigit():
        if len(port) <= 5 and 1 <= int(port) <= 65535:
            return int(port), protocol
        raise InputError(
            f"port {clipped(printable(text))!r}: want PORT[/PROTOCOL] with PORT 1-65535"
        )
    if len(port) <= 15 and PORT_NAME.fullmatch(port) and re.search("[a-z]", port):
        return port, protocol
    raise InputError(
        f"port {clipped(printable(text))!r}: want PORT[/PROTOCOL] with PORT 1-65535 or a "
        "containerPort name (IANA_SVC_NAME), e.g. 80/tcp or http"
    )


def resolve_port(text: str, dst_pods: tuple[Pod, ...], dst: str) -> PortQuery:
    """The port of ``text``; a name resolves against the destination pod's
    containerPorts ("a named port ... on the destination pod"), exit 2 if not."""
    # NetworkPolicyPort.port: "This can either be a numerical or named port
    # on a pod."  A name means the destination pod's containerPort of that name.
    port, protocol = parse_port(text)
    if isinstance(port, int):
        return PortQuery(port, protocol or Protocol.TCP)
    for pod in dst_pods:
        for cp in pod.ports:
            if cp.name == port and protocol in (None, cp.protocol):
                return PortQuery(cp.port, cp.protocol, port)
    have = sorted({f"{cp.name}={cp.port}/{cp.protocol}" for p in dst_pods for cp in p.ports})
    where = f"{printable(dst)} (it has {', '.join(have) or 'no named port'})"
    raise InputError(f"port {clipped(printable(text))!r}: not a containerPort name of {where}")


def endpoint_ips(cluster: Cluster, text: str, family: int | None) -> tuple[IPAddress, ...]:
    """Every address of pod ``ns/name`` (or the one IP given), of ``family``."""
    try:
        ips: tuple[IPAddress, ...] = (ipaddress.ip_address(text),)
    except ValueError:
        if "/" not in text:
            raise InputError(f"{clipped(printable(text))!r}: want ns/name or an IP") from None
        pod = next((p for p in cluster.pods if p.key == text), None)
        if pod is None:
            raise InputError(f"no pod {clipped(printable(text))!r} in the input") from None
        ips = pod.ips
        if not ips:
            raise InputError(f"pod {text} has no IP (status.podIPs)") from None
    chosen = tuple(ip for ip in ips if family is None or ip.version == family)
    if not chosen:
        raise InputError(f"{printable(text)} has no IPv{family} address")
    return chosen


class Explainer:
    """Explains connections in one cluster; rulesets are compiled per node on demand."""

    def __init__(self, cluster: Cluster, rulesets: Callable[[str], Ruleset]) -> None:
        self.cluster = cluster
        self.ev = Evaluator(cluster)
        self._compile = rulesets
        self._rulesets: dict[str, Ruleset] = {}

    def explain(self, src: str, dst: str, port: str, family: int | None = None) -> Explained:
        """InputError for an unknown pod, a bad or unresolvable port, or no
        pair of addresses of one family; Disagreement if the tracer differs."""
        src_ips = endpoint_ips(self.cluster, src, family)
        dst_ips = endpoint_ips(self.cluster, dst, family)
        dst_pods = self._pods_named(dst) or self.ev.pods_at(dst_ips[0])
        query = resolve_port(port, dst_pods, dst)
        pairs = [(s, d) for s in src_ips for d in dst_ips if s.version == d.version]
        if not pairs:
            raise InputError(f"{printable(src)} and {printable(dst)} share no IP family")
        cases = tuple(self.case(s, d, query) for s, d in pairs)
        return Explained(src, dst, query, cases)

    def _pods_named(self, text: str) -> tuple[Pod, ...]:
        return tuple(p for p in self.cluster.pods if p.key == text)

    def case(self, src_ip: IPAddress, dst_ip: IPAddress, q: PortQuery) -> Explanation:
        """One address pair; raises Disagreement when the evaluator, this
        explanation and the tracer do not all give one verdict."""
        srcs, dsts = self.ev.pods_at(src_ip), self.ev.pods_at(dst_ip)
        verdict = self.ev.allowed(src_ip, dst_ip, q.port, q.protocol)
        egress = self.side(Direction.EGRESS, srcs, src_ip, dst_ip, dsts, q)
        ingress = self.side(Direction.INGRESS, dsts, dst_ip, src_ip, srcs, q)
        if self.ev.cluster.cluster_policies and not (src_ip == dst_ip and srcs):
            np_exempt = self.ev._exempt(src_ip, dst_ip, srcs, dsts) is not None
            egress = self._tiered(egress, srcs, dst_ip, dsts, q, np_exempt)
            ingress = self._tiered(ingress, dsts, src_ip, srcs, q, np_exempt)
        exempt = ""
        if verdict.reason.startswith(("loopback", "node traffic")):
            exempt = verdict.reason
        allowed = bool(exempt) or (egress.allowed and ingress.allowed)
        src_end = Endpoint(src_ip, tuple(p.key for p in srcs))
        dst_end = Endpoint(dst_ip, tuple(p.key for p in dsts))
        where = f"{src_end.who} -> {dst_end.who} {q}"
        if allowed != verdict.allowed:
            raise Disagreement(f"{where}: explain and evaluator disagree ({verdict.reason})")
        hops = () if src_ip == dst_ip and srcs else self.hops(srcs, dsts, src_ip, dst_ip, q)
        if hops and all(h.allowed for h in hops) != allowed:
            got = ", ".join(f"{h.node} {'accept' if h.allowed else 'drop'}" for h in hops)
            raise Disagreement(
                f"{where}: tracer and evaluator disagree: evaluator "
                f"{'allows' if allowed else 'denies'}, tracer: {got}"
            )
        return Explanation(src_end, dst_end, allowed, exempt, egress, ingress, hops)

    def side(
        self,
        direction: Direction,
        pods: tuple[Pod, ...],
        own_ip: IPAddress,
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        q: PortQuery,
    ) -> Side:
        """This direction as the evaluator judges it: per node, a group of
        claimants is isolated if any is selected; then only the rules of
        policies selecting every claimant of the group can allow."""
        # "A pod is isolated for ingress if there is any NetworkPolicy that
        # both selects the pod and has "Ingress" in its policyTypes" (and
        # likewise for egress); then only the policies' rules allow.
        subject = Endpoint(own_ip, tuple(p.key for p in pods)).who
        if not pods:
            return Side(direction, subject, False, (), True)
        dsts = peer if direction is Direction.EGRESS else pods
        groups: dict[str, list[Pod]] = {}
        for p in pods:
            groups.setdefault(p.node_name, []).append(p)
        isolating: dict[str, None] = {}
        allowed, by, misses = True, list[str](), list[Miss]()
        for group in groups.values():
            chosen = [self.ev.selecting(p, direction) for p in group]
            for pols in chosen:
                isolating.update((pol.key, None) for pol in pols)
            if not any(chosen):
                continue
            g_by, g_misses = self._group(direction, chosen, peer_ip, peer, q, dsts)
            allowed = allowed and bool(g_by)
            by += [b for b in g_by if b not in by]
            misses += g_misses
        closest = () if allowed else tuple(sorted(misses, key=lambda m: m.distance)[:MAX_CLOSEST])
        return Side(direction, subject, True, tuple(isolating), allowed, tuple(by), closest)

    def _tiered(
        self,
        side: Side,
        pods: tuple[Pod, ...],
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        q: PortQuery,
        np_exempt: bool,
    ) -> Side:
        """``side`` with the ClusterNetworkPolicy tiers (``explain_tiers``):
        what each tier did, in evaluation order; an Admin or Baseline verdict
        replaces the NetworkPolicy one, and node traffic skips NetworkPolicy
        (docs/clusternetworkpolicy.md)."""
        if not pods:
            return side
        direction = side.direction
        d, _ = self.ev.decide(pods, direction, peer_ip, peer, q.protocol, q.port, np_exempt)
        lines = tier_lines(self.ev.tiers, d, pods, direction, peer_ip, peer, q.protocol, q.port)
        if d.tier in (Decider.ADMIN, Decider.BASELINE):
            return dataclasses.replace(side, allowed=d.allowed, allowed_by=(), tiers=lines)
        if d.tier is Decider.EXEMPT:
            return dataclasses.replace(side, allowed=True, allowed_by=(), tiers=lines)
        return dataclasses.replace(side, tiers=lines)

    def _group(
        self,
        direction: Direction,
        chosen: list[list[NetworkPolicy]],
        peer_ip: IPAddress,
        peer: tuple[Pod, ...],
        q: PortQuery,
        dsts: tuple[Pod, ...],
    ) -> tuple[list[str], list[Miss]]:
        """The rules admitting the packet for one node's claimants (each
        claimant's selecting policies in ``chosen``), and the rules that did not."""
        every = set.intersection(*({pol.key for pol in c} for c in chosen))
        word = direction.value.lower()
        by, misses = [], []
        for pol in {pol.key: pol for c in chosen for pol in c}.values():
            for i, rule in enumerate(pol.rules(direction)):
                label = f"{pol.key} {word}[{i}]"
                hit = pol.key in every and self.ev.rule_matches(
                    rule, pol, peer_ip, peer, q.protocol, q.port, dsts
                )
                if hit:
                    by.append(label)
                else:
                    port = (q.protocol, q.port)
                    miss = rule_miss(self.ev, label, rule, pol, peer_ip, peer, port, dsts, every)
                    misses.append(miss)
            if not pol.rules(direction):
                why = f"no {word} rules: it isolates and admits nothing"
                misses.append(Miss(f"{pol.key} {word}", 3, (why,)))
        return by, misses

    def hops(
        self,
        srcs: tuple[Pod, ...],
        dsts: tuple[Pod, ...],
        src_ip: IPAddress,
        dst_ip: IPAddress,
        q: PortQuery,
    ) -> tuple[Hop, ...]:
        """The walk through the ruleset of each node holding a claimant of
        either address (each node enforces its own pods), the source's first;
        the packet enters the bridge from the source pod's port on its node."""
        out = []
        for node in dict.fromkeys(p.node_name for p in srcs + dsts if p.node_name):
            local = next((p for p in srcs if p.node_name == node), None)
            iif = pod_iface(local.namespace, local.name) if local else None
            if node not in self._rulesets:
                self._rulesets[node] = self._compile(node)
            t = trace(self._rulesets[node], Packet(src_ip, dst_ip, q.protocol, q.port, iif))
            out.append(Hop(node, iif, t.allowed, t.steps))
        return tuple(out)
