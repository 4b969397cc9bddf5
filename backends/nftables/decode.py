"""``nft -j list table`` back into typed objects (the inverse of the JSON
printer), so that what the kernel holds compares exactly with what we sent.

Anything policyc never writes decodes to ``Raw`` (a statement) or to a value
that no rendered object holds: it reads as drift, never as a match.
"""

from __future__ import annotations

import json
from typing import Any

from backends.nftables.objects import (
    AnonSet,
    Chain,
    Concat,
    Ct,
    Expr,
    Flags,
    Iface,
    Log,
    Match,
    Meta,
    Op,
    Payload,
    Prefix,
    Range,
    Raw,
    Rule,
    Set,
    SetLimit,
    SetRef,
    Stmt,
    Table,
    Value,
    Verdict,
    VerdictElem,
    VMap,
)
from policyc.chains import Verb

VERBS = frozenset(v.value for v in Verb if v is not Verb.LOG)  # log is a statement
OPS = frozenset(o.value for o in Op)


# libnftables-json(5): "A single set element might be given as string, integer
# or boolean value for simple cases. If additional properties are required, a
# formal elem object may be used."
def value(js: Any, types: tuple[str, ...] = ()) -> Value:
    """A constant; ``types`` (one per concatenated field) says which strings are ifnames."""
    if isinstance(js, dict) and "elem" in js:  # an element listed with options
        return value(js["elem"]["val"], types)
    if isinstance(js, dict) and "concat" in js:
        parts = js["concat"]
        kinds = types if len(types) == len(parts) else ("",) * len(parts)
        return Concat(tuple(value(p, (k,)) for p, k in zip(parts, kinds, strict=True)))
    if isinstance(js, dict) and "prefix" in js:
        return Prefix(str(js["prefix"]["addr"]), int(js["prefix"]["len"]))
    if isinstance(js, dict) and "range" in js:
        lo, hi = js["range"]
        return Range(lo, hi)
    if isinstance(js, str) and types == ("ifname",):
        return Iface(js)
    if isinstance(js, str | int) and not isinstance(js, bool):
        return js
    return json.dumps(js, sort_keys=True)  # never equal to a rendered value


def expr(js: Any, types: tuple[str, ...] = ()) -> Expr:
    if isinstance(js, dict) and len(js) == 1:
        ((key, body),) = js.items()
        if key == "payload":
            return Payload(body["protocol"], body["field"])
        if key == "meta":
            return Meta(body["key"])
        if key == "ct":
            return Ct(body["key"])
        if key == "set":
            return AnonSet(tuple(value(i, types) for i in body))
        if key == "concat" and any(
            isinstance(p, dict) and len(p) == 1 and next(iter(p)) in ("payload", "meta", "ct")
            for p in body
        ):
            return Concat(tuple(expr(p) for p in body))
    if isinstance(js, list):
        return Flags(tuple(str(x) for x in js))
    if isinstance(js, str) and js.startswith("@"):
        return SetRef(js[1:])
    return value(js, types)


def stmt(js: dict[str, Any]) -> Stmt:
    """A statement; what policyc never writes (or cannot read) is ``Raw``."""
    try:
        if len(js) == 1:
            ((key, body),) = js.items()
            if key == "match" and body["op"] in OPS:
                left = expr(body["left"])
                types = ("ifname",) if left == Meta("iifname") else ()
                return Match(Op(body["op"]), left, expr(body["right"], types))
            if key == "vmap" and str(body["data"]).startswith("@"):
                return VMap(expr(body["key"]), body["data"][1:])
            if key in VERBS and key != Verb.VMAP:
                return Verdict(Verb(key), body["target"] if body else "")
            if key == "log" and set(body) == {"prefix", "group"}:
                return Log(str(body["prefix"]), int(body["group"]))
            if key == "set" and body["op"] == "add" and len(body["stmt"]) == 1:
                limit = body["stmt"][0]["limit"]
                if set(limit) == {"rate", "burst", "per"} and limit["per"] == "second":
                    name = str(body["set"]).removeprefix("@")
                    key_expr = expr(body["elem"])
                    return SetLimit(name, key_expr, int(limit["rate"]), int(limit["burst"]))
    except (KeyError, TypeError, ValueError):
        pass
    return Raw(json.dumps(js, sort_keys=True))


def _map_elem(js: Any, types: tuple[str, ...]) -> Value:
    """``[key, {"goto": {"target": c}}]``: a verdict map's element; anything
    else decodes to a value no rendered map holds (drift)."""
    if isinstance(js, list) and len(js) == 2 and isinstance(js[1], dict) and len(js[1]) == 1:
        ((verb, body),) = js[1].items()
        if verb in VERBS and isinstance(body, dict) and "target" in body:
            return VerdictElem(value(js[0], types), Verb(verb), str(body["target"]))
    return json.dumps(js, sort_keys=True)


def _types(body: dict[str, Any]) -> tuple[str, ...]:
    t = body["type"]
    return tuple(t) if isinstance(t, list) else (t,)


def table(items: list[dict[str, Any]], family: str, name: str) -> Table:
    """One table from its listing (``{"nftables": [...]}``'s items)."""
    sets: dict[str, Set] = {}
    chains: dict[str, Chain] = {}
    rules: dict[str, list[Rule]] = {}
    for item in items:
        if "set" in item:
            s = item["set"]
            types = _types(s)
            elems = dict.fromkeys(value(e, types) for e in s.get("elem", []))
            flags = tuple(s.get("flags", ()))
            if "size" in s and not flags:
                # A dynamic set (a log rate meter): nft 1.0.6 lists it with
                # its size and without its flag; its elements are the
                # kernel's per-key state, never ours to compare.
                flags, elems = ("dynamic",), {}
            sets[s["name"]] = Set(family, name, s["name"], types, flags, elems)
        elif "map" in item:
            s = item["map"]
            types = _types(s)
            melems = dict.fromkeys(_map_elem(e, types) for e in s.get("elem", []))
            flags = tuple(s.get("flags", ()))
            sets[s["name"]] = Set(family, name, s["name"], types, flags, melems, "", s["map"])
        elif "chain" in item:
            c = item["chain"]
            hook = (c["type"], c["hook"], c["prio"], c["policy"]) if "hook" in c else ()
            chains[c["name"]] = Chain(family, name, c["name"], (), *hook)
            rules[c["name"]] = []
        elif "rule" in item:
            r = item["rule"]
            stmts = tuple(stmt(x) for x in r["expr"])
            rules.setdefault(r["chain"], []).append(
                Rule(family, name, r["chain"], stmts, r.get("comment", ""))
            )
    for cname, c in chains.items():
        chains[cname] = Chain(
            family, name, cname, tuple(rules[cname]), c.type, c.hook, c.prio, c.policy
        )
    return Table(family, name, sets, chains)
