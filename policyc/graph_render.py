"""The rule graph as a drawing: pods -> the policies that select them ->
their rules -> the peer and port sets each rule reads.

A policy's IPv4 and IPv6 nodes are drawn as one, and so are a rule's and a
set definition's (the compiler keeps one per family): the drawing is about
which policy reaches which pod, not about address families.  Sets are
labelled by what defines them (their selector, ipBlocks or ports, from the
set's comment and elements), never by their hashed name alone.
"""

from __future__ import annotations

import ipaddress
import textwrap
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from policyc.graph_text import element_text
from policyc.ir import Endpoint, RuleGraph, SetDef, SetKind
from policyc.model import IPAddress

WRAP = 44  # characters per label line
MAX_ELEMENTS = 6  # elements listed in a set's label before "... N more"


class NodeKind(StrEnum):
    POD = "pod"
    POLICY = "policy"
    RULE = "rule"
    SET = "set"


SHAPES: dict[NodeKind, str] = {
    NodeKind.POD: "box",
    NodeKind.POLICY: "component",
    NodeKind.RULE: "note",
    NodeKind.SET: "ellipse",
}
FILLS: dict[NodeKind, str] = {
    NodeKind.POD: "#dbe8fb",
    NodeKind.POLICY: "#fde2c4",
    NodeKind.RULE: "#fff7c8",
    NodeKind.SET: "#e2f2dc",
}


@dataclass(frozen=True, slots=True)
class DrawNode:
    id: str
    kind: NodeKind
    lines: tuple[str, ...]  # the label, one line each
    group: str = ""  # a pod's namespace: drawn as a box around its pods


@dataclass(frozen=True, slots=True)
class DrawEdge:
    src: str
    dst: str
    label: str


@dataclass(frozen=True, slots=True)
class Drawing:
    nodes: tuple[DrawNode, ...]
    edges: tuple[DrawEdge, ...]


def _ranges(s: SetDef) -> list[str]:
    """A CIDR set's intervals as prefixes (10.0.0.0-10.0.0.255 -> 10.0.0.0/24)."""
    out: list[str] = []
    for e in s.elements:
        lo, hi = cast(tuple[IPAddress, IPAddress], e)
        out.extend(str(n) for n in ipaddress.summarize_address_range(lo, hi))
    return out


def set_lines(defs: list[SetDef]) -> tuple[str, ...]:
    """The label of one set definition (its per-family SetDefs): the comment
    (selector or ipBlocks), then what it holds."""
    head = defs[0]
    lines = head.comment.split(" | ") if head.comment else []
    if head.kind is SetKind.CIDR and lines:
        n = sum(len(s.elements) for s in defs)
        return (*lines, f"{n} address {'range' if n == 1 else 'ranges'}")
    if head.kind is SetKind.CIDR:
        items = [r for s in defs for r in _ranges(s)]
    elif head.kind is SetKind.PORTS:
        items = [element_text(s.kind, e) for s in defs for e in s.elements]
    else:
        n = sum(len(s.elements) for s in defs)
        nouns = (
            ("pod port", "pod ports") if head.kind is SetKind.NAMED else ("address", "addresses")
        )
        return (*lines, f"{n} {nouns[n != 1]}")
    shown = items[:MAX_ELEMENTS]
    more = [f"... {len(items) - MAX_ELEMENTS} more"] if len(items) > MAX_ELEMENTS else []
    return (*lines, *shown, *more) if lines or shown else ("(empty)",)


def _set_key(s: SetDef) -> str:
    """One key per set definition across families: the compiler names a
    family's copy ``<hash><4|6>``, and a family-less set has one copy."""
    return s.name[:-1] if s.family is not None else s.name


def _pod_id(ep: Endpoint) -> str:
    return f"pod {ep.namespace}/{ep.name}"


