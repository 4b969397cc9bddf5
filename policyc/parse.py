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
from policyc.load import Path, RawObject
from policyc.model import (
    Cluster,
    ContainerPort,
    IPAddress,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    Protocol,
    labels_of,
)
from policyc.parse_policy import parse_policy

KNOWN = {
    "NetworkPolicy": "networking.k8s.io/v1",
    "Namespace": "v1",
    "Pod": "v1",
    "Node": "v1",
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


def parse_pod(ctx: Ctx) -> Pod | None:
    name = ctx.name(v.dns1123_subdomain)
    ns = ctx.namespace()
    labels = ctx.labels(("metadata", "labels"))
    ips: list[IPAddress] = []
    for i, _ in enumerate(ctx.get(("status", "podIPs"), list, [])):
        ip = _ip(ctx, ("status", "podIPs", i, "ip"))
        if ip is not None and ip not in ips:
            ips.append(ip)
    if not ips and ctx.get(("status", "podIP"), str):
        ip = _ip(ctx, ("status", "podIP"))
        ips = [ip] if ip else []
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
    ctx.labels(("metadata", "labels"))
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
    return Node(name, tuple(addrs), tuple(cidrs))


def _ns_name(raw: RawObject) -> str:
    meta = raw.data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def build_cluster(raws: Iterable[RawObject], warn: Callable[[str], None] | None = None) -> Cluster:
    """Validate every object and build the Cluster; raise InputErrors on any error."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    errors: list[InputError] = []
    seen: dict[tuple[str, str], RawObject] = {}
    namespaces: dict[str, Namespace] = {}
    nodes: dict[str, Node] = {}
    pods: list[Pod] = []
    policies: list[NetworkPolicy] = []
    for raw in raws:
        ctx = Ctx(raw)
        kind, api = raw.kind, raw.data.get("apiVersion")
        if not kind:
            ctx.err(("kind",), "kind is required")
        elif kind not in KNOWN:
            warn(f"{raw.loc(())}: {raw.ident}: kind {kind!r} is not used by policyc, ignored")
            continue
        elif api != KNOWN[kind]:
            ctx.err(
                ("apiVersion",), f"unsupported apiVersion {api!r} for {kind}: want {KNOWN[kind]!r}"
            )
        if ctx.errors:
            errors.extend(ctx.errors)
            continue
        if kind == "Namespace":
            ns = parse_namespace(ctx)
            namespaces[ns.name] = ns
        elif kind == "Node":
            node = parse_node(ctx)
            nodes[node.name] = node
        elif kind == "Pod":
            pod = parse_pod(ctx)
            if pod is not None:
                pods.append(pod)
        else:
            policies.append(parse_policy(ctx))
        # An object without a namespace lands in "default", as kubectl puts it.
        ident = (kind, raw.ident if kind in ("Namespace", "Node") else _ns_name(raw))
        if ident in seen and not ctx.errors:
            ctx.err((), f"duplicate object, first defined at {seen[ident].loc(())}")
        seen.setdefault(ident, raw)
        errors.extend(ctx.errors)
    if errors:
        raise InputErrors(errors)
    pods.sort(key=lambda p: (p.namespace, p.name))
    policies.sort(key=lambda p: (p.namespace, p.name))
    return Cluster(
        namespaces=dict(sorted(namespaces.items())),
        pods=tuple(pods),
        nodes=dict(sorted(nodes.items())),
        policies=tuple(policies),
    )
