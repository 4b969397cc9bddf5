"""One API object as plain data, and where each of its values stood.

Locations are looked up only when an error is reported: a YAML document
records them while it is built, a JSON file computes them on demand from
its text (:mod:`policyc.load_json`).  A ``kind: List`` item shares its
document's locations through a path prefix, so splitting a List is
O(items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from policyc.errors import Location, printable

Path = tuple[str | int, ...]

# Kinds without a namespace: an error names them ``Kind name``.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "ClusterNetworkPolicy",
        "AdminNetworkPolicy",
        "BaselineAdminNetworkPolicy",
    }
)


class Locator(Protocol):
    """Where a value stood: ``path`` -> Location, or None if unknown."""

    def get(self, path: Path, default: None = None, /) -> Location | None: ...


def _no_locations() -> dict[Path, Location]:
    return {}


@dataclass(slots=True)
class RawObject:
    """One API object as plain data, plus where each value stood in its file.

    ``locs`` is keyed by paths from the document root; ``prefix`` is this
    object's path in that document (``("items", i)`` for a List item).
    """

    data: dict[str, Any]
    file: str
    locs: Locator = field(default_factory=_no_locations)
    prefix: Path = ()

    def loc(self, path: Path) -> Location:
        """Location of ``path``, or of its nearest ancestor that exists."""
        full = (*self.prefix, *path)
        while True:
            found = self.locs.get(full)
            if found is not None:
                return found
            if len(full) <= len(self.prefix):
                return Location(self.file, 1, 1)
            full = full[:-1]

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
        name, ns = _text(name), _text(ns)
        if self.kind in CLUSTER_SCOPED or not ns:
            return f"{printable(kind)} {name}"
        return f"{printable(kind)} {ns}/{name}"


def _text(value: object) -> str:
    """A name as it may appear on one line of an error message."""
    return printable(value if isinstance(value, str) else ("" if value is None else str(value)))
