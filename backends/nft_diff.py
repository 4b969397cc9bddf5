"""Minimal diffs between two nftables states, as one JSON transaction.

A State is what policyc's two tables should hold: per table, each set's
header and elements and each chain's header and rules.  ``diff(old, new)``
turns the difference into libnftables JSON commands that one ``json_cmd``
call commits atomically: set elements added or removed, changed chains
flushed and refilled, dead chains and sets deleted.  With no old state (start
up, or after drift) it replaces both tables whole, still in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from backends import nft_json as nj
from policyc.chains import Ruleset
from policyc.errors import BackendError
from policyc.ir import SetDef
from policyc.names import TABLE

Json = dict[str, Any]


def key(obj: Any) -> str:
    """A JSON object's canonical text: how elements, rules and headers are compared."""
    return json.dumps(obj, sort_keys=True)


@dataclass(frozen=True)
class TableState:
    family: str
    sets: dict[str, tuple[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # name -> (header, elems)
    chains: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # header, rules


@dataclass(frozen=True)
class State:
    tables: tuple[TableState, ...]

    def size(self) -> dict[str, int]:
        return {
            "sets": sum(len(t.sets) for t in self.tables),
            "elements": sum(len(e) for t in self.tables for _, e in t.sets.values()),
            "rules": sum(len(r) for t in self.tables for _, r in t.chains.values()),
        }


def encode_elements(s: SetDef) -> dict[str, Any]:
    """A set's elements as JSON, keyed by their canonical text."""
    out = {}
    for e in s.elements:
        js = nj.element(s, e)
        out[key(js)] = js
    return out


def _table_state(family: str, sets: tuple[SetDef, ...], chains: Any) -> TableState:
    st = TableState(family)
    for s in sets:
        st.sets[s.name] = (key(nj.set_header(s, family, TABLE)), encode_elements(s))
    for c in chains:
        rules = tuple(key(nj.rule_json(r, family, TABLE, c.name)) for r in c.rules)
        st.chains[c.name] = (key(nj.chain_json(c, family, TABLE)), rules)
    return st


def state_of(ruleset: Ruleset) -> State:
    return State(
        (
            _table_state("inet", ruleset.sets, ruleset.forward),
            _table_state("bridge", ruleset.bridge_sets, ruleset.bridge),
        )
    )


def _elements(family: str, name: str, elems: list[Any]) -> Json:
    return {"element": {"family": family, "table": TABLE, "name": name, "elem": elems}}


def _full(t: TableState) -> list[Json]:
    table = {"table": {"family": t.family, "name": TABLE}}
    cmds: list[Json] = [{"add": table}, {"delete": table}, {"add": table}]
    cmds += _create(t, set(t.sets), list(t.chains))
    return cmds


def _create(t: TableState, sets: set[str], chains: list[str]) -> list[Json]:
    cmds: list[Json] = []
    for name in sorted(sets):
        header, elems = t.sets[name]
        cmds.append({"add": {"set": json.loads(header)}})
        if elems:
            cmds.append({"add": _elements(t.family, name, list(elems.values()))})
    for name in chains:  # in ruleset order, as the text script creates them
        cmds.append({"add": {"chain": json.loads(t.chains[name][0])}})
    return cmds


def _rules(t: TableState, chains: list[str]) -> list[Json]:
    return [{"add": {"rule": json.loads(r)}} for name in chains for r in t.chains[name][1]]


def _diff_table(old: TableState, new: TableState) -> list[Json]:
    for name in old.chains.keys() & new.chains.keys():
        if old.chains[name][0] != new.chains[name][0]:
            return _full(new)  # a hook changed: replace the table whole
    for name in old.sets.keys() & new.sets.keys():
        if old.sets[name][0] != new.sets[name][0]:
            return _full(new)
    changed = sorted(
        n for n in old.chains.keys() & new.chains.keys() if old.chains[n][1] != new.chains[n][1]
    )
    gone_chains = sorted(old.chains.keys() - new.chains.keys())
    new_chains = [n for n in new.chains if n not in old.chains]
    fam = new.family
    cmds: list[Json] = []
    # Flush first so nothing refers to what is deleted next.
    for name in changed + gone_chains:
        cmds.append({"flush": {"chain": {"family": fam, "table": TABLE, "name": name}}})
    for name in gone_chains:
        cmds.append({"delete": {"chain": {"family": fam, "table": TABLE, "name": name}}})
    cmds += _create(new, set(new.sets.keys() - old.sets.keys()), new_chains)
    for name in sorted(old.sets.keys() & new.sets.keys()):
        before, after = old.sets[name][1], new.sets[name][1]
        gone = [before[k] for k in sorted(before.keys() - after.keys())]
        added = [after[k] for k in sorted(after.keys() - before.keys())]
        if gone:
            cmds.append({"delete": _elements(fam, name, gone)})
        if added:
            cmds.append({"add": _elements(fam, name, added)})
    cmds += _rules(new, changed + new_chains)
    for name in sorted(old.sets.keys() - new.sets.keys()):
        cmds.append({"delete": {"set": {"family": fam, "table": TABLE, "name": name}}})
    return cmds


def diff(old: State | None, new: State) -> list[Json]:
    """Commands that turn ``old`` (what is programmed) into ``new``."""
    cmds: list[Json] = []
    for i, t in enumerate(new.tables):
        if old is None:
            cmds += _full(t) + _rules(t, list(t.chains))
        else:
            cmds += _diff_table(old.tables[i], t)
    return cmds


def apply_json(cmds: list[Json]) -> None:
    """Commit ``cmds`` in one libnftables transaction (all or nothing)."""
    if not cmds:
        return
    try:
        import nftables  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BackendError("the nftables Python bindings are not installed") from exc
    nft = nftables.Nftables()
    nft.set_json_output(True)
    rc, _out, err = nft.json_cmd({"nftables": cmds})
    if rc != 0:
        raise BackendError(f"nft rejected the transaction (nothing was changed): {err.strip()}")


Summary = dict[str, tuple[frozenset[str], ...] | tuple[str, ...]]


def summary(state: State) -> Summary:
    """What drift detection compares: set elements and each chain's rule comments."""
    out: Summary = {}
    for t in state.tables:
        for name, (_, elems) in t.sets.items():
            out[f"{t.family} set {name}"] = (frozenset(elems),)
        for name, (_, rules) in t.chains.items():
            out[f"{t.family} chain {name}"] = tuple(json.loads(r).get("comment", "") for r in rules)
    return out


def kernel_summary() -> Summary:
    """The same summary, read from the kernel (one JSON listing per table)."""
    import nftables  # type: ignore[import-not-found]

    nft = nftables.Nftables()
    nft.set_json_output(True)
    out: dict[str, Any] = {}
    for family in ("inet", "bridge"):
        rc, text, _ = nft.cmd(f"list table {family} {TABLE}")
        if rc != 0:
            out[f"{family} missing"] = ()
            continue
        for item in json.loads(text)["nftables"]:
            if "set" in item:
                s = item["set"]
                elems = frozenset(key(_plain(e)) for e in s.get("elem", []))
                out[f"{family} set {s['name']}"] = (elems,)
            elif "chain" in item:
                out.setdefault(f"{family} chain {item['chain']['name']}", [])
            elif "rule" in item:
                r = item["rule"]
                out.setdefault(f"{family} chain {r['chain']}", []).append(r.get("comment", ""))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


REV_CHAIN = "policyc_rev"


def with_revision(state: State) -> State:
    """Add a marker chain whose one rule's comment is a hash of every chain and
    set header: at start-up the agent can tell whether the kernel's chains are
    exactly the ones it would program, and then only converge set elements."""
    skel = [
        (t.family, sorted(t.chains.items()), sorted((n, h) for n, (h, _) in t.sets.items()))
        for t in state.tables
    ]
    rev = hashlib.sha1(json.dumps(skel).encode()).hexdigest()[:16]
    first = state.tables[0]
    chains = dict(first.chains)
    rule = {
        "family": first.family,
        "table": TABLE,
        "chain": REV_CHAIN,
        "expr": [{"return": None}],
        "comment": f"rev {rev}",
    }
    chains[REV_CHAIN] = (
        key({"family": first.family, "table": TABLE, "name": REV_CHAIN}),
        (key(rule),),
    )
    return State((TableState(first.family, first.sets, chains), *state.tables[1:]))


def revision(state: State) -> str:
    rules = state.tables[0].chains.get(REV_CHAIN, ("", ()))[1]
    return str(json.loads(rules[0]).get("comment", "")) if rules else ""


def adopt(want: State) -> State | None:
    """What the kernel holds, as a State, if its chains carry ``want``'s
    revision and it has the same sets: then only elements need converging.
    None when the tables are missing or were made by something else."""
    import nftables  # type: ignore[import-not-found]

    nft = nftables.Nftables()
    nft.set_json_output(True)
    tables = []
    for t in want.tables:
        rc, text, _ = nft.cmd(f"list table {t.family} {TABLE}")
        if rc != 0:
            return None
        sets: dict[str, dict[str, Any]] = {}
        rev = ""
        for item in json.loads(text)["nftables"]:
            if "set" in item:
                elems = [_plain(e) for e in item["set"].get("elem", [])]
                sets[item["set"]["name"]] = {key(e): e for e in elems}
            elif "rule" in item and item["rule"]["chain"] == REV_CHAIN:
                rev = item["rule"].get("comment", "")
        if sets.keys() != t.sets.keys() or (t is want.tables[0] and rev != revision(want)):
            return None
        tables.append(TableState(t.family, {n: (t.sets[n][0], sets[n]) for n in sets}, t.chains))
    return State(tuple(tables))


def _plain(elem: Any) -> Any:
    """A listed element without the wrapper nft adds for element options."""
    if isinstance(elem, dict) and "elem" in elem:
        return elem["elem"]["val"]
    return elem


def listing() -> str:
    """The kernel's own text of policyc's tables: the drift fingerprint."""
    import nftables  # type: ignore[import-not-found]

    nft = nftables.Nftables()
    out = []
    for family in ("inet", "bridge"):
        rc, text, _err = nft.cmd(f"list table {family} {TABLE}")
        out.append(text if rc == 0 else f"<no table {family} {TABLE}>")
    return "\n".join(out)
