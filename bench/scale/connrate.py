"""New TCP connections per second between two local pods, ruleset vs none.

Topology, all in scratch namespaces (``bench.scale.netns``)::

    <p>node  br0 10.96.0.1/24 (node-0's bridge gateway), two ports named
             pod_iface("ns-0", "a0-0") and pod_iface("ns-0", "a0-1")
    <p>pa    eth0 10.96.0.2/24  = pod ns-0/a0-0 of the generated cluster
    <p>pb    eth0 10.96.0.3/24  = pod ns-0/a0-1, serving TCP 8080 ("http")

Both pods are isolated in both directions (default-deny) and allowed to
each other by allow-same-app, so every new connection walks both pods'
policy chains.  Rounds alternate the ruleset programmed and removed (ABBA
order, so neither mode always runs first); each round is one connect loop
of ``seconds`` (``bench.scale.tcploop``).  The result is the ratio of the
medians of the per-round rates.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import IO, Any

from bench.scale import gen
from bench.scale.netns import Scratch, batch, sysctl
from policyc.names import pod_iface

PY = sys.executable
GATEWAY = str(gen.node_cidr(0).network_address + 1)
PAIR = (("ns-0", "a0-0", str(gen.pod_ip(0))), ("ns-0", "a0-1", str(gen.pod_ip(1))))


@dataclass(frozen=True, slots=True)
class Lab:
    node: str
    client: str
    server: str


def build(scratch: Scratch) -> Lab:
    """The node with its bridge and the two pods on it."""
    node = scratch.add("node")
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        sysctl(node, key, 1)  # the iptables backend filters bridged frames through them
    batch(["link add br0 type bridge", f"addr add {GATEWAY}/24 dev br0", "link set br0 up"], node)
    pods = []
    for i, (ns, name, addr) in enumerate(PAIR):
        pod = scratch.add(f"p{i}")
        iface = pod_iface(ns, name)
        batch(
            [
                f"link add {iface} type veth peer name eth0 netns {pod}",
                f"link set {iface} master br0 up",
            ],
            node,
        )
        batch([f"addr add {addr}/24 dev eth0", "link set eth0 up"], pod)
        batch([f"route add default via {GATEWAY}"], pod)
        pods.append(pod)
    return Lab(node, pods[0], pods[1])


def _cmd(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline().strip()
    if answer != "ok":
        raise RuntimeError(f"program {line}: {answer or 'no answer'}")


def _ready(proc: subprocess.Popen[str], what: str) -> None:
    out: IO[str] | None = proc.stdout
    line = out.readline().strip() if out else ""
    if line != "ready":
        raise RuntimeError(f"{what} did not start: {line!r}")


def _round(lab: Lab, seconds: float) -> dict[str, float]:
    argv = ["ip", "netns", "exec", lab.client, PY, "-m", "bench.scale.tcploop", "connect"]
    out = subprocess.run(
        [*argv, PAIR[1][2], str(gen.HTTP_PORT), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    got: dict[str, float] = json.loads(out.stdout)
    return got


def measure(
    path: str, backend: str, opt: bool, rounds: int = 5, seconds: float = 3.0
) -> dict[str, Any]:
    """``rounds`` rounds of each mode; rates per round and the ratio of medians."""
    with Scratch("conn") as scratch:
        lab = build(scratch)
        exe = ["ip", "netns", "exec"]
        prog_argv = [*exe, lab.node, PY, "-m", "bench.scale.program", path, "--backend", backend]
        prog = subprocess.Popen(
            prog_argv + ([] if opt else ["--no-opt"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        serve = [*exe, lab.server, PY, "-m", "bench.scale.tcploop", "serve", PAIR[1][2]]
        server = subprocess.Popen([*serve, str(gen.HTTP_PORT)], stdout=subprocess.PIPE, text=True)
        try:
            _ready(prog, "the programmer")
            _ready(server, "the TCP server")
            return _rounds(lab, prog, rounds, seconds)
        finally:
            for p in (server, prog):
                p.kill()
                p.wait()


def _rounds(lab: Lab, prog: subprocess.Popen[str], rounds: int, seconds: float) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"ruleset": [], "none": []}
    errors = {"ruleset": 0.0, "none": 0.0}
    _cmd(prog, "apply")
    probe = _round(lab, 0.3)  # the pair must be allowed, or the figure means nothing
    if probe["connections"] == 0:
        raise RuntimeError(f"the pair cannot connect through the ruleset: {probe}")
    for r in range(rounds):
        for mode in ("ruleset", "none") if r % 2 == 0 else ("none", "ruleset"):
            _cmd(prog, "apply" if mode == "ruleset" else "remove")
            got = _round(lab, seconds)
            rates[mode].append(round(got["connections"] / got["seconds"], 1))
            errors[mode] += got["errors"]
    _cmd(prog, "remove")
    med = {m: statistics.median(v) for m, v in rates.items()}
    return {
        "per_second": rates,
        "median": med,
        "errors": errors,
        "ratio": round(med["ruleset"] / med["none"], 3) if med["none"] else None,
        "rounds": rounds,
        "seconds_per_round": seconds,
    }
