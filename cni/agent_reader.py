"""Read whole requests off the agent socket without tying up a worker.

One thread multiplexes every connection with ``selectors``: it accepts, reads
until the client's ``shutdown(SHUT_WR)`` (end of file) and only then hands the
complete request to the worker pool.  A client that connects and sends nothing
costs a file descriptor until its deadline, never a worker, so idle or slow
clients cannot starve the pool (a STATUS still answers promptly).  A request
over the size limit, or not complete within the deadline, is answered with an
error and closed.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Seconds a client has to send its whole request; runtimes send it at once.
READ_DEADLINE_S = 10.0
# How often deadlines and the stop flag are looked at.
TICK_S = 0.2

# accept() errors that mean "no descriptor or buffer now", not "no listener".
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

OnRequest = Callable[[socket.socket, bytes], None]
OnReject = Callable[[socket.socket, bool, str], None]


@dataclass(slots=True)
class _Pending:
    deadline: float
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class RequestReader:
    """Accept on ``listener`` and read requests of at most ``limit`` bytes.

    ``on_request(conn, data)`` gets each complete request and owns ``conn``
    (blocking again) from then on; ``on_reject(conn, too_large, reason)``
    gets an oversized or late one and must answer and close it.  Both run on this
    reader's thread, so they should hand work to a pool."""

    def __init__(
        self,
        listener: socket.socket,
        limit: int,
        on_request: OnRequest,
        on_reject: OnReject,
        deadline_s: float = READ_DEADLINE_S,
    ) -> None:
        self.listener = listener
        self.limit = limit
        self.on_request = on_request
        self.on_reject = on_reject
        self.deadline_s = deadline_s
        self._sel = selectors.DefaultSelector()
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def run(self) -> None:
        self.listener.setblocking(False)
        self._sel.register(self.listener, selectors.EVENT_READ, None)
        try:
            while not self._stop:
                for key, _ in self._sel.select(TICK_S):
                    if key.data is None:
                        self._accept()
                    else:
                        self._read(key.fileobj, key.data)  # type: ignore[arg-type]
                self._expire(time.monotonic())
        finally:
            for key in list(self._sel.get_map().values()):
                if key.data is not None:
                    key.fileobj.close()  # type: ignore[union-attr]
            self._sel.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._shed()  # idle clients hold every descriptor: free one
                return
            self._stop = True  # the listener was shut down
            return
        conn.setblocking(False)
        pending = _Pending(deadline=time.monotonic() + self.deadline_s)
        self._sel.register(conn, selectors.EVENT_READ, pending)

    def _read(self, conn: socket.socket, pending: _Pending) -> None:
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._sel.unregister(conn)
            conn.close()
            return
        if chunk:
            pending.chunks.append(chunk)
            pending.size += len(chunk)
            if pending.size > self.limit:
                self._hand_off(conn)
                self.on_reject(conn, True, f"request is larger than {self.limit} bytes")
            return
        self._hand_off(conn)
        self.on_request(conn, b"".join(pending.chunks))

    def _hand_off(self, conn: socket.socket) -> None:
        self._sel.unregister(conn)
        conn.setblocking(True)

    def _shed(self) -> None:
        """accept() failed for want of descriptors or memory (EMFILE after
        enough idle connections): reject the pending request that has waited
        longest, so the listener keeps serving; with none pending, wait a
        tick instead of spinning on the still-readable listener."""
        pending = [k for k in self._sel.get_map().values() if k.data is not None]
        if not pending:
            time.sleep(TICK_S)
            return
        oldest = min(pending, key=lambda k: k.data.deadline).fileobj
        assert isinstance(oldest, socket.socket)
        self._hand_off(oldest)
        self.on_reject(oldest, False, "too many pending connections")

    def _expire(self, now: float) -> None:
        late = [
            key.fileobj
            for key in self._sel.get_map().values()
            if key.data is not None and key.data.deadline < now
        ]
        for conn in late:
            assert isinstance(conn, socket.socket)
            self._hand_off(conn)
            self.on_reject(conn, False, f"request not complete within {self.deadline_s:g} s")
