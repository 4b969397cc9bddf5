"""The cost of ``--log-drops`` (issue 12): new TCP connections per second
with logging on vs off, on allowed traffic alone and under a flood of denied
traffic, and the agent's CPU (with its ulogd) while logging.

    sudo .venv/bin/python -m bench.droplog_bench [--rounds 3] [--seconds 3]
        [--backend nftables|iptables|both] [--out bench-droplog.json]

Topology (scratch namespaces, ``bench.scale.netns``, deleted by name)::

    <p>node  br0 10.96.0.1/24; a programmer (the compiled ruleset with and
             without ``--log-drops``) and the agent's log reader (ulogd +
             ``watcher.droplog.Attributor``, NFLOG group 7) run here
    <p>p0    10.96.0.2  pod ns-0/a0-0: the client, allowed to the server
    <p>p1    10.96.0.3  pod ns-0/a0-1: the server, TCP 8080; isolated for
             ingress (allow from app=client only)
    <p>p2    10.96.0.4  pod ns-0/a0-2: the attacker, denied; it sprays SYNs
             at the server as fast as Python can during "flood" runs

Rounds alternate logging on and off (ABBA; switching is one transaction,
the reader keeps running); each runs the client's connect loop
(``bench.scale.tcploop``) for ``seconds`` alone ("allowed"), then beside
the flood ("flood").  Reported: the median rates per mode and their ratio
(on / off), the flood's SYN rate, the drop lines the reader attributed, and
the reader's CPU (it and its ulogd, % of one core) during the flood.
Prints a table, writes JSON, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.scale.netns import Scratch, batch, sysctl
from policyc.names import pod_iface

PY = sys.executable
POLICYC = str(Path(PY).with_name("policyc"))
GATEWAY, PREFIX = "10.96.0.1", 24
PODS = (
    ("a0-0", "10.96.0.2", "client"),
    ("a0-1", "10.96.0.3", "server"),
    ("a0-2", "10.96.0.4", "x"),
)
PORT, LISTEN = 8080, "127.0.0.1:9799"
FLOOD = """
import socket, sys, time
end, n = time.monotonic() + float(sys.argv[2]), 0
while time.monotonic() < end:
    s = socket.socket(); s.setblocking(False)
    s.connect_ex((sys.argv[1], 8080)); s.close(); n += 1
print(n)
"""


def cluster() -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-0"}},
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-0"},
            "spec": {"podCIDR": "10.96.0.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
        },
    ]
    for name, ip, app in PODS:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "ns-0", "labels": {"app": app}},
                "spec": {"nodeName": "node-0", "containers": [{"name": "c", "image": "x"}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
            }
        )
    objs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "server", "namespace": "ns-0"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "server"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
            },
        }
    )
    return objs


def build(scratch: Scratch) -> tuple[str, list[str]]:
    node = scratch.add("node")
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        sysctl(node, key, 1)
    batch(
        ["link add br0 type bridge", f"addr add {GATEWAY}/{PREFIX} dev br0", "link set br0 up"],
        node,
    )
    pods = []
    for i, (name, ip, _) in enumerate(PODS):
        pod = scratch.add(f"p{i}")
        iface = pod_iface("ns-0", name)
        batch(
            [
                f"link add {iface} type veth peer name eth0 netns {pod}",
                f"link set {iface} master br0 up",
            ],
            node,
        )
        batch([f"addr add {ip}/{PREFIX} dev eth0", "link set eth0 up"], pod)
        batch([f"route add default via {GATEWAY}"], pod)
        pods.append(pod)
    return node, pods


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` and its children's threads (ulogd), in clock ticks."""
    total = 0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


PROGRAM = """
import sys
from backends import BACKENDS
from policyc.lower_log import LogConfig
from policyc.pipeline import read_cluster, ruleset_of
b = BACKENDS[sys.argv[2]]
cl = read_cluster([sys.argv[1]])
states = {m: b.render(ruleset_of(cl, "node-0", True, LogConfig() if m == "on" else None))
          for m in ("on", "off")}
print("ready", flush=True)
for line in sys.stdin:
    b.apply(b.diff(b.read_kernel(), states[line.strip()]))
    print("ok", flush=True)
b.remove()
"""
READER = """
import sys, threading
from watcher.droplog import Attributor
from watcher.nflog import UlogdReader
lines = []
att = Attributor([lines.append])
r = UlogdReader(7, att)
r.start()
r.connected.wait(10)
print("ready", flush=True)
sys.stdin.read()
r.stop()
print(len(lines), flush=True)
"""


