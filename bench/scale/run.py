"""The scale benchmark of issue 9: one command, a table and a JSON file.

    python -m bench.scale --size S|M|L [--backend nftables|iptables] [--no-opt]
        [--json out.json] [--parts compile,events,conn] [--stop-after STAGE]

1. writes the seeded cluster (``bench.scale.gen``) as one ``kind: List``
   JSON file, as ``kubectl get pods,ns,netpol,nodes -A -o json`` does;
2. cold compile per stage, in a fresh interpreter (``bench.scale.stages``),
   then again under tracemalloc for each stage's heap peak (``--no-heap``
   skips it);
3. incremental latency per event inside a scratch netns
   (``bench.scale.events`` under ``ip netns exec``);
4. new TCP connections per second, ruleset vs none (``bench.scale.connrate``).

Parts 3 and 4 need root and create and delete their own network namespaces
(``pcb<pid>-*``); nothing is asserted, every figure is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.scale import connrate, gen
from bench.scale.netns import Scratch
from bench.scale.report import table
from bench.scale.stages import STAGES

PARTS = ("compile", "events", "conn")
EXTRA_PARTS = ("watch",)  # only when asked for: it holds the cluster twice


def child(module: str, args: list[str], netns: str | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` (in ``netns`` if given); its JSON stdout."""
    argv = [sys.executable, "-m", module, *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        return {"error": f"{module} exited {proc.returncode}: " + " | ".join(tail)}
    got: dict[str, Any] = json.loads(proc.stdout)
    return got


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(gen.SIZES), default="S")
    ap.add_argument("--backend", choices=("nftables", "iptables"), default="nftables")
    ap.add_argument("--no-opt", action="store_true", help="switch the optimiser passes off")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    ap.add_argument("--parts", default=",".join(PARTS), help="any of compile,events,conn,watch")
    ap.add_argument("--stop-after", choices=STAGES, default=STAGES[-1], help="last compile stage")
    ap.add_argument("--no-heap", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--pods", type=int, help="override the size's pod count")
    ap.add_argument("--policies", type=int, help="override the size's policy count")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cluster", metavar="FILE", help="write the cluster here (kept)")
    ap.add_argument("--samples", type=int, default=30, help="events of each kind")
    ap.add_argument("--watch-samples", type=int, default=10, help="watcher changes of each kind")
    ap.add_argument("--batch-window", type=float, help="the watcher's batch window, seconds")
    ap.add_argument("--rounds", type=int, default=5, help="connection-rate rounds per mode")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per round")
    return ap.parse_args(argv)


def size_of(a: argparse.Namespace) -> gen.Size:
    size = gen.SIZES[a.size]
    if a.pods is not None:
        size = dataclasses.replace(size, pods=a.pods)
    if a.policies is not None:
        size = dataclasses.replace(size, policies=a.policies)
    return size


def compile_part(path: str, a: argparse.Namespace, opts: list[str]) -> dict[str, Any]:
    args = [path, *opts, "--stop-after", a.stop_after]
    out = {"cold": child("bench.scale.stages", args)}
    if not a.no_heap:
        out["heap"] = child("bench.scale.stages", [*args, "--heap"])
    return out


def events_part(path: str, a: argparse.Namespace, opts: list[str]) -> dict[str, Any]:
    with Scratch("ev") as scratch:
        ns = scratch.add("node")
        return child("bench.scale.events", [path, *opts, "--samples", str(a.samples)], ns)


def watch_part(path: str, a: argparse.Namespace, opts: list[str]) -> dict[str, Any]:
    with Scratch("wa") as scratch:
        ns = scratch.add("node")
        args = [path, *opts, "--samples", str(a.watch_samples)]
        if a.batch_window is not None:
            args += ["--batch-window", str(a.batch_window)]
        return child("bench.scale.watch", args, ns)


def conn_part(path: str, a: argparse.Namespace) -> dict[str, Any]:
    try:
        return connrate.measure(path, a.backend, not a.no_opt, a.rounds, a.seconds)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        return {"error": str(exc)}


def run(a: argparse.Namespace, path: str) -> dict[str, Any]:
    size = size_of(a)
    parts = [p for p in a.parts.split(",") if p]
    t0 = time.perf_counter()
    nbytes = gen.write(size, path, a.seed)
    result: dict[str, Any] = {
        "size": dataclasses.asdict(size) | {"namespaces": size.namespaces, "nodes": size.nodes},
        "local_pods": min(size.pods, gen.PODS_PER_NODE),
        "backend": a.backend,
        "opt": not a.no_opt,
        "seed": a.seed,
        "cluster_bytes": nbytes,
        "generate_seconds": round(time.perf_counter() - t0, 3),
    }
    opts = ["--backend", a.backend, *(["--no-opt"] if a.no_opt else [])]
    if "compile" in parts:
        result["compile"] = compile_part(path, a, opts)
    if "events" in parts:
        result["events"] = events_part(path, a, opts)
    if "conn" in parts:
        result["conn"] = conn_part(path, a)
    if "watch" in parts:
        result["watch"] = watch_part(path, a, opts)
    return result


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    if os.geteuid() != 0 and set(a.parts.split(",")) & {"events", "conn", "watch"}:
        sys.exit("events, conn and watch need root (network namespaces); use --parts compile")
    with tempfile.TemporaryDirectory(prefix="policyc-bench-") as tmp:
        path = a.cluster or os.path.join(tmp, f"cluster-{a.size}.json")
        result = run(a, path)
    print(table(result))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
