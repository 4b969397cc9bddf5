"""The demo's files (manifests it writes, the change signature it follows)
and its matrix text."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from policyc.demo_net import NODE, SUBNET4, SUBNET6, DemoPod

MARKER = ".pcdemo"  # DIR holds this: `demo down` removes only a DIR it made
POLICIES = """\
# policyc demo: edit this file (or add .pol/.yaml files beside it) and the
# matrix is printed again.  Try: delete `web-from-clients`, or add
#   allow from ns(kubernetes.io/metadata.name=other) pods(app=client)
policy default-deny in shop {{
  ingress {{}}
}}

policy web-from-clients in shop {{
  select app=web
  ingress {{
    allow from pods(app=client) ports tcp/{port}
  }}
}}
"""


def _pod(pod: DemoPod, ips: list[str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
        "spec": {
            "nodeName": NODE,
            "containers": [
                {"name": "app", "ports": [{"name": "http", "containerPort": port}]},
            ],
        },
        "status": {"phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips]},
    }


def write_manifests(
    manifests: str, pods: Sequence[DemoPod], ips: Mapping[str, list[str]], port: int = 80
) -> None:
    """``cluster.yaml`` (Node, Namespaces, Pods with the IPs CNI gave) always;
    ``policies.pol`` only if absent, so a user's edits survive a restart."""
    os.makedirs(manifests, exist_ok=True)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE},
            "spec": {"podCIDR": SUBNET4, "podCIDRs": [SUBNET4, SUBNET6]},
        }
    ]
    for ns in sorted({p.namespace for p in pods}):
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    docs.extend(_pod(p, ips[p.key], port) for p in pods)
    _write(os.path.join(manifests, "cluster.yaml"), yaml.safe_dump_all(docs, sort_keys=False))
    policies = os.path.join(manifests, "policies.pol")
    if not os.path.exists(policies):
        _write(policies, POLICIES.format(port=port))


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)  # the agent never reads half a file


def manifests_signature(manifests: str) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime_ns) of every file under ``manifests``."""
    out = []
    for root, _dirs, names in os.walk(manifests):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append((path, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


LEGEND = (
    "each cell: a real TCP probe over IPv4 then IPv6, '.' connected, 'X' blocked;\n"
    "'!' after a cell: the evaluator (policyc explain) disagrees; '-': the pod itself"
)


def render_matrix(
    pods: Sequence[DemoPod],
    ips: Mapping[str, list[str]],
    port: int,
    probes: Mapping[tuple[str, str, str], bool],
    verdicts: Mapping[tuple[str, str], bool],
) -> tuple[str, bool]:
    """The matrix text (rows: from, columns: to) and whether every probe
    matched the evaluator."""
    agree = True
    width = max(len(p.key) for p in pods) + 2
    lines = [
        f"port {port}/tcp, rows: from, columns: to",
        " " * width + "".join(p.key.ljust(width) for p in pods),
    ]
    for src in pods:
        cells = []
        for dst in pods:
            if src == dst:
                cells.append("-".ljust(width))
                continue
            cell, bad = "", False
            for sip, dip in zip(ips[src.key], ips[dst.key], strict=False):
                ok = probes[(src.key, dst.key, dip)]
                cell += "." if ok else "X"
                bad |= verdicts.get((sip, dip), ok) != ok
            agree &= not bad
            cells.append((cell + ("!" if bad else "")).ljust(width))
        lines.append(src.key.ljust(width) + "".join(cells))
    lines.append(LEGEND)
    return "\n".join(line.rstrip() for line in lines), agree
