"""Draw the rule graph: endpoints -> policies -> rules -> sets (Graphviz dot)."""

from __future__ import annotations

from policyc.ir import RuleGraph


def _q(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def to_dot(graph: RuleGraph) -> str:
    lines = ["digraph policyc {", "\trankdir=LR;", "\tnode [fontname=monospace];"]
    for ep in graph.endpoints:
        ips = " ".join(str(i) for i in ep.ips)
        label = f"{ep.namespace}/{ep.name}\\n{ips}"
        lines.append(f"\t{_q(ep.iface)} [shape=box,label={_q(label)}];")
    sizes = {s.name: len(s.elements) for s in graph.sets}
    for s in graph.sets:
        text = f"{s.name} ({sizes[s.name]})"
        lines.append(f"\t{_q(s.name)} [shape=ellipse,label={_q(text)}];")
    for pol in graph.policies:
        pid = f"{pol.policy} {pol.direction.value} {pol.family.suffix}"
        lines.append(f"\t{_q(pid)} [shape=component];")
        lines.append(f"\t{_q(pol.selected)} -> {_q(pid)} [label=selects];")
        for rule in pol.rules:
            rid = f"{rule.label} v{rule.family.suffix}"
            lines.append(f"\t{_q(rid)} [shape=note];")
            lines.append(f"\t{_q(pid)} -> {_q(rid)};")
            for name in rule.peer_sets or ():
                lines.append(f"\t{_q(rid)} -> {_q(name)} [label=peer];")
            for name in rule.port_sets or ():
                lines.append(f"\t{_q(rid)} -> {_q(name)} [label=port];")
    lines.append("}")
    return "\n".join(lines) + "\n"
