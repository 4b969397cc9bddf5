"""Pure diffs of IptablesState: programmed vs desired -> an ordered Transaction.

Order (each step only needs what the steps before it made):

1. sets: create new ones, add/delete members, swap in a bigger copy
   (maxelem), rename a set whose type changed out of the way;
2. tables, one ``TableWrite`` per changed table: only the changed chains are
   declared (which flushes them) and refilled, stale chains emptied and
   deleted, hook jumps inserted or deleted;
3. sets no rule refers to any more are destroyed.

The undo of a transaction is the diff from what the kernel holds after a
failure back to ``tx.before`` (``kernel.apply`` computes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from backends.iptables.dialect import FAMILIES
from backends.iptables.ipset import group_sets, ipsets, maxelem_for, old_name, set_name
from backends.iptables.render import bridge_tables
from backends.iptables.state import (
    EMPTY,
    BridgeSource,
    Chain,
    HookJump,
    IpSet,
    IptablesState,
    Table,
    Tool,
)
from policyc.ir import Changes, Element, SetDef, SetKind, sort_key

# Sets rendered as rule variants (multiport, physdev), not as ipsets.
EXPANDED = (SetKind.PORTS, SetKind.IFACE, SetKind.IFACE_ADDR, SetKind.NET_PORTS)
# ... of which these are per-port (anti-spoofing): they change with pods.
PER_PORT = (SetKind.IFACE, SetKind.IFACE_ADDR)
TOOL_ORDER = (Tool.IPTABLES, Tool.IP6TABLES, Tool.EBTABLES)


@dataclass(frozen=True, slots=True)
class SetCreate:
    set: IpSet


@dataclass(frozen=True, slots=True)
class SetAdd:
    name: str
    elements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetDel:
    name: str
    keys: tuple[str, ...]  # the element without flags (``nomatch``)


@dataclass(frozen=True, slots=True)
class SetSwap:
    """Replace a live set's members and options with a filled staging copy."""

    set: IpSet


@dataclass(frozen=True, slots=True)
class SetRename:
    name: str
    to: str


@dataclass(frozen=True, slots=True)
class SetDestroy:
    name: str


@dataclass(frozen=True, slots=True)
class TableWrite:
    """One ``COMMIT`` of a restore tool: refill ``chains``, delete ``remove``."""

    tool: Tool
    table: str
    chains: tuple[Chain, ...]
    remove: tuple[str, ...]
    add_hooks: tuple[HookJump, ...]
    del_hooks: tuple[HookJump, ...]
    policy: str  # how the tool declares a policyc chain: "-" or "RETURN"


Step = SetCreate | SetAdd | SetDel | SetSwap | SetRename | SetDestroy | TableWrite


@dataclass(frozen=True, slots=True)
class Transaction:
    """``before`` None: the kernel's state is unknown; ``kernel.apply`` reads
    it and converges from there.  ``trusted``: ``before`` is what the kernel
    holds (a pod event patched onto the watcher's programmed state), so
    ``kernel.apply`` takes it as its undo snapshot instead of reading every
    table and set back first."""

    before: IptablesState | None
    after: IptablesState
    steps: tuple[Step, ...]
    trusted: bool = False

    def __len__(self) -> int:
        return max(len(self.steps), 1 if self.before is None else 0)


def key_of(element: str) -> str:
    return element.split()[0]


def _set_steps(old: IpSet | None, new: IpSet) -> tuple[list[Step], bool]:
    """Steps turning ``old`` into ``new``; True when renamed away (retyped)."""
    if old is None:
        return [SetCreate(new)], False
    if old is new:
        return [], False  # untouched by a patch
    if (old.type, old.family) != (new.type, new.family):
        return [SetRename(new.name, old_name(new.name)), SetCreate(new)], True
    if old.maxelem != new.maxelem:
        return [SetSwap(new)], False
    before, after = set(old.elements), set(new.elements)
    gone = tuple(key_of(e) for e in old.elements if e not in after)
    came = tuple(e for e in new.elements if e not in before)
    return [s for s in (SetDel(new.name, gone), SetAdd(new.name, came)) if _nonempty(s)], False


def _nonempty(step: Step) -> bool:
    if isinstance(step, SetDel):
        return bool(step.keys)
    if isinstance(step, SetAdd):
        return bool(step.elements)
    return True


def _refers(chain: Chain, names: set[str]) -> bool:
    return any(t in names for r in chain.rules for t in r.args)


