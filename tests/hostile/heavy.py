"""Heavy but valid inputs of issue 13 §2 ("must succeed in seconds"), and the
quadratic error report (20,000 invalid ports).  Too slow for CI today, so the
bench runs them (``bench/hostile_bench.py --heavy``)."""

from __future__ import annotations

from tests.hostile.inputs import Expect, HostileInput
from tests.hostile.repros import BASE, _policy

CLASS = "heavy"


def namespace_list(n: int = 20_000) -> HostileInput:
    """One ``kind: List`` of ``n`` Namespaces (282 s today for 20,000)."""
    items = "".join(
        f"- {{apiVersion: v1, kind: Namespace, metadata: {{name: ns-{i}}}}}\n" for i in range(n)
    )
    body = f"apiVersion: v1\nkind: List\nitems:\n{items}".encode()
    return HostileInput(
        CLASS, f"list-{n}-namespaces", (("cluster.yaml", BASE), ("list.yaml", body)), Expect.VALID
    )


def named_ports(n: int = 100_000) -> HostileInput:
    """A pod with ``n`` named container ports."""
    ports = "".join(
        f"    - {{name: p{i:x}, containerPort: {1 + i % 65535}, protocol: TCP}}\n" for i in range(n)
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: big, namespace: x}\n"
        f"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: i\n    ports:\n{ports}"
        "status: {phase: Running, podIP: 10.244.1.99, podIPs: [{ip: 10.244.1.99}]}\n"
    )
    return HostileInput(
        CLASS,
        f"pod-{n}-named-ports",
        (("cluster.yaml", BASE), ("pod.yaml", pod.encode())),
        Expect.VALID,
    )


def _peers(ident: str, peer: str, n: int) -> HostileInput:
    peers = "".join(
        peer.format(i=i, h=96 + i // 65536, a=i // 256 % 256, b=i % 256) for i in range(n)
    )
    spec = f"  podSelector: {{}}\n  ingress:\n  - from:\n{peers}"
    return HostileInput(
        CLASS, ident, (("cluster.yaml", BASE), ("policy.yaml", _policy(spec))), Expect.VALID
    )


def many_peers(n: int = 100_000) -> HostileInput:
    return _peers(f"policy-{n}-peers", "    - podSelector: {{matchLabels: {{k{i}: v}}}}\n", n)


def many_ipblocks(n: int = 100_000) -> HostileInput:
    # Disjoint hosts inside 10.96.0.0/12, the range tests may use (up to 1M).
    return _peers(f"policy-{n}-ipblocks", "    - ipBlock: {{cidr: 10.{h}.{a}.{b}/32}}\n", n)


def invalid_ports(n: int = 20_000) -> HostileInput:
    """``n`` invalid ports in one policy: exit 2, first errors and a count, linear."""
    ports = "".join(f"    - {{port: {70000 + i}}}\n" for i in range(n))
    spec = f"  podSelector: {{}}\n  ingress:\n  - ports:\n{ports}"
    return HostileInput(
        CLASS,
        f"policy-{n}-invalid-ports",
        (("cluster.yaml", BASE), ("policy.yaml", _policy(spec))),
        Expect.INVALID,
    )


def all_heavy() -> list[HostileInput]:
    return [
        namespace_list(),
        named_ports(),
        many_peers(10_000),
        many_peers(),
        many_ipblocks(),
        invalid_ports(),
    ]
