"""A seeded cluster of S, M or L size, written as one ``kind: List`` JSON file.

The shape is what ``kubectl get pods,ns,netpol,nodes -A -o json`` prints: one
``{"apiVersion": "v1", "kind": "List", "items": [...]}`` holding Namespaces,
Nodes (``spec.podCIDRs``, ``status.addresses`` InternalIP), Pods
(``spec.nodeName``, ``status.podIPs``, labels, named container ports) and
NetworkPolicies.

Addresses: node ``i`` has InternalIP ``10.244.(i>>8).(i&255+1)``-ish from
10.244.0.0/16 and podCIDR ``10.96.0.0/12``'s ``i``-th /24 (150k pods at 110
a node need 1,364 /24s: more than 10.244.0.0/16 holds).  Pod ``i`` runs on
node ``i // 110``, so ``node-0`` always has 110 local pods, the first two in
namespace ``ns-0`` with app ``a0`` (the connection-rate pair).

Policies are dealt round-robin over namespaces from ``TEMPLATES``, so every
namespace first gets a default-deny, then allow-same-app, then
allow-from-namespace-label, ipBlock egress with except, matchExpressions.
"""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NODE = "node-0"
PODS_PER_NODE = 110
PODS_PER_NS = 50
APPS_PER_NS = 5
TIERS = ("web", "api", "db")
TEAMS = ("red", "green", "blue", "gold")
POD_NET = ipaddress.IPv4Network("10.96.0.0/12")
NODE_NET = ipaddress.IPv4Network("10.244.0.0/16")
HTTP_PORT = 8080  # the container port named "http" (the pair's server listens here)

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Size:
    """One benchmark size: pods and policies in the cluster."""

    name: str
    pods: int
    policies: int

    @property
    def namespaces(self) -> int:
        return max(1, self.pods // PODS_PER_NS)

    @property
    def nodes(self) -> int:
        return max(1, -(-self.pods // PODS_PER_NODE))


SIZES = {
    "S": Size("S", 1_000, 100),
    "M": Size("M", 10_000, 1_000),
    "L": Size("L", 150_000, 10_000),
}


def node_cidr(i: int) -> ipaddress.IPv4Network:
    """Node ``i``'s podCIDR: the ``i``-th /24 of 10.96.0.0/12."""
    return ipaddress.IPv4Network((int(POD_NET.network_address) + (i << 8), 24))


def pod_ip(i: int) -> ipaddress.IPv4Address:
    """Pod ``i``'s address: host ``2 + i % 110`` of its node's /24 (.1 is the bridge)."""
    return node_cidr(i // PODS_PER_NODE).network_address + 2 + i % PODS_PER_NODE


def meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    if labels:
        out["labels"] = labels
    return out


def namespace(i: int) -> Obj:
    labels = {"team": TEAMS[i % len(TEAMS)], "env": "prod" if i % 3 else "dev"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(f"ns-{i}", None, labels)}


def node(i: int) -> Obj:
    addr = NODE_NET.network_address + 1 + i
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(f"node-{i}", None, {"kubernetes.io/hostname": f"node-{i}"}),
        "spec": {"podCIDR": str(node_cidr(i)), "podCIDRs": [str(node_cidr(i))]},
        "status": {"addresses": [{"type": "InternalIP", "address": str(addr)}]},
    }


def pod(i: int, ns: int, app: int, tier: str) -> Obj:
    """Pod ``i`` in namespace ``ns-{ns}`` with ``app: a{app}``; ports http and metrics."""
    ip = str(pod_ip(i))
    ports = [
        {"name": "http", "containerPort": HTTP_PORT + (i % 7 == 6), "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    if app == 4:
        ports.append({"name": "dns", "containerPort": 53, "protocol": "UDP"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(f"a{app}-{i}", f"ns-{ns}", {"app": f"a{app}", "tier": tier}),
        "spec": {
            "nodeName": f"node-{i // PODS_PER_NODE}",
            "containers": [{"name": "c", "ports": ports}],
        },
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


def pods(size: Size, rnd: random.Random) -> list[Obj]:
    out = [pod(0, 0, 0, "web"), pod(1, 0, 0, "api")]  # the connection-rate pair
    for i in range(2, size.pods):
        out.append(
            pod(i, rnd.randrange(size.namespaces), rnd.randrange(APPS_PER_NS), rnd.choice(TIERS))
        )
    return out


def policy(name: str, ns: int, spec: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, f"ns-{ns}"),
        "spec": spec,
    }


def default_deny(ns: int, k: int) -> Obj:
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    return policy(f"default-deny-{k}" if k else "default-deny", ns, spec)


def same_app(ns: int, k: int) -> Obj:
    app = {"matchLabels": {"app": f"a{k % APPS_PER_NS}"}}
    spec = {
        "podSelector": app,
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": app}], "ports": [{"port": "http"}]}],
        "egress": [
            {"to": [{"podSelector": app}], "ports": [{"protocol": "TCP", "port": HTTP_PORT}]}
        ],
    }
    return policy(f"allow-same-app-{k}", ns, spec)


def from_ns_label(ns: int, k: int) -> Obj:
    spec = {
        "podSelector": {"matchLabels": {"tier": TIERS[k % len(TIERS)]}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"team": TEAMS[(ns + k) % len(TEAMS)]}}}
                ],
                "ports": [
                    {"protocol": "TCP", "port": 8000, "endPort": 8100},
                    {"protocol": "TCP", "port": "metrics"},
                ],
            }
        ],
    }
    return policy(f"allow-from-team-{k}", ns, spec)


def egress_block(ns: int, k: int) -> Obj:
    spec = {
        "podSelector": {"matchLabels": {"app": f"a{k % APPS_PER_NS}"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "ipBlock": {
                            "cidr": "192.0.2.0/24",
                            "except": ["192.0.2.128/26", "192.0.2.7/32"],
                        }
                    },
                    {"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:ff::/48"]}},
                ],
                "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 5432}],
            },
            {
                "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a4"}}}],
                "ports": [{"protocol": "UDP", "port": "dns"}],
            },
        ],
    }
    return policy(f"egress-external-{k}", ns, spec)


