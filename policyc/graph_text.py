"""The rule graph as small, deterministic text, for golden before/after pairs
of the optimiser passes (``fixtures/passes/<pass>/<case>/``).

One line per endpoint, policy node, rule and set, in graph order (which the
compiler already sorts); set elements follow their set, one per line::

    policy x/web Ingress ip selects sel_1234abcd4
      rule x/web ingress[0] peers peer_89ab4,net_cdef4 ports port_0123
    set port_0123 ports: tcp 80-81
"""

from __future__ import annotations

from policyc.concat import box_text
from policyc.ir import PROTO_NAMES, Element, RuleGraph, SetDef, SetKind


def _names(names: tuple[str, ...] | None) -> str:
    return "*" if names is None else ",".join(names) or "-"


def element_text(kind: SetKind, e: Element) -> str:
    """``e`` in the shape ``ir.Element`` documents for ``kind``, nft-like:
    ``10.0.0.1``, ``10.0.0.0-10.0.0.255``, ``tcp 80-81``, ``10.0.0.1 . tcp . 80``."""
    if not isinstance(e, tuple):
        return str(e)  # ADDR, IFACE
    if kind is SetKind.CIDR:
        return f"{e[0]}-{e[1]}"
    if kind is SetKind.PORTS:
        return f"{PROTO_NAMES[e[0]]} {e[1]}" + (f"-{e[2]}" if e[2] != e[1] else "")
    if kind is SetKind.NAMED:
        return f"{e[0]} . {PROTO_NAMES[e[1]]} . {e[2]}"
    if kind is SetKind.NET_PORTS:
        return box_text(e)
    return " . ".join(map(str, e))  # IFACE_ADDR


def set_text(s: SetDef) -> list[str]:
    family = f" {s.family}" if s.family else ""
    comment = f"  # {s.comment}" if s.comment else ""
    return [f"set {s.name} {s.kind}{family}{comment}"] + [
        f"  {element_text(s.kind, e)}" for e in s.elements
    ]


def graph_text(graph: RuleGraph) -> str:
    lines = [f"node {graph.node or '*'}"]
    for ep in graph.endpoints:
        lines.append(f"endpoint {ep.namespace}/{ep.name} {ep.iface} " + " ".join(map(str, ep.ips)))
    for pol in graph.policies:
        lines.append(f"policy {pol.policy} {pol.direction} {pol.family} selects {pol.selected}")
        for r in pol.rules:
            peers, ports = _names(r.peer_sets), _names(r.port_sets)
            lines.append(f"  rule {r.label} peers {peers} ports {ports}")
    for g in graph.groups:
        alias = f" -> {g.alias}" if g.alias else ""
        lines.append(f"group {g.name} {g.direction} {g.family} " + " ".join(g.policies) + alias)
        for r in g.rules or ():  # passes.concat_lookups
            peers, ports = _names(r.peer_sets), _names(r.port_sets)
            lines.append(f"  rule {r.label} peers {peers} ports {ports}")
    if graph.shared:
        lines.append("shared addresses: shared-address chains")
    for s in graph.sets:
        lines.extend(set_text(s))
    return "\n".join(lines) + "\n"