def _start(node: str, code: str, *args: str) -> subprocess.Popen[str]:
    argv = ["ip", "netns", "exec", node, PY, "-c", code, *args]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"helper did not start: {line!r}")
    return proc


def _say(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    if proc.stdout.readline().strip() != "ok":
        raise RuntimeError(f"programmer: {line} failed")


def connect_loop(pod: str, seconds: float) -> float:
    argv = ["ip", "netns", "exec", pod, PY, "-m", "bench.scale.tcploop", "connect"]
    out = subprocess.run(
        [*argv, PODS[1][1], str(PORT), str(seconds)], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    return float(got["connections"]) / float(got["seconds"])


def one_round(pods: list[str], reader: subprocess.Popen[str], seconds: float) -> dict[str, float]:
    """The client alone, then beside the flood; the reader's CPU meanwhile."""
    allowed = connect_loop(pods[0], seconds)
    flood = subprocess.Popen(
        ["ip", "netns", "exec", pods[2], PY, "-c", FLOOD, PODS[1][1], str(seconds + 0.3)],
        stdout=subprocess.PIPE,
        text=True,
    )
    c0, t0 = cpu_ticks(reader.pid), time.monotonic()
    under = connect_loop(pods[0], seconds)
    cpu = (cpu_ticks(reader.pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
    sent = int((flood.communicate()[0] or "0").strip() or 0)
    return {"allowed": allowed, "flood": under, "syn_per_s": sent / (seconds + 0.3), "cpu": cpu}


def measure(backend: str, rounds: int, seconds: float) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with Scratch("droplog") as scratch, tempfile.TemporaryDirectory() as tmpd:
        path = Path(tmpd) / "cluster.yaml"
        path.write_text(yaml.safe_dump_all(cluster()))
        node, pods = build(scratch)
        serve = [PY, "-m", "bench.scale.tcploop", "serve", PODS[1][1], str(PORT)]
        server = subprocess.Popen(
            ["ip", "netns", "exec", pods[1], *serve], stdout=subprocess.PIPE, text=True
        )
        prog = _start(node, PROGRAM, str(path), backend)
        reader = _start(node, READER)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            for r in range(rounds):
                for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                    _say(prog, mode)
                    runs[mode].append(one_round(pods, reader, seconds))
            lines = int(reader.communicate("", timeout=15)[0].strip() or 0)
        finally:
            for p in (server, prog, reader):
                if p.poll() is None:
                    p.kill()
                p.wait()
    return summarise(runs, rounds, seconds, lines)


def summarise(
    runs: dict[str, list[dict[str, float]]], rounds: int, seconds: float, lines: int
) -> dict[str, Any]:
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in runs.items()}
    # Paired: each round runs both modes back to back, so the ratio of a
    # round cancels the machine's slow drift; the median of those ratios
    # (and their quartiles) is the figure.
    ratio: dict[str, Any] = {}
    for k in ("allowed", "flood"):
        pairs = sorted(on[k] / off[k] for on, off in zip(runs["on"], runs["off"], strict=True))
        q = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else [pairs[0]] * 3
        ratio[k] = round(statistics.median(pairs), 3)
        ratio[k + "_quartiles"] = [round(q[0], 3), round(q[2], 3)]
    return {
        "rounds": rounds,
        "seconds": seconds,
        "median": med,
        "ratio_on_off": ratio,
        "drop_lines": lines,
        "runs": runs,
    }


def table(results: dict[str, Any]) -> str:
    rows = ["backend   log  allowed conn/s  under flood conn/s  flood SYN/s  reader CPU"]
    for backend, res in results.items():
        for mode in ("off", "on"):
            m = res["median"][mode]
            rows.append(
                f"{backend:9} {mode:4} {m['allowed']:15.0f} {m['flood']:19.0f} "
                f"{m['syn_per_s']:12.0f} {m['cpu'] * 100:10.1f}%"
            )
        ratio = res["ratio_on_off"]
        rows.append(
            f"{backend:9} on/off (median of paired rounds [quartiles]): allowed "
            f"{ratio['allowed']} {ratio['allowed_quartiles']}, under flood {ratio['flood']} "
            f"{ratio['flood_quartiles']}; {res['drop_lines']} drop lines in all"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--backend", choices=("nftables", "iptables", "both"), default="both")
    p.add_argument("--out", default="bench-droplog.json")
    a = p.parse_args(argv)
    backends = ("nftables", "iptables") if a.backend == "both" else (a.backend,)
    results = {b: measure(b, a.rounds, a.seconds) for b in backends}
    print(table(results))
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
