"""Read Kubernetes objects from YAML/JSON files, directories or stdin.

Every value keeps the line and column it came from, so that validation can
say ``file:line:col`` for any field.  A file that cannot be parsed is an
InputError naming the file and the position the parser reports.

Costs are linear in the input: JSON goes through the stdlib's C parser
(locations computed only when an error asks, :mod:`policyc.load_json`),
YAML through libyaml with bounded alias expansion and depth
(:mod:`policyc.load_yaml`), and a ``kind: List`` is split in O(items).

Readers for other formats (the policy language's ``.pol``) are given by the
caller, by suffix, so that ``policyc`` does not import ``grammar``::

    load_paths(paths, readers={".pol": grammar.policylang.parse_policies})
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any

import yaml

from policyc import load_json, load_list, load_yaml
from policyc.errors import InputError, Location, printable
from policyc.raw import Locator, Path, RawObject

__all__ = [
    "Path",
    "RawObject",
    "Reader",
    "YAML_READERS",
    "load_paths",
    "open_paths",
    "parse_file",
    "parse_text",
]

Reader = Callable[[str, str], list[RawObject]]  # (text, file name) -> objects

# YAML 1.1 §5.1: "On input, a YAML processor must accept all printable ASCII
# characters, the space, tab, line break, and all Unicode characters beyond
# #x9F. [...] The allowed character range explicitly excludes the surrogate
# block #xD800-#xDFFF, DEL #x7F, the C0 control block #x0-#x1F (except for
# #x9, #xA, and #xD), the C1 control block #x80-#x9F, #xFFFE, and #xFFFF."
# (#x85 is allowed as a line break, as PyYAML's reader does.)
_UNACCEPTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# The same set for ASCII text, as the bytes to keep: deleting them from the
# text (bytes.translate, C speed) leaves nothing unless a character is bad.
_ASCII_OK = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])
_NESTING = "maximum nesting depth"  # libyaml's limit: 1,000 levels
_JSON_START = re.compile(r"\s*[\[{]")


def parse_text(text: str, file: str) -> list[RawObject]:
    """Parse one file's YAML or JSON text into API objects (multi-document,
    ``kind: List``).  Raises InputError with the file, line and column."""
    return list(scan_text(text, file))


def scan_text(text: str, file: str) -> Iterable[RawObject]:
    """As :func:`parse_text`, but a JSON ``kind: List`` comes back as
    :class:`policyc.load_list.ListItems`: checked whole now, each item
    decoded only when iterated.  Raises InputError as parse_text does."""
    _check_characters(text, file)
    if _JSON_START.match(text):
        items = load_list.scan(text, file)
        if items is not None:
            return items
        data = load_json.loads(text)
        if data is not None:
            return list(_split(data, file, load_json.JsonLocs(file, text)))
    return _parse_yaml(text, file)


def _check_characters(text: str, file: str) -> None:
    """Raise InputError at the first character YAML does not accept.

    ASCII text (the usual case) is checked 16 MiB at a time with
    bytes.translate, 10x faster than the regular expression."""
    if text.isascii():
        chunk = 1 << 24
        bad_chunks = (
            i
            for i in range(0, len(text), chunk)
            if text[i : i + chunk].encode("ascii").translate(None, _ASCII_OK)
        )
        if next(bad_chunks, None) is None:
            return
    bad = _UNACCEPTABLE.search(text)
    if bad:
        raise InputError(
            f"unacceptable character {printable(repr(bad.group()))} "
            f"(U+{ord(bad.group()):04X}): control characters are not allowed",
            loc=_offset_loc(text, file, bad.start()),
        )


def _offset_loc(text: str, file: str, offset: int) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _parse_yaml(text: str, file: str) -> list[RawObject]:
    loader = yaml.CSafeLoader(_untab_json(text))
    objects: list[RawObject] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            builder = load_yaml.Builder(file, loader)
            data = builder.build(node)
            objects.extend(_split(data, file, builder.locs))
    except yaml.MarkedYAMLError as exc:
        if _NESTING not in str(exc.problem):
            exc = _python_error(text) or exc
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        raise InputError(f"invalid YAML: {exc.problem or exc.context}", loc=loc) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", loc=Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return objects


def _python_error(text: str) -> yaml.MarkedYAMLError | None:
    """The error PyYAML's pure-Python parser gives for ``text``, if any.

    Only on the error path: libyaml words its errors differently ("did not
    find expected key"); the Python parser's ("expected <block end>, but
    found '<block sequence start>'") are the ones users and tests know.  Its
    scanner and parser are loops over a state stack, so this is linear and
    needs no recursion, but its simple-key bookkeeping costs O(depth) per
    token, so it is not run past libyaml's nesting limit (that error stays).
    """
    loader = yaml.SafeLoader(_untab_json(text))
    try:
        while loader.check_event():
            loader.get_event()
    except yaml.MarkedYAMLError as exc:
        return exc
    finally:
        loader.dispose()
    return None


def _untab_json(text: str) -> str:
    """Tabs between JSON tokens as spaces, which PyYAML takes as whitespace.

    kubectl reads a stream that starts with ``{`` as JSON, where a tab is
    whitespace; PyYAML refuses tabs before a token.  One character for one
    keeps every column.  Tabs inside strings (invalid JSON anyway) are kept.
    Only JSON that ``json`` refused comes here (to be reported).
    """
    if not text.lstrip().startswith("{") or "\t" not in text:
        return text
    out = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "\t":
            ch = " "
        out.append(ch)
    return "".join(out)


def _split(data: Any, file: str, locs: Locator) -> Iterator[RawObject]:
    """One document as objects: a ``kind: List``'s items, each sharing the
    document's locations through its ``("items", i)`` prefix."""
    if data is None:
        return
    where = locs.get(()) or Location(file, 1, 1)
    if not isinstance(data, dict):
        raise InputError("expected a Kubernetes object (a mapping)", loc=where)
    kind = data.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in data):
        items = data.get("items")
        if not isinstance(items, list):
            raise InputError("items: must be a list", loc=locs.get(("items",)) or where)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                loc = locs.get(("items", i)) or where
                raise InputError(f"items[{i}]: expected a Kubernetes object", loc=loc)
            yield RawObject(item, file, locs, ("items", i))
        return
    yield RawObject(data, file, locs)


YAML_READERS: Mapping[str, Reader] = {".yaml": parse_text, ".yml": parse_text, ".json": parse_text}
SUFFIXES = tuple(YAML_READERS)


def _files(path: str, suffixes: tuple[str, ...]) -> Iterator[str]:
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(suffixes) and not name.startswith("."):
                    yield os.path.join(root, name)
    else:
        yield path


def load_paths(
    paths: Iterable[str], readers: Mapping[str, Reader] | None = None, fmt: str | None = None
) -> list[RawObject]:
    """Read files, directories (recursively, sorted) and ``-`` for stdin.

    ``readers`` adds readers by file suffix (``{".pol": parse_policies}``) to
    YAML_READERS; ``fmt`` names the suffix whose reader reads stdin (YAML or
    JSON if None).  Raises InputError for a path that does not exist, a file
    that cannot be read, and any parse error.
    """
    return list(open_paths(paths, readers, fmt))


class Objects:
    """The objects of every input, in order: a JSON List's items are decoded
    one at a time as iterated (:class:`policyc.load_list.ListItems`), so a
    consumer that drops each object holds one item at a time."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[Iterable[RawObject]]) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[RawObject]:
        for part in self.parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts if isinstance(part, Sized))


def open_paths(
    paths: Iterable[str], readers: Mapping[str, Reader] | None = None, fmt: str | None = None
) -> Objects:
    """As :func:`load_paths`: every file is read and parsed (and every parse
    error raised) now, but a JSON List's items are decoded when iterated."""
    table = {**YAML_READERS, **(readers or {})}
    objects: list[Iterable[RawObject]] = []
    for path in paths:
        if path == "-":
            reader = _reader(table, fmt, "<stdin>")
            scan = scan_text if reader is parse_text else reader
            objects.append(scan(sys.stdin.read(), "<stdin>"))
            continue
        if not os.path.exists(path):
            raise InputError("no such file or directory", loc=Location(path, 0, 0))
        for file in _files(path, tuple(table)):
            try:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read: {exc}", loc=Location(file, 1, 1)) from None
            objects.append(_scan_file(text, file, table))
    return Objects(objects)


def _reader(table: Mapping[str, Reader], fmt: str | None, file: str) -> Reader:
    if fmt is None:
        return parse_text
    suffix = fmt if fmt.startswith(".") else f".{fmt}"
    if suffix not in table:
        known = ", ".join(s.lstrip(".") for s in table)
        raise InputError(f"unknown input format {fmt!r} (known: {known})", loc=Location(file, 0, 0))
    return table[suffix]


def parse_file(
    text: str, file: str, readers: Mapping[str, Reader] | None = None
) -> list[RawObject]:
    """By suffix: the reader ``readers`` gives for it, YAML/JSON otherwise."""
    return list(_scan_file(text, file, readers))


def _scan_file(
    text: str, file: str, readers: Mapping[str, Reader] | None = None
) -> Iterable[RawObject]:
    for suffix, reader in (readers or {}).items():
        if file.endswith(suffix):
            return scan_text(text, file) if reader is parse_text else reader(text, file)
    return scan_text(text, file)
