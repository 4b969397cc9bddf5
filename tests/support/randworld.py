"""Random clusters and packets for the kernel-free tracer test.

The e2e world (fixtures/_base: node-1, namespaces x, y, z, nine pods) plus a
second node with two pods of its own and a node-1 pod serving SCTP, with
random pod and namespace labels; packets between pods, the nodes' addresses
and addresses outside the cluster, in both families.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from policyc.model import IPAddress, Protocol
from tests.support.randpol import NAMESPACES, PODS, policies
from tests.support.world import world

Obj = dict[str, Any]
PROTOCOLS = ("TCP", "UDP", "SCTP", None)
NODE2: Obj = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-2"},
    "spec": {"podCIDRs": ["10.244.2.0/24", "2001:db8:244:2::/64"]},
    "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.20"}]},
}
# (namespace, name, node, last IPv4 octet, ports)
EXTRA_PODS = (
    ("x", "r", "node-2", 10, (("serve-80-tcp", 80, "TCP"), ("serve-80-sctp", 80, "SCTP"))),
    ("y", "s", "node-2", 11, (("serve-81-udp", 81, "UDP"),)),
    ("z", "d", "node-1", 19, (("serve-80-sctp", 80, "SCTP"), ("serve-81-tcp", 81, "TCP"))),
)
# Node addresses and bridge gateways, and addresses no pod or node holds.
OTHER4 = ("192.0.2.10", "10.244.1.1", "192.0.2.20", "10.244.2.1", "10.244.1.9", "192.0.2.99")
OTHER6 = ("2001:db8:244:1::1", "2001:db8:244:2::1", "2001:db8:244:1::9", "2001:db8:99::1")


def _pod(ns: str, name: str, node: str, octet: int, ports: tuple[Any, ...], label: str) -> Obj:
    subnet = node[-1]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"pod": label}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "c",
                    "ports": [
                        {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports
                    ],
                }
            ],
        },
        "status": {
            "podIPs": [
                {"ip": f"10.244.{subnet}.{octet}"},
                {"ip": f"2001:db8:244:{subnet}::{octet}"},
            ]
        },
    }


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[Obj], int]:
    """API objects of a random world, and how many policies it holds."""
    label = st.sampled_from(PODS + ("d",))
    relabel: dict[tuple[str, str, str], dict[str, str]] = {}
    for ns in NAMESPACES:
        relabel[("Namespace", "", ns)] = {"ns": draw(st.sampled_from(NAMESPACES))}
        for pod in PODS:
            relabel[("Pod", ns, pod)] = {"pod": draw(label)}
    pols = draw(policies(max_size=4, protocols=PROTOCOLS, reuse=True))
    objs = world(pols, relabel) + [NODE2]
    objs += [_pod(ns, name, node, o, ports, draw(label)) for ns, name, node, o, ports in EXTRA_PODS]
    return objs, len(pols)


@dataclass(frozen=True, slots=True)
class Draw:
    """A packet as drawn: ``spoof`` sends it from another local pod's port."""

    src: IPAddress
    dst: IPAddress
    protocol: Protocol
    dport: int
    spoof: bool


def pool(pod_ips: list[IPAddress], version: int) -> list[IPAddress]:
    """The pods' addresses of one family, the nodes' and some outside ones."""
    other = [ipaddress.ip_address(t) for t in (OTHER4 if version == 4 else OTHER6)]
    return sorted({ip for ip in pod_ips + other if ip.version == version}, key=int)


@st.composite
def packets(draw: st.DrawFn, pod_ips: list[IPAddress]) -> Draw:
    """Mostly pod to pod on the policies' ports; now and then any address
    (nodes, outside) and any port."""
    version = draw(st.sampled_from((4, 6)))
    pods = [ip for ip in pod_ips if ip.version == version]
    every = pool(pod_ips, version)
    src, dst = (
        draw(st.sampled_from(every if draw(st.integers(0, 3)) == 0 else pods)) for _ in "sd"
    )
    odd = draw(st.integers(0, 4)) == 0
    return Draw(
        src,
        dst,
        draw(st.sampled_from(tuple(Protocol))),
        draw(st.integers(1, 65535) if odd else st.sampled_from((79, 80, 81, 82))),
        draw(st.integers(0, 7)) == 0,
    )
