"""Conformance scenarios written from the NetworkPolicy API documentation.

The world is the upstream netpol e2e model: namespaces x, y, z (label ns=<name>)
with pods a, b, c (label pod=<name>), each serving TCP and UDP on 80 and 81,
with named ports serve-<port>-<tcp|udp>.  Each scenario lists policies and,
optionally, label changes applied to the model before compiling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def pol(ns: str, name: str, sel: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"podSelector": sel if sel is not None else {}}
    for key, value in spec.items():
        body[{"types": "policyTypes"}.get(key, key)] = value
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def labels(**kv: str) -> Obj:
    return {"matchLabels": dict(kv)}


def expr(key: str, op: str, *values: str) -> Obj:
    e: Obj = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


def pods(**kv: str) -> Obj:
    return {"podSelector": labels(**kv)}


def nss(**kv: str) -> Obj:
    return {"namespaceSelector": labels(**kv)}


def block(cidr: str, *excepts: str) -> Obj:
    b: Obj = {"cidr": cidr}
    if excepts:
        b["except"] = list(excepts)
    return {"ipBlock": b}


def port(p: int | str | None = None, proto: str | None = None, end: int | None = None) -> Obj:
    out: Obj = {}
    if p is not None:
        out["port"] = p
    if proto:
        out["protocol"] = proto
    if end is not None:
        out["endPort"] = end
    return out


ALL_NS: Obj = {"namespaceSelector": {}}


@dataclass
class Scenario:
    name: str
    policies: list[Obj]
    # (kind, namespace, name) -> labels to set on that object in the model
    relabel: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    family: int = 4


S = Scenario
SCENARIOS: list[Scenario] = [
    S("no-policy", []),
    S("deny-all-ingress-x", [pol("x", "deny", types=["Ingress"])]),
    S("deny-all-egress-x", [pol("x", "deny", types=["Egress"])]),
    S("deny-all-both-y", [pol("y", "deny", types=["Ingress", "Egress"])]),
    S(
        "allow-all-ingress-with-deny",
        [pol("x", "deny", types=["Ingress"]), pol("x", "all", ingress=[{}])],
    ),
    S(
        "allow-all-egress",
        [pol("x", "deny", types=["Egress"]), pol("x", "all", types=["Egress"], egress=[{}])],
    ),
    S(
        "ingress-same-ns-pods",
        [pol("x", "p", labels(pod="a"), ingress=[{"from": [{"podSelector": {}}]}])],
    ),
    S("ingress-pod-label", [pol("x", "p", labels(pod="a"), ingress=[{"from": [pods(pod="b")]}])]),
    S("ingress-ns-selector", [pol("x", "p", labels(pod="a"), ingress=[{"from": [nss(ns="y")]}])]),
    S("ingress-all-namespaces", [pol("x", "p", labels(pod="a"), ingress=[{"from": [ALL_NS]}])]),
    S(
        "ingress-ns-and-pod",
        [pol("x", "p", labels(pod="a"), ingress=[{"from": [{**nss(ns="y"), **pods(pod="c")}]}])],
    ),
    S(
        "ingress-ns-or-pod",
        [pol("x", "p", labels(pod="a"), ingress=[{"from": [nss(ns="y"), pods(pod="c")]}])],
    ),
    S(
        "ingress-expr-in",
        [
            pol(
                "x",
                "p",
                labels(pod="a"),
                ingress=[{"from": [{"namespaceSelector": expr("ns", "In", "y", "z")}]}],
            )
        ],
    ),
    S(
        "ingress-expr-notin",
        [
            pol(
                "x",
                "p",
                labels(pod="a"),
                ingress=[{"from": [{"namespaceSelector": expr("ns", "NotIn", "y")}]}],
            )
        ],
    ),
    S(
        "ingress-expr-exists",
        [
            pol(
                "y",
                "p",
                expr("pod", "Exists"),
                ingress=[
                    {"from": [{"podSelector": expr("pod", "Exists"), "namespaceSelector": {}}]}
                ],
            )
        ],
    ),
    S(
        "ingress-expr-doesnotexist",
        [
            pol(
                "y",
                "p",
                {},
                ingress=[
                    {
                        "from": [
                            {
                                "podSelector": expr("team", "DoesNotExist"),
                                "namespaceSelector": expr("ns", "NotIn", "x"),
                            }
                        ]
                    }
                ],
            )
        ],
    ),
    S("selector-expr-notin-target", [pol("z", "p", expr("pod", "NotIn", "a"), types=["Ingress"])]),
    S("ingress-port-80", [pol("x", "p", labels(pod="a"), ingress=[{"ports": [port(80)]}])]),
    S("ingress-port-81-udp", [pol("x", "p", {}, ingress=[{"ports": [port(81, "UDP")]}])]),
    S("ingress-proto-only", [pol("x", "p", {}, ingress=[{"ports": [port(None, "UDP")]}])]),
    S("ingress-endport", [pol("y", "p", {}, ingress=[{"ports": [port(79, "TCP", 80)]}])]),
    S("ingress-endport-both", [pol("y", "p", {}, ingress=[{"ports": [port(80, "TCP", 81)]}])]),
    S(
        "ingress-named-port",
        [
            pol(
                "x",
                "p",
                labels(pod="a"),
                ingress=[{"from": [ALL_NS], "ports": [port("serve-81-tcp")]}],
            )
        ],
    ),
    S(
        "ingress-named-port-udp",
        [pol("x", "p", {}, ingress=[{"ports": [port("serve-80-udp", "UDP")]}])],
    ),
    S(
        "named-port-wrong-proto",
        [pol("x", "p", {}, ingress=[{"ports": [port("serve-80-udp", "TCP")]}])],
    ),
    S(
        "egress-named-port",
        [
            pol(
                "x",
                "p",
                labels(pod="b"),
                types=["Egress"],
                egress=[{"to": [ALL_NS], "ports": [port("serve-80-tcp")]}],
            )
        ],
    ),
    S(
        "egress-pods",
        [pol("y", "p", labels(pod="a"), types=["Egress"], egress=[{"to": [nss(ns="z")]}])],
    ),
    S(
        "egress-port-udp",
        [pol("y", "p", {}, types=["Egress"], egress=[{"ports": [port(80, "UDP")]}])],
    ),
    S("ipblock-ingress", [pol("x", "p", {}, ingress=[{"from": [block("10.244.1.12/30")]}])]),
    S(
        "ipblock-except",
        [pol("x", "p", {}, ingress=[{"from": [block("10.244.1.0/24", "10.244.1.14/31")]}])],
    ),
    S(
        "ipblock-egress-except",
        [
            pol(
                "z",
                "p",
                {},
                types=["Egress"],
                egress=[{"to": [block("10.244.0.0/16", "10.244.1.8/29")]}],
            )
        ],
    ),
    S(
        "ipblock-and-selector-union",
        [pol("y", "p", {}, ingress=[{"from": [block("10.244.1.10/32"), pods(pod="c")]}])],
    ),
    S(
        "ipblock-with-ports",
        [
            pol(
                "y",
                "p",
                {},
                ingress=[{"from": [block("10.244.1.16/29")], "ports": [port(81), port(80, "UDP")]}],
            )
        ],
    ),
    S(
        "two-rules-or",
        [
            pol(
                "x",
                "p",
                labels(pod="c"),
                ingress=[
                    {"from": [nss(ns="y")], "ports": [port(80)]},
                    {"from": [nss(ns="z")], "ports": [port(81)]},
                ],
            )
        ],
    ),
    S(
        "union-of-policies",
        [
            pol("x", "p1", {}, ingress=[{"from": [nss(ns="y")]}]),
            pol("x", "p2", labels(pod="a"), ingress=[{"from": [nss(ns="z")]}]),
        ],
    ),
    S(
        "ingress-and-egress-both-needed",
        [
            pol("x", "eg", labels(pod="a"), types=["Egress"], egress=[{"to": [nss(ns="y")]}]),
            pol("y", "in", labels(pod="b"), ingress=[{"from": [pods(pod="c")]}]),
        ],
    ),
    S(
        "policy-types-default-egress",
        [pol("x", "p", labels(pod="a"), egress=[{"to": [pods(pod="b")]}])],
    ),
    S(
        "egress-empty-list-not-egress",
        [pol("x", "p", labels(pod="a"), egress=[], ingress=[{"from": [pods(pod="b")]}])],
    ),
    S("empty-from-list", [pol("z", "p", {}, ingress=[{"from": []}])]),
    S("empty-ports-list", [pol("z", "p", {}, ingress=[{"from": [nss(ns="x")], "ports": []}])]),
    S(
        "ingress-types-only-egress-rules",
        [pol("x", "p", {}, types=["Ingress"], egress=[{"to": [nss(ns="z")]}])],
    ),
    S("deny-all-everywhere", [pol(n, "deny", types=["Ingress", "Egress"]) for n in "xyz"]),
    S(
        "deny-all-plus-dns-like",
        [pol(n, "deny", types=["Ingress", "Egress"]) for n in "xyz"]
        + [
            pol("x", "out", {}, types=["Egress"], egress=[{"ports": [port(80, "UDP")]}]),
            pol("y", "in", {}, ingress=[{"ports": [port(80, "UDP")]}]),
        ],
    ),
    S(
        "label-change-pod",
        [pol("x", "p", labels(pod="a"), ingress=[{"from": [pods(pod="b")]}])],
        relabel={("Pod", "x", "c"): {"pod": "b"}},
    ),
    S(
        "label-change-namespace",
        [pol("x", "p", {}, ingress=[{"from": [nss(ns="y")]}])],
        relabel={("Namespace", "", "z"): {"ns": "y"}},
    ),
    S(
        "label-change-target",
        [pol("y", "p", labels(role="db"), types=["Ingress"])],
        relabel={("Pod", "y", "b"): {"pod": "b", "role": "db"}},
    ),
    S(
        "metadata-name-label",
        [
            pol(
                "x",
                "p",
                {},
                ingress=[
                    {
                        "from": [
                            {"namespaceSelector": labels(**{"kubernetes.io/metadata.name": "z"})}
                        ]
                    }
                ],
            )
        ],
    ),
    # IPv6 scenarios: the same semantics over status.podIPs' IPv6 addresses.
    S("v6-deny-all", [pol("x", "deny", types=["Ingress"])], family=6),
    S("v6-pods", [pol("x", "p", labels(pod="a"), ingress=[{"from": [nss(ns="y")]}])], family=6),
    S(
        "v6-ipblock",
        [pol("y", "p", {}, ingress=[{"from": [block("2001:db8:244:1::10/126")]}])],
        family=6,
    ),
    S(
        "v6-ipblock-except",
        [
            pol(
                "z",
                "p",
                {},
                types=["Egress"],
                egress=[{"to": [block("2001:db8:244:1::/64", "2001:db8:244:1::10/127")]}],
            )
        ],
        family=6,
    ),
    S("v6-ports", [pol("x", "p", {}, ingress=[{"ports": [port(81), port(80, "UDP")]}])], family=6),
    S(
        "v6-v4-block-only",
        [pol("x", "p", {}, ingress=[{"from": [block("10.244.0.0/16")]}])],
        family=6,
    ),
    S(
        "v6-named-egress",
        [
            pol(
                "z",
                "p",
                labels(pod="c"),
                types=["Egress"],
                egress=[{"to": [ALL_NS], "ports": [port("serve-81-udp", "UDP")]}],
            )
        ],
        family=6,
    ),
]
