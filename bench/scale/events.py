"""Incremental latency: pod add, pod delete, label change, policy change.

    ip netns exec SCRATCH python -m bench.scale.events FILE [--backend nftables]
        [--no-opt] [--node node-0] [--samples 30]

Run inside a scratch network namespace (``bench.scale.run`` creates and
deletes it): the full ruleset is applied once, then each event is

    compute  raw JSON -> policyc.parse.read_one -> Compiler.put/remove
             -> Compiler.changes() -> backend.patch (set elements only) or,
             when rules changed, lower + render + backend.diff
    apply    backend.apply(tx) in the scratch namespace's kernel

as the watcher's ``Dataplane`` does it (``watcher.dataplane``).  Prints one
JSON object: per event, ``compute_ms``/``apply_ms`` median and p99 and the
transaction sizes (``len(tx)``); ``full`` is the first programming.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from backends import BACKENDS
from bench.scale import gen
from policyc.compiler import Compiler
from policyc.kinds import Kind
from policyc.load import load_paths, parse_text
from policyc.parse import build_cluster, read_one
from watcher.dataplane import Dataplane

EVENTS = ("pod_add", "pod_delete", "label_change", "policy_change")


def put_json(c: Compiler, obj: dict[str, Any]) -> None:
    """What the watcher does with an object from the API: parse, validate, put."""
    (raw,) = parse_text(json.dumps(obj), "event.json")
    model = read_one(raw)
    if model is not None:
        c.put(model)


def remove_pod(c: Compiler, key: str) -> None:
    c.remove(Kind.POD, key)


def local_pod(k: int, template: dict[str, Any], node: str) -> dict[str, Any]:
    """A new pod on ``node``: ``template`` renamed, with a free address of node-0's /24."""
    pod = copy.deepcopy(template)
    pod["metadata"]["name"] = f"bench-add-{k}"
    ip = str(gen.node_cidr(0).network_address + 200 + k % 50)
    pod["status"]["podIP"], pod["status"]["podIPs"] = ip, [{"ip": ip}]
    pod["spec"]["nodeName"] = node
    return pod


def steps(node: str, n: int) -> Iterator[tuple[str, Callable[[Compiler], None]]]:
    """``n`` rounds of the four events.  Add then delete a new local pod of
    ns-0 (app a0); toggle pod ``ns-0/a0-1``'s app between a2 and a0 (it leaves
    and re-enters allow-same-app and the matchExpressions policy); toggle
    ``ns-0/allow-from-team-0``'s port range end between 8200 and 8100."""
    existing = gen.pod(1, 0, 0, "api")  # as gen.pods writes it
    for k in range(n):
        added = local_pod(k, gen.pod(0, 0, 0, "web"), node)
        yield "pod_add", functools.partial(put_json, obj=added)
        key = f"ns-0/bench-add-{k}"
        yield "pod_delete", functools.partial(remove_pod, key=key)
        relabel = copy.deepcopy(existing)
        relabel["metadata"]["labels"]["app"] = "a0" if k % 2 else "a2"
        yield "label_change", functools.partial(put_json, obj=relabel)
        pol = gen.from_ns_label(0, 0)
        if k % 2 == 0:
            pol["spec"]["ingress"][0]["ports"][0]["endPort"] = 8200
        yield "policy_change", functools.partial(put_json, obj=pol)


def summary(values: list[float]) -> dict[str, float]:
    """Median and p99 (inclusive quantiles; with few samples p99 is near the max)."""
    if len(values) < 2:
        v = values[0] if values else 0.0
        return {"median": round(v, 3), "p99": round(v, 3)}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"median": round(statistics.median(values), 3), "p99": round(q[98], 3)}


def run(path: str, backend: str, opt: bool, node: str, samples: int) -> dict[str, Any]:
    b = BACKENDS[backend]
    c = Compiler(node).load(build_cluster(load_paths([path])))
    dp = Dataplane(b, opt)  # the watcher's own choice of patch or render + diff
    t0 = time.perf_counter()
    tx = dp.transaction(c)
    t1 = time.perf_counter()
    b.apply(tx)
    t2 = time.perf_counter()
    dp.programmed = tx.after
    full = {"compute_ms": (t1 - t0) * 1e3, "apply_ms": (t2 - t1) * 1e3, "tx": len(tx)}
    got: dict[str, dict[str, list[float]]] = {
        e: {"compute_ms": [], "apply_ms": [], "tx": []} for e in EVENTS
    }
    for event, step in steps(node, samples):
        t0 = time.perf_counter()
        step(c)
        tx = dp.transaction(c)
        t1 = time.perf_counter()
        if len(tx):
            b.apply(tx)
        t2 = time.perf_counter()
        dp.programmed = tx.after
        row = got[event]
        row["compute_ms"].append((t1 - t0) * 1e3)
        row["apply_ms"].append((t2 - t1) * 1e3)
        row["tx"].append(len(tx))
    out: dict[str, Any] = {"full": {k: round(v, 3) for k, v in full.items()}}
    for event, row in got.items():
        out[event] = {
            "compute_ms": summary(row["compute_ms"]),
            "apply_ms": summary(row["apply_ms"]),
            "tx": {"min": min(row["tx"]), "max": max(row["tx"])},
            "samples": len(row["tx"]),
        }
    out["kernel_matches"] = b.read_kernel() == dp.programmed
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.events")
    ap.add_argument("file")
    ap.add_argument("--backend", default="nftables")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default=gen.NODE)
    ap.add_argument("--samples", type=int, default=30)
    a = ap.parse_args(argv)
    json.dump(run(a.file, a.backend, not a.no_opt, a.node, a.samples), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
