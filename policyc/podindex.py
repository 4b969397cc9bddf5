"""Pods indexed by namespace and by label, answering label selectors.

``PodIndex`` keeps, per namespace, the pods and two posting lists: the pods
carrying a label key (``key``), and those carrying a label ``key=value``.
``select(ns, selector)`` answers a selector from the postings instead of
testing every pod: cost follows the smallest posting a positive requirement
names (or the namespace's pods when a selector has only negative
requirements), not the number of pods in the cluster.

Semantics are ``Selector.matches`` exactly (apimachinery
``labels.Requirement.Matches``):

- "In: the label's value is in the set" -> union of the ``key=value`` postings;
- "NotIn: the key is absent or its value is not in the set" -> the namespace's
  pods minus that union;
- "Exists" -> the ``key`` posting; "DoesNotExist" -> the namespace's pods minus it;
- requirements are ANDed; the empty selector selects every pod of the namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from policyc.model import Op, Pod, Requirement, Selector

# A posting key: (key,) for "has the label key", (key, value) for "key=value".
Posting = tuple[str] | tuple[str, str]
EMPTY: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Namespace:
    pods: dict[str, Pod] = field(default_factory=dict)  # pod key -> pod
    postings: dict[Posting, set[str]] = field(default_factory=dict)  # -> pod keys


def postings_of(pod: Pod) -> list[Posting]:
    """The postings a pod is listed under: ``(key,)`` and ``(key, value)`` per label."""
    out: list[Posting] = []
    for k, v in pod.labels:
        out.append((k,))
        out.append((k, v))
    return out


class PodIndex:
    """Pods by key, by namespace and by label; O(labels) per add or remove."""

    def __init__(self) -> None:
        self._ns: dict[str, _Namespace] = {}
        self.pods: dict[str, Pod] = {}  # pod key (namespace/name) -> pod

    def add(self, pod: Pod) -> None:
        """Index ``pod`` (under ``pod.key``); a pod already held must be removed first."""
        ns = self._ns.setdefault(pod.namespace, _Namespace())
        self.pods[pod.key] = pod
        ns.pods[pod.key] = pod
        for p in postings_of(pod):
            ns.postings.setdefault(p, set()).add(pod.key)

    def remove(self, pod: Pod) -> None:
        """Forget ``pod`` (the object that was added); KeyError if it is not held."""
        ns = self._ns[pod.namespace]
        del self.pods[pod.key]
        del ns.pods[pod.key]
        for p in postings_of(pod):
            keys = ns.postings[p]
            keys.discard(pod.key)
            if not keys:
                del ns.postings[p]
        if not ns.pods:
            del self._ns[pod.namespace]

    def namespaces(self) -> Iterable[str]:
        """The namespaces holding at least one pod."""
        return self._ns.keys()

    def pods_in(self, namespace: str | None) -> Iterable[Pod]:
        """The pods of ``namespace``; ``None``: every pod."""
        if namespace is None:
            return self.pods.values()
        ns = self._ns.get(namespace)
        return ns.pods.values() if ns else ()

    def select(self, namespace: str, selector: Selector) -> list[Pod]:
        """The pods of ``namespace`` whose labels ``selector`` matches, from the
        postings: the positive requirements' postings intersected smallest
        first, then the negative ones subtracted."""
        ns = self._ns.get(namespace)
        if ns is None:
            return []
        positive: list[set[str] | frozenset[str]] = []
        negative: list[set[str] | frozenset[str]] = []
        for req in selector.requirements:
            keys = _posting(ns, req)
            (positive if req.op in (Op.IN, Op.EXISTS) else negative).append(keys)
        if positive:
            positive.sort(key=len)
            found = set(positive[0])
            for keys in positive[1:]:
                if not found:
                    break
                found &= keys
        else:
            found = set(ns.pods)
        for keys in negative:
            if not found:
                break
            found -= keys
        return [ns.pods[k] for k in found]


def _posting(ns: _Namespace, req: Requirement) -> set[str] | frozenset[str]:
    """The pods of ``ns`` carrying the label ``req`` names: key=value for any of
    its values (In, NotIn), or the key (Exists, DoesNotExist)."""
    if req.op in (Op.EXISTS, Op.DOES_NOT_EXIST):
        return ns.postings.get((req.key,), EMPTY)
    lists = [ns.postings.get((req.key, v), EMPTY) for v in req.values]
    if len(lists) == 1:
        return lists[0]
    return set().union(*lists)
