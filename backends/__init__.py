"""Backends program the kernel from the lowered ruleset.

``BACKENDS`` is the one registry: the CLI and the watcher reach a backend
only through it, and take their ``--backend`` choices from its keys.  Each
backend keeps the contract in ``backends.contract``: render, diff, patch,
apply, read_kernel (plus write/files for ``compile`` and remove).
"""

from __future__ import annotations

from typing import Any

from backends.contract import Backend
from backends.iptables import BACKEND as IPTABLES
from backends.nftables import BACKEND as NFTABLES

BACKENDS: dict[str, Backend[Any]] = {b.name: b for b in (NFTABLES, IPTABLES)}
