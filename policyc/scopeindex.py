"""Which named things (sets, policies) can hold a given pod, by label.

A ``Scope`` says which pods a set (or a policy) can contain: the pods a pod
selector matches in one namespace, or in every namespace a namespace selector
selects.  ``ScopeIndex`` files each scope under one *anchor* taken from its
pod selector's positive requirements, per namespace in scope:

- ``In`` (the fewest values): one anchor ``(key, value)`` per value;
- else ``Exists``: the anchor ``(key,)``;
- else (only ``NotIn``/``DoesNotExist``, or the empty selector): ``()``, every
  pod of the namespace.

A pod is listed under ``()`` and under ``(key,)`` and ``(key, value)`` for each
of its labels, so ``candidates(pod)`` costs O(labels + candidates): a scope
requiring ``app=web`` is only offered for pods with ``app=web``.  The index
only skips what surely cannot match; the set's own ``member`` function stays
the authority.

Each namespace selector's result (the namespaces it selects, among those the
index has seen) is cached, and updated by ``namespace_changed`` when a
namespace's labels change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from policyc.model import Op, Pod, Selector
from policyc.podindex import postings_of

Anchor = tuple[str, ...]  # (), (key,) or (key, value)
NsLabels = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Scope:
    """The pods of ``namespace`` (``namespace_selector`` None) or of every
    namespace ``namespace_selector`` selects, whose labels ``pod_selector`` matches."""

    pod_selector: Selector = field(default_factory=Selector)
    namespace: str = ""
    namespace_selector: Selector | None = None


def anchors(selector: Selector) -> tuple[Anchor, ...]:
    """The postings one of which every pod ``selector`` matches carries
    (``((),)``: no positive requirement, any pod; ``()``: no pod at all,
    e.g. ``In`` with no values)."""
    ins = [r for r in selector.requirements if r.op is Op.IN]
    if ins:
        best = min(ins, key=lambda r: len(r.values))
        return tuple((best.key, v) for v in best.values)
    for r in selector.requirements:
        if r.op is Op.EXISTS:
            return ((r.key,),)
    return ((),)


class ScopeIndex:
    """Names (set or policy names) filed by namespace and anchor."""

    def __init__(self, ns_labels: NsLabels) -> None:
        self.ns_labels = ns_labels
        self._scopes: dict[str, tuple[Scope, ...]] = {}
        # Seen namespaces -> anchor -> names (counted: two scopes of one name
        # may share a namespace and an anchor).
        self._by_ns: dict[str, dict[Anchor, Counter[str]]] = {}
        # Registrations made through a namespace selector, and its cached result.
        self._by_nssel: dict[Selector, Counter[tuple[str, Anchor]]] = {}
        self._selected: dict[Selector, set[str]] = {}

    # -- names ---------------------------------------------------------
    def add(self, name: str, scopes: Iterable[Scope]) -> None:
        """File ``name`` under each of ``scopes`` (a name is added once)."""
        held = self._scopes[name] = tuple(scopes)
        for sc in held:
            self._file(name, sc, +1)

    def remove(self, name: str) -> None:
        """Unfile ``name``; a name not held is a no-op."""
        for sc in self._scopes.pop(name, ()):
            self._file(name, sc, -1)

    def _file(self, name: str, sc: Scope, sign: int) -> None:
        marks = anchors(sc.pod_selector)
        sel = sc.namespace_selector
        if sel is None:
            self.ensure(sc.namespace)
            for a in marks:
                self._bump(sc.namespace, a, name, sign)
            return
        regs = self._by_nssel.get(sel)
        if regs is None:
            regs = self._by_nssel[sel] = Counter()
            self._selected[sel] = {n for n in self._by_ns if sel.matches(self.ns_labels(n))}
        for a in marks:
            regs[(name, a)] += sign
            if regs[(name, a)] <= 0:
                del regs[(name, a)]
            for n in self._selected[sel]:
                self._bump(n, a, name, sign)
        if not regs:
            del self._by_nssel[sel], self._selected[sel]

    def _bump(self, ns: str, a: Anchor, name: str, sign: int) -> None:
        table = self._by_ns[ns]
        names = table.setdefault(a, Counter())
        names[name] += sign
        if names[name] <= 0:
            del names[name]
            if not names:
                del table[a]

    # -- namespaces ----------------------------------------------------
    def ensure(self, ns: str) -> None:
        """Start indexing namespace ``ns`` (idempotent)."""
        if ns in self._by_ns:
            return
        self._by_ns[ns] = {}
        labels = self.ns_labels(ns)
        for sel, regs in self._by_nssel.items():
            if sel.matches(labels):
                self._enter(ns, sel, regs, +1)

    def _enter(self, ns: str, sel: Selector, regs: Counter[tuple[str, Anchor]], sign: int) -> None:
        if sign > 0:
            self._selected[sel].add(ns)
        else:
            self._selected[sel].discard(ns)
        for (name, a), n in regs.items():
            self._bump(ns, a, name, sign * n)

    def affected(self, ns: str, labels: Mapping[str, str]) -> set[str]:
        """The names whose namespace selectors decide differently for ``ns``
        under ``labels`` than now (its pods' membership may change)."""
        if ns not in self._by_ns:
            return set()
        out: set[str] = set()
        for sel, regs in self._by_nssel.items():
            if sel.matches(labels) != (ns in self._selected[sel]):
                out.update(name for name, _ in regs)
        return out

    def namespace_changed(self, ns: str) -> None:
        """Re-file ``ns`` after its labels changed (``ns_labels`` answers anew)."""
        if ns not in self._by_ns:
            return
        labels = self.ns_labels(ns)
        for sel, regs in self._by_nssel.items():
            now = sel.matches(labels)
            if now != (ns in self._selected[sel]):
                self._enter(ns, sel, regs, +1 if now else -1)

    def selected(self, sel: Selector) -> set[str]:
        """The seen namespaces ``sel`` selects (cached while a scope uses ``sel``)."""
        cached = self._selected.get(sel)
        if cached is not None:
            return cached
        return {n for n in self._by_ns if sel.matches(self.ns_labels(n))}

    def namespaces(self, sc: Scope) -> Iterable[str]:
        """The seen namespaces of ``sc`` (its own namespace, seen or not)."""
        if sc.namespace_selector is None:
            return (sc.namespace,)
        return self.selected(sc.namespace_selector)

    # -- pods ----------------------------------------------------------
    def candidates(self, pod: Pod) -> set[str]:
        """The names filed under one of ``pod``'s anchors in its namespace: a
        superset of the names one of whose scopes matches ``pod``."""
        self.ensure(pod.namespace)
        table = self._by_ns[pod.namespace]
        out: set[str] = set()
        names = table.get(())
        if names:
            out.update(names)
        for a in postings_of(pod):
            names = table.get(a)
            if names:
                out.update(names)
        return out
