"""The per-namespace sysctls the dataplane depends on."""

from __future__ import annotations

import os

BRIDGE_NF = ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")


def ensure_bridge_netfilter(root: str = "/proc/sys") -> list[str]:
    """Bridged pod-to-pod traffic reaches the inet/ip forward hook only with
    br_netfilter's bridge-nf-call-* set in this network namespace."""
    notes = []
    for key in BRIDGE_NF:
        path = os.path.join(root, key)
        if not os.path.exists(path):
            notes.append(f"{key.replace('/', '.')} is missing: bridged traffic is not filtered")
            continue
        with open(path, encoding="ascii") as fh:
            if fh.read().strip() == "1":
                continue
        with open(path, "w", encoding="ascii") as fh:
            fh.write("1\n")
        notes.append(f"set {key.replace('/', '.')}=1 in this network namespace")
    return notes
