"""Benchmark policyc-cni against the reference bridge + host-local, side by side.

Run as root:  .venv/bin/python bench/cni_bench.py [--pods 30]
It creates its own namespaces (prefix ``pcb<pid>``), re-executes itself inside
the node netns so that every plugin is spawned exactly as a runtime would
(fork + exec with CNI_* env and stdin), and deletes everything at the end.

Not a test: it prints median / p95 of ADD and DEL, sequentially and two at a
time, for the reference plugins, policyc-cni thick (agent running) and
standalone, all through the launcher a node installs into /opt/cni/bin
(``python -m cni.install_shim``), plus thick through pip's console script for
comparison.  The runs are interleaved pod by pod (each plugin has its own
bridge, subnet and pod namespaces), so every row sees the same machine load.
Then it splits thick mode's time into interpreter start, client and agent.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
VENV = os.path.join(ROOT, ".venv", "bin")
PYTHON = os.path.join(VENV, "python")
CONSOLE_SCRIPT = os.path.join(VENV, "policyc-cni")
REF = "/usr/lib/cni"
PREFIX = f"pcb{os.getpid() % 10000}"
FLOOR = "interpreter start (python -IS -c pass)"


@dataclass
class Row:
    label: str
    exe: list[str]
    doc: dict
    sock: str
    tag: str
    times: dict[tuple[int, str], list[float]] = field(default_factory=dict)


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def conf(kind: str, data: str, subnet: str) -> dict:
    ipam_type = "host-local" if kind == "ref" else "policyc-host-local"
    return {
        "cniVersion": "1.0.0",
        "name": f"bench-{kind}",
        "type": "x",
        "bridge": f"br{kind}"[:15],
        "isGateway": True,
        "isDefaultGateway": True,
        "ipam": {"type": ipam_type, "subnet": subnet, "dataDir": data},
    }


def call(row: Row, command: str, pod: str, cid: str) -> float:
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/run/netns/{pod}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REF,
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}",
        "POLICYC_CNI_SOCKET": row.sock,
    }
    start = time.perf_counter()
    proc = subprocess.run(row.exe, input=json.dumps(row.doc).encode(), env=env, capture_output=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{row.exe} {command} failed: {proc.stdout!r} {proc.stderr!r}")
    return took * 1e3


def run_rounds(rows: list[Row], floor: Row, n: int, par: int) -> None:
    """ADD every pod with every row, then DEL, ``par`` calls of one row at a time;
    rows take turns chunk by chunk (rotating who goes first)."""
    chunks = [list(range(i, min(i + par, n))) for i in range(0, n, par)]
    with ThreadPoolExecutor(par) as pool:
        for command in ("ADD", "DEL"):
            for k, chunk in enumerate(chunks):
                for row in rows[k % len(rows) :] + rows[: k % len(rows)]:

                    def one(i: int, row: Row = row, command: str = command) -> float:
                        return call(row, command, pod(row, i), f"{row.tag}-{par}-{i}")

                    row.times.setdefault((par, command), []).extend(pool.map(one, chunk))
                if par == 1:
                    floor.times.setdefault((par, command), []).append(exec_floor())


def pod(row: Row, i: int) -> str:
    return f"{PREFIX}{row.tag}{i}"


def exec_floor() -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-IS", "-c", "pass"], capture_output=True, check=True)
    return (time.perf_counter() - start) * 1e3


def agent_times(log: str) -> dict[str, float]:
    """containerID/command -> in-agent ms, from the agent's --log-times lines."""
    out = {}
    with open(log) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "policyc-cni-time":
                out[f"{parts[2]}/{parts[1]}"] = float(parts[3])
    return out


