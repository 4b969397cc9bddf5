"""Prometheus metrics, /healthz and /readyz on a loopback port."""

from __future__ import annotations

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

    def render(self) -> bytes:
        return generate_latest(self.registry)


def serve(
    metrics: Metrics, listen: str, ready: Callable[[], bool], healthy: Callable[[], bool]
) -> ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            if self.path == "/metrics":
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
