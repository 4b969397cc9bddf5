"""Backends render the lowered ruleset and program the kernel.

Each module offers ``render(ruleset) -> str`` and ``apply(text) -> None``.
"""

from __future__ import annotations

from types import ModuleType


def get(name: str) -> ModuleType:
    if name == "nftables":
        from backends import nftables

        return nftables
    if name == "iptables":
        from backends import iptables  # type: ignore[attr-defined]

        return iptables  # type: ignore[no-any-return]
    raise KeyError(name)


BACKENDS = ("nftables", "iptables")
