"""ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) -> model.

Validated as the API server validates it: the OpenAPI schema and CEL rules
of the bundle v0.2.0 CRD (experimental channel, which adds ``nodes`` and
``domainNames``).  The quoted lines are the field documentation of
``apis/v1alpha2/clusternetworkpolicy_types.go``.
"""

from __future__ import annotations

from policyc import crd_schema as s
from policyc import validate as v
from policyc.ctx import Ctx
from policyc.load import Path
from policyc.model import (
    Action,
    ClusterNetworkPolicy,
    CNPPeer,
    CNPRule,
    IPNetwork,
    NamespacedPods,
    Origin,
    Protocol,
    ProtocolPort,
    Subject,
    Tier,
)
from policyc.parse_policy import policy_mode

SPEC_FIELDS = ("tier", "priority", "subject", "ingress", "egress")
SUBJECT_FIELDS = ("namespaces", "pods")
INGRESS_PEER_FIELDS = ("namespaces", "pods")
EGRESS_PEER_FIELDS = ("namespaces", "pods", "nodes", "networks", "domainNames")
PROTOCOL_FIELDS = ("tcp", "udp", "sctp", "destinationNamedPort")
MAX_RULES = 25  # "A maximum of 25 rules is allowed in this block."
MAX_PEERS = 25
UNSUPPORTED_DOMAIN_NAMES = (
    "Unsupported value: domainNames peers are not supported by policyc "
    "(DNS answers are not tracked); use networks (docs/clusternetworkpolicy.md)"
)
NAMED_PORT_CEL = (
    "Invalid value: networks/nodes/domainNames peer cannot be set with namedPorts "
    "since there are no namedPorts for networks/nodes/domainNames"
)


def namespaced_pods(ctx: Ctx, path: Path) -> NamespacedPods:
    """ "NamespaceSelector follows standard label selector semantics; if empty,
    it selects all Namespaces."  "PodSelector ... +required"."""
    ctx.strict(path, ("namespaceSelector", "podSelector"))
    s.required(ctx, (*path, "podSelector"))
    return NamespacedPods(
        s.selector(ctx, (*path, "namespaceSelector")), s.selector(ctx, (*path, "podSelector"))
    )


def subject(ctx: Ctx, path: Path) -> Subject:
    """ "Subject defines the pods to which this ClusterNetworkPolicy applies.
    Exactly one field must be set." (maxProperties/minProperties 1)."""
    if not s.required(ctx, path):
        return Subject()
    which = s.one_of(ctx, path, SUBJECT_FIELDS)
    if which == "namespaces":
        return Subject(namespaces=s.selector(ctx, (*path, "namespaces")))
    if which == "pods":
        return Subject(pods=namespaced_pods(ctx, (*path, "pods")))
    return Subject()


def networks(ctx: Ctx, path: Path) -> tuple[IPNetwork, ...]:
    """ "Networks can have up to 25 CIDRs specified." (minItems 1, listType set)."""
    out: list[IPNetwork] = []
    for i, _ in enumerate(s.items(ctx, path, 1, 25)):
        net = s.cidr(ctx, (*path, i))
        if net is not None and net not in out:
            out.append(net)
    return tuple(out)


def peer(ctx: Ctx, path: Path, egress: bool) -> CNPPeer | None:
    """ "Exactly one of the fields must be set for a given peer"."""
    return peer_of(ctx, path, EGRESS_PEER_FIELDS if egress else INGRESS_PEER_FIELDS)


def peer_of(ctx: Ctx, path: Path, fields: tuple[str, ...]) -> CNPPeer | None:
    """The peer at ``path``, one of ``fields`` set (v1alpha2 and v1alpha1 share it)."""
    which = s.one_of(ctx, path, fields)
    if which == "namespaces":
        return CNPPeer(namespaces=s.selector(ctx, (*path, which)))
    if which == "pods":
        return CNPPeer(pods=namespaced_pods(ctx, (*path, which)))
    if which == "nodes":
        # "It selects the nodeIPs as the peer type by matching on the IPs
        # present in the node.Status.Addresses field of the node."
        return CNPPeer(nodes=s.selector(ctx, (*path, which)))
    if which == "networks":
        nets = networks(ctx, (*path, which))
        return CNPPeer(networks=nets) if nets else None
    if which == "domainNames":
        # "DomainNames provides a way to specify domain names as peers."
        # policyc does not track DNS answers: refused, never ignored.
        s.items(ctx, (*path, which), 1, 25)
        ctx.err((*path, which), UNSUPPORTED_DOMAIN_NAMES)
    return None


