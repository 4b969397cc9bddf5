"""Seeded mutations of the golden fixtures (``fixtures/<case>/``).

One input is one fixture with one to three mutations applied to its parsed
YAML documents, dumped back with PyYAML (which escapes control characters
and writes shared subtrees as anchors and aliases), or, for ``.pol`` and for
raw-text mutations, edited as text.  Operations, as issue 13 lists them:
drop, duplicate and retype fields, swap values between fields, hostile
unicode and control characters, very long strings, deep nesting, aliases and
anchors, huge integers, huge lists.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.hostile.alphabet import CONTROL, any_string
from tests.hostile.inputs import HostileInput
from tests.hostile.seed import rng

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The golden cases (a folder with an expected output), not fixtures/passes.
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/expected.nft"))
CLASS = "mutation"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Slot = tuple[Any, Any]  # (container, key or index)


def _slots(node: Any, out: list[Slot]) -> list[Slot]:
    """Every (container, key) in the tree, depth first."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in list(items):
        out.append((node, key))
        _slots(child, out)
    return out


def _retype(r: random.Random, value: Any) -> Any:
    choices = [None, True, 0, -1, 65536, 2**64, 1.5, "", "80", [], {}, [value], {"x": value}]
    return r.choice(choices)


DEEP = "DEEP-NESTING-PLACEHOLDER"


def _deep_text(r: random.Random) -> str:
    """Flow-style nesting written as text: PyYAML's emitter would recurse."""
    n = r.choice((50, 200, 400, 1000))
    return "[" * n + "]" * n if r.random() < 0.5 else "{n: " * n + "x" + "}" * n


def _contains(tree: Any, target: Any) -> bool:
    if tree is target:
        return True
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    return any(_contains(c, target) for c in children)


HUGE_INT = "HUGE-INT-PLACEHOLDER"


def _huge_int_text(r: random.Random) -> str:
    """Digits written as text: Python itself refuses ``str(int)`` past 4,300."""
    return r.choice("-9") + "9" * r.choice((19, 40, 400, 4299, 4301, 10000))


# CI keeps lists small enough that today's quadratic error report stays
# inside the bound; the bench passes BENCH_LISTS (issue 13 §2: 20,000 ports).
CI_LISTS = (100, 1000, 3000)
BENCH_LISTS = (1000, 5000, 20000)


def _huge_list(r: random.Random, value: Any, sizes: tuple[int, ...]) -> list[Any]:
    n = r.choice(sizes)
    return [value] * n if r.random() < 0.5 else [f"{i}" for i in range(n)]


def mutate_tree(r: random.Random, docs: list[Any], sizes: tuple[int, ...] = CI_LISTS) -> str:
    """Apply one operation somewhere in ``docs``; returns its name."""
    slots = [s for d in docs for s in _slots(d, [])]
    if not slots:
        return "none"
    parent, key = r.choice(slots)
    value = parent[key]
    op = r.choice(("drop", "dup", "retype", "swap", "string", "deep", "alias", "int", "list"))
    if op == "drop":
        del parent[key]
    elif op == "dup" and isinstance(parent, list):
        parent.insert(key, value)
    elif op == "dup":
        parent[str(key) + r.choice(("", "_", "X"))] = value
    elif op == "retype":
        parent[key] = _retype(r, value)
    elif op == "swap":
        other, okey = r.choice(slots)
        try:
            theirs = other[okey]
        except (KeyError, IndexError):
            return "swap-missed"
        if _contains(value, other) or _contains(theirs, parent):
            return "swap-cycle-avoided"
        parent[key], other[okey] = theirs, value
    elif op == "string":
        parent[key] = any_string(r)
    elif op == "deep":
        parent[key] = DEEP
    elif op == "alias":
        other, okey = r.choice(slots)
        try:
            shared = other[okey]
        except (KeyError, IndexError):
            return "alias-missed"
        if _contains(shared, parent):
            return "alias-cycle-avoided"
        parent[key] = shared  # emitted as &id001 ... *id001
    elif op == "int":
        parent[key] = HUGE_INT
    elif op == "list":
        parent[key] = _huge_list(r, value, sizes)
    return op


def _raw(r: random.Random, text: bytes) -> tuple[bytes, str]:
    """Text-level edits no YAML emitter would make."""
    op = r.choice(("control", "truncate", "bytes", "tabs"))
    at = r.randrange(len(text) + 1)
    if op == "control":
        return text[:at] + r.choice(CONTROL).encode() + text[at:], "raw-control"
    if op == "truncate":
        return text[:at], "raw-truncate"
    if op == "bytes":
        return text[:at] + bytes(r.randrange(256) for _ in range(4)) + text[at:], "raw-bytes"
    return text[:at] + b"\t" + text[at:], "raw-tab"


def _mutate_yaml(r: random.Random, body: bytes, sizes: tuple[int, ...]) -> tuple[bytes, list[str]]:
    docs = [d for d in yaml.load_all(body, Loader=_LOADER) if d is not None]
    if r.random() < 0.15:
        out, op = _raw(r, body)
        return out, [op]
    ops = [mutate_tree(r, docs, sizes) for _ in range(r.randint(1, 3))]
    dumped = yaml.dump_all(
        docs, Dumper=_DUMPER, allow_unicode=r.random() < 0.5, width=r.choice((80, 10**6))
    )
    while DEEP in dumped:
        dumped = dumped.replace(DEEP, _deep_text(r), 1)
    while HUGE_INT in dumped:
        dumped = dumped.replace(HUGE_INT, _huge_int_text(r), 1)
    return dumped.encode("utf-8", "surrogatepass"), ops


def _mutate_pol(r: random.Random, body: bytes, sizes: tuple[int, ...]) -> tuple[bytes, list[str]]:
    text = body.decode()
    at = r.randrange(len(text) + 1)
    op = r.choice(("delete", "insert", "truncate", "string"))
    if op == "delete":
        return (text[:at] + text[at + r.randint(1, 5) :]).encode(), ["pol-delete"]
    if op == "insert":
        return (text[:at] + r.choice("{}(),=/ \n") + text[at:]).encode(), ["pol-insert"]
    if op == "truncate":
        return text[:at].encode(), ["pol-truncate"]
    return (text[:at] + any_string(r) + text[at:]).encode("utf-8", "surrogatepass"), ["pol-string"]


Mutator = Callable[[random.Random, bytes, tuple[int, ...]], tuple[bytes, list[str]]]
MUTATORS: dict[str, Mutator] = {
    ".yaml": _mutate_yaml,
    ".pol": _mutate_pol,
}


def mutation(seed: int, index: int, sizes: tuple[int, ...] = CI_LISTS) -> HostileInput:
    """Input number ``index`` of this seed: a fixture with a mutated file;
    ``sizes`` are the lengths a huge-list mutation may choose."""
    r = rng(seed, CLASS, index)
    case = r.choice(CASES)
    files = sorted(p for p in (FIXTURES / case).iterdir() if p.suffix in MUTATORS)
    target = r.choice(files)
    body, ops = MUTATORS[target.suffix](r, target.read_bytes(), sizes)
    contents = tuple((p.name, body if p == target else p.read_bytes()) for p in files)
    args_file = FIXTURES / case / "args"
    args = tuple(args_file.read_text().split()) if args_file.exists() else ()
    ident = f"{index}-{case}-{target.name}-{'+'.join(ops)}"
    return HostileInput(CLASS, ident, contents, args=args)
