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
import contextlib
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
from cni.agent_client import DEFAULT_SOCKET, MAX_REQUEST, PROTOCOL
from cni.agent_reader import RequestReader
from cni.common import Outcome
from cni.plugin import execute
from cni.spec import ERR_DECODE, ERR_INVALID_CONFIG, ERR_INVALID_ENV, CNIError

Handler = Callable[[dict[str, str], bytes], Outcome]
OnAdd = Callable[[str, str, str, list[str]], Any]
# Seconds a reply may take to drain into a client that does not read it.
SEND_DEADLINE_S = 10.0


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
        self._reader: RequestReader | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path) or ".", mode=0o755, exist_ok=True)
        # The path appears only once it listens (bind, listen, then rename over
        # any stale socket): a client that finds it is never refused and never
        # falls back to standalone while the agent starts.
        fresh = f"{self.socket_path}.{os.getpid()}"
        if os.path.exists(fresh):
            os.unlink(fresh)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(fresh)
        os.chmod(fresh, 0o600)
        sock.listen(128)
        os.rename(fresh, self.socket_path)
        self._sock = sock
        netlink.preload()  # import pyroute2 now, not in the first request
        for _ in range(self._pool._max_workers):  # warm the workers' nft and IPRoute
            self._pool.submit(_warm)
        self._reader = RequestReader(sock, MAX_REQUEST, self._submit, self._reject)
        self._thread = threading.Thread(target=self._reader.run, name="cni-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._reader is not None:
            self._reader.stop()  # its loop looks at the flag every TICK_S
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._pool.shutdown(wait=True)
        self._hooks.shutdown(wait=False)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def _submit(self, conn: socket.socket, data: bytes) -> None:
        self._pool.submit(self._serve, conn, data)

    def _reject(self, conn: socket.socket, too_large: bool, reason: str) -> None:
        """SPEC code 7 for an oversized configuration, 6 for one never finished."""
        # Not a worker's job: a short reply into a fresh socket buffer does not block.
        conn.settimeout(0)
        with conn:
            code = ERR_INVALID_CONFIG if too_large else ERR_DECODE
            reply = {"code": 1, "stdout": CNIError(code, f"policyc agent: {reason}").to_json()}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode())

    def _serve(self, conn: socket.socket, data: bytes) -> None:
        start = time.perf_counter()
        _gc_pause.enter()
        try:
            command, cid = self._serve_one(conn, data)
            took = (time.perf_counter() - start) * 1e3  # request read to reply sent
        finally:
            _gc_pause.leave()  # a collection now runs after the reply, not during it
        if self.log_times:
            print(f"policyc-cni-time {command} {cid} {took:.3f}", file=sys.stderr, flush=True)

    def _serve_one(self, conn: socket.socket, data: bytes) -> tuple[str, str]:
        command = cid = "?"
        with conn:
            conn.settimeout(SEND_DEADLINE_S)
            try:
                env, stdin = parse_request(data)
                command, cid = env.get("CNI_COMMAND", "?"), env.get("CNI_CONTAINERID", "-")
                reply = self.handle(env, stdin)
            except CNIError as exc:
                reply = {"code": 1, "stdout": exc.to_json()}
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                reply = {"code": 1, "stdout": _internal_error(str(exc))}
            try:
                conn.sendall(json.dumps(reply).encode())
            except OSError:
                pass  # the client went away; nothing to tell it
        return command, cid

    def handle(self, env: dict[str, str], stdin: str) -> dict[str, Any]:
        """Run one parsed request: the reply object ``{"code", "stdout"}``."""
        outcome = self.handler(env, stdin.encode("utf-8", "surrogatepass"))
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


def parse_request(data: bytes) -> tuple[dict[str, str], str]:
    """``{"v": 1, "env": {str: str}, "stdin": str}`` (see ``cni.agent_client``).

    Raises CNIError 6 ("Failed to decode content") for anything that is not
    that object and 4 ("Invalid necessary environment variables") for an
    ``env`` that is not an object of strings."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CNIError(ERR_DECODE, "policyc agent: request is not JSON", str(exc)[:200]) from exc
    if not isinstance(doc, dict):
        raise CNIError(ERR_DECODE, "policyc agent: request must be a JSON object")
    if doc.get("v") != PROTOCOL:
        raise CNIError(ERR_DECODE, f"policyc agent: unknown protocol {doc.get('v')!r:.40}")
    env = doc.get("env")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise CNIError(ERR_INVALID_ENV, "policyc agent: env must be an object of strings")
    stdin = doc.get("stdin", "")
    if not isinstance(stdin, str):
        raise CNIError(ERR_DECODE, "policyc agent: stdin must be a string")
    return env, stdin


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
    # pyroute2's per-thread event loops are finalized during interpreter teardown,
    # after their selectors, which prints an "Exception ignored" traceback: skip it.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
