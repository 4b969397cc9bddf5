"""nftables objects as typed values (knftables ``types.go``), and the State
of policyc's tables built from them.

Rule bodies are expression trees, never free text, so that a rule read back
from the kernel (``nft -j list table``) compares equal to the rule we sent
exactly when the kernel holds that rule.  Equality is exact for everything
the kernel keeps; two things it does not keep are left out of ``==``: a set's
comment (libnftables 1.0.6's JSON parser drops set comments) and the order of
a set's elements or of an anonymous set's items (the kernel lists them in its
own order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from backends.nftables.elements import ElementSet
from policyc.chains import Verb
from policyc.errors import BackendError


@dataclass(frozen=True, slots=True)
class Iface:
    """An interface name (nft type ``ifname``): quoted in nft text."""

    name: str


@dataclass(frozen=True, slots=True)
class Prefix:
    addr: str
    len: int


@dataclass(frozen=True, slots=True)
class Range:
    lo: str | int
    hi: str | int


@dataclass(frozen=True, slots=True)
class Concat:
    """``a . b . c``: a concatenated key (of expressions) or value."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class VerdictElem:
    """``key : goto chain``: an element of a verdict map (nft(8) "VERDICT MAP")."""

    key: Value
    verb: Verb
    target: str


# A constant: an address or a symbol (bare str), a number, an interface name.
Value = str | int | Iface | Prefix | Range | Concat | VerdictElem


@dataclass(frozen=True, slots=True)
class Payload:
    """``ip saddr``, ``th dport``, ``arp saddr ip``."""

    protocol: str
    field: str


@dataclass(frozen=True, slots=True)
class Meta:
    key: str


@dataclass(frozen=True, slots=True)
class Ct:
    key: str


@dataclass(frozen=True, slots=True)
class SetRef:
    """``@name``: a lookup in a named set of the same table."""

    name: str


@dataclass(frozen=True, slots=True, eq=False)
class AnonSet:
    """``{ a, b }``: printed in the given order, compared as a set."""

    items: tuple[Value, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnonSet) and frozenset(self.items) == frozenset(other.items)

    def __hash__(self) -> int:
        return hash(frozenset(self.items))


@dataclass(frozen=True, slots=True)
class Flags:
    """``established,related``: a bitmask value (JSON: a list)."""

    names: tuple[str, ...]


Expr = Value | Payload | Meta | Ct | SetRef | AnonSet | Flags


class Op(StrEnum):
    EQ = "=="
    NE = "!="
    IN = "in"  # a bitmask value: any of the flags


@dataclass(frozen=True, slots=True)
class Match:
    op: Op
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Verdict:
    verb: Verb
    target: str = ""


@dataclass(frozen=True, slots=True)
class Raw:
    """A statement read from the kernel that policyc never writes (JSON text):
    it never equals a rendered statement, so it reads as drift."""

    json: str


@dataclass(frozen=True, slots=True)
class VMap:
    """``ip saddr vmap @disp_eg4``: the verdict of the map's element for the
    key; no element, no verdict (the next statement's rule runs)."""

    key: Expr
    map: str


@dataclass(frozen=True, slots=True)
class Log:
    """nft(8) LOG STATEMENT: ``log prefix "…" group N`` (NFLOG: the kernel
    hands a copy to userspace and the packet goes on at once)."""

    prefix: str
    group: int


@dataclass(frozen=True, slots=True)
class SetLimit:
    """``add @set { key limit rate R/second burst B packets }``: true while
    this key's rate is within the limit (nft(8) SET STATEMENT; a per-key
    meter).  ``set`` is a dynamic set."""

    set: str
    key: Expr
    rate: int
    burst: int


Stmt = Match | Verdict | VMap | Log | SetLimit | Raw


