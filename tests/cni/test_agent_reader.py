"""The agent's request reader (no kernel): complete requests go to the pool,
idle and oversized ones are rejected without ever reaching it."""

from __future__ import annotations

import errno
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.agent_reader import RequestReader

Event = tuple[str, bytes | str]


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[tuple[str, queue.Queue[Event]]]:
    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    events: queue.Queue[Event] = queue.Queue()

    def on_request(conn: socket.socket, data: bytes) -> None:
        events.put(("request", data))
        conn.close()

    def on_reject(conn: socket.socket, too_large: bool, reason: str) -> None:
        events.put(("too large" if too_large else "late", reason))
        conn.close()

    r = RequestReader(listener, 100, on_request, on_reject, deadline_s=3.0)
    thread = threading.Thread(target=r.run, daemon=True)
    thread.start()
    try:
        yield path, events
    finally:
        r.stop()
        thread.join(30)
        listener.close()


def _client(path: str, data: bytes | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    if data is not None:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    return sock


def test_idle_clients_wait_their_deadline_and_never_block_others(
    reader: tuple[str, queue.Queue[Event]],
) -> None:
    path, events = reader
    idle = [_client(path, None) for _ in range(9)]
    busy = _client(path, b"hello")
    try:
        assert events.get(timeout=30) == ("request", b"hello")  # before any idle one expires
        late = [events.get(timeout=30) for _ in idle]
        assert {kind for kind, _ in late} == {"late"}
    finally:
        for sock in [*idle, busy]:
            sock.close()


def test_oversized_request_is_rejected(reader: tuple[str, queue.Queue[Event]]) -> None:
    path, events = reader
    sock = _client(path, b"x" * 100)
    big = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    big.connect(path)
    try:
        assert events.get(timeout=30) == ("request", b"x" * 100)  # the limit is inclusive
        big.sendall(b"y" * 101)
        kind, reason = events.get(timeout=30)
        assert kind == "too large" and "100" in str(reason)
    finally:
        sock.close()
        big.close()


class _OutOfDescriptors(socket.socket):
    """A listener whose next ``fail`` accept() calls raise EMFILE, as they do
    once idle clients hold every descriptor the agent may open."""

    fail = 0

    def accept(self) -> tuple[socket.socket, object]:
        if self.fail:
            self.fail -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_running_out_of_descriptors_sheds_the_oldest_idle_client(tmp_path: Path) -> None:
    # accept() failing with EMFILE used to stop the reader for good: the
    # agent stayed up but never answered again (seen with `ulimit -n 128`
    # and 200 idle clients).
    path = str(tmp_path / "s.sock")
    listener = _OutOfDescriptors(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    events: queue.Queue[Event] = queue.Queue()

    def on_request(conn: socket.socket, data: bytes) -> None:
        events.put(("request", data))
        conn.close()

    def on_reject(conn: socket.socket, too_large: bool, reason: str) -> None:
        events.put(("late", reason))
        conn.close()

    r = RequestReader(listener, 100, on_request, on_reject, deadline_s=60.0)
    thread = threading.Thread(target=r.run, daemon=True)
    thread.start()
    idle = [_client(path, None) for _ in range(2)]
    busy: socket.socket | None = None
    try:
        _client(path, b"first").close()
        assert events.get(timeout=30) == ("request", b"first")  # both idle ones accepted
        listener.fail = 1
        busy = _client(path, b"hello")
        assert events.get(timeout=30) == ("late", "too many pending connections")
        assert events.get(timeout=30) == ("request", b"hello")
    finally:
        r.stop()
        thread.join(30)
        for sock in [*idle, *([busy] if busy else [])]:
            sock.close()
        listener.close()
