"""Ruleset size of a backend state: rules, sets, map entries, elements.

``State.size()`` (``backends.contract``) gives rules, sets and elements.
Map entries are counted apart: an nftables verdict map (``Set.map``, the
dispatch maps ``disp_*``).  On iptables the dispatch map is one ipset per
group chain; those count as sets.
"""

from __future__ import annotations

from typing import Any

MAP_MARKERS = ("verdict", "map")


def _is_map(s: Any) -> bool:
    if getattr(s, "map", ""):
        return True
    kind = getattr(s, "type", ())
    parts = kind if isinstance(kind, tuple) else (str(kind),)
    flags = tuple(getattr(s, "flags", ()))
    return any(m in str(p) for p in (*parts, *flags) for m in MAP_MARKERS)


def _sets(state: Any) -> list[Any]:
    if hasattr(state, "tables") and state.tables and hasattr(state.tables[0], "sets"):
        return [s for t in state.tables for s in t.sets.values()]  # nftables
    return list(getattr(state, "sets", ()))  # iptables: ipsets


def ruleset_size(state: Any) -> dict[str, int]:
    """``{"rules", "sets", "elements", "maps", "map_entries"}`` of one state."""
    out = dict(state.size())
    maps = [s for s in _sets(state) if _is_map(s)]
    out["maps"] = len(maps)
    out["map_entries"] = sum(len(s.elements) for s in maps)
    out["sets"] -= len(maps)
    out["elements"] -= out["map_entries"]
    return out
