"""Backends program the kernel from the lowered ruleset.

``BACKENDS`` is the one registry: the CLI and the watcher reach a backend
only through it, and take their ``--backend`` choices from its keys.  Each
backend keeps the contract in ``backends.contract``: render, diff, patch,
apply, read_kernel (plus write/files for ``compile`` and remove).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.contract import Backend
from backends.iptables import BACKEND as IPTABLES
from backends.nftables import BACKEND as NFTABLES
from policyc.errors import PolicycError

BACKENDS: dict[str, Backend[Any]] = {b.name: b for b in (NFTABLES, IPTABLES)}


def remove_others(keep: str, warn: Callable[[str], None]) -> list[str]:
    """Switching backend: remove the rules of every backend but ``keep``
    (call it once ``keep``'s rules are in: both in force for a moment is
    stricter, never more open).  Returns the names of the backends whose
    rules were removed; a backend whose tools are missing cannot have rules
    here and is left with a ``warn``.  Raises BackendError if a removal fails."""
    removed = []
    for other, backend in sorted(BACKENDS.items()):
        if other == keep:
            continue
        try:
            present = backend.read_kernel() is not None
        except PolicycError as exc:
            warn(f"cannot read {other} rules ({exc}); left as they are")
            continue
        if present:
            backend.remove()
            removed.append(other)
    return removed
