"""Label and field selectors with the apiserver's grammar and matching rules.

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``,
``k`` (exists), ``!k`` (does not exist) and ``k>n`` / ``k<n``.  Field selectors support
``f=v``, ``f==v`` and ``f!=v`` joined by commas, with ``\\,`` ``\\=`` ``\\\\`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .resources import JSON, ResourceType, field_value


class SelectorError(ValueError):
    """An unparsable or unsupported selector (the server answers 400 BadRequest)."""


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>[<>])\s*(?P<value>-?\d+)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == ">" else number < bound


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside ``(...)``."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return terms


def parse_label_selector(selector: str) -> list[LabelRequirement]:
    if not selector.strip():
        return []
    reqs: list[LabelRequirement] = []
    for term in _split_terms(selector):
        if m := _EQ_RE.match(term):
            op = "!=" if m["op"] == "!=" else "="
            reqs.append(LabelRequirement(m["key"], op, (m["value"],)))
        elif m := _SET_RE.match(term):
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            if not all(_VALUE_RE.match(v) for v in values):
                raise SelectorError(f"invalid label value in {term!r}")
            reqs.append(LabelRequirement(m["key"], m["op"], values))
        elif m := _CMP_RE.match(term):
            reqs.append(LabelRequirement(m["key"], m["op"], (m["value"],)))
        elif m := _EXISTS_RE.match(term):
            reqs.append(LabelRequirement(m["key"], "!" if m["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return reqs


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str

    def matches(self, obj: JSON) -> bool:
        return (field_value(obj, self.field) == self.value) != self.negate


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: trailing backslash")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(selector: str, resource: ResourceType) -> list[FieldRequirement]:
    if not selector.strip():
        return []
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(selector, ","):
        if "!=" in term:
            field, _, value = term.partition("!=")
            negate = True
        elif "==" in term:
            field, _, value = term.partition("==")
            negate = False
        elif "=" in term:
            field, _, value = term.partition("=")
            negate = False
        else:
            raise SelectorError(f"invalid selector: {selector!r}; can't understand {term!r}")
        field = field.strip()
        if not resource.supports_field(field):
            raise SelectorError(
                f'"{field}" is not a known field selector: only "metadata.name", '
                f'"metadata.namespace"' + "".join(f', "{f}"' for f in resource.field_labels)
            )
        reqs.append(FieldRequirement(field, negate, _unescape(value.strip())))
    return reqs


@dataclass(frozen=True)
class Selector:
    """A parsed ``labelSelector`` + ``fieldSelector`` pair (both optional)."""

    labels: tuple[LabelRequirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, resource: ResourceType, label: str = "", field: str = "") -> Selector:
        return cls(tuple(parse_label_selector(label)), tuple(parse_field_selector(field, resource)))

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields

    def matches(self, obj: JSON) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.labels) and all(
            r.matches(obj) for r in self.fields
        )
