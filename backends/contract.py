"""The contract every backend keeps: four verbs over typed state.

A backend turns the lowered, backend-neutral ruleset (``policyc.chains``)
into kernel state.  It owns all of it: what the state looks like, how two
states differ, how a difference reaches the kernel, and how to read the
kernel back.  The watcher and the CLI reach a backend only through
``backends.BACKENDS`` and these verbs, so neither knows a backend's format.

    render(ruleset)                -> State        typed objects, no text, no I/O
    diff(programmed, desired)      -> Transaction  pure; programmed None = replace whole
    patch(programmed, changes, sets) -> Transaction | None
                                                   pure; set elements only (pod events)
    apply(transaction)             -> None         the only kernel writes; all or nothing
    read_kernel()                  -> State | None what policyc's tables hold now

A Transaction knows the State the kernel holds once it commits
(``tx.after``), so a caller never rebuilds it.  ``read_kernel()`` right
after ``apply(tx)`` equals ``tx.after`` (a kernel test proves it): that is
how drift is found, by comparing every element and every rule body, and how
an agent that restarts adopts what is programmed (``diff(read_kernel(),
desired)`` then only converges what differs).

``write(state)`` is what ``policyc compile`` prints (one text);
``files(state)`` the files ``compile -o DIR`` writes (name -> text).
``remove()`` deletes everything of policyc's from the kernel (``watch
--cleanup``), nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from policyc.chains import Ruleset
from policyc.ir import Changes, SetDef


class State(Protocol):
    """What a node's kernel holds (or should hold) of policyc's, typed.

    Equality is exact: two states compare equal only if every table, set,
    element, chain and rule body is the same.
    """

    def size(self) -> dict[str, int]:
        """Counts for metrics: ``{"rules": n, "sets": n, "elements": n}``."""
        ...


S = TypeVar("S", bound=State)


class Transaction(Protocol[S]):  # type: ignore[misc]
    """An ordered list of typed operations, validated as it is built."""

    @property
    def after(self) -> S:
        """The state the kernel holds once this transaction commits."""
        ...

    def __len__(self) -> int:
        """How many operations (0: nothing to do)."""
        ...


class Backend(Protocol[S]):  # type: ignore[misc]
    name: str

    def render(self, ruleset: Ruleset) -> S: ...

    def diff(self, programmed: S | None, desired: S) -> Transaction[S]: ...

    def patch(
        self, programmed: S, changes: Changes, sets: Mapping[str, SetDef]
    ) -> Transaction[S] | None:
        """Only set elements changed: ``changes.added``/``removed`` per IR set,
        ``sets`` the definitions (name, kind, family) of the sets in
        ``changes.dirty``; a set in ``changes.reset`` comes with all its
        elements (replace them), the others with none.  None when the change
        cannot be expressed as element updates alone (then the caller renders
        and diffs)."""
        ...

    def apply(self, tx: Transaction[S]) -> None:
        """Commit ``tx``; raises ``policyc.errors.BackendError`` and leaves the
        previous state in force if the kernel rejects any part of it."""
        ...

    def read_kernel(self) -> S | None: ...

    def write(self, state: S) -> str: ...

    def files(self, state: S) -> dict[str, str]: ...

    def remove(self) -> None: ...
