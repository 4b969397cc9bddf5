"""NetworkPolicy (networking.k8s.io/v1) -> model, with the API server's validation.

The quoted lines are from the NetworkPolicySpec API reference.
"""

from __future__ import annotations

from policyc import validate as v
from policyc.ctx import Ctx
from policyc.load import Path
from policyc.model import (
    MODE_ANNOTATION,
    Direction,
    IPBlock,
    IPNetwork,
    NetworkPolicy,
    Op,
    Peer,
    PolicyMode,
    PolicyRule,
    PortSpec,
    Protocol,
    Requirement,
    Selector,
)

# kubectl's strict field validation rejects unknown fields anywhere in the
# object; ``status`` is tolerated because 1.24-1.27 servers print ``status: {}``.
TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
META_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
SPEC_FIELDS = ("podSelector", "policyTypes", "ingress", "egress")
PEER_FIELDS = ("podSelector", "namespaceSelector", "ipBlock")
PORT_FIELDS = ("protocol", "port", "endPort")
SELECTOR_FIELDS = ("matchLabels", "matchExpressions")


def parse_selector(ctx: Ctx, path: Path) -> Selector:
    ctx.strict(path, SELECTOR_FIELDS)
    reqs = [
        Requirement(key, Op.IN, (value,))
        for key, value in sorted(ctx.labels((*path, "matchLabels")).items())
    ]
    for i, _ in enumerate(ctx.get((*path, "matchExpressions"), list, [])):
        req = _requirement(ctx, (*path, "matchExpressions", i))
        if req is not None:
            reqs.append(req)
    return Selector(tuple(sorted(reqs, key=lambda r: (r.key, r.op, r.values))))


