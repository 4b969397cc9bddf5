"""Batched, parallel connectivity probes with real packets.

All probe sockets are created non-blocking inside their source namespace, all
TCP connects and UDP sends start at once, and one ``poll`` loop waits for the
verdicts.  A whole matrix therefore costs about one timeout, not one timeout
per probe.  Denied traffic is dropped, so a denied probe simply times out.

Every probe binds an explicit source port from a counter that cycles through
20000-60999.  A (source, destination, port) tuple is thus not reused for tens
of thousands of probes, so a conntrack entry left by an earlier, allowed probe
can never make a later probe look allowed.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import math
import select
import socket
import struct
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from .nsutil import in_netns

Proto = Literal["tcp", "udp"]
K = TypeVar("K", bound=Hashable)

DEFAULT_TIMEOUT = 0.6
PORT_LO, PORT_HI = 20000, 60999


@dataclass(frozen=True)
class ProbeResult:
    """Verdict of one probe.

    ``status`` is ``"ok"``, ``"timeout"`` (dropped somewhere), ``"refused"``
    (a TCP RST or ICMP port unreachable came back: the path is open but
    nothing listens, or a firewall rejects), or ``"error:<ERRNO>"``.
    """

    ok: bool
    status: str
    seconds: float


@dataclass(frozen=True)
class ProbeRequest:
    netns: str
    dst: str
    proto: Proto
    port: int


class SourcePorts:
    """Cycling source-port allocator shared by all probes of one lab."""

    def __init__(self, start: int = PORT_LO) -> None:
        self._it = itertools.cycle(range(PORT_LO, PORT_HI + 1))
        for _ in range(start - PORT_LO):
            next(self._it)

    def next(self) -> int:
        return next(self._it)


def family_of(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def _errname(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "refused"
    return "error:" + errno.errorcode.get(code, str(code))


@dataclass
class _Probe(Generic[K]):
    key: K
    sock: socket.socket
    proto: Proto
    token: bytes


def _bind(sock: socket.socket, family: socket.AddressFamily, ports: SourcePorts) -> None:
    wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(64):
        try:
            sock.bind((wildcard, ports.next()))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    sock.bind((wildcard, 0))


def _start(key: K, req: ProbeRequest, ports: SourcePorts, n: int) -> _Probe[K] | ProbeResult:
    """Create the socket (caller is inside the source netns) and fire the probe."""
    family = family_of(req.dst)
    kind = socket.SOCK_STREAM if req.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        if req.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # close() then sends RST: no TIME_WAIT pile-up across scenarios
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _bind(sock, family, ports)
        token = f"policyc-probe {n}".encode()
        if req.proto == "tcp":
            err = sock.connect_ex((req.dst, req.port))
            if err == 0:
                sock.close()
                return ProbeResult(True, "ok", 0.0)
            if err != errno.EINPROGRESS:
                sock.close()
                return ProbeResult(False, _errname(err), 0.0)
        else:
            sock.connect((req.dst, req.port))
            sock.send(token)
        return _Probe(key, sock, req.proto, token)
    except OSError as exc:
        sock.close()
        return ProbeResult(False, _errname(exc.errno or 0), 0.0)


def _verdict(p: _Probe[K], events: int) -> str | None:
    """The status string once known, or None to keep waiting."""
    if p.proto == "tcp":
        err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return _errname(err)
        if events & select.POLLOUT:
            return "ok"
        return "error:hangup" if events & (select.POLLERR | select.POLLHUP) else None
    while True:
        try:
            data = p.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return _errname(exc.errno or 0)
        if data == p.token:
            return "ok"


def run_probes(
    requests: Iterable[tuple[K, ProbeRequest]],
    ports: SourcePorts,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[K, ProbeResult]:
    """Run all probes in parallel; at most ``timeout`` seconds in total.

    UDP datagrams still unanswered half-way are sent once more, to tolerate a
    lost first packet.
    """
    by_ns: dict[str, list[tuple[K, ProbeRequest]]] = {}
    for key, req in requests:
        by_ns.setdefault(req.netns, []).append((key, req))
    results: dict[K, ProbeResult] = {}
    pending: dict[int, _Probe[K]] = {}
    poller = select.poll()
    n = 0
    try:
        for netns, reqs in by_ns.items():
            with in_netns(netns):
                for key, req in reqs:
                    n += 1
                    started = _start(key, req, ports, n)
                    if isinstance(started, ProbeResult):
                        results[key] = started
                        continue
                    fd = started.sock.fileno()
                    pending[fd] = started
                    poller.register(fd, select.POLLOUT if req.proto == "tcp" else select.POLLIN)
        t0 = time.monotonic()
        resend_at, deadline = t0 + timeout / 2, t0 + timeout
        resent = False
        while pending:
            now = time.monotonic()
            if now >= deadline:
                break
            if not resent and now >= resend_at:
                resent = True
                for p in pending.values():
                    if p.proto == "udp":
                        try:
                            p.sock.send(p.token)
                        except OSError:
                            pass  # the error is picked up by the next recv
            wake = deadline if resent else resend_at
            for fd, events in poller.poll(max(1, math.ceil((wake - now) * 1000))):
                p = pending[fd]
                status = _verdict(p, events)
                if status is None:
                    continue
                elapsed = time.monotonic() - t0
                results[p.key] = ProbeResult(status == "ok", status, elapsed)
                poller.unregister(fd)
                del pending[fd]
                p.sock.close()
        for p in pending.values():
            results[p.key] = ProbeResult(False, "timeout", timeout)
    finally:
        for p in pending.values():
            p.sock.close()
    return results
