"""v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy -> the
ClusterNetworkPolicy model.

Each is validated with its own schema (``apis/v1alpha1`` of
kubernetes-sigs/network-policy-api, bundle v0.2.0) and then converted:
``Allow`` becomes ``Accept``, a BaselineAdminNetworkPolicy becomes the
Baseline tier, and ``ports`` become protocols.  The quoted lines are the
v1alpha1 field documentation.
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
    Origin,
    Protocol,
    ProtocolPort,
    Subject,
    Tier,
)
from policyc.parse_cnp import (
    INGRESS_PEER_FIELDS,
    NAMED_PORT_CEL,
    _cel_named_port,
    peer_of,
    subject,
)
from policyc.parse_policy import policy_mode

MAX_RULES = 100  # "A total of 100 rules will be allowed in each ANP instance."
PORT_FIELDS = ("portNumber", "namedPort", "portRange")
BANP_NAME_CEL = (
    'Invalid value: Only one baseline admin network policy with metadata.name="default" '
    "can be created in the cluster"
)
# "If a BaselineAdminNetworkPolicy is converted, it sits behind every
# ClusterNetworkPolicy of the Baseline tier" (docs/clusternetworkpolicy.md).
BANP_PRIORITY = 1000
_ACTIONS = {"Allow": Action.ACCEPT, "Deny": Action.DENY, "Pass": Action.PASS}


def _protocol(ctx: Ctx, path: Path) -> Protocol | None:
    """ "Protocol is the network protocol (TCP, UDP, or SCTP) which traffic must
    match. If not specified, this field defaults to TCP." (+kubebuilder:default=TCP)."""
    text = ctx.get((*path, "protocol"), str, "TCP")
    if text not in Protocol.__members__:
        ctx.err((*path, "protocol"), f'unsupported value {text!r}: must be "TCP", "UDP" or "SCTP"')
        return None
    return Protocol(text)


def port(ctx: Ctx, path: Path) -> ProtocolPort | None:
    """ "AdminNetworkPolicyPort describes how to select network ports on pod(s).
    Exactly one field must be set."  -> one protocols entry."""
    which = s.one_of(ctx, path, PORT_FIELDS)
    sub = (*path, str(which))
    if which == "namedPort":
        name = ctx.get(sub, str, "")
        for msg in v.port_name(name):
            ctx.err(sub, f"invalid port name {name!r}: {msg}")
        return ProtocolPort(None, named=name)
    if which == "portNumber":
        ctx.strict(sub, ("protocol", "port"))
        proto = _protocol(ctx, sub)
        ok = s.required(ctx, (*sub, "port"))
        n = s.integer(ctx, (*sub, "port"), 1, 65535)
        return ProtocolPort(proto, n, n) if ok and proto and n is not None else None
    if which == "portRange":
        # "Start defines a network port that is the start of a port range, the
        # Start value must be less than End." (no CEL rule enforces it in
        # v1alpha1: an empty range is accepted and matches nothing).
        ctx.strict(sub, ("protocol", "start", "end"))
        proto = _protocol(ctx, sub)
        ok = s.required(ctx, (*sub, "start")) & s.required(ctx, (*sub, "end"))
        start = s.integer(ctx, (*sub, "start"), 1, 65535)
        end = s.integer(ctx, (*sub, "end"), 1, 65535)
        if ok and proto and start is not None and end is not None:
            return ProtocolPort(proto, start, end)
    return None


def peer(ctx: Ctx, path: Path, egress: bool, banp: bool) -> CNPPeer | None:
    """A v1alpha1 peer: namespaces or pods, and for egress nodes or networks
    (and domainNames on AdminNetworkPolicy only)."""
    fields: tuple[str, ...] = INGRESS_PEER_FIELDS
    if egress:
        fields = ("namespaces", "pods", "nodes", "networks")
        fields = fields if banp else (*fields, "domainNames")
    return peer_of(ctx, path, fields)


def rule(ctx: Ctx, path: Path, egress: bool, banp: bool) -> CNPRule | None:
    """One v1alpha1 rule: ``name`` (maxLength 100), ``action`` (ANP: "Allow",
    "Deny", "Pass"; BANP: "Allow", "Deny"), peers (1..100), ``ports`` (1..100)."""
    peers_field = "to" if egress else "from"
    ctx.strict(path, ("name", "action", peers_field, "ports"))
    name = s.max_length(ctx, (*path, "name"), 100)
    action = s.enum(ctx, (*path, "action"), ("Allow", "Deny") if banp else tuple(_ACTIONS))
    s.required(ctx, (*path, peers_field))
    peers_raw = s.items(ctx, (*path, peers_field), 1, 100)
    peers = [peer(ctx, (*path, peers_field, i), egress, banp) for i, _ in enumerate(peers_raw)]
    ports_raw = s.items(ctx, (*path, "ports"), 1, 100)
    ports = [port(ctx, (*path, "ports", i)) for i, _ in enumerate(ports_raw)]
    if egress and _cel_named_port(ctx, path, peers_field, "ports"):
        ctx.err(path, NAMED_PORT_CEL)
    if action is None:
        return None
    return CNPRule(
        name,
        _ACTIONS[action],
        tuple(p for p in peers if p is not None),
        tuple(p for p in ports if p is not None) if ports_raw else None,
    )


def _rules(ctx: Ctx, field: str, egress: bool, banp: bool) -> tuple[CNPRule, ...]:
    raw = s.items(ctx, ("spec", field), 0, MAX_RULES)
    out = [rule(ctx, ("spec", field, i), egress, banp) for i, _ in enumerate(raw)]
    return tuple(r for r in out if r is not None)


def parse_anp(ctx: Ctx) -> ClusterNetworkPolicy:
    """An AdminNetworkPolicy -> an Admin-tier ClusterNetworkPolicy."""
    name = s.metadata(ctx)
    ctx.strict(("spec",), ("priority", "subject", "ingress", "egress"))
    # "Priority is a value from 0 to 1000." (Minimum=0, Maximum=1000)
    s.required(ctx, ("spec", "priority"))
    priority = s.integer(ctx, ("spec", "priority"), 0, 1000)
    return ClusterNetworkPolicy(
        name=name,
        tier=Tier.ADMIN,
        priority=priority or 0,
        subject=subject(ctx, ("spec", "subject")),
        ingress=_rules(ctx, "ingress", False, False),
        egress=_rules(ctx, "egress", True, False),
        origin=Origin.ANP,
        mode=policy_mode(ctx),
    )


def parse_banp(ctx: Ctx) -> ClusterNetworkPolicy:
    """A BaselineAdminNetworkPolicy -> a Baseline-tier ClusterNetworkPolicy.

    CEL: ``self.metadata.name == 'default'``, "Only one baseline admin network
    policy with metadata.name="default" can be created in the cluster"."""
    name = s.metadata(ctx)
    if name and name != "default":
        ctx.err(("metadata", "name"), BANP_NAME_CEL)
    ctx.strict(("spec",), ("subject", "ingress", "egress"))
    subj: Subject = subject(ctx, ("spec", "subject"))
    return ClusterNetworkPolicy(
        name=name,
        tier=Tier.BASELINE,
        priority=BANP_PRIORITY,
        subject=subj,
        ingress=_rules(ctx, "ingress", False, True),
        egress=_rules(ctx, "egress", True, True),
        origin=Origin.BANP,
        mode=policy_mode(ctx),
    )