@dataclass(frozen=True, slots=True)
class Rule:
    family: str
    table: str
    chain: str
    stmts: tuple[Stmt, ...]
    comment: str = ""

    def jumps(self) -> tuple[str, ...]:
        return tuple(s.target for s in self.stmts if isinstance(s, Verdict) and s.target)

    def sets(self) -> tuple[str, ...]:
        return (
            tuple(
                s.right.name
                for s in self.stmts
                if isinstance(s, Match) and isinstance(s.right, SetRef)
            )
            + tuple(s.map for s in self.stmts if isinstance(s, VMap))
            + tuple(s.set for s in self.stmts if isinstance(s, SetLimit))
        )


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; a base chain has ``type``, ``hook``, ``prio`` and ``policy``."""

    family: str
    table: str
    name: str
    rules: tuple[Rule, ...] = ()
    type: str | None = None
    hook: str | None = None
    prio: int | None = None
    policy: str | None = None

    def header(self) -> Chain:
        return Chain(
            self.family, self.table, self.name, (), self.type, self.hook, self.prio, self.policy
        )


@dataclass(frozen=True, slots=True)
class Set:
    """A named set, or a map when ``map`` names its value type (``verdict``:
    a verdict map, elements ``VerdictElem``).  ``elements`` is an ordered set
    (a mapping to None): text output keeps its order, equality ignores it."""

    family: str
    table: str
    name: str
    type: tuple[str, ...]
    flags: tuple[str, ...] = ()
    elements: Mapping[Value, None] = field(default_factory=dict)
    comment: str = field(default="", compare=False)
    map: str = ""

    def header(self) -> Set:
        return Set(
            self.family, self.table, self.name, self.type, self.flags, {}, self.comment, self.map
        )


@dataclass(frozen=True, slots=True)
class Element:
    """Some elements of one set (one nft ``element`` command)."""

    family: str
    table: str
    set: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Table:
    family: str
    name: str
    sets: Mapping[str, Set] = field(default_factory=dict)
    chains: Mapping[str, Chain] = field(default_factory=dict)

    def header(self) -> Table:
        return Table(self.family, self.name)


@dataclass(frozen=True, slots=True)
class State:
    """policyc's tables.  ``read``: this state was read from the kernel (not
    compared) — the diff then may adopt its chains (see ``diff``)."""

    tables: tuple[Table, ...]
    read: bool = field(default=False, compare=False)

    def table(self, family: str) -> Table | None:
        return next((t for t in self.tables if t.family == family), None)

    def size(self) -> dict[str, int]:
        return {
            "sets": sum(len(t.sets) for t in self.tables),
            "elements": sum(len(s.elements) for t in self.tables for s in t.sets.values()),
            "rules": sum(len(c.rules) for t in self.tables for c in t.chains.values()),
        }


class TxVerb(StrEnum):
    ADD = "add"
    DELETE = "delete"
    FLUSH = "flush"


Obj = Table | Set | Chain | Element | Rule


@dataclass
class _Work:
    """One table while a transaction is built: its dicts are copied only
    when they change, so a pod event costs the sets it touches."""

    table: Table
    _sets: dict[str, Set] | None = None
    _chains: dict[str, Chain] | None = None
    elements: dict[str, ElementSet] = field(default_factory=dict)  # touched sets
    rules: dict[str, list[Rule]] = field(default_factory=dict)  # touched chains

    @property
    def sets(self) -> Mapping[str, Set]:
        return self.table.sets if self._sets is None else self._sets

    @property
    def chains(self) -> Mapping[str, Chain]:
        return self.table.chains if self._chains is None else self._chains

    def wsets(self) -> dict[str, Set]:
        if self._sets is None:
            self._sets = dict(self.table.sets)
        return self._sets

    def wchains(self) -> dict[str, Chain]:
        if self._chains is None:
            self._chains = dict(self.table.chains)
        return self._chains

    def freeze(self) -> Table:
        if self._sets is None and self._chains is None and not self.elements and not self.rules:
            return self.table
        sets = dict(self.sets)
        for n, elems in self.elements.items():
            if n in sets:
                s = sets[n]
                sets[n] = Set(s.family, s.table, n, s.type, s.flags, elems, s.comment, s.map)
        chains = dict(self.chains)
        for n, rules in self.rules.items():
            if n in chains:
                c = chains[n]
                chains[n] = Chain(
                    c.family, c.table, n, tuple(rules), c.type, c.hook, c.prio, c.policy
                )
        return Table(self.table.family, self.table.name, sets, chains)


class Transaction:
    """An ordered list of (verb, object), validated as it is built
    (knftables ``transaction.go``): an element for a set, a rule in a chain,
    a jump to a chain or a lookup in a set that the state and the transaction
    so far do not have raises BackendError.  ``after`` is the State once it
    commits; building it copies only the tables and chains touched, and a
    set's elements change in O(changed) (``elements.ElementSet``).

    ``add Set`` adds the set with its elements; ``add Chain`` its header only
    (its rules are ``add Rule``); ``add Table`` creates the table if missing.
    """

    def __init__(self, before: State | None) -> None:
        self.ops: list[tuple[TxVerb, Obj]] = []
        self._work: dict[str, _Work | None] = {}
        for t in before.tables if before is not None else ():
            self._work[t.family] = _Work(t)

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def after(self) -> State:
        return State(tuple(w.freeze() for w in self._work.values() if w is not None))

    def _table(self, family: str, what: str) -> _Work:
        w = self._work.get(family)
        if w is None:
            raise _error(f"{what}: no table {family}")
        return w

    def add(self, obj: Obj) -> Transaction:
        self._check_add(obj)
        self.ops.append((TxVerb.ADD, obj))
        return self

    def delete(self, obj: Obj) -> Transaction:
        w = self._table(obj.family, f"delete {obj!r:.80}")
        if isinstance(obj, Table):
            self._work[obj.family] = None
        elif isinstance(obj, Set):
            _need(obj.name in w.sets, f"delete set {obj.name}: no such set")
            del w.wsets()[obj.name]
            w.elements.pop(obj.name, None)
        elif isinstance(obj, Chain):
            # nft(8): "Delete the specified chain. The chain must not contain
            # any rules or be used as jump target."
            _need(obj.name in w.chains, f"delete chain {obj.name}: no such chain")
            _need(not self._rules(w, obj.name), f"delete chain {obj.name}: not empty")
            _need(
                not self._mapped(w, obj.name), f"delete chain {obj.name}: a map element sends to it"
            )
            del w.wchains()[obj.name]
            w.rules.pop(obj.name, None)
        elif isinstance(obj, Element):
            elems = self._elements(w, obj.set)
            for v in obj.values:
                _need(v in elems, f"delete element {v!r} from set {obj.set}: not a member")
            w.elements[obj.set] = elems.changed(remove=obj.values)
        else:
            raise _error("rules are replaced by flushing their chain")
        self.ops.append((TxVerb.DELETE, obj))
        return self

    def flush(self, chain: Chain) -> Transaction:
        w = self._table(chain.family, f"flush chain {chain.name}")
        _need(chain.name in w.chains, f"flush chain {chain.name}: no such chain")
        w.rules[chain.name] = []
        self.ops.append((TxVerb.FLUSH, chain))
        return self

    def _check_add(self, obj: Obj) -> None:
        if isinstance(obj, Table):
            # nft(8): "the former [add] will not return an error if the
            # specified table already exists while create will"
            if self._work.get(obj.family) is None:
                self._work[obj.family] = _Work(obj.header(), {}, {})
            return
        w = self._table(obj.family, f"add {type(obj).__name__}")
        if isinstance(obj, Set):
            old = w.sets.get(obj.name)
            _need(old is None or old.header() == obj.header(), f"set {obj.name}: other type")
            w.wsets()[obj.name] = obj
            elems = ElementSet.of(old.elements if old else obj.elements)
            w.elements[obj.name] = elems.changed(add=obj.elements) if old else elems
        elif isinstance(obj, Chain):
            _need(obj.name not in w.chains, f"chain {obj.name}: exists")
            w.wchains()[obj.name] = obj.header()
            w.rules[obj.name] = []
        elif isinstance(obj, Element):
            elems = self._elements(w, obj.set)
            width = len(w.sets[obj.set].type)
            for v in obj.values:
                _need(
                    isinstance(v, VerdictElem) == bool(w.sets[obj.set].map),
                    f"element {v!r} for {'map' if w.sets[obj.set].map else 'set'} {obj.set}",
                )
                if isinstance(v, VerdictElem):
                    _need(v.target in w.chains, f"map element to chain {v.target}: no such chain")
                    v = v.key
                parts = len(v.parts) if isinstance(v, Concat) else 1
                _need(parts == width, f"element {v!r} for set {obj.set} of {width} fields")
            w.elements[obj.set] = elems.changed(add=obj.values)
        else:
            _need(obj.chain in w.chains, f"rule in chain {obj.chain}: no such chain")
            for target in obj.jumps():
                _need(target in w.chains, f"rule jumps to chain {target}: no such chain")
            for name in obj.sets():
                _need(name in w.sets, f"rule looks up set {name}: no such set")
            self._rules(w, obj.chain).append(obj)

    @staticmethod
    def _elements(w: _Work, name: str) -> ElementSet:
        _need(name in w.sets, f"elements for set {name}: no such set")
        if name not in w.elements:
            w.elements[name] = ElementSet.of(w.sets[name].elements)
        return w.elements[name]

    @staticmethod
    def _mapped(w: _Work, chain: str) -> bool:
        for name, s in w.sets.items():
            if s.map:
                elems = w.elements.get(name, s.elements)
                if any(isinstance(v, VerdictElem) and v.target == chain for v in elems):
                    return True
        return False

    @staticmethod
    def _rules(w: _Work, name: str) -> list[Rule]:
        if name not in w.rules:
            w.rules[name] = list(w.chains[name].rules)
        return w.rules[name]


def _error(message: str) -> BackendError:
    return BackendError(f"nftables transaction: {message}")


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise _error(message)
