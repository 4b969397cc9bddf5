"""RawObject -> model, validating as the API server would.

Errors name the file, line and column, the object and the field path, and
are all collected before anything is returned: nothing is half-read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from policyc import validate as v
from policyc.ctx import Ctx
from policyc.errors import InputError, InputErrors
from policyc.kinds import Key, Kind, Model
from policyc.load import Path, RawObject
from policyc.model import (
    Cluster,
    ClusterNetworkPolicy,
    ContainerPort,
    IPAddress,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    Protocol,
    labels_of,
)
from policyc.parse_anp import parse_anp, parse_banp
from policyc.parse_cnp import parse_cnp
from policyc.parse_policy import parse_policy

KNOWN = {
    "NetworkPolicy": "networking.k8s.io/v1",
    "Namespace": "v1",
    "Pod": "v1",
    "Node": "v1",
    "ClusterNetworkPolicy": "policy.networking.k8s.io/v1alpha2",
    "AdminNetworkPolicy": "policy.networking.k8s.io/v1alpha1",
    "BaselineAdminNetworkPolicy": "policy.networking.k8s.io/v1alpha1",
}
# The readers of the policy.networking.k8s.io kinds (model: policyc.model).
CLUSTER_READERS: dict[str, Callable[[Ctx], ClusterNetworkPolicy]] = {
    "ClusterNetworkPolicy": parse_cnp,
    "AdminNetworkPolicy": parse_anp,
    "BaselineAdminNetworkPolicy": parse_banp,
}


def parse_namespace(ctx: Ctx) -> Namespace:
    name = ctx.name(v.dns1123_label)
    labels = ctx.labels(("metadata", "labels"))
    # The API server sets this immutable label on every namespace (since 1.21).
    labels["kubernetes.io/metadata.name"] = name
    return Namespace(name, labels_of(labels))


def _ip(ctx: Ctx, path: Path) -> IPAddress | None:
    text = ctx.get(path, str)
    if text is None:
        return None
    ip, msg = v.parse_ip(text)
    if ip is None:
        ctx.err(path, msg)
    return ip


def _family(ip: IPAddress) -> int:
    """4 or 6 as Kubernetes counts it: Go's net.IP reads ::ffff:a.b.c.d as IPv4."""
    return 4 if ip.version == 4 or getattr(ip, "ipv4_mapped", None) else 6


def _pod_ips(ctx: Ctx) -> list[IPAddress]:
    """status.podIPs, else status.podIP.  The API: "podIPs ... may specify no
    more than one IP for each IP family", and where podIP and podIPs[0]
    differ the v1 conversion keeps podIP; we refuse both rather than guess."""
    ips: list[IPAddress] = []
    for i, _ in enumerate(ctx.get(("status", "podIPs"), list, [])):
        ip = _ip(ctx, ("status", "podIPs", i, "ip"))
        if ip is not None:
            ips.append(ip)
    if len({_family(ip) for ip in ips}) < len(ips):
        ctx.err(("status", "podIPs"), "may specify no more than one IP for each IP family")
    single = _ip(ctx, ("status", "podIP")) if ctx.get(("status", "podIP"), str) else None
    if single is not None and ips and single != ips[0]:
        ctx.err(("status", "podIP"), f"must equal status.podIPs[0].ip ({ips[0]})")
    if not ips and single is not None:
        ips = [single]
    return list(dict.fromkeys(ips))


def parse_pod(ctx: Ctx) -> Pod | None:
    name = ctx.name(v.dns1123_subdomain)
    ns = ctx.namespace()
    labels = ctx.labels(("metadata", "labels"))
    ips = _pod_ips(ctx)
    ports: list[ContainerPort] = []
    for section in ("initContainers", "containers"):
        for c, _ in enumerate(ctx.get(("spec", section), list, [])):
            for p, _ in enumerate(ctx.get(("spec", section, c, "ports"), list, [])):
                port = _container_port(ctx, ("spec", section, c, "ports", p))
                if port is not None:
                    ports.append(port)
    phase = ctx.get(("status", "phase"), str, "")
    if phase in ("Succeeded", "Failed"):
        # A finished pod's IPs may already belong to another pod.
        return None
    return Pod(
        namespace=ns,
        name=name,
        labels=labels_of(labels),
        node_name=ctx.get(("spec", "nodeName"), str, ""),
        ips=tuple(ips),
        ports=tuple(ports),
        host_network=bool(ctx.get(("spec", "hostNetwork"), bool, False)),
    )


def _container_port(ctx: Ctx, path: Path) -> ContainerPort | None:
    number = ctx.get((*path, "containerPort"), int)
    if number is None:
        ctx.err((*path, "containerPort"), "containerPort is required")
        return None
    for msg in v.port_number(number):
        ctx.err((*path, "containerPort"), msg)
    proto = ctx.get((*path, "protocol"), str, "TCP")
    if proto not in Protocol.__members__:
        ctx.err((*path, "protocol"), f'unsupported value {proto!r}: must be "TCP", "UDP" or "SCTP"')
        return None
    name = ctx.get((*path, "name"), str, "")
    for msg in v.port_name(name) if name else []:
        ctx.err((*path, "name"), f"invalid port name {name!r}: {msg}")
    return ContainerPort(name, number, Protocol(proto))