def port(ctx: Ctx, path: Path, proto: Protocol) -> ProtocolPort | None:
    """``tcp``/``udp``/``sctp``: "DestinationPort for the match." (minProperties
    1); "Port matches on port number. You must specify either Port or Range."."""
    ctx.strict(path, ("destinationPort",))
    if ctx.get(path, dict) is None:
        return None
    if not s.required(ctx, (*path, "destinationPort")):
        return None
    dest = (*path, "destinationPort")
    which = s.one_of(ctx, dest, ("number", "range"))
    if which == "number":
        n = s.integer(ctx, (*dest, "number"), 1, 65535)
        return None if n is None else ProtocolPort(proto, n, n)
    if which == "range":
        rng = (*dest, "range")
        ctx.strict(rng, ("start", "end"))
        ok = s.required(ctx, (*rng, "start")) & s.required(ctx, (*rng, "end"))
        start = s.integer(ctx, (*rng, "start"), 1, 65535)
        end = s.integer(ctx, (*rng, "end"), 1, 65535)
        if not ok or start is None or end is None:
            return None
        # CEL: rule="self.start < self.end", message="Start port must be less than End port"
        if not start < end:
            ctx.err(rng, "Invalid value: Start port must be less than End port")
            return None
        return ProtocolPort(proto, start, end)
    return None


def protocol(ctx: Ctx, path: Path) -> ProtocolPort | None:
    """ "ClusterNetworkPolicyProtocol describes additional protocol-specific
    match rules. Exactly one field must be set."."""
    which = s.one_of(ctx, path, PROTOCOL_FIELDS)
    if which == "destinationNamedPort":
        name = ctx.get((*path, which), str, "")
        for msg in v.port_name(name):
            ctx.err((*path, which), f"invalid port name {name!r}: {msg}")
        return ProtocolPort(None, named=name)
    if which is not None:
        return port(ctx, (*path, which), Protocol(which.upper()))
    return None


def rule(ctx: Ctx, path: Path, egress: bool) -> CNPRule | None:
    """One ingress or egress rule: ``name`` (maxLength 100), ``action``,
    ``from``/``to`` (minItems 1, maxItems 25), ``protocols`` (1..25)."""
    peers_field = "to" if egress else "from"
    ctx.strict(path, ("name", "action", peers_field, "protocols"))
    name = s.max_length(ctx, (*path, "name"), 100)
    action = s.enum(ctx, (*path, "action"), [a.value for a in Action])
    s.required(ctx, (*path, peers_field))
    peers_raw = s.items(ctx, (*path, peers_field), 1, MAX_PEERS)
    peers = [peer(ctx, (*path, peers_field, i), egress) for i, _ in enumerate(peers_raw)]
    protos_raw = s.items(ctx, (*path, "protocols"), 1, 25)
    protos = [protocol(ctx, (*path, "protocols", i)) for i, _ in enumerate(protos_raw)]
    if egress and _cel_named_port(ctx, path, peers_field):
        ctx.err(path, NAMED_PORT_CEL)
    if action is None:
        return None
    return CNPRule(
        name,
        Action(action),
        tuple(p for p in peers if p is not None),
        tuple(p for p in protos if p is not None) if protos_raw else None,
    )


def _cel_named_port(ctx: Ctx, path: Path, peers_field: str, ports: str = "protocols") -> bool:
    """The egress rule's CEL rule is broken: ``!(self.to.exists(peer,
    has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) &&
    has(self.protocols) && self.protocols.exists(protocol,
    has(protocol.destinationNamedPort)))``."""
    named_key = "destinationNamedPort" if ports == "protocols" else "namedPort"
    peers = ctx.get((*path, peers_field), list, [])
    protos = ctx.get((*path, ports), list, [])
    no_named = ("networks", "nodes", "domainNames")
    return any(isinstance(p, dict) and any(k in p for k in no_named) for p in peers) and any(
        isinstance(p, dict) and named_key in p for p in protos
    )


def rules(ctx: Ctx, field: str, egress: bool, limit: int = MAX_RULES) -> tuple[CNPRule, ...]:
    """``spec.ingress`` or ``spec.egress`` (+kubebuilder:validation:MaxItems=limit)."""
    raw = s.items(ctx, ("spec", field), 0, limit)
    out = [rule(ctx, ("spec", field, i), egress) for i, _ in enumerate(raw)]
    return tuple(r for r in out if r is not None)


def parse_cnp(ctx: Ctx) -> ClusterNetworkPolicy:
    """A ClusterNetworkPolicy object -> model; errors on ``ctx``."""
    name = s.metadata(ctx)
    ctx.strict(("spec",), SPEC_FIELDS)
    s.required(ctx, ("spec", "tier"))
    tier = s.enum(ctx, ("spec", "tier"), [t.value for t in Tier])
    # "Priority is a value from 0 to 1000" (Minimum=0, Maximum=1000)
    s.required(ctx, ("spec", "priority"))
    priority = s.integer(ctx, ("spec", "priority"), 0, 1000)
    return ClusterNetworkPolicy(
        name=name,
        tier=Tier(tier or Tier.ADMIN),
        priority=priority or 0,
        subject=subject(ctx, ("spec", "subject")),
        ingress=rules(ctx, "ingress", egress=False),
        egress=rules(ctx, "egress", egress=True),
        origin=Origin.CNP,
        mode=policy_mode(ctx),
    )
