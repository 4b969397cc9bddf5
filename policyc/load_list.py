"""A JSON ``kind: List`` read item by item, never whole.

``json.loads`` of a 210 MB List (150,000 pods) holds every item as Python
objects at once (2 GiB) and, while it builds them, the cyclic GC walks the
growing heap again and again.  Here the stdlib's C decoder reads one item at
a time (``JSONDecoder.raw_decode(text, offset)``):

1. :func:`scan` reads the document once, item by item, with the same
   refusals as :func:`policyc.load_json.loads` (duplicate keys, NaN), keeps
   only each item's ``(start, end)`` offsets and drops the item.  Anything
   unusual (not a List, an item that is not an object, text ``json``
   refuses) returns None and the caller takes the whole-document path,
   which reports it exactly as before.
2. Iterating :class:`ListItems` decodes each item again from its offsets, so
   only the item being validated lives as Python objects.

Not ijson: it gives events or whole items but no offsets, and the offsets
are what keep ``file:line:col`` (an item's locations are indexed from its
own slice of the text, only when an error is reported).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from policyc.errors import Location
from policyc.load_json import _WS, _constant, _index, _pairs, _Refused
from policyc.raw import Path, RawObject

_CHECKED = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)
_PLAIN = json.JSONDecoder()  # for text _CHECKED already accepted


def _ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


class _Lines:
    """Line numbers of offsets in one text, counted from cached points."""

    __slots__ = ("text", "_offsets", "_lines")

    def __init__(self, text: str) -> None:
        self.text = text
        self._offsets = [0]
        self._lines = [1]

    def location(self, file: str, offset: int) -> Location:
        i = bisect.bisect_right(self._offsets, offset) - 1
        line = self._lines[i] + self.text.count("\n", self._offsets[i], offset)
        self._offsets.insert(i + 1, offset)
        self._lines.insert(i + 1, line)
        return Location(file, line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1)


class ItemLocs:
    """Locations of one List item's values (paths from the document root),
    indexed from the item's own text on first use."""

    __slots__ = ("file", "lines", "start", "end", "prefix", "_offsets")

    def __init__(self, file: str, lines: _Lines, start: int, end: int, prefix: Path) -> None:
        self.file, self.lines, self.start, self.end, self.prefix = file, lines, start, end, prefix
        self._offsets: dict[Path, int] | None = None

    def get(self, path: Path, default: None = None, /) -> Location | None:
        n = len(self.prefix)
        if path[:n] != self.prefix:
            return None
        if self._offsets is None:
            self._offsets = _index(self.lines.text[self.start : self.end])
        offset = self._offsets.get(path[n:])
        if offset is None:
            return None
        return self.lines.location(self.file, self.start + offset)


class ListItems:
    """The items of one scanned List, decoded one at a time as iterated."""

    __slots__ = ("file", "text", "spans")

    def __init__(self, file: str, text: str, spans: list[tuple[int, int]]) -> None:
        self.file, self.text, self.spans = file, text, spans

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[RawObject]:
        lines = _Lines(self.text)
        for i, (start, end) in enumerate(self.spans):
            data = _PLAIN.raw_decode(self.text, start)[0]
            prefix: Path = ("items", i)
            yield RawObject(data, self.file, ItemLocs(self.file, lines, start, end, prefix), prefix)


def scan(text: str, file: str) -> ListItems | None:
    """The items of ``text`` if it is one JSON object with ``kind: List`` (or
    ``*List``) and an ``items`` array of objects; None for anything else."""
    try:
        members, spans = _members(text)
    except (_Refused, ValueError, RecursionError, IndexError):
        return None
    kind = members.get("kind")
    if spans is None or not isinstance(kind, str) or not kind.endswith("List"):
        return None
    return ListItems(file, text, spans)


def _members(text: str) -> tuple[dict[str, Any], list[tuple[int, int]] | None]:
    """The top-level object's members except ``items``, and the items' spans
    (None if ``items`` is not an array of objects).  Raises ValueError (or
    _Refused) where ``json.loads`` would refuse."""
    pos = _ws(text, 0)
    if text[pos] != "{":
        raise ValueError("not an object")
    members: dict[str, Any] = {}
    seen: set[str] = set()
    spans: list[tuple[int, int]] | None = None
    pos = _ws(text, pos + 1)
    while text[pos] != "}" or seen:  # "}" ends the object, but not after ","
        if text[pos] != '"':
            raise ValueError("expected a key")
        key, pos = scanstring(text, pos + 1)
        if key in seen:
            raise _Refused
        seen.add(key)
        pos = _ws(text, pos)
        if text[pos] != ":":
            raise ValueError("expected ':'")
        pos = _ws(text, pos + 1)
        if key == "items" and text[pos] == "[":
            spans, pos = _items(text, pos)
        else:
            members[key], pos = _CHECKED.raw_decode(text, pos)
        pos = _ws(text, pos)
        if text[pos] == "}":
            break
        if text[pos] != ",":
            raise ValueError("expected ',' or '}'")
        pos = _ws(text, pos + 1)
    if _ws(text, pos + 1) != len(text):
        raise ValueError("extra data")
    return members, spans


def _items(text: str, pos: int) -> tuple[list[tuple[int, int]] | None, int]:
    """At ``[``: each element's span (None if one is not an object) and the
    offset past ``]``."""
    spans: list[tuple[int, int]] | None = []
    pos = _ws(text, pos + 1)
    if text[pos] == "]":
        return spans, pos + 1
    while True:
        value, end = _CHECKED.raw_decode(text, pos)
        if spans is not None:
            if isinstance(value, dict):
                spans.append((pos, end))
            else:
                spans = None
        pos = _ws(text, end)
        if text[pos] == "]":
            return spans, pos + 1
        if text[pos] != ",":
            raise ValueError("expected ',' or ']'")
        pos = _ws(text, pos + 1)
