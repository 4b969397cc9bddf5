"""Read Kubernetes objects from YAML/JSON files, directories or stdin.

Every value keeps the line and column it came from, so that validation can
say ``file:line:col`` for any field.  A file that cannot be parsed is an
InputError naming the file and the position PyYAML reports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from policyc.errors import InputError, Location

Path = tuple[str | int, ...]
SUFFIXES = (".yaml", ".yml", ".json", ".pol")  # .pol: grammar/policy.lark


@dataclass(slots=True)
class RawObject:
    """One API object as plain data, plus where each value stood in its file."""

    data: dict[str, Any]
    file: str
    locs: dict[Path, Location] = field(default_factory=dict)

    def loc(self, path: Path) -> Location:
        """Location of ``path``, or of its nearest ancestor that exists."""
        while path:
            if path in self.locs:
                return self.locs[path]
            path = path[:-1]
        return self.locs.get((), Location(self.file, 1, 1))

    @property
    def kind(self) -> str:
        kind = self.data.get("kind")
        return kind if isinstance(kind, str) else ""

    @property
    def ident(self) -> str:
        """``Kind namespace/name`` for error messages."""
        meta = self.data.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name = meta.get("name") or "<unnamed>"
        ns = meta.get("namespace")
        kind = self.kind or "<no kind>"
        name, ns = _printable(name), _printable(ns)
        if self.kind in ("Namespace", "Node") or not ns:
            return f"{kind} {name}"
        return f"{kind} {ns}/{name}"


def _printable(value: object) -> str:
    """A name as it may appear on one line of an error message."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text if text.isprintable() else repr(text)[1:-1]


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(
    node: yaml.Node, file: str, path: Path, locs: dict[Path, Location], loader: yaml.SafeLoader
) -> Any:
    locs[path] = _mark(file, node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise InputError(f"duplicate key {key!r}", loc=_mark(file, knode))
            out[key] = _construct(vnode, file, (*path, key), locs, loader)
            # Point at the key, which is where a human looks for a field.
            locs[(*path, key)] = _mark(file, knode)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, file, (*path, i), locs, loader) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _untab_json(text: str) -> str:
    """Tabs between JSON tokens as spaces, which PyYAML takes as whitespace.

    kubectl reads a stream that starts with ``{`` as JSON, where a tab is
    whitespace; PyYAML refuses tabs before a token.  One character for one
    keeps every column.  Tabs inside strings (invalid JSON anyway) are kept.
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


def parse_text(text: str, file: str) -> list[RawObject]:
    """Parse one file's text into API objects (multi-document, ``kind: List``)."""
    loader = yaml.SafeLoader(_untab_json(text))
    objects: list[RawObject] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            locs: dict[Path, Location] = {}
            data = _construct(node, file, (), locs, loader)
            objects.extend(_split_list(data, file, locs))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        raise InputError(f"invalid YAML: {exc.problem or exc.context}", loc=loc) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", loc=Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    return objects


def _split_list(data: Any, file: str, locs: dict[Path, Location]) -> Iterator[RawObject]:
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError("expected a Kubernetes object (a mapping)", loc=locs[()])
    if data.get("kind") == "List" or (
        isinstance(data.get("kind"), str) and data["kind"].endswith("List") and "items" in data
    ):
        items = data.get("items")
        if not isinstance(items, list):
            raise InputError("items: must be a list", loc=locs.get(("items",), locs[()]))
        for i, item in enumerate(items):
            prefix = ("items", i)
            sub = {p[2:]: loc for p, loc in locs.items() if p[:2] == prefix}
            if not isinstance(item, dict):
                raise InputError(f"items[{i}]: expected a Kubernetes object", loc=sub[()])
            yield RawObject(item, file, sub)
        return
    yield RawObject(data, file, locs)


def _files(path: str) -> Iterator[str]:
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(SUFFIXES) and not name.startswith("."):
                    yield os.path.join(root, name)
    else:
        yield path


def load_paths(paths: Iterable[str]) -> list[RawObject]:
    """Read files, directories (recursively, sorted) and ``-`` for stdin."""
    objects: list[RawObject] = []
    for path in paths:
        if path == "-":
            objects.extend(parse_text(sys.stdin.read(), "<stdin>"))
            continue
        if not os.path.exists(path):
            raise InputError("no such file or directory", loc=Location(path, 0, 0))
        for file in _files(path):
            try:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read: {exc}", loc=Location(file, 1, 1)) from None
            objects.extend(parse_file(text, file))
    return objects


def parse_file(text: str, file: str) -> list[RawObject]:
    """By suffix: the policy language for ``.pol``, YAML/JSON otherwise."""
    if file.endswith(".pol"):
        from grammar.policylang import parse_policies

        return parse_policies(text, file)
    return parse_text(text, file)
