"""Forged-source UDP packets and a receiver that records who sent what.

``send_raw_udp`` builds the IP and UDP headers by hand and sends them through
an ``IPPROTO_RAW`` socket (header included, for IPv4 and IPv6 alike) created
inside the sender's namespace: a real packet with any source address leaves
the pod's ``eth0``.  Checksums are computed properly, so conntrack never
marks the packet INVALID for a bad checksum.

The kernel still resolves the destination's neighbour itself, with the pod's
own address as ARP / ND source, so only the forged IP source is spoofed.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from types import TracebackType

from .nsutil import in_netns
from .probes import family_of

IPPROTO_UDP = 17


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp(pseudo: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    csum = _checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload)
    return struct.pack("!HHHH", sport, dport, length, csum or 0xFFFF) + payload


def ipv4_udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    udp_len = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    udp = _udp(pseudo, sport, dport, payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, IPPROTO_UDP, 0, s, d)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def ipv6_udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    udp_len = 8 + len(payload)
    pseudo = s + d + struct.pack("!IxxxB", udp_len, IPPROTO_UDP)
    udp = _udp(pseudo, sport, dport, payload)
    header = struct.pack("!IHBB16s16s", 6 << 28, udp_len, IPPROTO_UDP, 64, s, d)
    return header + udp


def send_raw_udp(netns: str, src: str, dst: str, sport: int, dport: int, payload: bytes) -> None:
    """Send one UDP datagram with an arbitrary source address from ``netns``."""
    family = family_of(dst)
    if family_of(src) != family:
        raise ValueError(f"address families differ: {src} -> {dst}")
    build = ipv6_udp_packet if family == socket.AF_INET6 else ipv4_udp_packet
    packet = build(src, dst, sport, dport, payload)
    with in_netns(netns):
        sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with sock:
        sock.sendto(packet, (dst, 0))


class UdpSink:
    """A UDP socket in a pod's namespace that records every datagram it gets.

    ``collect`` returns ``(source address, source port, payload)`` tuples.
    Use a port the lab's servers do not serve (they own the lab's ports).
    """

    def __init__(self, netns: str, port: int, family: int = 4) -> None:
        fam = socket.AF_INET6 if family == 6 else socket.AF_INET
        with in_netns(netns):
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if fam == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self.port = port
        self.received: list[tuple[str, int, bytes]] = []

    def _drain(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # queued ICMP error
                continue
            self.received.append((str(peer[0]), int(peer[1]), data))

    def collect(
        self, timeout: float = 0.3, expect: bytes | None = None
    ) -> list[tuple[str, int, bytes]]:
        """Everything received so far, waiting up to ``timeout`` seconds.

        With ``expect``, stop waiting as soon as a datagram with that payload
        is in; otherwise wait the full timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            if expect is not None and any(p == expect for _, _, p in self.received):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([self.sock], [], [], left)
        return list(self.received)

    def sources(self, timeout: float = 0.3, expect: bytes | None = None) -> set[str]:
        return {src for src, _, _ in self.collect(timeout, expect)}

    def clear(self) -> None:
        self._drain()
        self.received.clear()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
