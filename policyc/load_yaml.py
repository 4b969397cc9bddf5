"""YAML documents through libyaml (PyYAML's C parser and composer).

The C composer gives every node its start mark; one walk over the nodes
builds the data and records ``path -> Location`` as it goes, so a document
costs O(nodes).  The walk is bounded against hostile input:

- aliases: a node reached a second time is an alias (or a merge).  Nodes
  built through aliases are counted and the document refused past
  MAX_ALIAS_NODES (a "billion laughs" expands to 10^9 nodes from 30 lines);
- an alias inside its own anchor (a cycle) is refused where it stands;
- nesting deeper than MAX_DEPTH is refused (libyaml itself stops at 1,000
  flow levels), so no RecursionError;
- a scalar Python cannot convert (an integer of 4,301 digits: "Exceeds the
  limit (4300 digits) for integer string conversion") is refused at its mark.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from policyc.errors import InputError, Location
from policyc.raw import Path

MAX_DEPTH = 100  # Kubernetes objects nest a dozen levels
MAX_ALIAS_NODES = 100_000
INT_TAG = "tag:yaml.org,2002:int"
STR_TAG = "tag:yaml.org,2002:str"


def mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class Builder:
    """Data and locations of one YAML document's node graph."""

    def __init__(self, file: str, loader: yaml.CSafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.locs: dict[Path, Location] = {}
        self._seen: set[int] = set()  # ids of nodes built once already
        self._open: set[int] = set()  # ids of the collections being built
        self._aliased = 0  # nodes built through aliases
        self._use = Location(file, 1, 1)  # where the alias being expanded is used
        self._inside = False  # building nodes reached through an alias

    def build(
        self, node: yaml.Node, path: Path = (), depth: int = 0, at: Location | None = None
    ) -> Any:
        """The value of ``node`` at ``path`` (whose key stands ``at``); raises
        InputError as described above, at the key or sequence using the alias."""
        here = self.locs[path] = at or mark(self.file, node)
        outer = False
        if id(node) in self._seen:
            if not self._inside:  # an alias (or merge) entered from plain nodes
                outer = self._inside = True
                self._use = at or self.locs.get(path[:-1], here)
            self._aliased += 1
            if self._aliased > MAX_ALIAS_NODES:
                raise InputError(
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes", loc=self._use
                )
        else:
            self._seen.add(id(node))
        try:
            return self._value(node, path, depth, here)
        finally:
            if outer:
                self._inside = False

    def _value(self, node: yaml.Node, path: Path, depth: int, here: Location) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if depth >= MAX_DEPTH:
            raise InputError(f"nested deeper than {MAX_DEPTH} levels", loc=here)
        if id(node) in self._open:
            raise InputError("alias refers to its own anchor (a cycle)", loc=self._use)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise InputError("a mapping key must be a scalar", loc=mark(self.file, knode))
            key = _key_text(self._scalar(knode), mark(self.file, knode))
            if key in out:
                raise InputError(f"duplicate key {key!r}", loc=mark(self.file, knode))
            # Point at the key, which is where a human looks for a field.
            out[key] = self.build(vnode, (*path, key), depth + 1, mark(self.file, knode))
        return out

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == STR_TAG:
            return node.value  # most scalars: what construct_object would return
        try:
            return self.loader.construct_object(node)
        except ValueError as exc:  # int("9" * 4301), among others
            message = f"cannot read this value: {exc}"
            if node.tag == INT_TAG:
                limit = sys.get_int_max_str_digits()
                message = f"integer too long: {len(node.value)} characters (at most {limit} digits)"
            raise InputError(message, loc=mark(self.file, node)) from None


def _key_text(key: Any, loc: Location) -> str:
    """A mapping key as the API server sees it.  kubectl converts YAML to
    JSON with sigs.k8s.io/yaml, whose key conversion reads: "case bool: if
    typedKey { keyString = "true" } else { keyString = "false" }" and refuses
    a null key ("Unsupported map key").  ``str()`` gave "True" and "None":
    valid label keys that no selector written as JSON ever matches.
    Raises InputError on a null key."""
    if isinstance(key, str):
        return key
    if key is None:
        raise InputError("a mapping key must not be null", loc=loc)
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)
