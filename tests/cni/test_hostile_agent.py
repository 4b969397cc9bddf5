"""Issue 13 section 4, the agent socket: malformed requests get an error reply
and the agent keeps serving; idle clients cannot starve the workers."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cni.helpers import Net, agent, cni, leftovers

NESTED = b"[" * 100_000 + b"]" * 100_000
# A lone surrogate survives JSON into the configuration: 7, not an encode error.
SURROGATE_BRIDGE = json.dumps(
    {"cniVersion": "1.1.0", "name": "n", "bridge": "\ud800", "ipam": {"type": "policyc-host-local"}}
)
FULL_ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/policyc-none",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/usr/lib/cni",
}


def ask(path: str, data: bytes) -> dict[str, object]:
    """One raw request on the agent socket; the agent's reply object."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply: dict[str, object] = json.loads(b"".join(chunks))
    return reply


@pytest.fixture
def served(net: Net) -> Iterator[Net]:
    """``net`` with the agent running; its stderr must hold no traceback."""
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    with agent(net.node, net.socket_path) as proc:
        yield net
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err


def status(net: Net) -> int:
    r = cni(net, "STATUS")
    assert r.code == 0 or "Traceback" not in r.stderr
    return r.code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff\xfe\x00garbage", 6),
        (b"[1, 2]", 6),
        (b'{"v": 1, "env": "CNI_COMMAND=ADD", "stdin": ""}', 4),
        (b'{"v": 1, "env": ["CNI_COMMAND"], "stdin": ""}', 4),
        (b'{"v": 1, "env": {"CNI_COMMAND": 5}, "stdin": ""}', 4),
        (b'{"v": 1, "env": {"CNI_COMMAND": "VERSION"}, "stdin": 5}', 6),
        (b'{"v": 2}', 6),
        (b'{"v": 1, "env": {"CNI_COMMAND": "ADD", "CNI_NETNS": "a\\u0000b"}, "stdin": ""}', 4),
        (b'{"v": 1, "env": {"CNI_COMMAND": "ADD", "CNI_NETNS": "\\ud800"}, "stdin": ""}', 4),
        (json.dumps({"v": 1, "env": FULL_ENV, "stdin": SURROGATE_BRIDGE}).encode(), 7),
        (NESTED, 6),
        (b"", 6),
    ],
    ids=[
        "garbage",
        "list",
        "env-string",
        "env-list",
        "env-int",
        "stdin-int",
        "v2",
        "env-nul",
        "env-surrogate",
        "stdin-surrogate",
        "deep",
        "empty",
    ],
)
def test_malformed_request_gets_error_reply(served: Net, data: bytes, code: int) -> None:
    reply = ask(served.socket_path, data)
    assert reply["code"] == 1
    assert json.loads(str(reply["stdout"]))["code"] == code
    assert status(served) == 0  # still serving


def test_idle_clients_do_not_starve_the_workers(served: Net) -> None:
    idle = []
    try:
        for _ in range(9):  # one more than the agent's 8 workers
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(served.socket_path)
            idle.append(sock)
        assert status(served) == 0
        for sock in idle:  # answered while every idle client is still connected
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in idle:
            sock.close()


def test_eight_megabyte_config_is_a_size_error(served: Net, pods: list[str]) -> None:
    r = cni(served, "ADD", served.conf(padding="x" * (8 << 20)), pod="/dev/null", cid="c1")
    assert (r.code, r.out.get("code")) == (1, 7), r.raw
    assert "limit" in r.out["msg"]


def test_fifo_netns_does_not_hold_a_worker(served: Net, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = cni(served, "ADD", pod=str(fifo), cid="c1")
    assert r.out.get("code") == 3, r.raw
    assert status(served) == 0
    assert leftovers(served) == []
