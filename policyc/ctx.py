"""Validation context: one object's located errors and typed field access."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from policyc import validate as v
from policyc.errors import InputError
from policyc.load import Path, RawObject


def fmt_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Ctx:
    """Validation context of one object: collects located errors."""

    raw: RawObject
    errors: list[InputError] = field(default_factory=list)
    _seen: set[tuple[Path, str]] = field(default_factory=set)

    def err(self, path: Path, message: str) -> None:
        # A field read twice (say by strict() and then get()) is reported once;
        # a set, so that 20,000 errors in one object cost O(20,000).
        if (path, message) in self._seen:
            return
        self._seen.add((path, message))
        self.errors.append(
            InputError(message, loc=self.raw.loc(path), obj=self.raw.ident, field=fmt_path(path))
        )

    def get(self, path: Path, typ: type | tuple[type, ...], default: Any = None) -> Any:
        """The value at ``path`` if it has type ``typ``; else record an error."""
        cur: Any = self.raw.data
        for part in path:
            # The hot path of validation: one type test per step.
            if type(part) is int:
                cur = cur[part] if isinstance(cur, list) and part < len(cur) else None
            elif isinstance(cur, dict):
                cur = cur.get(part)
            else:
                return default
            if cur is None:
                return default
        if type(cur) is typ:
            return cur
        if typ is int and isinstance(cur, bool):
            self.err(path, "must be an integer")
            return default
        if not isinstance(cur, typ):
            self.err(path, f"must be {_TYPE_NAMES.get(typ, 'of another type')}")
            return default
        return cur

    def strict(self, path: Path, allowed: Iterable[str]) -> None:
        """Reject unknown fields, as kubectl's strict field validation does."""
        value = self.get(path, dict, {})
        allowed = set(allowed)
        for key in value:
            if key not in allowed:
                self.err((*path, key), "unknown field")

    def labels(self, path: Path) -> dict[str, str]:
        raw = self.get(path, dict, {})
        out: dict[str, str] = {}
        for key, value in raw.items():
            for msg in v.qualified_name(key):
                self.err((*path, key), f"invalid label key {key!r}: {msg}")
            if not isinstance(value, str):
                self.err((*path, key), "label value must be a string")
                continue
            for msg in v.label_value(value):
                self.err((*path, key), f"invalid label value {value!r}: {msg}")
            out[key] = value
        return out

    def name(self, check: Callable[[str], list[str]]) -> str:
        name = self.get(("metadata", "name"), str, "")
        if not name:
            self.err(("metadata", "name"), "name is required")
        for msg in check(name) if name else []:
            self.err(("metadata", "name"), f"invalid name {name!r}: {msg}")
        return name

    def namespace(self) -> str:
        ns = self.get(("metadata", "namespace"), str, "default") or "default"
        for msg in v.dns1123_label(ns):
            self.err(("metadata", "namespace"), f"invalid namespace {ns!r}: {msg}")
        return ns


_TYPE_NAMES: dict[Any, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    (int, str): "an integer or a string",
}
