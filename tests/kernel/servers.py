"""One process serving TCP and UDP on every lab pod.

Run as a script (``python servers.py``) by ``netlab.Lab``.  For each pod it
enters the pod's netns, opens listening sockets there (IPv4 and IPv6, one
socket per family, protocol and port), returns to its own namespace, and
serves every socket from one selector loop:

* TCP: accept, send one byte, close;
* UDP: echo each datagram back to its sender.

Control protocol, one line per command on stdin, one answer line on stdout::

    ADD <key> <netns> <port>[,<port>...]   ->  OK <key>  |  ERR <key> <message>
    DEL <key>                              ->  OK <key>
    PING                                   ->  PONG

``READY`` is printed once at start-up.  End of stdin (or SIGTERM) stops it.
Standard library only: start-up must stay cheap.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys

try:
    from .nsutil import in_netns
except ImportError:  # executed as a script: this directory is sys.path[0]
    from nsutil import in_netns  # type: ignore[no-redef]

FAMILIES = ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))
TCP_REPLY = b"k"


def open_listeners(netns: str, ports: list[int]) -> list[socket.socket]:
    """Create the listening sockets of one pod inside its namespace."""
    socks: list[socket.socket] = []
    try:
        with in_netns(netns):
            for family, wildcard in FAMILIES:
                for port in ports:
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        try:
                            s = socket.socket(family, kind)
                        except OSError as exc:  # IPv6 disabled in this namespace
                            if family == socket.AF_INET6 and exc.errno == errno.EAFNOSUPPORT:
                                break
                            raise
                        socks.append(s)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        if family == socket.AF_INET6:
                            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                        s.bind((wildcard, port))
                        if kind == socket.SOCK_STREAM:
                            s.listen(1024)
                        s.setblocking(False)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def serve_tcp(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. ECONNABORTED: the client already reset
            continue
        try:
            conn.setblocking(False)
            conn.send(TCP_REPLY)
        except OSError:
            pass
        finally:
            conn.close()


def serve_udp(sock: socket.socket) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a queued ICMP error; nothing to answer
            continue
        try:
            sock.sendto(data, peer)
        except OSError:
            pass


class Server:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.pods: dict[str, list[socket.socket]] = {}
        self.buf = b""
        self.running = True

    def reply(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def command(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        op, args = parts[0], parts[1:]
        if op == "PING":
            self.reply("PONG")
        elif op == "ADD" and len(args) == 3:
            key, netns, ports = args
            try:
                self.remove(key)
                socks = open_listeners(netns, [int(p) for p in ports.split(",")])
            except Exception as exc:  # reported to the harness, which raises
                self.reply(f"ERR {key} {type(exc).__name__}: {exc}".replace("\n", " "))
                return
            self.pods[key] = socks
            for s in socks:
                self.sel.register(s, selectors.EVENT_READ)
            self.reply(f"OK {key}")
        elif op == "DEL" and len(args) == 1:
            self.remove(args[0])
            self.reply(f"OK {args[0]}")
        else:
            self.reply(f"ERR - bad command {line!r}")

    def remove(self, key: str) -> None:
        for s in self.pods.pop(key, []):
            self.sel.unregister(s)
            s.close()

    def read_control(self) -> None:
        chunk = os.read(0, 65536)
        if not chunk:
            self.running = False
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.command(line.decode())

    def run(self) -> None:
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ)
        self.reply("READY")
        while self.running:
            for sel_key, _ in self.sel.select():
                if sel_key.fd == 0:
                    try:
                        self.read_control()
                    except BlockingIOError:
                        pass
                    continue
                sock = sel_key.fileobj
                assert isinstance(sock, socket.socket)
                if sock.type == socket.SOCK_STREAM:
                    serve_tcp(sock)
                else:
                    serve_udp(sock)
        for pod in list(self.pods):
            self.remove(pod)


def main() -> int:
    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
