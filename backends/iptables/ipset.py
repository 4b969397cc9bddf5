"""ipset side of the iptables backend: the IR's sets as ``ipset restore`` lines.

Every set is named ``policyc-<IR name>`` (31 characters at most), so a pod
that comes or goes changes set members, never a rule.  Kinds map to types:

    ADDR        hash:ip          10.244.1.10
    CIDR        hash:net         10.244.0.0/16 and ``nomatch`` entries for excepts
    NAMED       hash:ip,port     10.244.1.10,udp:81       (matched dst,dst)

    VMAP        one hash:ip per group chain: the addresses it sends there
                (``policyc-eg4_1a2b3c4d``), matched ``src -g POLICYC-EG4-1A2B3C4D``

PORTS sets have no ipset: the iptables renderer expands them into
``-m multiport`` rule variants (their size depends on the policy, not on pods).
IFACE and IFACE_ADDR sets (bridge port, anti-spoofing) have none either: the
set match cannot see the bridge port (see ``backends.iptables.dialect``).
"""

from __future__ import annotations

import ipaddress
from functools import cache

from backends.iptables.state import OLD_PREFIX, SET_PREFIX, TMP_PREFIX, IpSet
from policyc.errors import BackendError
from policyc.ir import PROTO_NAMES, Family, SetDef, SetKind
from policyc.names import short_hash

PREFIX = SET_PREFIX
MAX_NAME = 31
DEFAULT_MAXELEM = 65536
IPSET_FAMILY = {Family.V4: "inet", Family.V6: "inet6"}
TYPES = {
    SetKind.ADDR: "hash:ip",
    SetKind.CIDR: "hash:net",
    SetKind.NAMED: "hash:ip,port",
}


def set_name(ir_name: str, family: Family | None = None) -> str:
    """``policyc-<name>``; family-less sets get the family suffix per family.

    A name too long for ipset keeps a readable head and a content hash.
    """
    base = ir_name + (family.suffix if family is not None else "")
    name = PREFIX + base
    if len(name) <= MAX_NAME:
        return name
    return f"{PREFIX}{base[:14]}-{short_hash(base, 8)}"


def maxelem_for(n: int) -> int | None:
    """Room for twice the members once a set passes half ipset's default."""
    return 2 * n if n > DEFAULT_MAXELEM // 2 else None


def tmp_name(live: str) -> str:
    return TMP_PREFIX + short_hash(live, 12)


def old_name(live: str) -> str:
    return OLD_PREFIX + short_hash(live, 12)


def _cidr_entries(ranges: tuple[tuple[int, int], ...], bits: int) -> list[tuple[int, int, bool]]:
    """Fewest hash:net entries (net, prefix length, nomatch) for a union of ranges.

    hash:net answers with its longest matching prefix and a ``nomatch`` entry
    answers "no", so an ipBlock with ``except`` becomes its cidr plus one
    nomatch entry per except.  Dynamic programming over the prefix trie, with
    the verdict inherited from the nearest enclosing entry; /0 is not allowed.
    """
    import bisect

    los = [lo for lo, _ in ranges]

    def status(base: int, plen: int) -> int:  # 1 inside, 0 outside, -1 mixed
        last = base + (1 << (bits - plen)) - 1
        i = bisect.bisect_right(los, base) - 1
        if i >= 0 and ranges[i][1] >= last:
            return 1
        j = bisect.bisect_right(los, last) - 1  # the last range starting <= last
        if j < 0 or (ranges[j][1] < base):
            return 0
        return -1

    # Costs first (ints, cached), then one walk that replays the choices:
    # carrying the entry tuples up the trie copied them once per level.
    @cache
    def cost(base: int, plen: int, inherited: bool) -> int:
        st = status(base, plen)
        if st != -1 and plen > 0:
            return 0 if (st == 1) == inherited else 1
        keep = children(base, plen, inherited)
        return keep if plen == 0 else min(keep, 1 + children(base, plen, not inherited))

    def children(base: int, plen: int, state: bool) -> int:
        half = 1 << (bits - plen - 1)
        return cost(base, plen + 1, state) + cost(base + half, plen + 1, state)

    entries: list[tuple[int, int, bool]] = []

    def emit(base: int, plen: int, inherited: bool) -> None:
        st = status(base, plen)
        if st != -1 and plen > 0:
            if (st == 1) != inherited:
                entries.append((base, plen, st != 1))
            return
        state = inherited
        # An entry here only if strictly cheaper: ties keep the inherited verdict.
        if plen > 0 and 1 + children(base, plen, not inherited) < children(base, plen, inherited):
            entries.append((base, plen, inherited))
            state = not inherited
        half = 1 << (bits - plen - 1)
        emit(base, plen + 1, state)
        emit(base + half, plen + 1, state)

    emit(0, 0, False)
    cost.cache_clear()
    return sorted(entries, key=lambda e: (e[0], e[1]))


def cidr_elements(s: SetDef) -> tuple[str, ...]:
    assert s.family is not None
    bits = 32 if s.family is Family.V4 else 128
    cls = ipaddress.IPv4Address if s.family is Family.V4 else ipaddress.IPv6Address
    ranges: list[tuple[int, int]] = []
    for e in s.elements:
        assert isinstance(e, tuple)
        lo, hi = (int(x) for x in e)
        if ranges and lo <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], hi))
        else:
            ranges.append((lo, hi))
    out = []
    for base, plen, nomatch in _cidr_entries(tuple(sorted(ranges)), bits):
        out.append(f"{cls(base)}/{plen}" + (" nomatch" if nomatch else ""))
    return tuple(out)


def _element(s: SetDef, e: object) -> str:
    if s.kind is SetKind.ADDR:
        return str(e)
    if s.kind is SetKind.NAMED:
        assert isinstance(e, tuple)
        ip, proto, port = e
        return f"{ip},{PROTO_NAMES[proto]}:{port}"
    raise BackendError(f"Unsupported set kind for ipset: {s.kind}")


def group_sets(s: SetDef) -> list[IpSet]:
    """A verdict map (VMAP) as one ``hash:ip`` per group chain it sends to,
    named after the chain, sorted by name: the dispatch grows with the
    node's groups, a pod moving between groups is a member change."""
    assert s.family is not None
    by_chain: dict[str, list[str]] = {}
    for e in s.elements:
        assert isinstance(e, tuple)
        by_chain.setdefault(e[1], []).append(str(e[0]))
    return [
        IpSet(
            set_name(c), TYPES[SetKind.ADDR], IPSET_FAMILY[s.family], maxelem_for(len(v)), tuple(v)
        )
        for c, v in sorted(by_chain.items())
    ]


def ipsets(s: SetDef, families: tuple[Family, ...]) -> list[IpSet]:
    """The ipsets for one IR set, for the families whose rules use it."""
    if s.kind in (SetKind.PORTS, SetKind.IFACE, SetKind.IFACE_ADDR, SetKind.NET_PORTS):
        return []  # rendered as multiport / physdev / address-and-port rule variants
    if s.kind is SetKind.VMAP:
        return group_sets(s)
    out = []
    for f in families if s.family is None else (s.family,):
        if s.kind is SetKind.CIDR:
            elems = cidr_elements(s)
        else:
            elems = tuple(_element(s, e) for e in s.elements)
        name = set_name(s.name, f if s.family is None else None)
        out.append(
            IpSet(name, TYPES[s.kind], IPSET_FAMILY[f], maxelem_for(len(elems)), elems, s.comment)
        )
    return out
