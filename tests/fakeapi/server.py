"""A loopback HTTP server speaking the Kubernetes list/watch protocol for the real client.

Usage::

    with FakeAPIServer(bookmark_interval=0.2) as api:
        api.create(objects.pod("web", "default", node="n1"))
        core = CoreV1Api(api_client(api.url))
        core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")

Served (GET only): ``/api``, ``/apis``, ``/apis/networking.k8s.io``, ``/api/v1``,
``/apis/networking.k8s.io/v1``, ``/version``, and for pods, namespaces, nodes and
networkpolicies the cluster-wide collection, the namespaced collection (pods,
networkpolicies) and single objects, each with ``?watch=1`` and the legacy ``/watch/`` form.
Tests change state through :meth:`FakeAPIServer.create`/``update``/``delete``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType

from .handler import FailureRule, FakeHTTPServer, RequestRecord, ServerState
from .resources import CRD_PLURALS, JSON
from .store import Store


class FakeAPIServer:
    """Kubernetes API fake on 127.0.0.1 (ephemeral port), served from a background thread.

    :param bookmark_interval: seconds between BOOKMARK events on watches that allow them
        (the real apiserver uses about a minute); 0 disables periodic bookmarks.
    :param history_limit: events kept for watch resumption before the oldest are compacted.
    :param start_rv: the resourceVersion before the first change.
    :param default_watch_timeout: stream lifetime when a watch sends no ``timeoutSeconds``
        (None: until dropped or the server stops).
    :param too_large_wait: how long a list for a future resourceVersion waits before 504.
    :param crds: serve the policy.networking.k8s.io CRD kinds (False: 404, as a cluster
        without them); :meth:`set_crds` changes it while running.
    """

    def __init__(
        self,
        *,
        bookmark_interval: float = 1.0,
        history_limit: int = 10_000,
        start_rv: int = 1,
        default_watch_timeout: float | None = None,
        too_large_wait: float = 0.25,
        crds: bool = True,
    ) -> None:
        self.store = Store(
            history_limit=history_limit, start_rv=start_rv, too_large_wait=too_large_wait
        )
        self._state = ServerState(self.store, bookmark_interval, default_watch_timeout)
        self.set_crds(crds)
        self._httpd = FakeHTTPServer(("127.0.0.1", 0), self._state)
        self.host, self.port = "127.0.0.1", int(self._httpd.server_address[1])
        self._state.address = f"{self.host}:{self.port}"
        self.url = f"http://{self.host}:{self.port}"
        self._stopped = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"fakeapi-{self.port}",
        )
        self._thread.start()

    # -------------------------------------------------------------- lifecycle
    def stop(self, timeout: float = 2.0) -> None:
        """Cut open watches and connections, stop serving; idempotent and bounded."""
        if self._stopped:
            return
        self._stopped = True
        self._state.stopping.set()
        self.store.drop_watches(abrupt=True)
        self._httpd.shutdown()
        self._thread.join(timeout)
        self._httpd.close_connections(timeout)
        self._httpd.server_close()

    def __enter__(self) -> FakeAPIServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- objects
    @property
    def resource_version(self) -> str:
        """The current global resourceVersion."""
        return str(self.store.current_rv)

    def create(self, obj: JSON) -> JSON:
        """Add an object (needs ``kind``); returns it as stored, with its resourceVersion."""
        return self.store.create(obj)

    def update(self, obj: JSON) -> JSON:
        """Replace an object; a ``metadata.resourceVersion`` in ``obj`` is a precondition."""
        return self.store.update(obj)

    def upsert(self, obj: JSON) -> JSON:
        """Create, or update when it exists (ignoring any resourceVersion in ``obj``)."""
        meta = obj.get("metadata") or {}
        if self.store.get(str(obj.get("kind", "")), meta.get("namespace"), meta.get("name", "")):
            clean = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
            return self.store.update(clean)
        return self.store.create(obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON:
        """Remove an object at once (no graceful deletion); returns its final state."""
        return self.store.delete(kind, namespace, name)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        return self.store.get(kind, namespace, name)

    def objects(self, kind: str) -> list[JSON]:
        return self.store.objects(kind)

    # --------------------------------------------------------------- controls
    def compact(self, keep_last: int = 0) -> int:
        """Forget all but the last ``keep_last`` events; older watch RVs now get 410.

        Returns the oldest resourceVersion a watch may still start from.
        """
        return self.store.compact(keep_last)

    def drop_watches(self, graceful: bool = False) -> int:
        """Close every open watch; returns how many.

        By default the TCP connection is cut mid-stream (no final chunk), as when a
        connection drops; ``graceful=True`` ends each stream cleanly instead, as the
        apiserver does when a watch times out.
        """
        return self.store.drop_watches(abrupt=not graceful)

    def send_bookmark(self) -> int:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        return self.store.bookmark()

    def set_crds(self, installed: bool) -> None:
        """Install (serve) or remove (404) the policy.networking.k8s.io CRD kinds."""
        with self._state.cond:
            self._state.absent = set() if installed else set(CRD_PLURALS)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        verb: str | None = None,
        resource: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with a Status error of code ``status``.

        ``verb`` (get, list, watch, discovery) and ``resource`` (plural, e.g. "pods")
        narrow which requests count; ``retry_after`` adds a Retry-After header.
        """
        if n > 0:
            rule = FailureRule(n, status, verb, resource, message, retry_after)
            with self._state.cond:
                self._state.failures.append(rule)

    @property
    def open_watches(self) -> int:
        return self.store.open_watches

    def wait_for_watches(self, count: int = 1, timeout: float = 2.0) -> bool:
        """Wait until at least ``count`` watches are open (registered with the store)."""
        return self.store.wait_for_watches(count, timeout)

    def wait_for_no_watches(self, timeout: float = 2.0) -> bool:
        """Wait until every watch stream has ended on the server side."""
        return self.store.wait_for_watches(0, timeout, at_most=True)

    # ----------------------------------------------------------- observation
    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, in arrival order."""
        with self._state.cond:
            return list(self._state.records)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """Requests per ``(verb, path)``, e.g. ``counts[("list", "/api/v1/pods")]``."""
        with self._state.cond:
            return Counter(self._state.counts)

    def request_count(
        self, verb: str | None = None, *, path: str | None = None, resource: str | None = None
    ) -> int:
        """How many requests matched ``verb``, exact ``path`` and/or ``resource`` plural."""
        return sum(
            1
            for rec in self.requests
            if verb in (None, rec.verb)
            and path in (None, rec.path)
            and resource in (None, rec.resource)
        )

    def wait_for_requests(
        self,
        count: int,
        verb: str | None = None,
        *,
        path: str | None = None,
        resource: str | None = None,
        timeout: float = 2.0,
    ) -> bool:
        """Wait until :meth:`request_count` with these filters reaches ``count``."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while self.request_count(verb, path=path, resource=resource) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state.cond.wait(left)
            return True

    def reset_counters(self) -> None:
        with self._state.cond:
            self._state.records.clear()
            self._state.counts.clear()