def expressions(ns: int, k: int) -> Obj:
    spec = {
        "podSelector": {
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["api", "db"]},
                {"key": "app", "operator": "NotIn", "values": [f"a{k % APPS_PER_NS}"]},
            ]
        },
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "env", "operator": "In", "values": ["prod"]}
                            ]
                        },
                        "podSelector": {
                            "matchExpressions": [{"key": "tier", "operator": "Exists"}]
                        },
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 9000, "endPort": 9100}],
            }
        ],
    }
    return policy(f"allow-expr-{k}", ns, spec)


TEMPLATES: tuple[Callable[[int, int], Obj], ...] = (
    default_deny,
    same_app,
    from_ns_label,
    egress_block,
    expressions,
)


def policies(size: Size) -> list[Obj]:
    """``size.policies`` policies: the ``j``-th goes to namespace ``j % namespaces``,
    from template ``(j // namespaces) % 5``, its ``k``-th use there
    ``j // (namespaces * 5)`` (a second default-deny is a realistic duplicate)."""
    n = size.namespaces
    out = []
    for j in range(size.policies):
        turn, ns = divmod(j, n)
        k, t = divmod(turn, len(TEMPLATES))
        out.append(TEMPLATES[t](ns, k))
    return out


def cluster(size: Size, seed: int = 1) -> Obj:
    """The whole cluster as one ``kind: List`` object (deterministic in ``seed``)."""
    rnd = random.Random(seed)
    items: list[Obj] = [namespace(i) for i in range(size.namespaces)]
    items += [node(i) for i in range(size.nodes)]
    items += pods(size, rnd)
    items += policies(size)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def write(size: Size, path: str, seed: int = 1) -> int:
    """Write the cluster to ``path`` as JSON (kubectl's indent of 4); returns bytes written."""
    text = json.dumps(cluster(size, seed), indent=4)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return len(text)
