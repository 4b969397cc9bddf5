"""The Kubernetes API source of ``policyc watch``: list, then watch, through the official client.

One loop per kind (Namespace, Node, Pod, NetworkPolicy and the policy.networking.k8s.io
kinds ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy; see
:mod:`.k8s_watch`; a missing CRD is an empty collection, retried), each
on its own thread, feed one bounded queue; :meth:`KubernetesSource.run` drains it and calls
``emit`` on the caller's thread only, so per-kind order is kept and ``emit`` never runs
concurrently.  While the API is unreachable nothing is emitted: the consumer keeps enforcing
the last state it has, and the loops resume (from the last resourceVersion, or with a fresh
SNAPSHOT after 410 Gone) once the API answers again.

Configuration: an explicit ``ApiClient``; else an explicit kubeconfig; else the in-cluster
service account; else the default kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from .base import Emit, Event, EventType
from .k8s_watch import KIND_SPECS, KindWatcher, Settings, Stats

log = logging.getLogger("policyc.watch.k8s")

__all__ = ["KubernetesSource", "load_api_client"]

_QUEUE_SIZE = 1024  # events waiting for ``emit``; a slow consumer slows the watches down
_STOP_GRACE = 1.5  # seconds ``run`` waits for the loops once ``stop`` is set


def load_api_client(
    kubeconfig: str | None = None, *, context: str | None = None
) -> tuple[client.ApiClient, str]:
    """An ApiClient with its own Configuration (the client's global default is untouched),
    and a description of where the configuration came from.

    An explicit ``kubeconfig`` wins; otherwise the in-cluster service account; otherwise the
    default kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``).  Raises
    ``ConfigException`` when none is usable.
    """
    cfg = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg), "in-cluster"
        except ConfigException as exc:
            log.debug("no in-cluster config detail=%r; trying kubeconfig", str(exc))
    # The client reads $KUBECONFIG once, at import; read it now (it may list several files).
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    return client.ApiClient(cfg), f"kubeconfig:{path or '~/.kube/config'}"


class KubernetesSource:
    """List/watch Pods, Namespaces, NetworkPolicies and Nodes (all of them, cluster-wide).

    :param api_client: the client to use; when None, configuration is loaded as
        :func:`load_api_client` does (``kubeconfig`` first if given, then in-cluster, then
        the default kubeconfig).
    :param node_name: this node's name, for log context (pods are not filtered by node:
        policy peers can run anywhere).
    :param page_size: ``limit`` of each list page.
    :param watch_timeout: ``timeoutSeconds`` of each watch request; the stream then ends and
        is resumed from the last resourceVersion.
    :param backoff: (first delay, cap) in seconds of the exponential, jittered backoff.
    :param request_timeout: read timeout of a list request, in seconds.
    """

    name = "k8s"

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        *,
        kubeconfig: str | None = None,
        node_name: str | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: tuple[float, float] = (0.2, 5.0),
        request_timeout: float = 60.0,
    ) -> None:
        if page_size < 1 or watch_timeout < 1:
            raise ValueError("page_size and watch_timeout must be positive")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError("backoff must be (first, cap) with 0 < first <= cap")
        if api_client is None:
            api_client, origin = load_api_client(kubeconfig)
        else:
            origin = "api_client"
        self.api_client = api_client
        self.config_origin = origin
        self.node_name = node_name
        self.settings = Settings(
            int(page_size),
            int(watch_timeout),
            (float(backoff[0]), float(backoff[1])),
            float(request_timeout),
        )
        self._stats = Stats()
        self._synced: set[str] = set()
        self._lock = threading.Lock()
        self._workers: list[KindWatcher] = []

    @classmethod
    def from_config(
        cls, kubeconfig: str | None = None, *, context: str | None = None, **kwargs: Any
    ) -> KubernetesSource:
        """A source whose client comes from a kubeconfig or the in-cluster service account."""
        api, origin = load_api_client(kubeconfig, context=context)
        src = cls(api, **kwargs)
        src.config_origin = origin
        return src

    # --------------------------------------------------------------- status
    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: lists, relists, watches, watch_restarts, events, bookmarks, errors."""
        return self._stats.snapshot()

    def synced(self) -> bool:
        with self._lock:
            return len(self._synced) == len(KIND_SPECS)

    def resource_versions(self) -> dict[str, str | None]:
        """The last resourceVersion each kind has seen (list, event or bookmark)."""
        with self._lock:
            workers = list(self._workers)
        return {w.spec.kind: w.resource_version for w in workers}

    # ------------------------------------------------------------------ run
    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Emit events until ``stop`` is set; returns within about 1.5 s of it.  Never raises."""
        sink: queue.Queue[tuple[KindWatcher, Event]] = queue.Queue(_QUEUE_SIZE)
        halt = threading.Event()  # the loops' own stop: set however ``run`` ends
        try:
            workers = [
                KindWatcher(spec, self.api_client, self.settings, sink, halt, self._stats)
                for spec in KIND_SPECS
            ]
        except Exception:  # building the API objects cannot fail transiently; log and idle
            log.exception("cannot start the kubernetes source host=%s", self.host)
            stop.wait()
            return
        with self._lock:
            self._synced.clear()
            self._workers = workers
        log.info(
            "starting host=%s config=%s node=%s kinds=%s",
            self.host,
            self.config_origin,
            self.node_name or "-",
            ",".join(w.spec.kind for w in workers),
        )
        for w in workers:
            w.thread.start()
        try:
            while not stop.is_set():
                try:
                    worker, event = sink.get(timeout=0.1)
                except queue.Empty:
                    continue
                if stop.is_set():
                    break
                self._deliver(emit, worker, event)
        finally:
            halt.set()
            self._shutdown(workers)

    def _deliver(self, emit: Emit, worker: KindWatcher, event: Event) -> None:
        try:
            emit(event)
        except Exception:
            # The consumer may now hold a stale view of this kind: resend all of it.
            log.exception("emit failed kind=%s type=%s action=resync", event.kind, event.type)
            self._stats.add("errors")
            worker.request_resync()
            return
        if event.type is EventType.SNAPSHOT:
            with self._lock:
                first = event.kind not in self._synced
                self._synced.add(event.kind)
                now_synced = first and len(self._synced) == len(KIND_SPECS)
            if now_synced:
                log.info("synced kinds=%d stats=%s", len(KIND_SPECS), self._stats.snapshot())

    def _shutdown(self, workers: list[KindWatcher]) -> None:
        """Interrupt every loop (again and again: a watch may be opening right now) and wait
        for them, bounded; a loop stuck in a list request ends on its own later, emitting
        nothing since ``stop`` is set."""
        deadline = time.monotonic() + _STOP_GRACE
        alive = [w for w in workers if w.thread.is_alive()]
        while alive and time.monotonic() < deadline:
            for w in alive:
                w.interrupt()
            for w in alive:
                w.thread.join(0.05)
            alive = [w for w in alive if w.thread.is_alive()]
        if alive:
            log.warning(
                "stopped with loops still busy kinds=%s", ",".join(w.spec.kind for w in alive)
            )
        else:
            log.info("stopped stats=%s", self._stats.snapshot())
