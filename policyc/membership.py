"""Set membership, kept incrementally, with an index and a change journal.

Every set counts the contributions of each pod to each element; an element
is a member while its count is positive.  The namespace index lets a pod
event evaluate only the sets a pod of its namespace could belong to (the
set's ``member`` function stays the authority; the index only skips sets
that surely say no).  The journal records, per set, the elements that
became members or stopped being members since the last ``take``, so that a
dataplane can send just those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from policyc.errors import PolicycError
from policyc.ir import Changes, Element
from policyc.model import Pod
from policyc.setspecs import SetSpec, World


@dataclass
class Journal:
    dirty: set[str] = field(default_factory=set)  # any change
    reset: set[str] = field(default_factory=set)  # created, deleted or rebuilt
    added: dict[str, set[Element]] = field(default_factory=dict)
    removed: dict[str, set[Element]] = field(default_factory=dict)


class Membership:
    def __init__(self, world: World, ns_labels: Callable[[str], Mapping[str, str]]) -> None:
        self.world = world
        self.ns_labels = ns_labels
        self.specs: dict[str, SetSpec] = {}
        self.refs: Counter[str] = Counter()
        self.members: dict[str, Counter[Element]] = {}
        self.global_specs: set[str] = set()
        self.ns_specs: dict[str, set[str]] = {}
        self.changes = Journal()

    # -- index ---------------------------------------------------------
    def _index(self, spec: SetSpec, namespaces: Iterable[str]) -> None:
        if spec.in_ns is None:
            self.global_specs.add(spec.name)
            return
        for ns in namespaces:
            if spec.in_ns(ns, self.ns_labels(ns)):
                self.ns_specs.setdefault(ns, set()).add(spec.name)

    def index_namespace(self, ns: str) -> None:
        """(Re)compute which filtered sets pods of ``ns`` could belong to."""
        names = set()
        labels = self.ns_labels(ns)
        for name, spec in self.specs.items():
            if spec.in_ns is not None and spec.in_ns(ns, labels):
                names.add(name)
        self.ns_specs[ns] = names

    def for_pod(self, pod: Pod) -> list[SetSpec]:
        if pod.namespace not in self.ns_specs:
            self.index_namespace(pod.namespace)
        names = self.global_specs | self.ns_specs[pod.namespace]
        return [self.specs[n] for n in names]

    def ns_dependent(self) -> list[SetSpec]:
        return [s for s in self.specs.values() if s.ns_dependent]

    # -- journal -------------------------------------------------------
    def _journal(self, name: str, elem: Element, became_member: bool) -> None:
        ch = self.changes
        ch.dirty.add(name)
        if name in ch.reset:
            return
        add, rem = ch.added.setdefault(name, set()), ch.removed.setdefault(name, set())
        if became_member:
            if elem in rem:
                rem.discard(elem)
            else:
                add.add(elem)
        elif elem in add:
            add.discard(elem)
        else:
            rem.add(elem)

    def _reset(self, name: str) -> None:
        ch = self.changes
        ch.dirty.add(name)
        ch.reset.add(name)
        ch.added.pop(name, None)
        ch.removed.pop(name, None)

    def take(self, rules: bool = False) -> Changes:
        """The journal since the last take, as a value; starts a new one."""
        j, self.changes = self.changes, Journal()
        return Changes(
            rules=rules,
            dirty=frozenset(j.dirty),
            reset=frozenset(j.reset),
            added={n: frozenset(e) for n, e in j.added.items() if e},
            removed={n: frozenset(e) for n, e in j.removed.items() if e},
        )

    # -- membership ----------------------------------------------------
    def contribute(self, pod: Pod, sign: int, specs: Iterable[SetSpec] | None = None) -> None:
        if pod.host_network:
            return
        for spec in self.for_pod(pod) if specs is None else specs:
            if spec.member is None:
                continue
            counter = self.members[spec.name]
            for e in spec.member(pod, self.world):
                before = counter[e]
                counter[e] = before + sign
                if counter[e] <= 0:
                    del counter[e]
                    self._journal(spec.name, e, False)
                elif before <= 0:
                    self._journal(spec.name, e, True)

    def fixed(self, spec: SetSpec, elements: Iterable[Element] = ()) -> None:
        """A well-known set (always present), e.g. node addresses."""
        self.specs[spec.name] = spec
        self.refs[spec.name] = 1
        self.members[spec.name] = Counter(elements)
        if spec.member is not None:
            self.global_specs.add(spec.name)
        self._reset(spec.name)

    def ref(self, spec: SetSpec, pods_in: Callable[[str | None], Iterable[Pod]]) -> str:
        known = self.specs.get(spec.name)
        if known is not None and known.definition != spec.definition:
            raise PolicycError(f"set name collision on {spec.name}: rename a policy")
        if known is None:
            self.specs[spec.name] = spec
            self.members[spec.name] = Counter(spec.static)
            self._index(spec, self.ns_specs.keys())
            if spec.member is not None:
                namespaces = (
                    [None]
                    if spec.in_ns is None
                    else [ns for ns, names in self.ns_specs.items() if spec.name in names]
                )
                for ns in namespaces:
                    for pod in pods_in(ns):
                        self.contribute(pod, +1, (spec,))
            self._reset(spec.name)
        self.refs[spec.name] += 1
        return spec.name

    def unref(self, name: str) -> None:
        self.refs[name] -= 1
        if self.refs[name] > 0:
            return
        del self.refs[name], self.specs[name], self.members[name]
        self.global_specs.discard(name)
        for names in self.ns_specs.values():
            names.discard(name)
        self._reset(name)
