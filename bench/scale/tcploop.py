"""A TCP accept loop and a TCP connect loop, one process each.

    python -m bench.scale.tcploop serve ADDR PORT         -> "ready", then serves until killed
    python -m bench.scale.tcploop connect ADDR PORT SECS  -> {"connections", "errors", "seconds"}

The connect loop opens a connection, waits for the handshake, and closes it
with SO_LINGER 0 (an RST, so the client keeps no TIME_WAIT and never runs
out of source ports); the server accepts and closes.  Each process is
started inside a pod's namespace (``ip netns exec``), so the sockets live
there.  One connection at a time: Python bounds the rate, so the ratio of
two runs understates the kernel's own difference.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

LINGER_RST = struct.pack("ii", 1, 0)


def serve(addr: str, port: int) -> None:
    with socket.create_server((addr, port), backlog=4096, reuse_port=True) as srv:
        print("ready", flush=True)
        while True:
            conn, _ = srv.accept()
            conn.close()


def connect(addr: str, port: int, seconds: float) -> dict[str, float]:
    """Connections completed (handshake done) in ``seconds``; refusals and timeouts
    are counted as errors and stop nothing."""
    done = errors = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        s.settimeout(1.0)
        try:
            s.connect((addr, port))
            done += 1
        except OSError:
            errors += 1
        finally:
            s.close()
    return {"connections": done, "errors": errors, "seconds": time.perf_counter() - start}


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]))
    elif argv[:1] == ["connect"]:
        print(json.dumps(connect(argv[1], int(argv[2]), float(argv[3]))), flush=True)
    else:
        sys.exit("usage: python -m bench.scale.tcploop serve|connect ADDR PORT [SECONDS]")


if __name__ == "__main__":
    main(sys.argv[1:])
