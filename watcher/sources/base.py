"""The contract between sources and the agent.

A source turns cluster changes into Events, in order, on one thread, and
calls ``emit`` for each.  It validates every object once, with the same
reader as ``policyc compile`` (``policyc.parse.read_one``), and emits the
validated model objects (Namespace, Node, Pod, NetworkPolicy), so the agent
never parses.  A delete carries only the object's ``Key``.

An object that does not validate is logged with its location and skipped:
the source emits no delete for it, so whatever the agent holds for it (the
last good version) stays in force.  Fail closed, never open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from policyc.kinds import Key, Kind, Model

KINDS = tuple(Kind)


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    # A full snapshot of one kind (after a list or relist): objects not in it
    # are gone.  ``objects`` holds every valid object of ``kind``.
    SNAPSHOT = "SNAPSHOT"


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one kind.

    ADDED, MODIFIED: ``obj`` is the validated model object.
    DELETED: ``obj`` is the ``Key`` of the object that is gone (also sent for
    a pod that finished: its IPs may already belong to another pod).
    SNAPSHOT: ``objects`` holds every valid object of ``kind``; ``kept`` the
    keys of the objects that exist but did not validate: they are not gone,
    and the consumer keeps what it holds for them.
    """

    type: EventType
    kind: Kind
    obj: Model | Key | None = None
    objects: tuple[Model, ...] = ()
    kept: tuple[Key, ...] = ()
    origin: str = ""  # file name or API path, for logs


Emit = Callable[[Event], None]


class Source(Protocol):
    name: str

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Emit events until ``stop`` is set.  Must emit one SNAPSHOT per kind
        before any other event for that kind, and again after every relist.
        Never raises for transient errors: it backs off and retries."""
        ...

    def synced(self) -> bool:
        """True once every kind has had its first SNAPSHOT."""
        ...
