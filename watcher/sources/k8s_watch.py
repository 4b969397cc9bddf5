"""One kind's list/watch loop for :mod:`watcher.sources.k8s` (the reflector).

Per kind: a paginated, consistent list -> one SNAPSHOT -> a watch from the list's
resourceVersion with bookmarks.  The last resourceVersion seen (object or BOOKMARK) is
kept, so a watch that ends (``timeoutSeconds``) or breaks (dropped connection, 5xx) resumes
exactly where it stopped; only 410 Gone (the RV left the server's history) costs a relist.
Errors back off exponentially with jitter and never escape the loop.

Objects are read from the API's JSON exactly as served (no round trip through the client's
models), the shape ``policyc compile`` reads from a file, and validated here, once, by the
same reader (``policyc.parse.read_one``): events carry model objects.  An invalid object is
logged with its location and skipped; a SNAPSHOT names it in ``kept`` so that the consumer
keeps its last good version.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from policyc.errors import InputErrors
from policyc.kinds import Key, Kind, Model
from policyc.load import RawObject
from policyc.parse import read_one

from .base import Event, EventType

log = logging.getLogger("policyc.watch.k8s")

JSON = dict[str, Any]
HTTP_GONE = 410
HTTP_NOT_FOUND = 404
POLICY_GROUP = "policy.networking.k8s.io"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A watched collection: the kind, its apiVersion and the client call that lists it."""

    kind: Kind
    api_version: str
    path: str
    lister: Callable[[client.ApiClient], Callable[..., Any]]
    # A CRD kind: 404 means "the CRD is not installed", which is an empty
    # collection (policyc keeps enforcing the rest) and is retried.
    optional: bool = False


def _custom(version: str, plural: str) -> KindSpec:
    """A cluster-scoped kind of the policy.networking.k8s.io CRDs, listed and
    watched through the client's CustomObjectsApi."""
    api_version = f"{POLICY_GROUP}/{version}"
    kind = {
        "clusternetworkpolicies": Kind.CLUSTER_NETWORK_POLICY,
        "adminnetworkpolicies": Kind.ADMIN_NETWORK_POLICY,
        "baselineadminnetworkpolicies": Kind.BASELINE_ADMIN_NETWORK_POLICY,
    }[plural]
    return KindSpec(
        kind,
        api_version,
        f"/apis/{api_version}/{plural}",
        lambda ac: functools.partial(
            client.CustomObjectsApi(ac).list_cluster_custom_object, POLICY_GROUP, version, plural
        ),
        optional=True,
    )


KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec(
        Kind.NAMESPACE, "v1", "/api/v1/namespaces", lambda ac: client.CoreV1Api(ac).list_namespace
    ),
    KindSpec(Kind.NODE, "v1", "/api/v1/nodes", lambda ac: client.CoreV1Api(ac).list_node),
    # Every pod of the cluster, not only this node's: peers can be anywhere.
    KindSpec(
        Kind.POD, "v1", "/api/v1/pods", lambda ac: client.CoreV1Api(ac).list_pod_for_all_namespaces
    ),
    KindSpec(
        Kind.NETWORK_POLICY,
        "networking.k8s.io/v1",
        "/apis/networking.k8s.io/v1/networkpolicies",
        lambda ac: client.NetworkingV1Api(ac).list_network_policy_for_all_namespaces,
    ),
    _custom("v1alpha2", "clusternetworkpolicies"),
    _custom("v1alpha1", "adminnetworkpolicies"),
    _custom("v1alpha1", "baselineadminnetworkpolicies"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    page_size: int
    watch_timeout: int
    backoff: tuple[float, float]  # (first delay, cap) in seconds
    request_timeout: float  # read timeout of a list call; also the connect timeout's cap


class Stats:
    """Thread-safe counters shared by the loops (exported as metrics by the agent)."""

    KEYS = (
        "lists",
        "relists",
        "watches",
        "watch_restarts",
        "events",
        "bookmarks",
        "errors",
        "invalid",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.KEYS, 0)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def list_pages(
    lister: Callable[..., Any], page_size: int, timeout: tuple[float, float]
) -> Iterator[JSON]:
    """The pages of one paginated list call, as the API serves them (raw JSON).

    "The server may return fewer results than limit ... and a continue token
    that can be used to retrieve the next set of results" (ListMeta.continue);
    ``lister`` is a client list function (``CoreV1Api.list_node``...).  Raises
    the client's ApiException and urllib3/OSError transport errors.
    """
    token: str | None = None
    while True:
        resp = lister(
            limit=page_size, _continue=token, _preload_content=False, _request_timeout=timeout
        )
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        yield body
        token = (body.get("metadata") or {}).get("continue") or None
        if token is None:
            return


class Expired(Exception):
    """The watch's resourceVersion is gone from the server's history (410): relist."""


def backoff_delay(failures: int, backoff: tuple[float, float], retry_after: float = 0.0) -> float:
    """Exponential backoff with jitter in [d/2, d], d = min(cap, first * 2**(failures-1));
    a server's Retry-After (up to a minute) is a floor."""
    first, cap = backoff
    delay = min(cap, first * 2 ** max(failures - 1, 0))
    return max(random.uniform(delay / 2, delay), min(retry_after, 60.0))


def retry_after(exc: ApiException) -> float:
    """The Retry-After header of an error answer (429, 503), in seconds; 0 when absent."""
    value = exc.headers.get("Retry-After") if exc.headers is not None else None
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def _rv_of(obj: Any) -> str | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if rv else None


class KindWatcher:
    """The list/watch loop of one kind, run on its own thread.

    Events go to ``sink`` (a bounded queue drained by the source's dispatcher) in order.
    """

    def __init__(
        self,
        spec: KindSpec,
        api: client.ApiClient,
        settings: Settings,
        sink: queue.Queue[tuple[KindWatcher, Event]],
        stop: threading.Event,
        stats: Stats,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.stats = stats
        self.resource_version: str | None = None  # last RV seen: list, event or bookmark
        self._list = spec.lister(api)
        self._sink = sink
        self._stop = stop
        self._watch = watch.Watch(return_type="object")  # raw dicts: no model round trip
        self._resync = threading.Event()
        self._failures = 0
        self._listed_once = False
        self._absent_sent = False  # an empty SNAPSHOT went out for a missing CRD
        self._watches_since_list = 0
        self.thread = threading.Thread(
            target=self.run, name=f"policyc-k8s-{spec.kind}", daemon=True
        )

    # ------------------------------------------------------------- control
    def interrupt(self) -> None:
        """Unblock a watch in progress (the caller has set ``stop`` or asked for a resync)."""
        self._watch.stop()

    def request_resync(self) -> None:
        """Relist and send a fresh SNAPSHOT (the consumer failed to take an event)."""
        self._resync.set()
        self.interrupt()

    # ---------------------------------------------------------------- loop
    def run(self) -> None:
        kind = self.spec.kind
        need_list = True
        while not self._stop.is_set():
            if self._resync.is_set():
                self._resync.clear()
                need_list = True
            try:
                if need_list:
                    self._list_and_snapshot()
                    need_list = False
                self._watch_once()
            except Expired as exc:
                log.info(
                    "watch expired kind=%s rv=%s action=relist detail=%r",
                    kind,
                    self.resource_version,
                    str(exc),
                )
                need_list = True
            except ApiException as exc:
                if self._quiet_exit():
                    continue
                if exc.status == HTTP_NOT_FOUND and self.spec.optional:
                    self._absent()
                    need_list = True
                    continue
                self._fail(
                    f"api status={exc.status} reason={exc.reason!r}",
                    retry_after(exc),
                    relist=need_list,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if self._quiet_exit():
                    continue
                self._fail(
                    f"transport error={type(exc).__name__} detail={str(exc)[:200]!r}",
                    relist=need_list,
                )
            except Exception as exc:  # a bug or a malformed answer: start over from a list
                if self._quiet_exit():
                    continue
                log.exception("unexpected error kind=%s", kind)
                need_list = True
                self._fail(f"unexpected error={type(exc).__name__}", relist=True)
        log.debug("loop stopped kind=%s rv=%s", kind, self.resource_version)

    def _absent(self) -> None:
        """The CRD is not installed (404): the collection is empty.  One empty
        SNAPSHOT (so the kind counts as synced and its objects, if the CRD was
        removed, are dropped), then a retry after the capped backoff."""
        if not self._absent_sent:
            self._absent_sent = True
            log.warning(
                "crd absent kind=%s path=%s action=retry; NetworkPolicy enforcement continues",
                self.spec.kind,
                self.spec.path,
            )
            self._put(Event(EventType.SNAPSHOT, self.spec.kind, origin=self.spec.path))
        self._stop.wait(self.settings.backoff[1])

    def _quiet_exit(self) -> bool:
        """An error caused by our own interrupt (stop or resync) is not a failure."""
        return self._stop.is_set() or self._resync.is_set()

    def _fail(self, what: str, retry_after_s: float = 0.0, *, relist: bool) -> None:
        self._failures += 1
        self.stats.add("errors")
        delay = backoff_delay(self._failures, self.settings.backoff, retry_after_s)
        log.warning(
            "%s kind=%s rv=%s failures=%d next=%s backoff=%.2fs",
            what,
            self.spec.kind,
            self.resource_version,
            self._failures,
            "list" if relist else "watch",
            delay,
        )
        self._stop.wait(delay)

    def _put(self, event: Event) -> None:
        while not self._stop.is_set():
            try:
                self._sink.put((self, event), timeout=0.2)
                return
            except queue.Full:
                continue

    # ---------------------------------------------------------------- list
    def _list_and_snapshot(self) -> None:
        spec, settings = self.spec, self.settings
        timeout = (min(10.0, settings.request_timeout), settings.request_timeout)
        items: list[Model] = []
        kept: list[Key] = []
        pages = 0
        list_rv = ""
        for body in list_pages(self._list, settings.page_size, timeout):
            pages += 1
            meta = body.get("metadata") or {}
            list_rv = str(meta.get("resourceVersion") or list_rv)
            for item in body.get("items") or ():
                obj = self._read(item)
                if isinstance(obj, Key):  # invalid: not gone either
                    kept.append(obj)
                elif obj is not None:
                    items.append(obj)
            if self._stop.is_set():
                break
        if self._stop.is_set():
            return
        if not list_rv:
            raise ValueError(f"list of {spec.path} has no resourceVersion")
        relist = self._listed_once
        self._listed_once = True
        self._absent_sent = False
        self._failures = 0
        self.resource_version = list_rv
        self._watches_since_list = 0
        self.stats.add("lists")
        if relist:
            self.stats.add("relists")
        log.info(
            "listed kind=%s objects=%d invalid=%d pages=%d rv=%s relist=%s",
            spec.kind,
            len(items),
            len(kept),
            pages,
            list_rv,
            relist,
        )
        snap = Event(
            EventType.SNAPSHOT, spec.kind, objects=tuple(items), kept=tuple(kept), origin=spec.path
        )
        self._put(snap)

    # --------------------------------------------------------------- watch
    def _watch_once(self) -> None:
        """One watch request from ``resource_version``; returns when the stream ends cleanly."""
        spec, settings = self.spec, self.settings
        if self._stop.is_set():
            return
        start_rv = self.resource_version
        assert start_rv is not None
        self.stats.add("watches")
        if self._watches_since_list:
            self.stats.add("watch_restarts")
        self._watches_since_list += 1
        # The server ends the stream after timeoutSeconds; a stream silent for longer than
        # that (plus slack) is a dead connection, hence the read timeout.
        timeout = (min(10.0, settings.request_timeout), settings.watch_timeout + 15.0)
        log.debug("watch kind=%s rv=%s", spec.kind, start_rv)
        seen = 0
        started = time.monotonic()
        stream = self._watch.stream(
            self._list,
            resource_version=start_rv,
            allow_watch_bookmarks=True,
            timeout_seconds=settings.watch_timeout,
            _request_timeout=timeout,
        )
        try:
            for ev in stream:
                if self._stop.is_set() or self._resync.is_set():
                    return
                seen += 1
                self._failures = 0  # the connection works again
                self._handle(ev)
        except ApiException as exc:
            if exc.status == HTTP_GONE:
                raise Expired(exc.reason) from None
            raise
        finally:
            stream.close()  # closes the response now, not when the generator is collected
        log.debug(
            "watch ended kind=%s from=%s rv=%s events=%d",
            spec.kind,
            start_rv,
            self.resource_version,
            seen,
        )
        if not seen and time.monotonic() - started < 1.0:
            # A server that ends every watch at once must not spin this loop.
            self._stop.wait(backoff_delay(1, settings.backoff))

    def _handle(self, ev: dict[str, Any]) -> None:
        spec = self.spec
        etype = ev.get("type")
        obj = ev.get("raw_object")
        rv = _rv_of(obj)
        if etype == "BOOKMARK":
            # Count first: whoever sees the new resourceVersion sees the count too.
            self.stats.add("bookmarks")
            if rv:
                self.resource_version = rv
            return
        if etype not in ("ADDED", "MODIFIED", "DELETED") or not isinstance(obj, dict):
            log.warning("ignored watch event kind=%s type=%r", spec.kind, etype)
            return
        if rv:
            self.resource_version = rv
        self.stats.add("events")
        model = None if etype == "DELETED" else self._read(obj)
        if isinstance(model, Key):
            return  # invalid, logged: the last good version stays
        if model is None:  # deleted, or a pod that finished (gone for policy)
            gone = Key.of_api(spec.kind, obj)
            self._put(Event(EventType.DELETED, spec.kind, obj=gone, origin=spec.path))
            return
        self._put(Event(EventType(etype), spec.kind, obj=model, origin=spec.path))

    def _read(self, obj: JSON) -> Model | Key | None:
        """The validated model object; None for an object policyc does not use (a finished
        pod); the object's Key, after logging every located error, when it is invalid."""
        spec = self.spec
        # Items of a list answer come without kind and apiVersion (the list has its own).
        obj.setdefault("apiVersion", spec.api_version)
        obj.setdefault("kind", spec.kind.value)
        try:
            return read_one(RawObject(obj, spec.path), warn=log.warning)
        except InputErrors as exc:
            log.error(
                "invalid object ignored, its last good version stays kind=%s: %s", spec.kind, exc
            )
            self.stats.add("invalid")  # after the log line: a reader of the count finds it
            return Key.of_api(spec.kind, obj)