def drawing(graph: RuleGraph) -> Drawing:
    """The drawing of ``graph``; nodes and edges in a stable order."""
    sets: dict[str, list[SetDef]] = {}
    by_name = {s.name: s for s in graph.sets}
    nodes: dict[str, DrawNode] = {}
    edges: dict[tuple[str, str], DrawEdge] = {}
    owners: dict[object, Endpoint] = {ip: ep for ep in graph.endpoints for ip in ep.ips}
    for pol in graph.policies:
        pid = f"policy {pol.policy} {pol.direction}"
        nodes.setdefault(pid, DrawNode(pid, NodeKind.POLICY, (pol.policy, str(pol.direction))))
        for ip in by_name[pol.selected].elements if pol.selected in by_name else ():
            if ip in owners:
                ep = owners[ip]
                edges.setdefault((_pod_id(ep), pid), DrawEdge(_pod_id(ep), pid, "selected by"))
        for rule in pol.rules:
            rid = f"rule {rule.label}"
            nodes.setdefault(rid, DrawNode(rid, NodeKind.RULE, (rule.label,)))
            edges.setdefault((pid, rid), DrawEdge(pid, rid, ""))
            for what, names in (("peers", rule.peer_sets), ("ports", rule.port_sets)):
                if names is None:
                    star = f"any {what}"
                    nodes.setdefault(star, DrawNode(star, NodeKind.SET, (f"every {what[:-1]}",)))
                    edges.setdefault((rid, star), DrawEdge(rid, star, what))
                for name in names or ():
                    key = f"set {_set_key(by_name[name])}"
                    sets.setdefault(key, [])
                    if by_name[name] not in sets[key]:
                        sets[key].append(by_name[name])
                    edges.setdefault((rid, key), DrawEdge(rid, key, what))
    for key, defs in sets.items():
        nodes[key] = DrawNode(key, NodeKind.SET, set_lines(defs))
    pods = tuple(
        DrawNode(
            _pod_id(ep),
            NodeKind.POD,
            (f"{ep.namespace}/{ep.name}", *map(str, ep.ips)),
            ep.namespace,
        )
        for ep in graph.endpoints
    )
    return Drawing(pods + tuple(nodes.values()), tuple(edges.values()))


def _q(text: str) -> str:
    """A DOT double-quoted ID: backslash and quote escaped ("In quoted
    strings in DOT, the only escaped character is double-quote")."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap(lines: tuple[str, ...]) -> list[str]:
    """Label lines of at most WRAP characters, broken at spaces and after commas."""
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line.replace(",", ", "), WRAP, break_long_words=False) or [""])
    return out


def _node_line(n: DrawNode) -> str:
    label = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in _wrap(n.lines))
    return f'{_q(n.id)} [shape={SHAPES[n.kind]},fillcolor="{FILLS[n.kind]}",label="{label}"];'


def to_dot(d: Drawing) -> str:
    """Graphviz DOT text, left to right: pods (boxed by namespace),
    policies, rules, sets."""
    lines = [
        "digraph policyc {",
        "\trankdir=LR;",
        '\tgraph [fontname="DejaVu Sans",fontsize=11];',
        '\tnode [fontname="DejaVu Sans Mono",fontsize=10,style=filled];',
        '\tedge [fontname="DejaVu Sans",fontsize=9,color="#666666"];',
    ]
    groups: dict[str, list[DrawNode]] = {}
    for n in d.nodes:
        if n.group:
            groups.setdefault(n.group, []).append(n)
        else:
            lines.append("\t" + _node_line(n))
    for name, members in groups.items():
        lines.append(f"\tsubgraph {_q('cluster_ns ' + name)} {{")
        lines.append(f'\t\tlabel={_q("namespace " + name)}; style=rounded; color="#8899aa";')
        lines.extend("\t\t" + _node_line(n) for n in members)
        lines.append("\t}")
    for e in d.edges:
        attr = f" [label={_q(e.label)}]" if e.label else ""
        lines.append(f"\t{_q(e.src)} -> {_q(e.dst)}{attr};")
    lines.append("}")
    return "\n".join(lines) + "\n"
