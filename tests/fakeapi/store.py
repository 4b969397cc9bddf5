"""In-memory object store: one global resourceVersion, bounded event history, watch fan-out.

Every mutation bumps the global resourceVersion (as etcd's revision does), records an event
in the history window and hands it to every open watch of that resource.  Consistent
snapshots at an older resourceVersion (continue tokens, ``resourceVersionMatch=Exact``) are
rebuilt by undoing history, so they exist exactly as long as the history covers them.
"""

from __future__ import annotations

import copy
import socket
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from .events import Bookmark, Close, Event, Item, WatchChannel, WatchExpired
from .objects import apply_defaults, invalid, not_found
from .paging import Overlay, SortedKeys, page
from .resources import (
    CONTINUE_TOO_OLD,
    JSON,
    RESOURCES,
    APIError,
    ResourceType,
    continue_decode,
    continue_encode,
    resource_for_kind,
    status,
)
from .selectors import Selector


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rv_of(obj: JSON) -> int:
    return int(obj["metadata"]["resourceVersion"])


def _comparable(obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    out["metadata"].pop("generation", None)
    return out


class Store:
    def __init__(
        self, *, history_limit: int = 10_000, start_rv: int = 1, too_large_wait: float = 0.25
    ) -> None:
        self._cond = threading.Condition()
        self._rv = start_rv
        self._objects: dict[str, dict[str, JSON]] = {r.plural: {} for r in RESOURCES}
        self._keys: dict[str, SortedKeys] = {r.plural: SortedKeys() for r in RESOURCES}
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._compacted_rv = start_rv
        self._watches: list[WatchChannel] = []
        self.too_large_wait = too_large_wait

    # ----------------------------------------------------------------- state
    @property
    def current_rv(self) -> int:
        with self._cond:
            return self._rv

    @property
    def compacted_rv(self) -> int:
        """The oldest resourceVersion a watch can still start from."""
        with self._cond:
            return self._compacted_rv

    @property
    def open_watches(self) -> int:
        with self._cond:
            return len(self._watches)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        res = resource_for_kind(kind)
        key = res.key((namespace or "default") if res.namespaced else None, name)
        with self._cond:
            obj = self._objects[res.plural].get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind: str) -> list[JSON]:
        res = resource_for_kind(kind)
        with self._cond:
            return [copy.deepcopy(o) for _, o in sorted(self._objects[res.plural].items())]

    # ------------------------------------------------------------- mutations
    def _prepare(self, obj: JSON) -> tuple[ResourceType, str, JSON]:
        obj = copy.deepcopy(obj)
        try:
            res = resource_for_kind(str(obj.get("kind", "")))
        except KeyError as exc:
            raise ValueError(str(exc)) from None
        if obj.get("apiVersion", res.api_version) != res.api_version:
            raise ValueError(f"{res.kind} is served as {res.api_version}, not {obj['apiVersion']}")
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise invalid(res, "", "metadata.name: Required value: name or generateName")
        if res.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return res, res.key(meta.get("namespace"), meta["name"]), obj

    def _commit(self, res: ResourceType, key: str, kind: str, obj: JSON, old: JSON | None) -> Event:
        """Bump the RV, store, record and fan out one change. Caller holds the lock."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if kind == "DELETED":
            del self._objects[res.plural][key]
            self._keys[res.plural].discard(key)
        else:
            self._objects[res.plural][key] = obj
            self._keys[res.plural].add(key)
        ev = Event(self._rv, kind, res, key, obj, old)
        self._history.append(ev)
        while len(self._history) > self._history_limit:
            self._compacted_rv = max(self._compacted_rv, self._history.popleft().rv)
        for ch in self._watches:
            if ch.resource is res and not ch.closed:
                ch.queue.put(ev)
        self._cond.notify_all()
        return ev

    def create(self, obj: JSON) -> JSON:
        res, key, obj = self._prepare(obj)
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if res.kind in ("Pod", "NetworkPolicy"):
            meta["generation"] = 1
        apply_defaults(res, obj)
        with self._cond:
            if key in self._objects[res.plural]:
                details = {"name": meta["name"], "group": res.group, "kind": res.plural}
                msg = f'{res.plural} "{meta["name"]}" already exists'
                raise APIError(status(409, msg, "AlreadyExists", details))
            return copy.deepcopy(self._commit(res, key, "ADDED", obj, None).obj)

    def update(self, obj: JSON) -> JSON:
        """Replace an object (PUT semantics; a metadata.resourceVersion is a precondition).

        A no-op update changes nothing: no new resourceVersion and no watch event.
        """
        res, key, obj = self._prepare(obj)
        meta = obj["metadata"]
        with self._cond:
            cur = self._objects[res.plural].get(key)
            if cur is None:
                raise not_found(res, meta["name"])
            cur_meta = cur["metadata"]
            wanted = meta.get("resourceVersion")
            if wanted and wanted != cur_meta["resourceVersion"]:
                msg = (
                    f"Operation cannot be fulfilled on {res.plural}.{res.group or ''}".rstrip(".")
                    + f' "{meta["name"]}": the object has been modified; please apply your'
                    " changes to the latest version and try again"
                )
                raise APIError(status(409, msg, "Conflict", {"name": meta["name"]}))
            meta["uid"] = cur_meta["uid"]
            meta["creationTimestamp"] = cur_meta["creationTimestamp"]
            if "generation" in cur_meta:
                changed = obj.get("spec") != cur.get("spec")
                meta["generation"] = cur_meta["generation"] + (1 if changed else 0)
            apply_defaults(res, obj)
            if _comparable(obj) == _comparable(cur):
                return copy.deepcopy(cur)
            return copy.deepcopy(self._commit(res, key, "MODIFIED", obj, cur).obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON:
        res = resource_for_kind(kind)
        key = res.key((namespace or "default") if res.namespaced else None, name)
        with self._cond:
            cur = self._objects[res.plural].get(key)
            if cur is None:
                raise not_found(res, name)
            return copy.deepcopy(self._commit(res, key, "DELETED", copy.deepcopy(cur), cur).obj)

    def compact(self, keep_last: int = 0) -> int:
        """Drop all but the newest ``keep_last`` history events; returns the new compacted RV."""
        with self._cond:
            while len(self._history) > max(keep_last, 0):
                self._compacted_rv = max(self._compacted_rv, self._history.popleft().rv)
            return self._compacted_rv

    # ------------------------------------------------------------------ reads
    def _overlay(self, res: ResourceType, rv: int) -> Overlay:
        """What differs at ``rv`` from the live collection: key -> value then
        (None: absent).  O(events since ``rv``); caller holds the lock."""
        out: Overlay = {}
        for ev in reversed(self._history):
            if ev.rv <= rv:
                break
            if ev.resource is res:
                out[ev.key] = None if ev.type == "ADDED" else ev.old
        return out

    def _wait_for_rv(self, rv: int) -> None:
        if not self._cond.wait_for(lambda: self._rv >= rv, self.too_large_wait):
            msg = f"Too large resource version: {rv}, current: {self._rv}"
            cause = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            details = {"causes": [cause], "retryAfterSeconds": 1}
            raise APIError(status(504, msg, "Timeout", details), {"Retry-After": "1"})

    def _snapshot(self, res: ResourceType, rv: str, match: str, limit: int) -> tuple[Overlay, int]:
        if match and not rv:
            raise APIError(
                status(400, "resourceVersionMatch is forbidden unless resourceVersion is provided")
            )
        if match not in ("", "NotOlderThan", "Exact"):
            raise APIError(status(400, f"unsupported resourceVersionMatch {match!r}"))
        if rv in ("", "0"):
            if match == "Exact":
                raise APIError(
                    status(400, 'resourceVersionMatch "Exact" is forbidden for resourceVersion "0"')
                )
            return {}, self._rv
        try:
            wanted = int(rv)
        except ValueError:
            raise APIError(status(400, f'invalid resource version: "{rv}"')) from None
        self._wait_for_rv(wanted)
        if match == "Exact" or (not match and limit > 0):
            if wanted < self._compacted_rv:
                msg = "The resourceVersion for the provided list is too old."
                raise APIError(status(410, msg, "Expired"))
            return self._overlay(res, wanted), wanted
        return {}, self._rv

    def list_objects(
        self,
        res: ResourceType,
        namespace: str | None,
        selector: Selector,
        *,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        rv_match: str = "",
    ) -> JSON:
        """A ``<Kind>List`` body, paginated like the etcd3 storage."""
        start = ""
        with self._cond:
            if continue_token:
                if resource_version not in ("", "0"):
                    raise APIError(
                        status(
                            400, "specifying resource version is not allowed when using continue"
                        )
                    )
                start, token_rv = continue_decode(continue_token)
                if token_rv < 0:  # explicitly inconsistent continuation
                    overlay, list_rv = {}, self._rv
                elif token_rv < self._compacted_rv:
                    fresh = continue_encode(start, -1)
                    raise APIError(
                        status(410, CONTINUE_TOO_OLD, "Expired", metadata={"continue": fresh})
                    )
                else:
                    overlay, list_rv = self._overlay(res, token_rv), token_rv
            else:
                overlay, list_rv = self._snapshot(res, resource_version, rv_match, limit)
            query = (start, namespace, res.namespaced, selector, limit)
            got = page(self._keys[res.plural], self._objects[res.plural], overlay, query)
        meta: JSON = {"resourceVersion": str(list_rv)}
        if got.more:
            meta["continue"] = continue_encode(got.items[-1][0] + "\x00", list_rv)
            if got.remaining is not None:
                meta["remainingItemCount"] = got.remaining
        items = [
            {k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for _, o in got.items
        ]
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": items,
        }

    # ---------------------------------------------------------------- watches
    def open_watch(
        self,
        res: ResourceType,
        namespace: str | None,
        selector: Selector,
        *,
        resource_version: str,
        bookmarks: bool,
        send_initial_events: bool | None,
        sock: socket.socket | None = None,
    ) -> tuple[WatchChannel, list[Item]]:
        """Register a watch; returns it with the items to send before its queue.

        ``resourceVersion`` unset or "0": synthetic ADDED events for the current state
        (unless ``sendInitialEvents=false``), then changes.  "N": every change after N, or
        :class:`WatchExpired` when N is older than the history window.
        """
        ch = WatchChannel(res, namespace, selector, bookmarks)
        ch.sock = sock
        with self._cond:
            initial: list[Item] = []
            if resource_version in ("", "0"):
                if send_initial_events is not False:
                    for key, obj in sorted(self._objects[res.plural].items()):
                        initial.append(Event(_rv_of(obj), "ADDED", res, key, obj, None))
                if send_initial_events:
                    initial.append(Bookmark(self._rv, initial_events_end=True))
            else:
                try:
                    wanted = int(resource_version)
                except ValueError:
                    msg = f'invalid resource version: "{resource_version}"'
                    raise APIError(status(400, msg)) from None
                if wanted < self._compacted_rv:
                    raise WatchExpired(wanted, self._compacted_rv)
                initial.extend(e for e in self._history if e.rv > wanted and e.resource is res)
                if send_initial_events:
                    initial.append(Bookmark(max(self._rv, wanted), initial_events_end=True))
            self._watches.append(ch)
            self._cond.notify_all()
        return ch, initial

    def close_watch(self, ch: WatchChannel) -> None:
        with self._cond:
            ch.closed = True
            if ch in self._watches:
                self._watches.remove(ch)
            self._cond.notify_all()

    def bookmark(self, channels: Iterable[WatchChannel] | None = None) -> int:
        """Queue a BOOKMARK at the current RV to watches that allow bookmarks."""
        with self._cond:
            targets = list(self._watches if channels is None else channels)
            sent = 0
            for ch in targets:
                if ch.bookmarks and not ch.closed:
                    ch.queue.put(Bookmark(self._rv))
                    sent += 1
            return sent

    def drop_watches(self, abrupt: bool = True) -> int:
        """Close every open watch: ``abrupt`` cuts the TCP connection mid-stream."""
        with self._cond:
            dropped = list(self._watches)
            for ch in dropped:
                ch.closed = True
                if abrupt and ch.sock is not None:
                    try:
                        ch.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                ch.queue.put(Close(abrupt))
            self._watches.clear()
            self._cond.notify_all()
            return len(dropped)

    def wait_for_watches(self, count: int, timeout: float, at_most: bool = False) -> bool:
        """Wait until ``count`` or more watches are open (``at_most``: ``count`` or fewer)."""
        with self._cond:
            if at_most:
                return self._cond.wait_for(lambda: len(self._watches) <= count, timeout)
            return self._cond.wait_for(lambda: len(self._watches) >= count, timeout)
