"""Builders of ClusterNetworkPolicy (v1alpha2) and v1alpha1 AdminNetworkPolicy /
BaselineAdminNetworkPolicy objects in API shape, and the probes of a scenario.

Shared by the scenarios written from the API documentation
(:mod:`tests.support.cnp_scenarios`) and the random generator
(:mod:`tests.support.randcnp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
GROUP = "policy.networking.k8s.io"


def sel(**kv: str) -> Obj:
    return {"matchLabels": dict(kv)} if kv else {}


# -- subjects and peers --------------------------------------------------------
def s_ns(**kv: str) -> Obj:
    return {"namespaces": sel(**kv)}


def s_pods(ns: Obj, pod: Obj) -> Obj:
    return {"pods": {"namespaceSelector": ns, "podSelector": pod}}


p_ns = s_ns
p_pods = s_pods


def p_nodes(**kv: str) -> Obj:
    return {"nodes": sel(**kv)}


def p_nets(*cidrs: str) -> Obj:
    return {"networks": list(cidrs)}


# -- v1alpha2 protocols ---------------------------------------------------------
def _proto(name: str, first: int, last: int | None) -> Obj:
    port: Obj = {"number": first} if last is None else {"range": {"start": first, "end": last}}
    return {name: {"destinationPort": port}}


def tcp(first: int, last: int | None = None) -> Obj:
    return _proto("tcp", first, last)


def udp(first: int, last: int | None = None) -> Obj:
    return _proto("udp", first, last)


def sctp(first: int, last: int | None = None) -> Obj:
    return _proto("sctp", first, last)


def named(name: str) -> Obj:
    return {"destinationNamedPort": name}


# -- rules ---------------------------------------------------------------------
@dataclass(frozen=True)
class R:
    """A rule before it knows its direction: ``from`` or ``to`` is chosen by the policy."""

    action: str
    peers: tuple[Obj, ...]
    protocols: tuple[Obj, ...] = ()
    name: str = ""

    def api(self, peers_field: str, ports_field: str = "protocols") -> Obj:
        out: Obj = {"action": self.action, peers_field: list(self.peers)}
        if self.name:
            out["name"] = self.name
        if self.protocols:
            out[ports_field] = list(self.protocols)
        return out


def rule(action: str, *peers: Obj, protocols: tuple[Obj, ...] = (), name: str = "") -> R:
    return R(action, peers, protocols, name)


def cnp(
    name: str,
    tier: str,
    priority: int,
    subject: Obj,
    ingress: list[R] | None = None,
    egress: list[R] | None = None,
) -> Obj:
    spec: Obj = {"tier": tier, "priority": priority, "subject": subject}
    if ingress:
        spec["ingress"] = [r.api("from") for r in ingress]
    if egress:
        spec["egress"] = [r.api("to") for r in egress]
    return {
        "apiVersion": f"{GROUP}/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def admin(name: str, priority: int, subject: Obj, **rules: list[R]) -> Obj:
    return cnp(name, "Admin", priority, subject, **rules)


def baseline(name: str, priority: int, subject: Obj, **rules: list[R]) -> Obj:
    return cnp(name, "Baseline", priority, subject, **rules)


# -- v1alpha1 ------------------------------------------------------------------
def pnum(port: int, proto: str = "TCP") -> Obj:
    return {"portNumber": {"protocol": proto, "port": port}}


def prange(start: int, end: int, proto: str = "TCP") -> Obj:
    return {"portRange": {"protocol": proto, "start": start, "end": end}}


def pnamed(name: str) -> Obj:
    return {"namedPort": name}


def _v1alpha1(kind: str, name: str, spec: Obj, ingress: list[R], egress: list[R]) -> Obj:
    if ingress:
        spec["ingress"] = [r.api("from", "ports") for r in ingress]
    if egress:
        spec["egress"] = [r.api("to", "ports") for r in egress]
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def anp(
    name: str,
    priority: int,
    subject: Obj,
    ingress: list[R] | None = None,
    egress: list[R] | None = None,
) -> Obj:
    spec: Obj = {"priority": priority, "subject": subject}
    return _v1alpha1("AdminNetworkPolicy", name, spec, ingress or [], egress or [])


def banp(subject: Obj, ingress: list[R] | None = None, egress: list[R] | None = None) -> Obj:
    spec: Obj = {"subject": subject}
    return _v1alpha1("BaselineAdminNetworkPolicy", "default", spec, ingress or [], egress or [])


def netpol(ns: str, name: str, pod: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"podSelector": pod or {}}
    body.update({{"types": "policyTypes"}.get(k, k): v for k, v in spec.items()})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


# -- probes --------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """One connection and its expected verdict.

    ``src``/``dst``: a pod of the world as ``ns/name`` (its address of the scenario's
    family) or an address.  ``egress``/``ingress``: the expected deciding tier of that
    direction (``Admin``, ``NetworkPolicy``, ``Baseline``, ``Default``, ``Exempt``),
    optionally ``Tier:policy key`` (``Admin:ClusterNetworkPolicy deny-z``); None: not
    checked.
    """

    src: str
    dst: str
    port: int
    proto: str
    allowed: bool
    egress: str | None = None
    ingress: str | None = None

    def __str__(self) -> str:
        word = "allowed" if self.allowed else "denied"
        return f"{self.src} -> {self.dst} {self.port}/{self.proto} {word}"


def _probe(allowed: bool, src: str, dst: str, what: str, **by: str) -> Probe:
    port, _, proto = what.partition("/")
    return Probe(src, dst, int(port), proto or "tcp", allowed, **by)


def ok(src: str, dst: str, what: str = "80/tcp", **by: str) -> Probe:
    return _probe(True, src, dst, what, **by)


def no(src: str, dst: str, what: str = "80/tcp", **by: str) -> Probe:
    return _probe(False, src, dst, what, **by)


@dataclass
class CnpScenario:
    """A world (fixtures/_base plus ``policies`` and ``extra`` objects, labels changed by
    ``relabel``) and the verdicts the API documentation gives for ``probes``."""

    name: str
    doc: str
    policies: list[Obj]
    probes: list[Probe]
    relabel: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    extra: list[Obj] = field(default_factory=list)
    family: int = 4
    # Probes a kernel cannot send (SCTP on this kernel): rendered, checked by the evaluator.
    probed: bool = True


# -- the e2e world's addresses and a few policies the scenarios share -----------
NODE = "192.0.2.10"  # node-1's InternalIP
GATEWAY = "10.244.1.1"  # node-1's bridge gateway (not in status.addresses)
OUTSIDE = "192.0.2.50"  # no pod, no node
ALL = p_ns()
DENY_ALL_IN_Y = admin("deny-all-y", 100, s_ns(ns="y"), ingress=[rule("Deny", ALL)])
HOST_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "host", "namespace": "x", "labels": {"pod": "host"}},
    "spec": {"nodeName": "node-1", "hostNetwork": True, "containers": [{"name": "c"}]},
    "status": {"phase": "Running", "podIP": NODE, "podIPs": [{"ip": NODE}]},
}
NP_DENY_IN_Y = netpol("y", "deny-in", types=["Ingress"])
NP_ALLOW_X_IN_Y = netpol("y", "allow-x", ingress=[{"from": [{"namespaceSelector": sel(ns="x")}]}])
NP_DENY_OUT_X = netpol("x", "deny-out", types=["Egress"])
WORKER = {("Node", "", "node-1"): {"role": "worker"}}
