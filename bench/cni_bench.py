"""Benchmark policyc-cni against the reference bridge + host-local, side by side.

Run as root:  .venv/bin/python bench/cni_bench.py [--pods 30]
It creates its own namespaces (prefix ``pcb<pid>``), re-executes itself inside
the node netns so that every plugin is spawned exactly as a runtime would
(fork + exec with CNI_* env and stdin), and deletes everything at the end.
Not a test: it prints median / p95 of ADD and DEL, sequentially and two at a
time, for: reference, policyc-cni thick (agent running), policyc-cni standalone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv", "bin")
PLUGIN = os.path.join(VENV, "policyc-cni")
REF = "/usr/lib/cni"
PREFIX = f"pcb{os.getpid() % 10000}"


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def conf(kind: str, data: str, subnet: str) -> dict:
    ipam_type = "host-local" if kind == "ref" else "policyc-host-local"
    return {"cniVersion": "1.0.0", "name": f"bench-{kind}", "type": "x",
            "bridge": f"br{kind}"[:15], "isGateway": True, "isDefaultGateway": True,
            "ipam": {"type": ipam_type, "subnet": subnet, "dataDir": data}}


def call(exe: str, command: str, doc: dict, pod: str, cid: str, sock: str) -> float:
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
           "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "eth0", "CNI_PATH": REF,
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}",
           "POLICYC_CNI_SOCKET": sock}
    start = time.perf_counter()
    proc = subprocess.run([exe], input=json.dumps(doc).encode(), env=env, capture_output=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{exe} {command} failed: {proc.stdout!r} {proc.stderr!r}")
    return took * 1e3


def measure(name: str, exe: str, doc: dict, pods: list[str], sock: str, par: int
            ) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for command in ("ADD", "DEL"):
        def one(i: int, command: str = command) -> float:
            return call(exe, command, doc, pods[i], f"{name}-{par}-{i}", sock)

        with ThreadPoolExecutor(par) as pool:
            out[command] = list(pool.map(one, range(len(pods))))
    return out


def inner(n: int) -> None:
    data = tempfile.mkdtemp(prefix="pcbench-")
    sock = os.path.join(data, "cni.sock")
    nosock = os.path.join(data, "none.sock")
    pods = [f"{PREFIX}p{i}" for i in range(n)]
    subprocess.run(["ip", "-batch", "-"], check=True,
                   input="".join(f"netns add {p}\n" for p in pods).encode())
    rows: list[tuple[str, int, dict[str, list[float]]]] = []
    agent = subprocess.Popen([os.path.join(VENV, "python"), "-m", "cni.agent_server",
                              "--socket", sock], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            time.sleep(0.02)
        runs: list[tuple[str, str, dict, str]] = [
            ("reference bridge+host-local", os.path.join(REF, "bridge"),
             conf("ref", data, "10.244.30.0/24"), nosock),
            ("policyc-cni thick", PLUGIN, conf("thick", data, "10.244.31.0/24"), sock),
            ("policyc-cni standalone", PLUGIN, conf("alone", data, "10.244.32.0/24"), nosock),
        ]
        for par in (1, 2):
            for label, exe, doc, s in runs:  # interleaved: same run, same conditions
                call_warm: Callable[[], object] = lambda e=exe, d=doc, s=s: (  # noqa: E731
                    call(e, "ADD", d, pods[0], "warm", s), call(e, "DEL", d, pods[0], "warm", s))
                call_warm()
                rows.append((label, par, measure(label.split()[0] + label[-5:], exe, doc, pods,
                                                 s, par)))
    finally:
        agent.terminate()
        agent.wait()
        subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True,
                       input="".join(f"netns del {p}\n" for p in pods).encode())
        shutil.rmtree(data, ignore_errors=True)
    report(rows, n)


def report(rows: list[tuple[str, int, dict[str, list[float]]]], n: int) -> None:
    ref = {(par, c): statistics.median(r[c]) for label, par, r in rows if label.startswith("ref")
           for c in ("ADD", "DEL")}
    print(f"{n} pods per run; times in ms (fork+exec of the plugin included)")
    print(f"{'plugin':30} {'par':>3} {'ADD med':>8} {'ADD p95':>8} {'DEL med':>8} "
          f"{'DEL p95':>8} {'ADD x ref':>9} {'DEL x ref':>9}")
    for label, par, r in rows:
        add, dele = statistics.median(r["ADD"]), statistics.median(r["DEL"])
        print(f"{label:30} {par:>3} {add:8.1f} {p95(r['ADD']):8.1f} {dele:8.1f} "
              f"{p95(r['DEL']):8.1f} {add / ref[(par, 'ADD')]:9.2f} "
              f"{dele / ref[(par, 'DEL')]:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.pods)
        return
    node = f"{PREFIX}n"
    subprocess.run(["ip", "netns", "add", node], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", node, sys.executable, os.path.abspath(__file__),
                        "--inner", "--pods", str(args.pods)], check=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
    finally:
        subprocess.run(["ip", "netns", "del", node])


if __name__ == "__main__":
    main()
