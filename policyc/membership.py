"""Set membership, kept incrementally, with an index and a change journal.

Every set counts the contributions of each pod to each element; an element
is a member while its count is positive.  The scope index
(``policyc.scopeindex``) lets a pod event evaluate only the sets a pod of its
namespace and labels could belong to, and a new set takes its members from the
pod index (``policyc.podindex``) rather than from every pod (the set's
``member`` function stays the authority; the indexes only skip pods and sets
that surely say no).  The journal records, per set, the elements that
became members or stopped being members since the last ``take``, so that a
dataplane can send just those.

Shared addresses (issue 13 §5): ``claimants`` counts, per address, the live
pods holding it (``local`` those on this node).  In a set whose ``claim`` is
``EVERY`` (the peer-side sets that grant access) an element keyed on an
address is a member only if its contribution count equals that address's
claimant count: every claimant would be a member; ``EVERY_LOCAL`` (a
policy's selected pods, local by definition) compares with the local count.
``by_addr`` indexes those sets' counted elements by address, so a claimant
that comes or goes re-checks only the elements of its addresses, and a pod
event stays O(sets that can contain the pod).  Other sets
(``ANY``) keep the union: an element is a member while its count is
positive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from policyc.errors import PolicycError
from policyc.ir import Changes, Element, Family
from policyc.model import IPAddress, Pod
from policyc.podindex import PodIndex
from policyc.scopeindex import ScopeIndex
from policyc.setspecs import Claim, SetSpec, World


@dataclass
class Journal:
    dirty: set[str] = field(default_factory=set)  # any change
    reset: set[str] = field(default_factory=set)  # created, deleted or rebuilt
    added: dict[str, set[Element]] = field(default_factory=dict)
    removed: dict[str, set[Element]] = field(default_factory=dict)


class Membership:
    def __init__(
        self, world: World, ns_labels: Callable[[str], Mapping[str, str]], pods: PodIndex
    ) -> None:
        self.world = world
        self.ns_labels = ns_labels
        self.pods = pods
        self.scopes = ScopeIndex(ns_labels)
        self.specs: dict[str, SetSpec] = {}
        self.refs: Counter[str] = Counter()
        # The members (keys) of every set; for ANY sets also their counts.
        self.members: dict[str, Counter[Element]] = {}
        # Contribution counts of the EVERY sets (members holds only the settled ones).
        self.counts: dict[str, Counter[Element]] = {}
        self.claimants: Counter[IPAddress] = Counter()
        self.local: Counter[IPAddress] = Counter()  # claimants on this node
        self.shared = 0  # addresses with more than one claimant (a gauge)
        self.by_addr: dict[IPAddress, dict[str, set[Element]]] = {}
        self.global_specs: set[str] = set()  # pod-driven sets without scopes
        self.changes = Journal()

    # -- index ---------------------------------------------------------
    def for_pod(self, pod: Pod) -> list[SetSpec]:
        """The pod-driven sets that can contain ``pod``: every unscoped set,
        and the scoped ones its namespace and labels are filed under."""
        names = self.global_specs | self.scopes.candidates(pod)
        return [self.specs[n] for n in names]

    def ns_affected(self, ns: str, labels: Mapping[str, str]) -> list[SetSpec]:
        """The sets whose namespace selectors decide differently for ``ns``
        once its labels are ``labels``: only their members among ``ns``'s
        pods can change."""
        return [self.specs[n] for n in sorted(self.scopes.affected(ns, labels))]

    def namespace_changed(self, ns: str) -> None:
        """Re-file namespace ``ns`` after its labels changed."""
        self.scopes.namespace_changed(ns)

    def _scoped_pods(self, spec: SetSpec) -> Iterable[Pod]:
        """The pods ``spec``'s scopes select, from the pod index (each once)."""
        if spec.scopes is None:
            return self.pods.pods_in(None)
        found: dict[str, Pod] = {}
        for sc in spec.scopes:
            for ns in self.scopes.namespaces(sc):
                for pod in self.pods.select(ns, sc.pod_selector):
                    found[pod.key] = pod
        return found.values()

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
        """Add (``sign`` +1) or withdraw (-1) a pod's contributions.

        ``specs=None``: the pod itself comes or goes, so its claim on its
        addresses changes too and every EVERY* element of those addresses is
        re-checked.  Otherwise only the named sets are touched (a namespace
        or policy change: the claimants stay).  hostNetwork pods hold the
        node's address and claim nothing.
        """
        if pod.host_network:
            return
        touched: dict[str, set[Element]] = {}
        families = {Family.of(ip) for ip in pod.ips}
        for spec in self.for_pod(pod) if specs is None else specs:
            # A set of one family holds only elements keyed on pods' addresses
            # of that family (SetSpec.family): a pod without one adds nothing.
            if spec.member is None or (spec.family is not None and spec.family not in families):
                continue
            # One contribution per pod and element: counts compare with claimants.
            elems = set(spec.member(pod, self.world))
            if not elems:
                continue
            if spec.claim is not Claim.ANY:
                self._count(spec.name, elems, sign)
                held = touched.get(spec.name)
                if held is None:
                    touched[spec.name] = elems
                else:
                    held.update(elems)
            else:
                self._count_any(spec.name, elems, sign)
        if specs is None:
            local = self.world.is_local(pod)
            for ip in pod.ips:
                self._claim(ip, sign, local)
                for name, elems in self.by_addr.get(ip, {}).items():
                    touched.setdefault(name, set()).update(elems)
        for name, elems in touched.items():
            spec = self.specs[name]
            for e in elems:
                self._settle(spec, e)

    def _claim(self, ip: IPAddress, sign: int, local: bool) -> None:
        before = self.claimants[ip]
        self.shared += (before + sign > 1) - (before > 1)
        for counter in (self.claimants, self.local) if local else (self.claimants,):
            counter[ip] += sign
            if counter[ip] <= 0:
                del counter[ip]

    def _count_any(self, name: str, elems: Iterable[Element], sign: int) -> None:
        counter = self.members[name]
        for e in elems:
            before = counter[e]
            counter[e] = before + sign
            if counter[e] <= 0:
                del counter[e]
                self._journal(name, e, False)
            elif before <= 0:
                self._journal(name, e, True)

    def _count(self, name: str, elems: Iterable[Element], sign: int) -> None:
        counter = self.counts[name]
        for e in elems:
            n = counter.get(e, 0) + sign
            if n > 0:
                counter[e] = n
            else:
                counter.pop(e, None)

    def _settle(self, spec: SetSpec, elem: Element) -> None:
        """Make ``elem``'s membership of an EVERY* set agree with its count.

        The hot path of a build (once per membership): each lookup hashes an
        address, so each is made once."""
        addr = spec.address_of(elem)
        n = self.counts[spec.name].get(elem, 0)
        index = self.by_addr.get(addr)
        if n > 0:
            if index is None:
                index = self.by_addr[addr] = {}
            held = index.get(spec.name)
            if held is None:
                index[spec.name] = {elem}
            else:
                held.add(elem)
        elif index is not None:
            held = index.get(spec.name)
            if held is not None:
                held.discard(elem)
                if not held:
                    del index[spec.name]
                    if not index:
                        del self.by_addr[addr]
        total = self.local if spec.claim is Claim.EVERY_LOCAL else self.claimants
        want = n > 0 and n == total.get(addr, 0)
        members = self.members[spec.name]
        if want:
            if elem in members:
                return
            members[elem] = 1
        elif members.pop(elem, None) is None:
            return
        self._journal(spec.name, elem, want)

    def shared_addresses(self) -> dict[IPAddress, int]:
        """Addresses held by more than one live pod, with their claimant counts."""
        return {ip: n for ip, n in self.claimants.items() if n > 1}

    def fixed(self, spec: SetSpec, elements: Iterable[Element] = ()) -> None:
        """A well-known set (always present), e.g. node addresses."""
        self.specs[spec.name] = spec
        self.refs[spec.name] = 1
        self.members[spec.name] = Counter(elements)
        if spec.claim is not Claim.ANY:
            self.counts[spec.name] = Counter()
        if spec.member is not None:
            self.global_specs.add(spec.name)
        self._reset(spec.name)

    def restate(self, name: str, elements: Iterable[Element]) -> None:
        """Replace the elements of the static set ``name`` (e.g. the
        addresses of the Nodes a ``nodes`` peer selects, after a Node
        event), journalling each element that came or went."""
        new = Counter(elements)
        old = self.members[name]
        if new == old:
            return
        for e in old.keys() - new.keys():
            self._journal(name, e, False)
        for e in new.keys() - old.keys():
            self._journal(name, e, True)
        self.members[name] = new

    def ref(self, spec: SetSpec) -> str:
        """Hold one more reference to ``spec``; a new set takes its members
        from the pod index.  PolicycError on a name collision."""
        known = self.specs.get(spec.name)
        if known is not None and known.definition != spec.definition:
            raise PolicycError(f"set name collision on {spec.name}: rename a policy")
        if known is None:
            self.specs[spec.name] = spec
            self.members[spec.name] = Counter(spec.static)
            if spec.claim is not Claim.ANY:
                self.counts[spec.name] = Counter()
            if spec.member is not None:
                if spec.scopes is None:
                    self.global_specs.add(spec.name)
                else:
                    self.scopes.add(spec.name, spec.scopes)
                for pod in list(self._scoped_pods(spec)):
                    self.contribute(pod, +1, (spec,))
            self._reset(spec.name)
        self.refs[spec.name] += 1
        return spec.name

    def unref(self, name: str) -> None:
        self.refs[name] -= 1
        if self.refs[name] > 0:
            return
        for e in self.counts.pop(name, ()):
            addr = self.specs[name].address_of(e)
            index = self.by_addr[addr]
            index[name].discard(e)
            if not index[name]:
                del index[name]
            if not index:
                del self.by_addr[addr]
        del self.refs[name], self.specs[name], self.members[name]
        self.global_specs.discard(name)
        self.scopes.remove(name)
        self._reset(name)
