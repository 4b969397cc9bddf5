"""The contract between sources and the agent.

A source turns cluster changes into Events, in order, on one thread, and
calls ``emit`` for each.  Objects are plain JSON-like dicts in the API's
shape (apiVersion, kind, metadata, spec, status), exactly what
``policyc compile`` reads from a file, so one parser serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

KINDS = ("Namespace", "Node", "Pod", "NetworkPolicy")


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    # A full snapshot of one kind (after a list or relist): objects not in it
    # are gone.  ``objects`` holds every object of ``kind``.
    SNAPSHOT = "SNAPSHOT"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kind: str
    obj: dict[str, Any] | None = None
    objects: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    origin: str = ""  # file name or API path, for error messages


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
