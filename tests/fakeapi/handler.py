"""HTTP side of the fake API server: routing, list/get/watch responses, fault injection."""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import resources as r
from .events import Close, Item, WatchChannel, event_line
from .resources import JSON, APIError, ResourceType
from .selectors import Selector, SelectorError
from .store import Store

log = logging.getLogger(__name__)

_HTTP_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class RequestRecord:
    """One request as the server saw it (``verb`` uses the apiserver's names)."""

    method: str
    path: str
    query: dict[str, str]
    verb: str  # get, list, watch, discovery, create, update, patch, delete or unknown
    resource: str | None
    namespace: str | None
    status: int = 0


@dataclass
class FailureRule:
    remaining: int
    status: int
    verb: str | None = None
    resource: str | None = None
    message: str | None = None
    retry_after: int | None = None


@dataclass
class Route:
    verb: str
    resource: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    body: JSON | None = None
    error: APIError | None = None


@dataclass
class ServerState:
    """What the HTTP handlers share with :class:`FakeAPIServer`."""

    store: Store
    bookmark_interval: float
    default_watch_timeout: float | None
    address: str = ""
    cond: threading.Condition = field(default_factory=threading.Condition)
    records: list[RequestRecord] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[FailureRule] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Plurals not served (CRDs not installed): 404 as for an unknown path.
    absent: set[str] = field(default_factory=set)

    def record(self, rec: RequestRecord) -> FailureRule | None:
        """Count a request; returns the injected failure it must answer with, if any."""
        with self.cond:
            self.records.append(rec)
            self.counts[(rec.verb, rec.path)] += 1
            self.cond.notify_all()
            for rule in self.failures:
                if rule.verb not in (None, rec.verb) or rule.resource not in (None, rec.resource):
                    continue
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self.failures.remove(rule)
                return rule
            return None


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def route(path: str, query: dict[str, str], address: str) -> Route:
    """Map a URL path to a verb and resource the way the apiserver's mux does."""
    parts = [p for p in path.split("/") if p]
    if path in ("/version", "/version/"):
        return Route("discovery", body=dict(r.SERVER_VERSION))
    if parts == ["api"]:
        return Route("discovery", body=r.api_versions(address))
    if parts == ["apis"]:
        return Route("discovery", body=r.api_group_list())
    if len(parts) == 2 and parts[0] == "apis" and (group_doc := r.api_group(parts[1])):
        return Route("discovery", body=group_doc)
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Route("unknown", error=APIError(r.not_found_path()))
    if not rest:
        doc = r.api_resource_list(group, version)
        if doc is None:
            return Route("unknown", error=APIError(r.not_found_path()))
        return Route("discovery", body=doc)
    watch = _flag(query.get("watch"))
    if rest[0] == "watch":  # deprecated /watch/ prefix
        watch, rest = True, rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    res = r.resource_for_path(group, version, rest[0]) if rest else None
    if res is not None and res.kind == "Pod" and len(rest) == 3 and rest[2] == "status":
        # The pods/status subresource: PATCH only (the agent's Pod condition).
        return Route("patch-status", res, namespace, rest[1])
    if res is None or len(rest) > 2 or (namespace is not None and not res.namespaced):
        return Route("unknown", error=APIError(r.not_found_path()))
    name = rest[1] if len(rest) == 2 else None
    if name is not None and res.namespaced and namespace is None:
        return Route("unknown", error=APIError(r.not_found_path()))
    verb = "watch" if watch else ("get" if name else "list")
    return Route(verb, res, namespace, name)


class APIRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    @property
    def state(self) -> ServerState:
        srv = self.server
        assert isinstance(srv, FakeHTTPServer)
        return srv.state

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------- plumbing
    def _send_json(self, code: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, rec: RequestRecord, err: APIError) -> None:
        rec.status = err.code
        self._send_json(err.code, err.status, err.headers)

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        rt = route(url.path, query, self.state.address)
        if rt.resource is not None and rt.resource.plural in self.state.absent:
            rt = Route("unknown", error=APIError(r.not_found_path()))
        verb = rt.verb if method == "GET" else _HTTP_VERBS.get(method, "unknown")
        plural = rt.resource.plural if rt.resource else None
        rec = RequestRecord(method, url.path, query, verb, plural, rt.namespace)
        rule = self.state.record(rec)
        try:
            if rule is not None:
                message = rule.message or f"fakeapi: injected failure {rule.status}"
                headers = None
                if rule.retry_after is not None:
                    headers = {"Retry-After": str(rule.retry_after)}
                self._send_error(rec, APIError(r.status(rule.status, message), headers))
            elif rt.error is not None:
                self._send_error(rec, rt.error)
            elif rt.verb == "patch-status" and method == "PATCH":
                self._patch_status(rt, body, rec)
            elif method != "GET":
                msg = "the server does not allow this method on the requested resource"
                self._send_error(rec, APIError(r.status(405, msg, details={})))
            else:
                self._serve(rt, query, rec)
        except APIError as err:
            self._send_error(rec, err)
        except OSError:
            self.close_connection = True
        finally:
            with self.state.cond:
                self.state.cond.notify_all()

    def _patch_status(self, rt: Route, body: bytes, rec: RequestRecord) -> None:
        """A strategic merge patch of ``status.conditions`` (merged by
        ``type``, as the Pod API's patchMergeKey says); nothing else."""
        assert rt.resource is not None and rt.name is not None
        ctype = self.headers.get("Content-Type", "")
        if ctype != "application/strategic-merge-patch+json":
            msg = f"fakeapi: pods/status takes strategic merge patches only, not {ctype!r}"
            raise APIError(r.status(415, msg))
        try:
            patch = json.loads(body)
            conds = patch["status"]["conditions"]
            assert isinstance(conds, list) and all("type" in c for c in conds)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise APIError(r.status(400, "fakeapi: want {status: {conditions: [...]}}")) from None
        store = self.state.store
        obj = store.get(rt.resource.kind, rt.namespace, rt.name)
        if obj is None:
            raise APIError(r.status(404, f'pods "{rt.name}" not found'))
        have = obj.setdefault("status", {}).setdefault("conditions", [])
        for cond in conds:
            have[:] = [c for c in have if c.get("type") != cond["type"]] + [cond]
        obj["metadata"].pop("resourceVersion", None)
        rec.status = 200
        self._send_json(200, store.update(obj))

    def _serve(self, rt: Route, query: dict[str, str], rec: RequestRecord) -> None:
        if rt.verb == "discovery":
            rec.status = 200
            self._send_json(200, rt.body or {})
            return
        res = rt.resource
        assert res is not None
        try:
            selector = Selector.parse(
                res, query.get("labelSelector", ""), query.get("fieldSelector", "")
            )
            if rt.name and rt.verb == "watch":
                selector = Selector(
                    selector.labels,
                    selector.fields + Selector.parse(res, field=f"metadata.name={rt.name}").fields,
                )
        except SelectorError as exc:
            raise APIError(r.status(400, str(exc))) from None
        store = self.state.store
        if rt.verb == "get":
            assert rt.name is not None
            obj = store.get(res.kind, rt.namespace, rt.name)
            if obj is None:
                details = {"name": rt.name, "group": res.group, "kind": res.plural}
                msg = f'{res.plural} "{rt.name}" not found'
                raise APIError(r.status(404, msg, details=details))
            rec.status = 200
            self._send_json(200, obj)
        elif rt.verb == "list":
            try:
                limit = int(query.get("limit") or 0)
            except ValueError:
                raise APIError(r.status(400, f"invalid limit {query['limit']!r}")) from None
            body = store.list_objects(
                res,
                rt.namespace,
                selector,
                limit=limit,
                continue_token=query.get("continue", ""),
                resource_version=query.get("resourceVersion", ""),
                rv_match=query.get("resourceVersionMatch", ""),
            )
            rec.status = 200
            self._send_json(200, body)
        else:
            self._watch(res, rt.namespace, selector, query, rec)

    # ---------------------------------------------------------------- watch
    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _emit(self, ch: WatchChannel, item: Item) -> bool:
        """Write one queued item; False once the stream is over."""
        if isinstance(item, Close):
            if item.abrupt:
                self.close_connection = True
            else:
                self.wfile.write(b"0\r\n\r\n")
            return False
        line = ch.render(item)
        if line is not None:
            self._chunk(line)
        return True

    def _watch(
        self,
        res: ResourceType,
        namespace: str | None,
        selector: Selector,
        query: dict[str, str],
        rec: RequestRecord,
    ) -> None:
        state = self.state
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        raw_initial = query.get("sendInitialEvents")
        send_initial = None if raw_initial is None else _flag(raw_initial)
        if send_initial and (not bookmarks or query.get("resourceVersionMatch") != "NotOlderThan"):
            msg = (
                "sendInitialEvents requires allowWatchBookmarks=true and"
                " resourceVersionMatch=NotOlderThan"
            )
            raise APIError(r.status(422, msg, "Invalid"))
        try:
            timeout = float(query.get("timeoutSeconds") or 0) or state.default_watch_timeout
        except ValueError:
            raise APIError(r.status(400, "invalid timeoutSeconds")) from None
        resource_version = query.get("resourceVersion", "")
        if resource_version not in ("", "0") and not resource_version.isdigit():
            raise APIError(r.status(400, f'invalid resource version: "{resource_version}"'))
        # Headers go out before the watch registers (as the apiserver flushes them first),
        # so a test that saw the watch open and then cuts it gets a mid-stream failure.
        rec.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            ch, initial = state.store.open_watch(
                res,
                namespace,
                selector,
                resource_version=resource_version,
                bookmarks=bookmarks,
                send_initial_events=send_initial,
                sock=self.connection,
            )
        except APIError as exc:  # e.g. 410 Expired: one ERROR event, then the end
            self._chunk(event_line("ERROR", exc.status))
            self.wfile.write(b"0\r\n\r\n")
            return
        try:
            for item in initial:
                if not self._emit(ch, item):
                    return
            self._pump(ch, timeout)
        except OSError:
            self.close_connection = True
        finally:
            state.store.close_watch(ch)

    def _pump(self, ch: WatchChannel, timeout: float | None) -> None:
        state = self.state
        interval = state.bookmark_interval
        now = time.monotonic()
        deadline = now + timeout if timeout else None
        next_bookmark = now + interval if ch.bookmarks and interval > 0 else None
        while True:
            now = time.monotonic()
            if state.stopping.is_set():
                self.close_connection = True
                return
            if deadline is not None and now >= deadline:
                state.store.close_watch(ch)  # deregistered before the client sees the end
                self.wfile.write(b"0\r\n\r\n")  # timeoutSeconds elapsed: a clean end
                return
            if next_bookmark is not None and now >= next_bookmark:
                state.store.bookmark([ch])
                next_bookmark = now + interval
            wait = min([0.2] + [t - now for t in (deadline, next_bookmark) if t is not None])
            try:
                item = ch.queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                continue
            if not self._emit(ch, item):
                return


class FakeHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can cut every connection it holds, so it stops promptly."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ServerState) -> None:
        super().__init__(address, APIRequestHandler)
        self.state = state
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name="fakeapi-conn",
        )
        with self._conn_lock:
            self._conns[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fakeapi: error serving %s", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> bool:
        """Shut every open connection down and wait for its thread; False if any lingers."""
        with self._conn_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(t.is_alive() for _, t in conns)
