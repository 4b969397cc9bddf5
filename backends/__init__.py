"""Backends program the kernel from the lowered ruleset.

``BACKENDS`` is the one registry: the CLI and the watcher reach a backend
only through it, and take their ``--backend`` choices from its keys.  Each
backend keeps the contract in ``backends.contract``.
"""

from __future__ import annotations

from typing import Any

from backends import iptables, nftables

BACKENDS: dict[str, Any] = {"nftables": nftables.BACKEND, "iptables": iptables}


def get(name: str) -> Any:
    return BACKENDS[name]
