"""Plain records and helpers of the lab: pods, address plan, truth-table printing.

No kernel access here.  ``netlab`` re-exports everything.
"""

from __future__ import annotations

from dataclasses import dataclass

GATEWAY4 = "10.244.1.1"
GATEWAY6 = "2001:db8:244:1::1"
DEFAULT_MATRIX_PORTS: tuple[tuple[str, int], ...] = (("tcp", 80), ("tcp", 81), ("udp", 80))
STANDARD_NAMESPACES = ("x", "y", "z")
STANDARD_PODS = ("a", "b", "c")

Case = tuple["Pod", str, str, int]  # (src pod, dst address, "tcp" | "udp", port)
MatrixKey = tuple["Pod", "Pod", str, int]  # (src pod, dst pod, "tcp" | "udp", port)


@dataclass(frozen=True)
class Pod:
    """A pod (or, for ``Lab.node``, the node itself) and where it lives."""

    namespace: str
    name: str
    netns: str
    ip4: str
    ip6: str | None
    iface: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def addr(self, family: int = 4) -> str:
        if family == 6:
            if self.ip6 is None:
                raise ValueError(f"pod {self.key} has no IPv6 address")
            return self.ip6
        return self.ip4

    def __str__(self) -> str:
        return self.key


def standard_specs(ipv6: bool = True) -> list[tuple[str, str, str, str | None]]:
    """``(namespace, name, ip4, ip6)`` of the upstream netpol e2e model's 9 pods.

    x/a is 10.244.1.10 (and 2001:db8:244:1::10), x/b .11, ... z/c .18.
    """
    specs: list[tuple[str, str, str, str | None]] = []
    n = 10
    for ns in STANDARD_NAMESPACES:
        for name in STANDARD_PODS:
            specs.append((ns, name, f"10.244.1.{n}", f"2001:db8:244:1::{n}" if ipv6 else None))
            n += 1
    return specs


def format_matrix(result: dict[MatrixKey, bool]) -> str:
    """Upstream-style truth tables, one per (proto, port): ``.`` allowed, ``X`` denied."""
    srcs = list(dict.fromkeys(k[0] for k in result))
    dsts = list(dict.fromkeys(k[1] for k in result))
    out = []
    for proto, port in dict.fromkeys((k[2], k[3]) for k in result):
        out.append(f"{proto}/{port}\t" + "\t".join(d.key for d in dsts))
        for s in srcs:
            cells = [result.get((s, d, proto, port)) for d in dsts]
            out.append(s.key + "\t" + "\t".join("?" if c is None else ".X"[not c] for c in cells))
    return "\n".join(out)


def matrix_diff(expected: dict[MatrixKey, bool], actual: dict[MatrixKey, bool]) -> list[str]:
    """Human-readable mismatches, empty when the matrices agree."""
    lines = []
    for k in expected.keys() | actual.keys():
        e, a = expected.get(k), actual.get(k)
        if e != a:
            s, d, proto, port = k
            lines.append(f"{s.key} -> {d.key} {proto}/{port}: expected {e}, got {a}")
    return sorted(lines)
