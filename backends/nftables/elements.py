"""A set's elements as an immutable ordered set whose updates cost the
elements that change, not the size of the set.

A pod event adds or removes a few addresses in sets of thousands: copying
the set per event would make the agent's per-event cost grow with the
cluster.  ``ElementSet`` keeps a shared base and a small overlay (added,
removed) and folds the overlay into a new base once it outgrows a fraction
of the base, so an update costs O(changed) amortised.  Iteration keeps the
base's order, then the added elements; equality ignores order (it is that of
``Mapping``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

OVERLAY_MAX = 128  # changed elements an overlay holds before it is folded into a new base


class ElementSet(Mapping[Any, None]):
    __slots__ = ("_base", "_added", "_removed")

    def __init__(
        self,
        base: Mapping[Any, None],
        added: dict[Any, None] | None = None,
        removed: frozenset[Any] = frozenset(),
    ) -> None:
        # Invariants: removed ⊆ base; added ∩ base = ∅.  ``base`` is never mutated.
        self._base = base
        self._added: dict[Any, None] = added if added is not None else {}
        self._removed = removed

    @classmethod
    def of(cls, elements: Mapping[Any, None]) -> ElementSet:
        return elements if isinstance(elements, ElementSet) else cls(elements)

    def __getitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        return None

    def __contains__(self, key: object) -> bool:
        if key in self._added:
            return True
        return key in self._base and key not in self._removed

    def __iter__(self) -> Iterator[Any]:
        removed = self._removed
        if removed:
            yield from (k for k in self._base if k not in removed)
        else:
            yield from self._base
        yield from self._added

    def __len__(self) -> int:
        return len(self._base) - len(self._removed) + len(self._added)

    def __repr__(self) -> str:
        return f"ElementSet({list(self)!r})"

    def changed(self, add: Iterable[Any] = (), remove: Iterable[Any] = ()) -> ElementSet:
        """A new set: this one with ``remove`` taken out and ``add`` put in."""
        base, added, removed = self._base, dict(self._added), set(self._removed)
        for v in remove:
            if v in added:
                del added[v]
            elif v in base:
                removed.add(v)
        for v in add:
            if v in base:
                removed.discard(v)
            else:
                added[v] = None
        if len(added) + len(removed) > OVERLAY_MAX:
            folded = dict.fromkeys(k for k in base if k not in removed)
            folded.update(added)
            return ElementSet(folded)
        return ElementSet(base, added, frozenset(removed))
