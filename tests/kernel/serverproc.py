"""Test-process side of ``servers.py``: spawn it, talk to it, stop it.

The server process is spawned from the root namespace (this thread is never
inside a pod namespace while forking) and moves into pod namespaces only to
create its listening sockets.  Its sockets hold references to the pod
namespaces, so a pod must be deleted from the server before its netns goes.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence

SERVERS_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers.py")


class ServerError(RuntimeError):
    pass


class ServerProcess:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._ready = False

    def spawn(self) -> None:
        if self.proc is not None:
            return
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-E", SERVERS_PY],  # stdlib only: fast start
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd="/",
        )
        atexit.register(self.stop)

    def _readline(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ServerError("server process did not answer in time")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ServerError(f"server process exited ({self.proc.poll()})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def _wait_ready(self) -> None:
        if self._ready:
            return
        self.spawn()
        line = self._readline()
        if line != "READY":
            raise ServerError(f"unexpected server greeting {line!r}")
        self._ready = True

    def _send(self, lines: Sequence[str]) -> list[str]:
        self._wait_ready()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()
        return [self._readline() for _ in lines]

    def add(self, pods: Sequence[tuple[str, str, Sequence[int]]]) -> None:
        """Serve ``ports`` in each ``(key, netns, ports)``; raise if any failed."""
        answers = self._send(
            [f"ADD {key} {netns} {','.join(map(str, ports))}" for key, netns, ports in pods]
        )
        errors = [a for a in answers if not a.startswith("OK ")]
        if errors:
            raise ServerError("; ".join(errors))

    def delete(self, key: str) -> None:
        answer = self._send([f"DEL {key}"])[0]
        if answer != f"OK {key}":
            raise ServerError(answer)

    def ping(self) -> bool:
        return self._send(["PING"]) == ["PONG"]

    def stop(self) -> None:
        """End the process (EOF on stdin, then SIGKILL after 2 s). Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
