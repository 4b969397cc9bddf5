"""One page of a list, in O(page + changes since its snapshot), as etcd3 serves it.

The store keeps each collection's keys sorted (:class:`SortedKeys`).  A page
at an older resourceVersion is the live collection seen through an
*overlay*: the keys that changed since, with their value at that version
(None: absent then), rebuilt from the event history.  A page starts at the
continue token's key (bisect) and walks forward until it has ``limit``
matches and knows whether one more exists, so listing n objects in pages
costs O(n) in all, not O(n²/limit) sorts and copies.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from .resources import JSON
from .selectors import Selector

Overlay = dict[str, JSON | None]  # key -> value at the snapshot (None: absent)


class SortedKeys:
    """The sorted storage keys of one collection; insert and delete by bisect."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[str] = []

    def add(self, key: str) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i == len(self.keys) or self.keys[i] != key:
            self.keys.insert(i, key)

    def discard(self, key: str) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def from_key(self, start: str, stop: str | None) -> Iterator[str]:
        """Keys in ``[start, stop)`` (to the end if ``stop`` is None), in order."""
        keys = self.keys
        hi = len(keys) if stop is None else bisect.bisect_left(keys, stop)
        for i in range(bisect.bisect_left(keys, start), hi):
            yield keys[i]

    def count(self, after: str, stop: str | None) -> int:
        """How many keys are in ``(after, stop)``."""
        hi = len(self.keys) if stop is None else bisect.bisect_left(self.keys, stop)
        return max(0, hi - bisect.bisect_right(self.keys, after))


@dataclass(frozen=True, slots=True)
class Page:
    items: list[tuple[str, JSON]]
    more: bool  # a further match exists past the last item
    remaining: int | None  # matches past the page (only for an empty selector)


def _bounds(start: str, namespace: str | None, namespaced: bool) -> tuple[str, str | None]:
    """The key range to walk: a namespace's keys ``ns/name`` sit between
    ``ns/`` and ``ns0`` (``0`` follows ``/``)."""
    if namespace is None or not namespaced:
        return start, None
    return max(start, f"{namespace}/"), f"{namespace}0"


def page(
    keys: SortedKeys,
    live: dict[str, JSON],
    overlay: Overlay,
    query: tuple[str, str | None, bool, Selector, int],
) -> Page:
    """``query`` is (start key, namespace, namespaced, selector, limit, 0 for all)."""
    start, namespace, namespaced, selector, limit = query
    lo, hi = _bounds(start, namespace, namespaced)
    changed = sorted(k for k in overlay if k >= lo and (hi is None or k < hi))
    items: list[tuple[str, JSON]] = []
    last = None
    for key in heapq.merge(keys.from_key(lo, hi), changed):
        if key == last:
            continue  # in both: the overlay's value is the one at the snapshot
        last = key
        obj = overlay[key] if key in overlay else live.get(key)
        if obj is None or not _matches(obj, namespace, selector):
            continue
        if limit > 0 and len(items) == limit:
            return Page(items, True, _remaining(keys, live, overlay, items, hi, selector))
        items.append((key, obj))
    return Page(items, False, None)


def _matches(obj: JSON, namespace: str | None, selector: Selector) -> bool:
    if namespace is not None and obj["metadata"].get("namespace") != namespace:
        return False
    return selector.matches(obj)


def _remaining(
    keys: SortedKeys,
    live: dict[str, JSON],
    overlay: Overlay,
    items: list[tuple[str, JSON]],
    hi: str | None,
    selector: Selector,
) -> int | None:
    """Objects at the snapshot past the page, counted, not walked (the
    apiserver sets ``remainingItemCount`` only without a selector)."""
    if not selector.empty:
        return None
    after = items[-1][0]
    n = keys.count(after, hi)
    for key, value in overlay.items():
        if key > after and (hi is None or key < hi):
            n += (value is not None) - (key in live)
    return n
