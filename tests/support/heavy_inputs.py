"""Heavy but valid inputs of issue 13 §2, as YAML text at any size.

``bench/heavy_bench.py`` runs them at full size (100,000) against the
kernel; ``tests/test_heavy_shape.py`` checks the shape of what they emit at
a CI-friendly size.  ipBlocks stay in the service range 10.96.0.0/12 (the
project's test ranges), the pod in 10.244.1.0/24 next to
``fixtures/_base/cluster.yaml``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

SERVICE_NET = int(ipaddress.IPv4Address("10.96.0.0"))  # a /12: 2**20 addresses

HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"


def _policy(spec: str) -> str:
    return f"{HEAD}spec:\n  podSelector: {{}}\n{spec}"


def named_container_ports(n: int) -> str:
    """A pod with ``n`` named container ports, and a policy naming 100 of them."""
    ports = "".join(
        f"    - {{name: p{i:x}, containerPort: {1 + i % 65535}, protocol: TCP}}\n" for i in range(n)
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: big, namespace: x, labels: {pod: big}}\n"
        f"spec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: i\n    ports:\n{ports}"
        "status: {phase: Running, podIP: 10.244.1.99, podIPs: [{ip: 10.244.1.99}]}\n"
    )
    named = "".join(f"    - {{port: p{i:x}}}\n" for i in range(0, n, max(1, n // 100)))
    return pod + "---\n" + _policy(f"  ingress:\n  - ports:\n{named}")


def pod_peers(n: int) -> str:
    peers = "".join(f"    - podSelector: {{matchLabels: {{k{i}: v}}}}\n" for i in range(n))
    return _policy(f"  ingress:\n  - from:\n{peers}")


def v4(offset: int) -> str:
    """The address ``offset`` into 10.96.0.0/12 (wrapping)."""
    return str(ipaddress.IPv4Address(SERVICE_NET + offset % (1 << 20)))


def ip_blocks(n: int) -> str:
    """``n`` disjoint /30 blocks 8 addresses apart (no two merge while ``n`` <=
    131,072); every fourth has an except (its upper /31), leaving a /31."""
    out = []
    for i in range(n):
        exc = f", except: [{v4(8 * i + 2)}/31]" if i % 4 == 0 else ""
        out.append(f"    - ipBlock: {{cidr: {v4(8 * i)}/30{exc}}}\n")
    return _policy(f"  ingress:\n  - from:\n{''.join(out)}")


def adjacent_blocks(n: int) -> str:
    """``n`` adjacent /28 blocks, given in reverse: one interval after merging
    (while ``n`` <= 65,536)."""
    out = [f"    - ipBlock: {{cidr: {v4(16 * i)}/28}}\n" for i in reversed(range(n))]
    return _policy(f"  ingress:\n  - from:\n{''.join(out)}")


def named_ports(n: int) -> str:
    """``n`` named ports in one policy, each resolving against the big pod."""
    ports = "".join(f"    - {{port: p{i:x}}}\n" for i in range(n))
    pod = named_container_ports(n).split("---\n")[0]
    return pod + "---\n" + _policy(f"  ingress:\n  - ports:\n{ports}")


def mixed_peers(n: int) -> str:
    """Pod selectors, namespace selectors and ipBlocks with an except each."""
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(f"    - podSelector: {{matchLabels: {{k{i}: v}}}}\n")
        elif i % 3 == 1:
            out.append(f"    - namespaceSelector: {{matchLabels: {{ns: n{i}}}}}\n")
        else:
            cidr, exc = f"{v4(8 * i)}/29", f"{v4(8 * i + 4)}/30"
            out.append(f"    - ipBlock: {{cidr: {cidr}, except: [{exc}]}}\n")
    return _policy(f"  ingress:\n  - from:\n{''.join(out)}  egress:\n  - to:\n{''.join(out)}")


def cases(scale: float) -> dict[str, Callable[[], str]]:
    """Case name -> generator, every size multiplied by ``scale``."""
    k = lambda n: max(1, int(n * scale))  # noqa: E731
    return {
        f"pod {k(100_000)} named container ports": lambda: named_container_ports(k(100_000)),
        f"policy {k(100_000)} pod peers": lambda: pod_peers(k(100_000)),
        f"policy {k(100_000)} ipBlocks": lambda: ip_blocks(k(100_000)),
        f"policy {k(100_000)} adjacent ipBlocks": lambda: adjacent_blocks(k(100_000)),
        f"policy {k(100_000)} named ports": lambda: named_ports(k(100_000)),
        f"policy {k(10_000)} mixed peers": lambda: mixed_peers(k(10_000)),
    }
