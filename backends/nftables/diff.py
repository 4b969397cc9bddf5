"""Pure: the smallest transaction from one State to another.

``diff(programmed, desired)``: set elements added or removed, changed chains
flushed and refilled, dead chains and sets deleted.  A table is replaced
whole (still in the one transaction) when it is missing, when a chain's hook
or a set's header changes, or when nothing is known to be programmed.  When
``programmed`` was read from the kernel, carries the revision of
``desired`` and its chains are equal to them, it is adopted and only set
elements converge.

``patch(programmed, changes, sets)``: a pod event as element updates only,
costing the changed elements (and the copy of the sets they touch).
"""

from __future__ import annotations

from collections.abc import Mapping

from backends.nftables import dialect
from backends.nftables.objects import Element, State, Table, Transaction
from backends.nftables.render import revision
from policyc.ir import Changes, SetDef


def _replace(tx: Transaction, t: Table) -> None:
    head = t.header()
    tx.add(head).delete(head).add(head)
    ordered = sorted(t.sets.values(), key=lambda s: s.name)
    for s in ordered:
        if not s.map:
            tx.add(s)
    for c in t.chains.values():  # all chains first: rules may jump to later ones
        tx.add(c.header())
    for s in ordered:  # a verdict map's elements name chains: after them
        if s.map:
            tx.add(s)
    for c in t.chains.values():
        for r in c.rules:
            tx.add(r)


def _headers_differ(old: Table, new: Table) -> bool:
    return any(
        old.chains[n].header() != new.chains[n].header() for n in old.chains.keys() & new.chains
    ) or any(old.sets[n].header() != new.sets[n].header() for n in old.sets.keys() & new.sets)


def _elements(tx: Transaction, old: Table, new: Table) -> None:
    for name in sorted(old.sets.keys() & new.sets.keys()):
        before, after = old.sets[name].elements, new.sets[name].elements
        gone = tuple(v for v in before if v not in after)
        added = tuple(v for v in after if v not in before)
        if gone:
            tx.delete(Element(new.family, new.name, name, gone))
        if added:
            tx.add(Element(new.family, new.name, name, added))


def _converge(tx: Transaction, old: Table, new: Table) -> None:
    changed = sorted(n for n in old.chains.keys() & new.chains if old.chains[n] != new.chains[n])
    gone_chains = sorted(old.chains.keys() - new.chains.keys())
    new_chains = [c for n, c in new.chains.items() if n not in old.chains]
    for name in changed + gone_chains:  # flush first: nothing refers to what goes next
        tx.flush(old.chains[name].header())
    new_sets = sorted(new.sets.keys() - old.sets.keys())
    for name in new_sets:
        if not new.sets[name].map:
            tx.add(new.sets[name])
    for c in new_chains:
        tx.add(c.header())
    for name in new_sets:  # a verdict map's elements name chains: after them
        if new.sets[name].map:
            tx.add(new.sets[name])
    _elements(tx, old, new)
    for c in [new.chains[n] for n in changed] + new_chains:
        for r in c.rules:
            tx.add(r)
    for name in gone_chains:  # once no map element sends to them
        tx.delete(old.chains[name].header())
    for name in sorted(old.sets.keys() - new.sets.keys()):
        tx.delete(old.sets[name].header())


def _adopt(programmed: State, desired: State) -> bool:
    """The revision names what policyc meant to program, not what the chains
    hold now: a rule inserted, edited or deleted behind policyc's back keeps
    it.  So the chains must also be equal, rule for rule, to be adopted."""
    if not programmed.read or not revision(desired) or revision(programmed) != revision(desired):
        return False
    return all(
        (old := programmed.table(t.family)) is not None
        and old.sets.keys() == t.sets.keys()
        and old.chains == t.chains
        for t in desired.tables
    )


def diff(programmed: State | None, desired: State) -> Transaction:
    """The transaction that turns ``programmed`` (None: unknown) into ``desired``."""
    tx = Transaction(programmed)
    adopt = programmed is not None and _adopt(programmed, desired)
    for new in desired.tables:
        old = programmed.table(new.family) if programmed is not None else None
        if old is None or _headers_differ(old, new):
            _replace(tx, new)
        elif adopt:
            _elements(tx, old, new)
        else:
            _converge(tx, old, new)
    return tx


def _target(programmed: State, name: str) -> Table | None:
    return next((t for t in programmed.tables if name in t.sets), None)


def patch(programmed: State, changes: Changes, sets: Mapping[str, SetDef]) -> Transaction | None:
    """Element updates for the sets in ``changes.dirty``; None if a set was
    reset and is unknown to ``programmed``, or its header changed (then the
    caller renders and diffs).  Sets no programmed rule reads are skipped."""
    tx = Transaction(programmed)
    for name in sorted(changes.dirty):
        table, sdef = _target(programmed, name), sets.get(name)
        if table is None and name not in changes.reset:
            continue  # a set no rule reads (the optimiser dropped it)
        if table is None or sdef is None:
            return None
        have = table.sets[name]
        if dialect.set_type(sdef) != (have.type, have.flags):
            return None
        if dialect.MAP_TYPE.get(sdef.kind, "") != have.map:
            return None
        encode = dialect.ELEMENTS[sdef.kind]
        if name in changes.reset:
            want = dict.fromkeys(encode(e) for e in sdef.elements)
            gone = tuple(v for v in have.elements if v not in want)
            added = tuple(v for v in want if v not in have.elements)
        else:
            gone_v = (encode(e) for e in changes.removed.get(name, ()))
            added_v = (encode(e) for e in changes.added.get(name, ()))
            gone = tuple(dict.fromkeys(v for v in gone_v if v in have.elements))
            added = tuple(dict.fromkeys(v for v in added_v if v not in have.elements))
        if gone:
            tx.delete(Element(table.family, table.name, name, gone))
        if added:
            tx.add(Element(table.family, table.name, name, added))
    return tx
