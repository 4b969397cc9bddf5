"""API-valid random clusters whose strings come from a hostile alphabet.

Every name, label key and value, and port name obeys the Kubernetes API
validation rules (``alphabet``), so policyc must accept the cluster (exit 0)
and its output must load and stay inside its grammar however the strings are
chosen.  Addresses come from the ranges tests may use: pods in
10.244.1.0/24 and 2001:db8:244:1::/64, the node in 192.0.2.0/24.
"""

from __future__ import annotations

import random
from typing import Any

import yaml

from tests.hostile.alphabet import dns_label, dns_subdomain, label_key, label_value, port_name
from tests.hostile.inputs import Expect, HostileInput
from tests.hostile.seed import rng

CLASS = "cluster"
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PROTOCOLS = ("TCP", "UDP", "SCTP")


def _labels(r: random.Random, n: int) -> dict[str, str]:
    return {label_key(r): label_value(r) for _ in range(n)}


def _node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "spec": {"podCIDRs": ["10.244.1.0/24", "2001:db8:244:1::/64"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
    }


def _pod(r: random.Random, ns: str, index: int, ports: list[dict[str, Any]]) -> dict[str, Any]:
    host = 10 + index
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": dns_subdomain(r),
            "namespace": ns,
            "labels": _labels(r, r.randint(0, 4)),
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i", "ports": ports}]},
        "status": {
            "phase": "Running",
            "podIP": f"10.244.1.{host}",
            "podIPs": [{"ip": f"10.244.1.{host}"}, {"ip": f"2001:db8:244:1::{host:x}"}],
        },
    }


def _ports(r: random.Random, names: list[str]) -> list[dict[str, Any]]:
    out, used = [], set()
    for _ in range(r.randint(0, 4)):
        name = r.choice(names)
        if name in used:
            continue
        used.add(name)
        out.append(
            {"name": name, "containerPort": r.randint(1, 65535), "protocol": r.choice(PROTOCOLS)}
        )
    return out


def _selector(r: random.Random, pool: list[tuple[str, str]]) -> dict[str, Any]:
    """matchLabels and matchExpressions drawn from labels that exist (mostly)."""
    sel: dict[str, Any] = {}
    picks = r.sample(pool, min(len(pool), r.randint(0, 2))) if pool else []
    if picks and r.random() < 0.6:
        sel["matchLabels"] = dict(picks[:1])
    exprs = []
    for key, value in picks[1:] + [(label_key(r), label_value(r))] * r.randint(0, 2):
        op = r.choice(("In", "NotIn", "Exists", "DoesNotExist"))
        expr: dict[str, Any] = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = [value] + [label_value(r) for _ in range(r.randint(0, 3))]
        exprs.append(expr)
    if exprs:
        sel["matchExpressions"] = exprs
    return sel


def _ipblock(r: random.Random) -> dict[str, Any]:
    if r.random() < 0.5:
        base = r.randrange(0, 256, 16)
        cidr = f"10.244.{base}.0/20"
        excepts = [
            f"10.244.{base + r.randrange(16)}.{r.randrange(0, 256, 4)}/30"
            for _ in range(r.randint(0, 40))
        ]
    else:
        cidr = "2001:db8::/32"
        excepts = [f"2001:db8:{r.randrange(65536):x}::/48" for _ in range(r.randint(0, 10))]
    block: dict[str, Any] = {"cidr": cidr}
    if excepts:
        block["except"] = sorted(set(excepts))
    return block


def _peer(
    r: random.Random, pod_pool: list[tuple[str, str]], ns_pool: list[tuple[str, str]]
) -> dict[str, Any]:
    kind = r.randrange(4)
    if kind == 0:
        return {"ipBlock": _ipblock(r)}
    peer: dict[str, Any] = {}
    if kind in (1, 3):
        peer["podSelector"] = _selector(r, pod_pool)
    if kind in (2, 3):
        peer["namespaceSelector"] = _selector(r, ns_pool)
    return peer


def _rule_ports(r: random.Random, names: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(r.randint(0, 3)):
        port: dict[str, Any] = {"protocol": r.choice(PROTOCOLS)}
        if r.random() < 0.4:
            port["port"] = r.choice(names)
        elif r.random() < 0.8:
            port["port"] = r.randint(1, 65535)
            if r.random() < 0.3:
                port["endPort"] = r.randint(port["port"], 65535)
        out.append(port)
    return out


def _policy(
    r: random.Random, ns: str, pod_pool: list, ns_pool: list, names: list[str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": _selector(r, pod_pool)}
    types = r.choice((["Ingress"], ["Egress"], ["Ingress", "Egress"], None))
    if types:
        spec["policyTypes"] = types
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        if r.random() < 0.7:
            rules = []
            for _ in range(r.randint(0, 3)):
                rule: dict[str, Any] = {}
                if r.random() < 0.8:
                    rule[peers] = [_peer(r, pod_pool, ns_pool) for _ in range(r.randint(0, 3))]
                if r.random() < 0.6:
                    rule["ports"] = _rule_ports(r, names)
                rules.append(rule)
            spec[direction] = rules
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": dns_subdomain(r), "namespace": ns},
        "spec": spec,
    }


def cluster_docs(r: random.Random) -> list[dict[str, Any]]:
    """A Node, 1–3 Namespaces, up to 12 Pods, 1–4 NetworkPolicies."""
    namespaces = sorted({dns_label(r) for _ in range(r.randint(1, 3))})
    names = [port_name(r) for _ in range(4)]
    docs: list[dict[str, Any]] = [_node()]
    ns_pool: list[tuple[str, str]] = []
    for ns in namespaces:
        labels = _labels(r, r.randint(0, 3))
        ns_pool += labels.items()
        docs.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        )
    pods, seen = [], set()
    for i in range(r.randint(1, 12)):
        pod = _pod(r, r.choice(namespaces), i, _ports(r, names))
        if (pod["metadata"]["namespace"], pod["metadata"]["name"]) not in seen:
            seen.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
            pods.append(pod)
    pod_pool = [kv for p in pods for kv in p["metadata"]["labels"].items()]
    policies, pseen = [], set()
    for _ in range(r.randint(1, 4)):
        pol = _policy(r, r.choice(namespaces), pod_pool, ns_pool, names)
        if (pol["metadata"]["namespace"], pol["metadata"]["name"]) not in pseen:
            pseen.add((pol["metadata"]["namespace"], pol["metadata"]["name"]))
            policies.append(pol)
    return docs + pods + policies


def cluster(seed: int, index: int) -> HostileInput:
    """Cluster number ``index`` of this seed, as one multi-document YAML file."""
    r = rng(seed, CLASS, index)
    text = yaml.dump_all(cluster_docs(r), Dumper=_DUMPER, width=10**6)
    return HostileInput(CLASS, str(index), (("cluster.yaml", text.encode()),), Expect.VALID)
