"""Address interval arithmetic for ipBlocks: cidr minus except, unioned."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from policyc.model import IPAddress, IPBlock

Range = tuple[int, int]


def _subtract(ranges: list[Range], cut: Range) -> list[Range]:
    out = []
    for lo, hi in ranges:
        if cut[1] < lo or cut[0] > hi:
            out.append((lo, hi))
            continue
        if lo < cut[0]:
            out.append((lo, cut[0] - 1))
        if cut[1] < hi:
            out.append((cut[1] + 1, hi))
    return out


def union(ranges: Iterable[Range]) -> list[Range]:
    merged: list[Range] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def block_ranges(blocks: Iterable[IPBlock], version: int) -> list[tuple[IPAddress, IPAddress]]:
    """Disjoint, sorted address ranges covered by ``blocks`` of one IP version.

    "except is a list of CIDRs that should not be included within an IPBlock":
    each except cuts only its own block, and the blocks are then unioned.
    """
    parts: list[Range] = []
    for block in blocks:
        if block.cidr.version != version:
            continue
        ranges = [(int(block.cidr.network_address), int(block.cidr.broadcast_address))]
        for exc in block.excepts:
            ranges = _subtract(ranges, (int(exc.network_address), int(exc.broadcast_address)))
        parts.extend(ranges)
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return [(make(lo), make(hi)) for lo, hi in union(parts)]
