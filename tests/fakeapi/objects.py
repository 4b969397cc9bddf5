"""Object shapes: builders of minimal valid objects for tests, and the apiserver's defaults."""

from __future__ import annotations

from typing import Any

from .resources import JSON, APIError, ResourceType, status


def namespace(name: str, labels: dict[str, str] | None = None) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels or {})},
    }


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    internal_ip: str | None = None,
    pod_cidrs: list[str] | None = None,
) -> JSON:
    obj: JSON = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {},
    }
    if pod_cidrs:
        obj["spec"]["podCIDR"] = pod_cidrs[0]
        obj["spec"]["podCIDRs"] = list(pod_cidrs)
    if internal_ip:
        obj["status"] = {"addresses": [{"type": "InternalIP", "address": internal_ip}]}
    return obj


def pod(
    name: str,
    ns: str = "default",
    *,
    node: str | None = None,
    labels: dict[str, str] | None = None,
    ip: str | None = None,
    phase: str = "Running",
    host_network: bool = False,
    ports: list[dict[str, Any]] | None = None,
) -> JSON:
    container: JSON = {"name": "main", "image": "registry.invalid/app:1"}
    if ports:
        container["ports"] = ports
    spec: JSON = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    status: JSON = {"phase": phase}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
        "spec": spec,
        "status": status,
    }


def network_policy(
    name: str,
    ns: str = "default",
    *,
    pod_selector: JSON | None = None,
    ingress: list[JSON] | None = None,
    egress: list[JSON] | None = None,
    policy_types: list[str] | None = None,
) -> JSON:
    spec: JSON = {"podSelector": pod_selector or {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def peer(
    *,
    pod_selector: JSON | None = None,
    namespace_selector: JSON | None = None,
    cidr: str | None = None,
    except_: list[str] | None = None,
) -> JSON:
    """A NetworkPolicyPeer: selectors, or an ipBlock (``cidr`` with optional ``except_``)."""
    out: JSON = {}
    if pod_selector is not None:
        out["podSelector"] = pod_selector
    if namespace_selector is not None:
        out["namespaceSelector"] = namespace_selector
    if cidr is not None:
        out["ipBlock"] = {"cidr": cidr, **({"except": except_} if except_ else {})}
    return out


def port(
    number: int | str | None = None, protocol: str = "TCP", end_port: int | None = None
) -> JSON:
    """A NetworkPolicyPort (a number or a named port; ``end_port`` makes a range)."""
    out: JSON = {"protocol": protocol}
    if number is not None:
        out["port"] = number
    if end_port is not None:
        out["endPort"] = end_port
    return out


# ------------------------------------------------- what the apiserver does on write
def invalid(res: ResourceType, name: str, message: str) -> APIError:
    return APIError(
        status(
            422,
            f'{res.kind} "{name}" is invalid: {message}',
            "Invalid",
            {"name": name, "group": res.group, "kind": res.kind},
        )
    )


def not_found(res: ResourceType, name: str) -> APIError:
    details = {"name": name, "group": res.group, "kind": res.plural}
    return APIError(status(404, f'{res.plural} "{name}" not found', "NotFound", details))


def apply_defaults(res: ResourceType, obj: JSON) -> None:
    """The few apiserver defaults a NetworkPolicy compiler can observe."""
    meta = obj["metadata"]
    if res.kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif res.kind == "Pod":
        containers = (obj.get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            raise invalid(res, meta["name"], "spec.containers: Required value")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif res.kind == "NetworkPolicy":
        spec = obj.setdefault("spec", {})
        spec.setdefault("podSelector", {})
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
