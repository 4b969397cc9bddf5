"""The agent side of the CNI socket: requests run with everything preloaded.

The node agent (``policyc watch``) imports and starts ``CNIServer``; it must
run in the node's network namespace.  ``on_add(pod_namespace, pod_name,
iface, ips)`` is called after a successful ADD and *before* the reply is
sent, so the pod's rules are in place when the runtime sees ADD succeed.  If
the hook fails or overruns its time bound, ADD still succeeds: the new port
stays fail-closed (see ``cni.failclosed``) until the agent programs it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import cni.add  # noqa: F401 - preload: the point of thick mode
import cni.delcheck  # noqa: F401
import cni.gc  # noqa: F401
from cni import netlink, nft
from cni.agent_client import DEFAULT_SOCKET, PROTOCOL
from cni.plugin import Outcome, execute

Handler = Callable[[dict[str, str], bytes], Outcome]
OnAdd = Callable[[str, str, str, list[str]], Any]
MAX_REQUEST = 4 << 20


class CNIServer:
    """Serve CNI requests on a unix socket from a small pool of threads."""

    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        handler: Handler = execute,
        on_add: OnAdd | None = None,
        on_add_timeout: float = 10.0,
        workers: int = 8,
        log_times: bool = False,
    ) -> None:
        self.socket_path = socket_path
        self.handler = handler
        self.on_add = on_add
        self.on_add_timeout = on_add_timeout
        # one "policyc-cni-time <command> <containerID> <ms>" line per request, on stderr
        self.log_times = log_times
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cni")
        self._hooks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cni-hook")
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path) or ".", mode=0o755, exist_ok=True)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)  # stale socket of a previous agent
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        sock.listen(128)
        self._sock = sock
        netlink.preload()  # import pyroute2 now, not in the first request
        for _ in range(self._pool._max_workers):  # warm the workers' nft and IPRoute
            self._pool.submit(_warm)
        self._thread = threading.Thread(target=self._accept_loop, name="cni-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)
        self._hooks.shutdown(wait=False)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._pool.submit(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        start = time.perf_counter()
        _gc_pause.enter()
        try:
            command, cid = self._serve_one(conn)
            took = (time.perf_counter() - start) * 1e3  # accept to reply sent
        finally:
            _gc_pause.leave()  # a collection now runs after the reply, not during it
        if self.log_times:
            print(f"policyc-cni-time {command} {cid} {took:.3f}", file=sys.stderr, flush=True)

    def _serve_one(self, conn: socket.socket) -> tuple[str, str]:
        command = cid = "?"
        with conn:
            try:
                request = _read(conn)
                env = dict(request.get("env") or {})
                command, cid = env.get("CNI_COMMAND", "?"), env.get("CNI_CONTAINERID", "-")
                reply = self.handle(request)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                reply = {"code": 1, "stdout": _internal_error(str(exc))}
            try:
                conn.sendall(json.dumps(reply).encode())
            except OSError:
                pass  # the client went away; nothing to tell it
        return command, cid

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("v") != PROTOCOL:
            return {"code": 1, "stdout": _internal_error(f"bad protocol {request.get('v')}")}
        env = {str(k): str(v) for k, v in dict(request.get("env") or {}).items()}
        outcome = self.handler(env, str(request.get("stdin", "")).encode())
        if outcome.code == 0 and outcome.added is not None and self.on_add is not None:
            self._call_on_add(outcome)
        return {"code": outcome.code, "stdout": outcome.stdout}

    def _call_on_add(self, outcome: Outcome) -> None:
        added = outcome.added
        assert added is not None and self.on_add is not None
        # A persistent hook thread keeps its nftables context warm between ADDs.
        future = self._hooks.submit(
            _guarded, self.on_add, added.namespace, added.pod, added.iface, list(added.ips)
        )
        try:
            future.result(timeout=self.on_add_timeout)
        except FutureTimeout:
            print(
                f"policyc-cni: on_add for {added.iface} overran; port stays fail-closed",
                file=sys.stderr,
            )


class _GCPause:
    """Keep the cyclic GC out of requests.  pyroute2 allocates thousands of objects
    per ADD, enough to trigger 3-5 young collections (~0.1 ms each, more when an
    older generation is due: ~1.3 ms per ADD measured) in the middle of the
    request.  While any request is in flight automatic collection is off; the last
    one out turns it back on, so the deferred collection runs after its reply has
    been sent.  If the GC was already off (the host process's choice), it stays
    off.  Under a never-ending overlap of requests a young collection still runs
    every ``BACKLOG`` allocations."""

    BACKLOG = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._paused = False

    def enter(self) -> None:
        with self._lock:
            if self._busy == 0:
                self._paused = gc.isenabled()
                gc.disable()
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and self._paused:
                self._paused = False
                gc.enable()
                return
        if gc.get_count()[0] > self.BACKLOG:
            gc.collect(0)


_gc_pause = _GCPause()


def _warm() -> None:
    nft.available()
    netlink.node()


def _guarded(hook: OnAdd, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        traceback.print_exc(file=sys.stderr)


def _read(conn: socket.socket) -> dict[str, Any]:
    chunks, size = [], 0
    while chunk := conn.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST:
            raise ValueError("request too large")
    doc = json.loads(b"".join(chunks))
    if not isinstance(doc, dict):
        raise ValueError("request must be a JSON object")
    return doc


def _internal_error(msg: str) -> str:
    return json.dumps({"cniVersion": "1.1.0", "code": 999, "msg": f"policyc agent: {msg}"})


def load_hook(spec: str) -> OnAdd:
    """``package.module:func`` or ``/path/to/file.py:func``."""
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        mod_spec = importlib.util.spec_from_file_location("policyc_cni_hook", target)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    hook: OnAdd = getattr(module, name)
    return hook


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="policyc CNI agent socket (standalone runner)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--on-add", default="", help="module:func or file.py:func")
    parser.add_argument("--on-add-timeout", type=float, default=10.0)
    parser.add_argument(
        "--log-times", action="store_true", help="print the in-agent time of each request on stderr"
    )
    args = parser.parse_args(argv)
    hook = load_hook(args.on_add) if args.on_add else None
    server = CNIServer(
        args.socket, on_add=hook, on_add_timeout=args.on_add_timeout, log_times=args.log_times
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"policyc-cni agent listening on {args.socket}", file=sys.stderr, flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
