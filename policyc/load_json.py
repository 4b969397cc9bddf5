"""JSON documents through the stdlib's C parser, with locations on demand.

``json.loads`` gives the data in linear time but no positions.  The text is
kept; the first time an error asks where a value stood, one linear scan of
the document indexes every path (a key's path points at the key, as for
YAML).  A document ``json`` refuses (a duplicate key, NaN, a 4,301-digit
integer, nesting past its recursion limit, JSON with YAML in it) returns
None, and the caller reads it as YAML, which reports the error with its
line and column.
"""

from __future__ import annotations

import bisect
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from policyc.errors import Location
from policyc.raw import Path

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"[^,\]}\s]+")


def _skip(text: str, pos: int) -> int:
    """Past the JSON whitespace at ``pos``."""
    return _end(_WS.match(text, pos))


def _end(match: re.Match[str] | None) -> int:
    if match is None:
        raise ValueError("not JSON")
    return match.end()


class _Refused(Exception):
    """A document the YAML reader should report on."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused  # duplicate key: YAML reports it with its location
    return out


def _constant(name: str) -> Any:
    raise _Refused  # NaN, Infinity: not JSON


def loads(text: str) -> Any | None:
    """The document in ``text``, or None if the YAML reader should report on it."""
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except (_Refused, ValueError, RecursionError):
        return None


class JsonLocs:
    """Locations of one JSON document's values, indexed on first use."""

    __slots__ = ("file", "text", "_offsets", "_lines")

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self._offsets: dict[Path, int] | None = None
        self._lines: list[int] = []

    def get(self, path: Path, default: None = None, /) -> Location | None:
        if self._offsets is None:
            self._offsets = _index(self.text)
            self._lines = [0, *(m.end() for m in re.finditer("\n", self.text))]
        offset = self._offsets.get(path)
        if offset is None:
            return None
        line = bisect.bisect_right(self._lines, offset)
        return Location(self.file, line, offset - self._lines[line - 1] + 1)


def _index(text: str) -> dict[Path, int]:
    """Offsets of every value of a valid JSON text, by path; keys at the key.

    Iterative, so nesting depth costs no stack.  Linear in ``len(text)``.
    """
    out: dict[Path, int] = {}
    stack: list[tuple[Path, bool]] = []  # open containers: path, is an object
    counts: list[int] = []
    path: Path = ()
    pos = _skip(text, 0)
    want_value = True
    try:
        while True:
            if want_value:
                out.setdefault(path, pos)
                ch = text[pos]
                if ch in "{[":
                    is_obj = ch == "{"
                    pos = _skip(text, pos + 1)
                    if text[pos] in "}]":
                        pos = _skip(text, pos + 1)
                        want_value = False
                        continue
                    stack.append((path, is_obj))
                    counts.append(0)
                    path, pos = _key(text, pos, path, out) if is_obj else ((*path, 0), pos)
                    continue
                if ch == '"':
                    pos = scanstring(text, pos + 1)[1]
                else:
                    pos = _end(_SCALAR.match(text, pos))
                pos = _skip(text, pos)
                want_value = False
            elif not stack:
                return out
            elif text[pos] == ",":
                parent, is_obj = stack[-1]
                counts[-1] += 1
                pos = _skip(text, pos + 1)
                path, pos = _key(text, pos, parent, out) if is_obj else ((*parent, counts[-1]), pos)
                want_value = True
            else:  # the container closes
                stack.pop()
                counts.pop()
                pos = _skip(text, pos + 1)
    except (IndexError, ValueError, AttributeError):
        return out  # not reached for text json.loads accepted


def _key(text: str, pos: int, parent: Path, out: dict[Path, int]) -> tuple[Path, int]:
    """At a key's opening quote: record it, return its path and its value's offset."""
    key, end = scanstring(text, pos + 1)
    path = (*parent, key)
    out[path] = pos
    end = _skip(text, end)
    return path, _skip(text, end + 1)  # past ':'
