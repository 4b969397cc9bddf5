"""Text and JSON renderings of ``policyc.reachdiff.ReachDiff``.

Text: a summary line, then one block per cause, one line per connection:
``+`` opened, ``-`` closed (as diff(1)), with the families when not both.
"""

from __future__ import annotations

import json
from typing import Any

from policyc.reachdiff import CauseKind, Change, Connection, Group, ReachDiff

FORMATS = ("text", "json")
TITLES = {
    CauseKind.ADDED: "added",
    CauseKind.REMOVED: "removed",
    CauseKind.CHANGED: "changed",
    CauseKind.LABELS: "pod or namespace labels changed",
    CauseKind.COMBINED: "several changes together",
}


def render(delta: ReachDiff, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(delta), indent=2) + "\n"
    return text(delta)


def _lines(conns: tuple[Connection, ...]) -> list[str]:
    """One line per destination, change, families and ports, sources joined:
    ``+`` opened, ``-`` closed."""
    srcs: dict[tuple[str, Change, tuple[int, ...], str], list[str]] = {}
    for c in conns:
        srcs.setdefault((c.dst, c.change, c.families, c.port_text), []).append(c.src)
    out = []
    for (dst, change, fams, ports), who in sorted(srcs.items()):
        sign = "+" if change is Change.OPENED else "-"
        only = "" if fams == (4, 6) else f" (IPv{fams[0]} only)"
        out.append(f"  {sign} {', '.join(who)} -> {dst}: {ports}{only}")
    return out


def _title(g: Group) -> str:
    if g.kind in (CauseKind.LABELS, CauseKind.COMBINED):
        return f"{TITLES[g.kind]}:"
    # A ClusterNetworkPolicy's key names its kind ("ClusterNetworkPolicy name");
    # a NetworkPolicy's is "ns/name".
    what = g.cause if " " in g.cause else f"NetworkPolicy {g.cause}"
    return f"{what} ({TITLES[g.kind]}):"


def text(d: ReachDiff) -> str:
    opened, closed = d.count(Change.OPENED), d.count(Change.CLOSED)
    if not d.changes:
        lines = [f"no change in reachability among the {d.pods} pods of both versions"]
    else:
        lines = [
            f"pod pairs: {opened} opened, {closed} closed, among the {d.pods} pods of both versions"
        ]
    for name, keys in (("OLD", d.only_old), ("NEW", d.only_new)):
        if keys:
            lines.append(f"pods only in {name} (not compared): {', '.join(keys)}")
    for g in d.groups:
        lines.append(_title(g))
        lines += _lines(g.connections)
    return "\n".join(lines) + "\n"


def _conn_json(c: Connection) -> dict[str, Any]:
    return {
        "change": str(c.change),
        "src": c.src,
        "dst": c.dst,
        "ports": [
            {"protocol": str(p.protocol), "port": p.port, "endPort": p.end_port} for p in c.ports
        ],
        "families": list(c.families),
    }


def to_json(d: ReachDiff) -> dict[str, Any]:
    return {
        "opened": d.count(Change.OPENED),
        "closed": d.count(Change.CLOSED),
        "pods": d.pods,
        "onlyOld": list(d.only_old),
        "onlyNew": list(d.only_new),
        "groups": [
            {
                "cause": g.cause,
                "kind": str(g.kind),
                "connections": [_conn_json(c) for c in g.connections],
            }
            for g in d.groups
        ],
    }