def _requirement(ctx: Ctx, path: Path) -> Requirement | None:
    ctx.strict(path, ("key", "operator", "values"))
    key = ctx.get((*path, "key"), str, "")
    if not key:
        ctx.err((*path, "key"), "key is required")
    for msg in v.qualified_name(key) if key else []:
        ctx.err((*path, "key"), f"invalid label key {key!r}: {msg}")
    op_text = ctx.get((*path, "operator"), str, "")
    if op_text not in {op.value for op in Op}:
        ctx.err(
            (*path, "operator"),
            f'unsupported value {op_text!r}: must be "In", "NotIn", "Exists" or "DoesNotExist"',
        )
        return None
    op = Op(op_text)
    values = []
    for i, value in enumerate(ctx.get((*path, "values"), list, [])):
        if not isinstance(value, str):
            ctx.err((*path, "values", i), "must be a string")
            continue
        for msg in v.label_value(value):
            ctx.err((*path, "values", i), f"invalid label value {value!r}: {msg}")
        values.append(value)
    # "If the operator is In or NotIn, the values array must be non-empty. If the
    # operator is Exists or DoesNotExist, the values array must be empty."
    if op in (Op.IN, Op.NOT_IN) and not values:
        ctx.err((*path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
    if op in (Op.EXISTS, Op.DOES_NOT_EXIST) and values:
        ctx.err(
            (*path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        )
    return Requirement(key, op, tuple(sorted(set(values))))


def _ip_block(ctx: Ctx, path: Path) -> IPBlock | None:
    ctx.strict(path, ("cidr", "except"))
    text = ctx.get((*path, "cidr"), str, "")
    if not text:
        ctx.err((*path, "cidr"), "cidr is required")
        return None
    cidr, msg = v.parse_cidr(text)
    if cidr is None:
        ctx.err((*path, "cidr"), msg)
        return None
    excepts: list[IPNetwork] = []
    for i, _ in enumerate(ctx.get((*path, "except"), list, [])):
        epath = (*path, "except", i)
        etext = ctx.get(epath, str)
        if etext is None:
            continue
        exc, msg = v.parse_cidr(etext)
        if exc is None:
            ctx.err(epath, msg)
        elif (
            exc.version != cidr.version
            or not exc.subnet_of(cidr)  # type: ignore[arg-type]
            or exc.prefixlen <= cidr.prefixlen
        ):
            # "Except is a slice of CIDRs that should not be included within an
            # IPBlock"; the API server requires each to be a strict subset.
            ctx.err(epath, f"{etext!r} must be a strict subset of `cidr` {text!r}")
        else:
            excepts.append(exc)
    return IPBlock(
        cidr, tuple(sorted(set(excepts), key=lambda n: (n.network_address, n.prefixlen)))
    )


def _peer(ctx: Ctx, path: Path) -> Peer | None:
    ctx.strict(path, PEER_FIELDS)
    data = ctx.get(path, dict, {})
    pod_sel = parse_selector(ctx, (*path, "podSelector")) if "podSelector" in data else None
    ns_sel = (
        parse_selector(ctx, (*path, "namespaceSelector")) if "namespaceSelector" in data else None
    )
    block = _ip_block(ctx, (*path, "ipBlock")) if "ipBlock" in data else None
    if "ipBlock" in data and (pod_sel is not None or ns_sel is not None):
        ctx.err(path, "may not specify both ipBlock and another peer")
        return None
    if pod_sel is None and ns_sel is None and "ipBlock" not in data:
        ctx.err(path, "must specify a peer")
        return None
    if "ipBlock" in data and block is None:
        return None
    return Peer(pod_selector=pod_sel, namespace_selector=ns_sel, ip_block=block)


def _port(ctx: Ctx, path: Path) -> PortSpec | None:
    ctx.strict(path, PORT_FIELDS)
    # "The protocol (TCP, UDP, or SCTP) which traffic must match. If not
    # specified, this field defaults to TCP."
    proto = ctx.get((*path, "protocol"), str, "TCP")
    if proto not in Protocol.__members__:
        ctx.err((*path, "protocol"), f'unsupported value {proto!r}: must be "TCP", "UDP" or "SCTP"')
        return None
    port = ctx.get((*path, "port"), (int, str))
    if isinstance(port, bool):
        ctx.err((*path, "port"), "must be an integer or a port name")
        return None
    if isinstance(port, int):
        for msg in v.port_number(port):
            ctx.err((*path, "port"), msg)
    elif isinstance(port, str):
        for msg in v.port_name(port):
            ctx.err((*path, "port"), f"invalid port name {port!r}: {msg}")
    end = ctx.get((*path, "endPort"), int)
    if end is not None:
        # "endPort indicates that the range of ports from port to endPort if
        # set, inclusive, should be allowed by the policy. This field cannot be
        # defined if the port field is not defined or if the port field is
        # defined as a named (string) port. The endPort must be equal or
        # greater than port."
        if port is None:
            ctx.err((*path, "endPort"), "may not be specified when `port` is not specified")
        elif isinstance(port, str):
            ctx.err((*path, "endPort"), "may not be specified when `port` is non-numeric")
        else:
            if end < port:
                ctx.err((*path, "endPort"), "must be greater than or equal to `port`")
            for msg in v.port_number(end):
                ctx.err((*path, "endPort"), msg)
    return PortSpec(Protocol(proto), port, end)


def _rule(ctx: Ctx, path: Path, peers_field: str) -> PolicyRule:
    ctx.strict(path, (peers_field, "ports"))
    peers_raw = ctx.get((*path, peers_field), list, [])
    peers = [_peer(ctx, (*path, peers_field, i)) for i, _ in enumerate(peers_raw)]
    ports_raw = ctx.get((*path, "ports"), list, [])
    ports = [_port(ctx, (*path, "ports", i)) for i, _ in enumerate(ports_raw)]
    # "If this field is empty or missing, this rule matches all sources
    # (traffic not restricted by source)"; likewise all ports.
    return PolicyRule(
        peers=tuple(p for p in peers if p is not None) if peers_raw else None,
        ports=tuple(p for p in ports if p is not None) if ports_raw else None,
    )


def _policy_types(ctx: Ctx, egress_rules: list[object]) -> frozenset[Direction]:
    types = ctx.get(("spec", "policyTypes"), list)
    if not types:
        # "If this field is not specified, it will default based on the
        # existence of ingress or egress rules; policies that contain an egress
        # section are assumed to affect egress, and all policies (whether or not
        # they contain an ingress section) are assumed to affect ingress."
        return frozenset({Direction.INGRESS, *([Direction.EGRESS] if egress_rules else [])})
    if len(types) > 2:
        # The API server checks only the count: a duplicate within two is accepted.
        ctx.err(("spec", "policyTypes"), "may not specify more than two policyTypes")
        return frozenset()
    out: set[Direction] = set()
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            ctx.err(
                ("spec", "policyTypes", i),
                f'unsupported value {t!r}: must be "Ingress" or "Egress"',
            )
        else:
            out.add(Direction(t))
    return frozenset(out)


def parse_policy(ctx: Ctx) -> NetworkPolicy:
    ctx.strict((), TOP_FIELDS)
    ctx.strict(("metadata",), META_FIELDS)
    name = ctx.name(v.dns1123_subdomain)
    ns = ctx.namespace()
    ctx.labels(("metadata", "labels"))
    # spec is optional: without it the policy selects every pod of its
    # namespace and allows no ingress, exactly like ``spec: {}``.
    ctx.strict(("spec",), SPEC_FIELDS)
    selector = parse_selector(ctx, ("spec", "podSelector"))
    ingress_raw = ctx.get(("spec", "ingress"), list, [])
    egress_raw = ctx.get(("spec", "egress"), list, [])
    ingress = tuple(_rule(ctx, ("spec", "ingress", i), "from") for i, _ in enumerate(ingress_raw))
    egress = tuple(_rule(ctx, ("spec", "egress", i), "to") for i, _ in enumerate(egress_raw))
    return NetworkPolicy(
        namespace=ns,
        name=name,
        pod_selector=selector,
        policy_types=_policy_types(ctx, egress_raw),
        ingress=ingress,
        egress=egress,
        mode=policy_mode(ctx),
    )


def policy_mode(ctx: Ctx) -> PolicyMode:
    """``policyc.io/mode``: ``enforce`` (the default) or ``audit``
    (docs/observability.md); any other value is an error, not a silent enforce."""
    path = ("metadata", "annotations", MODE_ANNOTATION)
    raw = ctx.get(path, str, PolicyMode.ENFORCE.value)
    if raw not in {m.value for m in PolicyMode}:
        ctx.err(path, f"unknown mode {raw!r}: want enforce or audit")
        return PolicyMode.ENFORCE
    return PolicyMode(raw)