def inner(n: int) -> None:
    from cni import install_shim

    data = tempfile.mkdtemp(prefix="pcbench-")
    bindir = os.path.join(data, "opt-cni-bin")  # what /opt/cni/bin would hold
    os.mkdir(bindir)
    launcher = install_shim.install(bindir, PYTHON)
    sock = os.path.join(data, "cni.sock")
    nosock = os.path.join(data, "none.sock")
    log = os.path.join(data, "agent.log")
    with open(log, "w") as logf:
        agent = subprocess.Popen(
            [PYTHON, "-m", "cni.agent_server", "--socket", sock, "--log-times"],
            cwd=ROOT,
            stderr=logf,
        )
    rows = [
        Row(
            "reference bridge+host-local",
            [os.path.join(REF, "bridge")],
            conf("ref", data, "10.244.30.0/24"),
            nosock,
            "ref",
        ),
        Row("policyc-cni thick", [launcher], conf("thick", data, "10.244.31.0/24"), sock, "thick"),
        Row(
            "policyc-cni standalone",
            [launcher],
            conf("alone", data, "10.244.32.0/24"),
            nosock,
            "alone",
        ),
        Row(
            "thick, pip console script",
            [CONSOLE_SCRIPT],
            conf("pip", data, "10.244.33.0/24"),
            sock,
            "pip",
        ),
    ]
    floor = Row(FLOOR, [], {}, "", "floor")
    pods = [pod(row, i) for row in rows for i in range(n)]
    subprocess.run(
        ["ip", "-batch", "-"], check=True, input="".join(f"netns add {p}\n" for p in pods).encode()
    )
    try:
        while not os.path.exists(sock):
            time.sleep(0.02)
        for row in rows:  # warm: pyc files, the agent's threads and sockets, the bridges
            call(row, "ADD", pod(row, 0), "warm")
            call(row, "DEL", pod(row, 0), "warm")
        for par in (1, 2):
            run_rounds(rows, floor, n, par)
    finally:
        agent.terminate()
        agent.wait()
        subprocess.run(
            ["ip", "-force", "-batch", "-"],
            capture_output=True,
            input="".join(f"netns del {p}\n" for p in pods).encode(),
        )
        in_agent = agent_times(log)
        shutil.rmtree(data, ignore_errors=True)
    report(rows, floor, in_agent, n)


def report(rows: list[Row], floor: Row, in_agent: dict[str, float], n: int) -> None:
    med = statistics.median
    ref = rows[0]
    print(
        f"{n} pods per run, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; times in ms, fork+exec of the plugin included"
    )
    print(
        f"{'plugin':30} {'par':>3} {'ADD med':>8} {'ADD p95':>8} {'DEL med':>8} "
        f"{'DEL p95':>8} {'ADD/ref':>8} {'DEL/ref':>8}"
    )
    for par in (1, 2):
        for row in rows:
            add, dele = row.times[(par, "ADD")], row.times[(par, "DEL")]
            print(
                f"{row.label:30} {par:>3} {med(add):8.1f} {p95(add):8.1f} {med(dele):8.1f} "
                f"{p95(dele):8.1f} {med(add) / med(ref.times[(par, 'ADD')]):8.2f} "
                f"{med(dele) / med(ref.times[(par, 'DEL')]):8.2f}"
            )
    print("\nwhere thick mode's time goes (medians, ms; client = total - agent, per call):")
    print(f"{'':30} {'par':>3} {'total':>8} {'exec+py':>8} {'client':>8} {'agent':>8}")
    thick = rows[1]
    for par in (1, 2):
        for command in ("ADD", "DEL"):
            totals = thick.times[(par, command)]
            agent = [
                in_agent.get(f"{thick.tag}-{par}-{i}/{command}", float("nan"))
                for i in range(len(totals))
            ]
            client = [t - a for t, a in zip(totals, agent, strict=True)]
            start = med(floor.times[(1, command)])
            print(
                f"{'thick ' + command:30} {par:>3} {med(totals):8.1f} {start:8.1f} "
                f"{med(client) - start:8.1f} {med(agent):8.1f}"
            )
    print(
        "exec+py: fork+exec of `python -IS -c pass` (sequential runs); client: the "
        "launcher's imports, the request and reply, less exec+py; agent: accept to "
        "reply sent, inside the agent"
    )


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
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                node,
                sys.executable,
                os.path.abspath(__file__),
                "--inner",
                "--pods",
                str(args.pods),
            ],
            check=True,
            env={**os.environ, "PYTHONPATH": ROOT},
        )
    finally:
        subprocess.run(["ip", "netns", "del", node])


if __name__ == "__main__":
    main()