def _hook_steps(
    old: tuple[HookJump, ...], new: tuple[HookJump, ...]
) -> tuple[tuple[HookJump, ...], tuple[HookJump, ...]]:
    """(insert, delete) per jump target: when the kernel's jumps from one
    builtin to one chain differ from the desired ones (missing, not first,
    duplicated), every one is deleted and the desired ones inserted at rule 1.
    ``-D <builtin> -j <chain>`` removes the first match only, so deleting just
    a later duplicate would remove the first jump instead."""

    def group(hooks: tuple[HookJump, ...]) -> dict[tuple[str, str], list[HookJump]]:
        out: dict[tuple[str, str], list[HookJump]] = {}
        for h in hooks:
            out.setdefault((h.builtin, h.chain), []).append(h)
        return out

    was, will = group(old), group(new)
    changed = [
        k
        for k in {**was, **will}
        if sorted(was.get(k, []), key=_order) != sorted(will.get(k, []), key=_order)
    ]
    add = tuple(h for k in changed for h in will.get(k, []))
    delete = tuple(h for k in changed for h in was.get(k, []))
    return add, delete


def _order(h: HookJump) -> bool:
    return h.first


def _differs(old: Chain, new: Chain) -> bool:
    """Do two chains hold different rules?  ``key`` (iptables-save's order of
    every rule's tokens) only when the cheap tests cannot tell: the same
    object, another number of rules, or the very same tokens."""
    if old is new:
        return False
    if old.policy != new.policy or len(old.rules) != len(new.rules):
        return True
    if old.body == new.body:
        return False
    return old.key() != new.key()


def _table_write(old: Table | None, new: Table | None, retyped: set[str]) -> TableWrite | None:
    if old is new:
        return None  # untouched by a patch: no need to compare every rule
    ref = new or old
    assert ref is not None
    old_chains = {c.name: c for c in (old.chains if old else ())}
    new_chains = new.chains if new else ()
    changed = tuple(
        c
        for c in new_chains
        if c.name not in old_chains or _differs(old_chains[c.name], c) or _refers(c, retyped)
    )
    names = {c.name for c in new_chains}
    remove = tuple(n for n in old_chains if n not in names)
    add, delete = _hook_steps(old.hooks if old else (), new.hooks if new else ())
    if not (changed or remove or add or delete):
        return None
    policy = "RETURN" if ref.tool is Tool.EBTABLES else "-"
    return TableWrite(ref.tool, ref.name, changed, remove, add, delete, policy)


def _tables(programmed: IptablesState, desired: IptablesState, retyped: set[str]) -> list[Step]:
    keys = [(t.tool, t.name) for t in desired.tables]
    keys += [(t.tool, t.name) for t in programmed.tables if (t.tool, t.name) not in keys]
    keys.sort(key=lambda k: TOOL_ORDER.index(k[0]))
    out: list[Step] = []
    for tool, name in keys:
        w = _table_write(programmed.table(tool, name), desired.table(tool, name), retyped)
        if w is not None:
            out.append(w)
    return out


def diff(programmed: IptablesState | None, desired: IptablesState) -> Transaction:
    """The steps from ``programmed`` (None: unknown, read at apply) to ``desired``."""
    base = EMPTY if programmed is None else programmed
    steps: list[Step] = []
    retyped: set[str] = set()
    old_sets = {s.name: s for s in base.sets}
    for s in desired.sets:
        more, renamed = _set_steps(old_sets.get(s.name), s)
        steps.extend(more)
        if renamed:
            retyped.add(s.name)
    steps.extend(_tables(base, desired, retyped))
    wanted = {s.name for s in desired.sets}
    steps.extend(SetDestroy(n) for n in old_sets if n not in wanted)
    steps.extend(SetDestroy(old_name(n)) for n in sorted(retyped))
    return Transaction(programmed, desired, tuple(steps))


def _patched(old: IpSet, ir: SetDef, changes: Changes) -> IpSet | None:
    """``old`` with the IR set's changes; None if not expressible here."""
    fam = old.family
    if ir.name in changes.reset:
        fresh = [s for s in ipsets(ir, FAMILIES) if s.name == old.name]
        return fresh[0] if fresh else None
    if ir.kind is SetKind.CIDR:
        return None  # fewest hash:net entries are not a local edit
    one = _element_strings(ir, changes.added.get(ir.name, frozenset()), fam)
    gone = set(_element_strings(ir, changes.removed.get(ir.name, frozenset()), fam))
    elems = tuple(e for e in old.elements if e not in gone) + tuple(
        e for e in one if e not in old.elements
    )
    return replace(old, elements=elems, maxelem=maxelem_for(len(elems)))


def _element_strings(ir: SetDef, elems: frozenset[Element], fam: str) -> list[str]:
    probe = SetDef(ir.name, ir.kind, ir.family, tuple(sorted(elems, key=str)), ir.comment)
    out: list[str] = []
    for s in ipsets(probe, FAMILIES):
        if s.family == fam:
            out.extend(s.elements)
    return out


