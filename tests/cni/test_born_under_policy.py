"""Pods born under policy: no denied packet crosses a new port, ever.

The node policy (``policy_hook.py``, standing in for the watcher) lets every
pod send to UDP 7001 and never to UDP 7002.  Each trial creates a pod,
runs ADD, and sends the instant ADD returns, from a socket made beforehand
in the pod's netns.  A receiver pod counts what arrives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from policyc.names import IFACE_PREFIX, pod_iface
from tests.cni.conftest import new_pods
from tests.cni.helpers import (
    FAILCLOSED_TABLE,
    Net,
    agent,
    allow_port,
    cni,
    in_ns,
    ns_socket,
    pod_args,
    udp_reaches,
)

HOOK = os.path.join(os.path.dirname(__file__), "policy_hook.py") + ":on_add"
TRIALS = 100
_timings: list[float] = []


def _drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(64))
        except (BlockingIOError, TimeoutError):
            return got


def _receiver(net: Net, pods: list[str]) -> tuple[str, str, socket.socket, socket.socket]:
    (rpod,) = new_pods(pods)
    r = cni(net, "ADD", pod=rpod, cid="rx", args=pod_args("t", "rx"))
    assert r.code == 0, r.raw
    ip = r.out["ips"][0]["address"].split("/")[0]
    allowed, denied = ns_socket(rpod), ns_socket(rpod)
    allowed.bind((ip, 7001))
    denied.bind((ip, 7002))
    allowed.setblocking(False)
    denied.setblocking(False)
    return rpod, ip, allowed, denied


def _trial(net: Net, pod: str, name: str, rx_ip: str, tag: bytes) -> float:
    tx = ns_socket(pod)
    try:
        r = cni(net, "ADD", pod=pod, cid=f"c-{name}", args=pod_args("t", name))
        _timings.append(r.seconds)
        t_return = time.perf_counter()
        tx.sendto(tag + b"-denied", (rx_ip, 7002))  # the instant ADD returns
        tx.sendto(tag + b"-allowed", (rx_ip, 7001))
        assert r.code == 0, r.raw
        return t_return
    finally:
        tx.close()


def test_known_pods_are_programmed_before_add_returns(net: Net, pods: list[str]) -> None:
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    trial_pods = new_pods(pods, TRIALS)
    with agent(net.node, net.socket_path, hook=HOOK):
        _, rx_ip, allowed, denied = _receiver(net, pods)
        arrived = 0
        for i, pod in enumerate(trial_pods):
            _trial(net, pod, f"known{i}", rx_ip, b"k%d" % i)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not _drain_into(allowed, i):
                time.sleep(0.001)
            else:
                arrived += 1
            assert _drain(denied) == [], f"trial {i}: a denied packet crossed"
        time.sleep(0.3)
        assert _drain(denied) == []
    # Allowed traffic sent at the same instant got through: the rules were
    # programmed before ADD returned (not merely fail-closed).
    assert arrived == TRIALS
    _timings.sort()
    print(f"ADD (thick, exec'd) median {_timings[len(_timings) // 2] * 1e3:.1f} ms")


_seen: set[int] = set()


def _drain_into(sock: socket.socket, i: int) -> bool:
    for pkt in _drain(sock):
        _seen.add(int(pkt.split(b"-")[0][1:]))
    return i in _seen


@pytest.mark.parametrize("mode", ["thick", "standalone"])
def test_unknown_pods_fail_closed(net: Net, pods: list[str], mode: str) -> None:
    trials = TRIALS if mode == "thick" else 5
    trial_pods = new_pods(pods, trials)
    sock = os.path.join(net.data_dir, "cni.sock")
    with agent(net.node, sock, hook=HOOK):
        net.socket_path = sock if mode == "thick" else ""
        rpod, rx_ip, allowed, denied = _receiver(net, pods)
        for i, pod in enumerate(trial_pods):
            # A fresh node: no policy table at all; the plugin must install its
            # fail-closed table before the port joins the bridge.
            in_ns(net.node, "nft", "delete", "table", "bridge", "policyc", check=False)
            _trial(net, pod, f"unknown{i}", rx_ip, b"u%d" % i)
            time.sleep(0.02)
            assert _drain(allowed) == [] and _drain(denied) == [], f"trial {i} leaked"
            if i < trials - 1:  # keep the last one for the control below
                d = cni(net, "DEL", pod=pod, cid=f"c-unknown{i}", args=pod_args("t", f"unknown{i}"))
                assert d.code == 0, d.raw
        time.sleep(0.3)
        assert _drain(allowed) == [] and _drain(denied) == []
        # Control: once programmed, the same pod does reach the receiver.
        allow_port(net.node, pod_iface("t", "rx"), pod_iface("t", f"unknown{trials - 1}"))
        assert udp_reaches(trial_pods[-1], rpod, rx_ip, port=7003)
    ruleset = subprocess.run(
        ["ip", "netns", "exec", net.node, "nft", "list", "table", *FAILCLOSED_TABLE.split()],
        capture_output=True,
        text=True,
    ).stdout
    assert f'iifname "{IFACE_PREFIX}*" drop' in ruleset