def parse_node(ctx: Ctx) -> Node:
    name = ctx.name(v.dns1123_subdomain)
    labels = ctx.labels(("metadata", "labels"))
    addrs: list[IPAddress] = []
    for i, _ in enumerate(ctx.get(("status", "addresses"), list, [])):
        kind = ctx.get(("status", "addresses", i, "type"), str, "")
        if kind in ("InternalIP", "ExternalIP"):
            ip = _ip(ctx, ("status", "addresses", i, "address"))
            if ip is not None and ip not in addrs:
                addrs.append(ip)
    cidrs = []
    texts = list(ctx.get(("spec", "podCIDRs"), list, []))
    paths: list[Path] = [("spec", "podCIDRs", i) for i in range(len(texts))]
    if not texts and ctx.get(("spec", "podCIDR"), str):
        paths = [("spec", "podCIDR")]
    for path in paths:
        text = ctx.get(path, str)
        if text is None:
            continue
        net, msg = v.parse_cidr(text)
        if net is None:
            ctx.err(path, msg)
        elif net not in cidrs:
            cidrs.append(net)
    return Node(name, tuple(addrs), tuple(cidrs), labels_of(labels))


Warn = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _check_kind(ctx: Ctx, warn: Warn) -> bool:
    """False (after a warning) for a kind policyc does not read; errors go to ``ctx``."""
    raw = ctx.raw
    kind, api = raw.kind, raw.data.get("apiVersion")
    if not kind:
        ctx.err(("kind",), "kind is required")
    elif kind not in KNOWN:
        warn(f"{raw.loc(())}: {raw.ident}: kind {kind!r} is not used by policyc, ignored")
        return False
    elif api != KNOWN[kind]:
        ctx.err(("apiVersion",), f"unsupported apiVersion {api!r} for {kind}: want {KNOWN[kind]!r}")
    return True


def read_one(raw: RawObject, warn: Warn | None = None) -> Model | None:
    """One API object -> its validated model object.

    None for an object policyc does not use: a kind it does not read (after a
    ``warn``ing) or a finished pod.  Raises InputErrors with every located
    error of the object (``file:line:col: Kind ns/name: field: message``);
    the object is then not used at all.
    """
    ctx = Ctx(raw)
    if not _check_kind(ctx, warn or _stderr) or ctx.errors:
        if ctx.errors:
            raise InputErrors(ctx.errors)
        return None
    kind = raw.kind
    obj: Model | None
    if kind == "Namespace":
        obj = parse_namespace(ctx)
    elif kind == "Node":
        obj = parse_node(ctx)
    elif kind == "Pod":
        obj = parse_pod(ctx)
    elif kind in CLUSTER_READERS:
        obj = CLUSTER_READERS[kind](ctx)
    else:
        obj = parse_policy(ctx)
    if ctx.errors:
        raise InputErrors(ctx.errors)
    return obj


def read_all(raws: Iterable[RawObject], warn: Warn | None = None) -> list[Model]:
    """Every object through :func:`read_one`, in input order; raises InputErrors
    with the errors of all objects, and for an object defined twice."""
    errors: list[InputError] = []
    seen: dict[Key, RawObject] = {}
    out: list[Model] = []
    for raw in raws:
        known = raw.kind in KNOWN and raw.data.get("apiVersion") == KNOWN[raw.kind]
        # An object without a namespace lands in "default", as kubectl puts it.
        key = Key.of_api(Kind(raw.kind), raw.data) if known else None
        try:
            obj = read_one(raw, warn)
        except InputErrors as exc:
            errors.extend(exc.errors)
            if key is not None:
                seen.setdefault(key, raw)  # a later copy is still a duplicate
            continue
        if key is None:
            continue
        if key in seen:
            errors.append(
                InputError(
                    f"duplicate object, first defined at {seen[key].loc(())}",
                    loc=raw.loc(()),
                    obj=raw.ident,
                )
            )
            continue
        seen[key] = raw
        if obj is not None:
            out.append(obj)
    if errors:
        raise InputErrors(errors)
    return out


def build_cluster(raws: Iterable[RawObject], warn: Warn | None = None) -> Cluster:
    """Validate every object (:func:`read_all`) and build the Cluster; raise
    InputErrors on any error."""
    objs = read_all(raws, warn)
    namespaces = {o.name: o for o in objs if isinstance(o, Namespace)}
    nodes = {o.name: o for o in objs if isinstance(o, Node)}
    pods = sorted((o for o in objs if isinstance(o, Pod)), key=lambda p: (p.namespace, p.name))
    policies = sorted(
        (o for o in objs if isinstance(o, NetworkPolicy)), key=lambda p: (p.namespace, p.name)
    )
    tiers = sorted((o for o in objs if isinstance(o, ClusterNetworkPolicy)), key=lambda p: p.order)
    return Cluster(
        namespaces=dict(sorted(namespaces.items())),
        pods=tuple(pods),
        nodes=dict(sorted(nodes.items())),
        policies=tuple(policies),
        cluster_policies=tuple(tiers),
    )