def _patch_groups(new_sets: dict[str, IpSet], ir: SetDef, changes: Changes) -> bool:
    """A dispatch map's changes as member changes of its group ipsets
    (in ``new_sets``); False when a group has no programmed ipset (a new
    group is a new chain: a rules change)."""
    if ir.name in changes.reset:
        fresh = group_sets(ir)
        if any(s.name not in new_sets for s in fresh):
            return False
        new_sets.update((s.name, s) for s in fresh)
        return True
    delta: dict[str, tuple[set[str], set[str]]] = {}
    removed, added = (
        changes.removed.get(ir.name, frozenset()),
        changes.added.get(ir.name, frozenset()),
    )
    for elems, i in ((removed, 0), (added, 1)):
        for e in elems:
            assert isinstance(e, tuple)
            delta.setdefault(set_name(str(e[1])), (set(), set()))[i].add(str(e[0]))
    for live, (gone, came) in sorted(delta.items()):
        old = new_sets.get(live)
        if old is None:
            return False
        kept = tuple(v for v in old.elements if v not in gone)
        members = kept + tuple(sorted(v for v in came if v not in old.elements))
        new_sets[live] = replace(old, elements=members, maxelem=maxelem_for(len(members)))
    return True


def _bridge_set(old: SetDef, ir: SetDef, changes: Changes) -> SetDef:
    """A per-port set with the builder's changes (``ir`` holds every element
    when the set is in ``changes.reset``), in the builder's element order."""
    if ir.name in changes.reset:
        return replace(old, elements=ir.elements)
    gone = changes.removed.get(ir.name, frozenset())
    came = changes.added.get(ir.name, frozenset())
    elems = (set(old.elements) - gone) | came
    return replace(old, elements=tuple(sorted(elems, key=sort_key)))


def _patch_bridge(
    programmed: IptablesState, changes: Changes, sets: Mapping[str, SetDef]
) -> tuple[tuple[Table, ...], BridgeSource] | None:
    """The tables with the anti-spoofing chains re-rendered from the changed
    per-port sets (O(local pods)); the other tables are the same objects.
    None: the state does not say what its bridge chains came from (read from
    the kernel), or a changed per-port set is not one of them."""
    source = programmed.bridge
    if source is None:
        return None
    by_name = {s.name: s for s in source.sets}
    for name in changes.dirty:
        ir = sets.get(name)
        if ir is None or ir.kind not in PER_PORT:
            continue
        old = by_name.get(name)
        if old is None:
            return None
        by_name[name] = _bridge_set(old, ir, changes)
    fresh = BridgeSource(source.chains, tuple(by_name.values()))
    new = bridge_tables(fresh)
    kept = tuple(new.pop((t.tool, t.name), t) for t in programmed.tables)
    return kept + tuple(new.values()), fresh


def _patch_sets(new_sets: dict[str, IpSet], changes: Changes, sets: Mapping[str, SetDef]) -> bool:
    """The ipsets (in ``new_sets``) with the builder's changes; False when a
    change is not expressible as members (a PORTS set, an unknown set)."""
    for name in changes.dirty:
        ir = sets.get(name)
        if ir is None or ir.kind is SetKind.PORTS:
            return False
        if ir.kind in PER_PORT:
            continue  # rendered as rules: _patch_bridge
        if ir.kind is SetKind.VMAP:
            if not _patch_groups(new_sets, ir, changes):
                return False
            continue
        for live in ipsets(replace(ir, elements=()), FAMILIES):
            old = new_sets.get(live.name)
            if old is None:
                continue  # no rule refers to it
            one = _patched(old, ir, changes)
            if one is None:
                return False
            new_sets[live.name] = one
    return True


def patch(
    programmed: IptablesState, changes: Changes, sets: Mapping[str, SetDef]
) -> Transaction | None:
    """Pod events: set steps, plus a rewrite of the anti-spoofing chains
    when a local pod's port comes or goes (iptables' set match cannot see the
    bridge port, so those are ``-m physdev`` rules: docs/iptables.md).  None
    when a changed set is a PORTS set (policy-driven) or not known here."""
    new_sets = {s.name: s for s in programmed.sets}
    if not _patch_sets(new_sets, changes, sets):
        return None
    tables, bridge = programmed.tables, programmed.bridge
    if any(sets[n].kind in PER_PORT for n in changes.dirty if n in sets):
        patched = _patch_bridge(programmed, changes, sets)
        if patched is None:
            return None
        tables, bridge = patched
    after = IptablesState(tuple(new_sets.values()), tables, bridge)
    return replace(diff(programmed, after), trusted=True)
