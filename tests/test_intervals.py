"""``policyc.intervals`` against a brute-force reading of the ipBlock spec:
"except is a list of CIDRs that should not be included within an IPBlock"."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.intervals import block_int_ranges, block_ranges, subtract, union
from policyc.model import IPBlock

BASE = int(ipaddress.IPv4Address("10.244.0.0"))  # blocks within 10.244.0.0/24


@st.composite
def blocks(draw: st.DrawFn) -> IPBlock:
    plen = draw(st.integers(24, 32))
    start = draw(st.integers(0, 255)) >> (32 - plen) << (32 - plen)
    cidr = ipaddress.IPv4Network((BASE + start, plen))
    excepts = []
    for _ in range(draw(st.integers(0, 4))):
        eplen = draw(st.integers(plen, 32))
        off = draw(st.integers(0, cidr.num_addresses - 1)) >> (32 - eplen) << (32 - eplen)
        excepts.append(ipaddress.IPv4Network((start + BASE + off, eplen)))
    return IPBlock(cidr, tuple(excepts))


def brute(bs: list[IPBlock]) -> set[int]:
    out: set[int] = set()
    for b in bs:
        out |= {int(a) for a in b.cidr if not any(a in e for e in b.excepts)}
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(blocks(), max_size=6))
def test_block_ranges_cover_exactly_the_spec(bs: list[IPBlock]) -> None:
    ranges = block_int_ranges(bs, 4)
    covered = {a for lo, hi in ranges for a in range(lo, hi + 1)}
    assert covered == brute(bs)
    # sorted, disjoint and not adjacent: the fewest intervals
    assert all(a[1] + 1 < b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert [(int(lo), int(hi)) for lo, hi in block_ranges(bs, 4)] == ranges
    assert block_int_ranges(bs, 6) == []


def test_union_and_subtract_edges() -> None:
    assert union([(5, 9), (0, 4), (12, 12), (7, 8)]) == [(0, 9), (12, 12)]
    assert subtract((0, 15), [(0, 3), (8, 8), (15, 20)]) == [(4, 7), (9, 14)]
    assert subtract((0, 15), [(0, 15)]) == []
    assert subtract((4, 7), [(0, 1), (10, 11)]) == [(4, 7)]


def test_one_block_with_many_excepts_is_linear_in_shape() -> None:
    """10,000 excepts in one /16 (every other /32 of the first 20,000
    addresses): 10,000 single addresses plus the tail."""
    cidr = ipaddress.IPv4Network("10.244.0.0/16")
    excepts = tuple(ipaddress.IPv4Network((BASE + 2 * i, 32)) for i in range(10_000))
    ranges = block_int_ranges([IPBlock(cidr, excepts)], 4)
    assert len(ranges) == 10_000
    assert ranges[-1] == (BASE + 19_999, BASE + 65_535)
