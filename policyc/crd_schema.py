"""The checks a CRD's OpenAPI schema makes, with the API server's wording.

A custom resource is validated by its CRD's structural schema (``required``,
``enum``, ``minimum``/``maximum``, ``minItems``/``maxItems``,
``minProperties``/``maxProperties``, ``maxLength``) and its CEL rules
(``x-kubernetes-validations``); these helpers record each failure on a
:class:`~policyc.ctx.Ctx` at the field's path.  Shared by the
ClusterNetworkPolicy and v1alpha1 readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policyc import validate as v
from policyc.ctx import Ctx
from policyc.load import Path
from policyc.model import IPNetwork, Selector
from policyc.parse_policy import META_FIELDS, SELECTOR_FIELDS, parse_selector

TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")


def present(ctx: Ctx, path: Path) -> bool:
    """Is the field at ``path`` set (to anything but null)?"""
    cur: Any = ctx.raw.data
    for part in path:
        if isinstance(part, int):
            cur = cur[part] if isinstance(cur, list) and part < len(cur) else None
        else:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            return False
    return True


def required(ctx: Ctx, path: Path) -> bool:
    """``required``: "Required value" when the field is absent."""
    if present(ctx, path):
        return True
    ctx.err(path, "Required value")
    return False


def enum(ctx: Ctx, path: Path, allowed: Iterable[str]) -> str | None:
    """``enum``: the value, or None after "Unsupported value"."""
    allowed = tuple(allowed)
    value = ctx.get(path, str)
    if value is None:
        if not present(ctx, path):
            ctx.err(path, "Required value")
        return None
    if value not in allowed:
        choices = ", ".join(f'"{a}"' for a in allowed)
        ctx.err(path, f"Unsupported value: {value!r}: supported values: {choices}")
        return None
    return value


def integer(ctx: Ctx, path: Path, low: int, high: int) -> int | None:
    """``minimum``/``maximum`` of an int32 field; None when absent or invalid."""
    value = ctx.get(path, int)
    if value is None:
        return None
    if value < low:
        ctx.err(path, f"Invalid value: {value}: should be greater than or equal to {low}")
        return None
    if value > high:
        ctx.err(path, f"Invalid value: {value}: should be less than or equal to {high}")
        return None
    return value


def items(ctx: Ctx, path: Path, low: int, high: int) -> list[Any]:
    """``minItems``/``maxItems`` of a list; its items ([] when absent)."""
    value = ctx.get(path, list)
    if value is None:
        return []
    if len(value) < low:
        ctx.err(path, f"Invalid value: should have at least {low} items")
    if len(value) > high:
        ctx.err(path, f"Too many: {len(value)}: must have at most {high} items")
    return list(value)


def one_of(ctx: Ctx, path: Path, fields: Iterable[str]) -> str | None:
    """``minProperties: 1`` and ``maxProperties: 1`` with ``fields`` allowed:
    the one field set, or None after an error ("Exactly one field must be set")."""
    fields = tuple(fields)
    ctx.strict(path, fields)
    data = ctx.get(path, dict)
    if data is None:
        return None
    set_ = [f for f in fields if data.get(f) is not None]
    if len(data) < 1 or not set_:
        ctx.err(path, f"Invalid value: exactly one of {', '.join(fields)} must be set")
        return None
    if len(data) > 1:
        ctx.err(path, f"Too many: must have at most 1 properties (has {', '.join(sorted(data))})")
        return None
    return set_[0]


def max_length(ctx: Ctx, path: Path, limit: int) -> str:
    """``maxLength`` of a string field; "" when absent."""
    value = ctx.get(path, str, "")
    if len(value) > limit:
        ctx.err(path, f"Too long: may not be more than {limit} bytes")
    return value


def selector(ctx: Ctx, path: Path) -> Selector:
    """A metav1.LabelSelector.  The CRD schema types it only loosely; a
    selector that ``metav1.LabelSelectorAsSelector`` refuses is refused here,
    as the implementation could not use it."""
    ctx.get(path, dict)
    ctx.strict(path, SELECTOR_FIELDS)
    return parse_selector(ctx, path)


def cidr(ctx: Ctx, path: Path) -> IPNetwork | None:
    """A ``CIDR``: ``maxLength: 43`` and the CEL rule ``isCIDR(self)``,
    message "Invalid CIDR format provided"."""
    text = ctx.get(path, str)
    if text is None:
        return None
    if len(text) > 43:
        ctx.err(path, "Too long: may not be more than 43 bytes")
        return None
    net, _ = v.parse_cidr(text)
    if net is None:
        ctx.err(path, f"Invalid value: {text!r}: Invalid CIDR format provided")
    return net


def metadata(ctx: Ctx) -> str:
    """The object name, as for every custom resource: a DNS-1123 subdomain."""
    ctx.strict((), TOP_FIELDS)
    ctx.strict(("metadata",), META_FIELDS)
    required(ctx, ("spec",))
    ctx.labels(("metadata", "labels"))
    return ctx.name(v.dns1123_subdomain)
