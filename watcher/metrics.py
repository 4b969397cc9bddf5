"""Prometheus metrics, /healthz and /readyz on a loopback port."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from policyc.logprefix import Tag
from policyc.model import Direction
from watcher.droplog import DropBus, DropRecord

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "policyc_events", "Cluster events received", ["kind", "type"], registry=r
        )
        self.recompile = Histogram(
            "policyc_recompile_seconds",
            "Time to fold a batch of events into the rule graph",
            buckets=BUCKETS,
            registry=r,
        )
        self.apply = Histogram(
            "policyc_apply_seconds",
            "Time to diff and apply one transaction",
            buckets=BUCKETS,
            registry=r,
        )
        self.transactions = Counter("policyc_transactions", "Transactions applied", registry=r)
        self.errors = Counter("policyc_errors", "Errors by stage", ["stage"], registry=r)
        self.repairs = Counter("policyc_repairs", "Drift repairs after a resync", registry=r)
        self.ruleset = Gauge(
            "policyc_ruleset_size", "Programmed ruleset size", ["what"], registry=r
        )
        # Issue 13 §5: such an address gets least privilege (docs/dataplane.md).
        self.shared_addresses = Gauge(
            "policyc_shared_addresses",
            "Addresses held by more than one live pod (least privilege applies)",
            registry=r,
        )
        self.ready = Gauge("policyc_ready", "1 when synced and programmed", registry=r)
        # Issue 12 (docs/observability.md): the enforced signal and the drop log.
        self.enforce = Histogram(
            "policyc_enforce_seconds",
            "From a local pod's event (or a policy change) to its rules in the kernel",
            buckets=(*BUCKETS, 10.0, 30.0, 60.0),
            registry=r,
        )
        self.drops = Counter(
            "policyc_policy_drops",
            "Logged new connections dropped (or, mode=audit, that would be) by policy",
            ["namespace", "policy", "direction", "mode"],
            registry=r,
        )
        self.drop_lines = Counter(
            "policyc_drop_log_lines", "Drop log lines printed, by tag", ["tag"], registry=r
        )
        # A restarted or stalled reader, and the retransmissions it folded,
        # showed nowhere but in the agent's stderr (UlogdReader.restarts,
        # Attributor.suppressed).
        self.reader_restarts = Counter(
            "policyc_droplog_reader_restarts",
            "Times the drop log reader (ulogd) ended and was restarted",
            registry=r,
        )
        self.drop_lines_suppressed = Counter(
            "policyc_drop_lines_suppressed",
            "Logged packets not printed: retransmissions of an attempt already logged",
            registry=r,
        )

    def count_drop(self, rec: DropRecord) -> None:
        """One logged drop: +1 for each policy it is attributed to ("" when
        none isolates the address: a fail-closed drop).  A cluster-scoped
        policy (``ClusterNetworkPolicy name``) has namespace ""."""
        self.drop_lines.labels(rec.tag.value).inc()
        mode = "audit" if rec.tag is Tag.AUDIT else "enforce"
        for key in rec.policies or ("/",):
            ns, _, name = key.partition("/") if "/" in key else ("", "", key)
            self.drops.labels(ns, name, rec.direction.value, mode).inc()

    def forget_policy(self, key: str) -> None:
        """A policy was deleted: its ``policyc_policy_drops_total`` series go
        (kube-state-metrics' habit), so that policy churn does not grow the
        series without bound; a policy of that name created later starts at 0.
        ``key``: ``namespace/name``, or ``Kind name`` for a cluster-scoped one."""
        ns, _, name = key.partition("/") if "/" in key else ("", "", key)
        for direction in Direction:
            for mode in ("enforce", "audit"):
                try:
                    self.drops.remove(ns, name, direction.value, mode)
                except KeyError:  # never counted
                    pass

    def render(self) -> bytes:
        return generate_latest(self.registry)


def serve(
    metrics: Metrics,
    listen: str,
    ready: Callable[[], bool],
    healthy: Callable[[], bool],
    pods: Callable[[], object] | None = None,
    drops: DropBus | None = None,
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz, /readyz; /pods (JSON of ``pods()``, the
    enforced signal) and /drops (the drop log as JSON lines, followed until
    the client goes) when given."""
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            path, _, query = self.path.partition("?")
            if path == "/drops" and drops is not None:
                return _stream(self, drops, follow="follow=1" in query.split("&"))
            if self.path == "/pods" and pods is not None:
                body, code = (json.dumps(pods(), indent=1) + "\n").encode(), 200
                ctype = "application/json"
            elif self.path == "/metrics":
                body, code, ctype = metrics.render(), 200, CONTENT_TYPE_LATEST
            elif self.path in ("/healthz", "/readyz"):
                ok = healthy() if self.path == "/healthz" else ready()
                body, code, ctype = (
                    (b"ok\n" if ok else b"not ready\n"),
                    (200 if ok else 503),
                    "text/plain",
                )
            else:
                body, code, ctype = b"not found\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


def _stream(h: BaseHTTPRequestHandler, bus: DropBus, follow: bool) -> None:
    """The recent drop lines; with ``follow``, then new ones as they come,
    until the client closes the connection (``policyc logs -f``)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/x-ndjson")
    if not follow:
        with bus.lock:
            body = "".join(line + "\n" for line in bus.recent).encode()
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        return
    h.end_headers()
    q = bus.follow()
    try:
        while True:
            try:
                line = q.get(timeout=5.0) + "\n"
            except queue.Empty:
                line = "\n"  # a keep-alive: a closed client shows up as an error
            h.wfile.write(line.encode())
            h.wfile.flush()
    except OSError:
        pass
    finally:
        bus.unfollow(q)
