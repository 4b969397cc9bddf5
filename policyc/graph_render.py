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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from policyc.cnp_sets import subject_selects
from policyc.graph_text import element_text
from policyc.ir import Endpoint, PolicyNode, RuleGraph, SetDef, SetKind
from policyc.model import Cluster, IPAddress

WRAP = 44  # characters per label line
MAX_ELEMENTS = 6  # elements listed in a set's label before "... N more"


class NodeKind(StrEnum):
    POD = "pod"
    IDLE_PODS = "idle pods"  # a namespace's pods that no policy selects
    POLICY = "policy"
    RULE = "rule"
    SET = "set"


SHAPES: dict[NodeKind, str] = {
    NodeKind.POD: "box",
    NodeKind.IDLE_PODS: "box",
    NodeKind.POLICY: "component",
    NodeKind.RULE: "note",
    NodeKind.SET: "ellipse",
}
FILLS: dict[NodeKind, str] = {
    NodeKind.POD: "#dbe8fb",
    NodeKind.IDLE_PODS: "#eeeeee",
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


def selected_pods(graph: RuleGraph, pol: PolicyNode, cluster: Cluster | None) -> Iterator[Endpoint]:
    """The local pods ``pol`` selects: the members of its selected set, and,
    with the cluster, the pods its podSelector matches ("Selects the pods to
    which this NetworkPolicy object applies", in the policy's namespace).
    The model is needed because the optimiser drops the selected set of a
    policy that has no rule in a family (the pods are then only in iso_*)."""
    owners: dict[object, Endpoint] = {ip: ep for ep in graph.endpoints for ip in ep.ips}
    members = next((s.elements for s in graph.sets if s.name == pol.selected), ())
    yield from (owners[ip] for ip in members if ip in owners)
    if cluster is None:
        return
    pods = {(p.namespace, p.name): p for p in cluster.pods}
    cnp = next((c for c in cluster.cluster_policies if c.key == pol.policy), None)
    if cnp is not None:  # a tier's node: its ``selected`` is empty, the subject decides
        for ep in graph.endpoints:
            pod = pods.get((ep.namespace, ep.name))
            ns = cluster.namespaces.get(ep.namespace)
            if pod and ns and subject_selects(cnp.subject, pod, ns.label_map):
                yield ep
        return
    np = next((p for p in cluster.policies if p.key == pol.policy), None)
    if np is None:
        return
    for ep in graph.endpoints:
        pod = pods.get((ep.namespace, ep.name))
        if pod and pod.namespace == np.namespace and np.pod_selector.matches(pod.label_map):
            yield ep


def drawing(graph: RuleGraph, cluster: Cluster | None = None) -> Drawing:
    """The drawing of ``graph`` (``cluster``: the model it was compiled
    from, for :func:`selected_pods`); nodes and edges in a stable order."""
    sets: dict[str, list[SetDef]] = {}
    by_name = {s.name: s for s in graph.sets}
    nodes: dict[str, DrawNode] = {}
    edges: dict[tuple[str, str], DrawEdge] = {}
    for pol in (*graph.tiers, *graph.policies):
        pid = f"policy {pol.policy} {pol.direction}"
        nodes.setdefault(pid, DrawNode(pid, NodeKind.POLICY, (pol.policy, str(pol.direction))))
        for ep in selected_pods(graph, pol, cluster):
            edges.setdefault((_pod_id(ep), pid), DrawEdge(_pod_id(ep), pid, "selected by"))
        for rule in pol.rules:
            rid = f"rule {rule.label}"
            what_it_does = (f"{rule.action}",) if rule.action is not None else ()
            nodes.setdefault(rid, DrawNode(rid, NodeKind.RULE, (rule.label, *what_it_does)))
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
    pods = pod_nodes(graph.endpoints, {e.src for e in edges.values()})
    return Drawing(pods + tuple(nodes.values()), tuple(edges.values()))


def pod_nodes(endpoints: Iterable[Endpoint], selected: set[str]) -> tuple[DrawNode, ...]:
    """A node per pod some policy selects; the others of a namespace share
    one node, so that unisolated pods do not crowd the drawing out."""
    out: list[DrawNode] = []
    idle: dict[str, list[str]] = {}
    for ep in endpoints:
        if _pod_id(ep) in selected:
            lines = (f"{ep.namespace}/{ep.name}", *map(str, ep.ips))
            out.append(DrawNode(_pod_id(ep), NodeKind.POD, lines, ep.namespace))
        else:
            idle.setdefault(ep.namespace, []).append(ep.name)
    for ns, names in idle.items():
        head = f"{len(names)} {'pod' if len(names) == 1 else 'pods'} no policy selects"
        more = [f"... {len(names) - MAX_ELEMENTS} more"] if len(names) > MAX_ELEMENTS else []
        lines = (head, *names[:MAX_ELEMENTS], *more)
        out.append(DrawNode(f"unselected {ns}", NodeKind.IDLE_PODS, lines, ns))
    return tuple(out)


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
    style = ',style="filled,dashed"' if n.kind is NodeKind.IDLE_PODS else ""
    return (
        f'{_q(n.id)} [shape={SHAPES[n.kind]},fillcolor="{FILLS[n.kind]}"{style},label="{label}"];'
    )


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
