"""What flows from the store to a watch stream: events, bookmarks, closes, and the filter."""

from __future__ import annotations

import json
import queue
import socket
from dataclasses import dataclass

from .resources import JSON, APIError, ResourceType, status
from .selectors import Selector


class WatchExpired(APIError):
    """The requested watch resourceVersion has left the history window (sent as ERROR 410)."""

    def __init__(self, rv: int, oldest: int) -> None:
        super().__init__(status(410, f"too old resource version: {rv} ({oldest})", "Expired"))


@dataclass(frozen=True)
class Event:
    """One change in the store's history (the unit the watch cache keeps)."""

    rv: int
    type: str  # ADDED, MODIFIED or DELETED
    resource: ResourceType
    key: str
    obj: JSON  # state after the change; for DELETED the last state, at the deletion RV
    old: JSON | None  # state before the change


@dataclass(frozen=True)
class Bookmark:
    """A BOOKMARK to write: this watcher has seen every change up to ``rv``."""

    rv: int
    initial_events_end: bool = False


@dataclass(frozen=True)
class Close:
    """End the stream: ``abrupt`` cuts the connection, otherwise a final empty chunk."""

    abrupt: bool


Item = Event | Bookmark | Close


class WatchChannel:
    """One open watch: what it selects and the queue its HTTP handler drains in order."""

    def __init__(
        self, resource: ResourceType, namespace: str | None, selector: Selector, bookmarks: bool
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.bookmarks = bookmarks
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.sock: socket.socket | None = None
        self.closed = False

    def _visible(self, obj: JSON | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.selector.matches(obj)

    def translate(self, ev: Event) -> tuple[str, JSON] | None:
        """The event this watcher sees, as the apiserver filters it.

        An object that starts matching the selector arrives as ADDED, one that stops
        matching as DELETED (carrying its new state), as in the apiserver's watch cache.
        """
        if ev.resource is not self.resource:
            return None
        new_ok = ev.type != "DELETED" and self._visible(ev.obj)
        old_ok = self._visible(ev.old)
        if new_ok and old_ok:
            return ("MODIFIED", ev.obj)
        if new_ok:
            return ("ADDED", ev.obj)
        if old_ok:
            return ("DELETED", ev.obj)
        return None

    def render(self, item: Event | Bookmark) -> bytes | None:
        """The watch-stream line for ``item``, or None when this watcher does not see it."""
        if isinstance(item, Bookmark):
            meta: JSON = {"resourceVersion": str(item.rv)}
            if item.initial_events_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            res = self.resource
            obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
            return event_line("BOOKMARK", obj)
        seen = self.translate(item)
        return event_line(*seen) if seen is not None else None


def event_line(kind: str, obj: JSON) -> bytes:
    """One newline-terminated JSON watch event, as the apiserver streams them."""
    return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()
