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


CAP_NET_ADMIN = 12  # linux/capability.h


def has_net_admin() -> bool:
    """Does this process hold CAP_NET_ADMIN in its effective set?

    capabilities(7): "CAP_NET_ADMIN  Perform various network-related
    operations: [...] modify routing tables; [...] set promiscuous mode [...]"
    (and netfilter).  Read from ``CapEff`` of /proc/self/status; euid 0 if
    that cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0
