"""The watcher at scale: start-up and event-to-kernel latency through the API.

    ip netns exec SCRATCH python -m bench.scale.watch FILE [--backend nftables]
        [--no-opt] [--node node-0] [--samples 10]

Run inside a scratch network namespace (``bench.scale.run`` creates and
deletes it; its ``lo`` is up).  This process holds the loopback API server
(``tests.fakeapi``) with every object of the cluster file, then starts the
agent (``bench.scale.watch_agent``) as a second process, so that the
agent's peak RSS is its own:

- **start-up**: from the agent process's start to its first complete
  programming of the kernel (every kind listed, page by page, and every pod
  of the file in the builder), split into ``listed_s`` (imports, lists,
  validation and the builder, up to the first sync), ``compute_s`` (graph,
  lower, render, diff) and ``apply_s`` (the kernel commit);
- then ``--samples`` rounds of five changes made on the API server: pod
  add, pod delete, pod label change, namespace label change and policy
  change.  Each one's latency runs from just before the server commits it
  to the agent's next committed transaction (``time.monotonic`` of both
  processes).  The agent batches events for 20 ms (``Options.batch_window``,
  ``--batch-window``) before it syncs, and that is part of the figure.  Each
  change's figure is split into ``until_sync_ms`` (watch stream, decode,
  validation, builder, batch window: up to the sync's start), ``compute_ms``
  and ``apply_ms`` (from the first sync after the change).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.scale import gen
from bench.scale.events import local_pod, summary
from tests.fakeapi.server import FakeAPIServer

CHANGES = ("pod_add", "pod_delete", "pod_label", "namespace_label", "policy_change")
Change = Callable[[FakeAPIServer], None]


def serve(path: str) -> tuple[FakeAPIServer, int]:
    """The API server holding every item of the List in ``path``; its pod count."""
    with open(path, encoding="utf-8") as fh:
        items = json.load(fh)["items"]
    api = FakeAPIServer(bookmark_interval=0.0)
    pods = 0
    while items:
        obj = items.pop()
        pods += obj["kind"] == "Pod"
        api.create(obj)
    return api, pods


def _relabel(kind: str, ns: str | None, name: str, key: str, a: str, b: str) -> Change:
    def change(api: FakeAPIServer) -> None:
        obj = api.get(kind, ns, name)
        assert obj is not None, f"{kind} {ns}/{name} is not in the cluster"
        labels = obj["metadata"].setdefault("labels", {})
        labels[key] = b if labels.get(key) == a else a
        api.update(obj)

    return change


def _policy_toggle(k: int) -> Change:
    pol = gen.from_ns_label(0, 0)
    if k % 2 == 0:
        pol["spec"]["ingress"][0]["ports"][0]["endPort"] = 8200

    def change(api: FakeAPIServer) -> None:
        api.upsert(copy.deepcopy(pol))

    return change


def _create(obj: dict[str, Any]) -> Change:
    def change(api: FakeAPIServer) -> None:
        api.create(copy.deepcopy(obj))

    return change


def _delete(kind: str, ns: str, name: str) -> Change:
    def change(api: FakeAPIServer) -> None:
        api.delete(kind, ns, name)

    return change


def changes(node: str, n: int) -> Iterator[tuple[str, Change]]:
    """``n`` rounds: add then delete a local pod of ns-0; toggle pod
    ns-0/a0-1's ``app`` (a0 <-> a2); toggle namespace ns-1's ``team``
    (green <-> red, which moves its pods in and out of the peer set of
    ns-0/allow-from-team-0); toggle that policy's port range end."""
    template = gen.pod(0, 0, 0, "web")
    for k in range(n):
        pod = local_pod(k, template, node)
        yield "pod_add", _create(pod)
        yield "pod_delete", _delete("Pod", "ns-0", f"bench-add-{k}")
        yield "pod_label", _relabel("Pod", "ns-0", "a0-1", "app", "a0", "a2")
        yield "namespace_label", _relabel("Namespace", None, "ns-1", "team", "green", "red")
        yield "policy_change", _policy_toggle(k)


class AgentProc:
    """The agent process and the lines it prints, read on a thread."""

    def __init__(self, url: str, opts: list[str]) -> None:
        argv = [sys.executable, "-m", "bench.scale.watch_agent", url, *opts]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            row = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if row is None:
            raise RuntimeError(f"the agent exited ({self.proc.wait()})")
        return row

    def stop(self) -> bool | None:
        """Stop the agent; whether the kernel held what it programmed (None: unknown)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        matches = None
        while (row := self.lines.get(timeout=5)) is not None:
            matches = row.get("kernel_matches", matches)
        return matches


def startup(agent: AgentProc, pods: int, limit: float) -> dict[str, Any]:
    """Wait for the first sync that programs every pod; its figures."""
    deadline = time.monotonic() + limit
    syncs = 0
    while time.monotonic() < deadline:
        row = agent.next(deadline - time.monotonic())
        if row is None:
            break
        syncs += 1
        if row["ready"] and row["pods"] >= pods:
            return {
                "seconds": round(row["t"] - row["started"], 3),
                "listed_s": round(row["begun"] - row["started"], 3),
                "compute_s": row["compute_s"],
                "apply_s": row["apply_s"],
                "rss_mib": row["rss_mib"],
                "tx": row["tx"],
                "syncs": syncs,
            }
    raise RuntimeError(f"the agent did not program {pods} pods in {limit} s")


QUIET = 1.0  # seconds without a sync that end one change's measurement


def _settle(agent: AgentProc) -> list[dict[str, Any]]:
    """The syncs until the agent has been quiet for QUIET seconds."""
    rows = []
    while (row := agent.next(QUIET)) is not None:
        rows.append(row)
    return rows


def measure(api: FakeAPIServer, agent: AgentProc, node: str, n: int) -> dict[str, Any]:
    """Each change is made once the agent is quiet; its latency is to the
    first sync after it, and every sync until the agent is quiet again is
    counted as its own (one is the goal)."""
    got: dict[str, dict[str, list[Any]]] = {
        c: {"ms": [], "tx": [], "syncs": [], "ops": [], "wait": [], "compute": [], "apply": []}
        for c in CHANGES
    }
    rss = 0.0
    late = _settle(agent)  # anything left from start-up
    for name, change in changes(node, n):
        t0 = time.monotonic()
        change(api)
        first = agent.next(60.0)
        rows = [] if first is None else [first, *_settle(agent)]
        row = got[name]
        row["ms"].append((rows[0]["t"] - t0) * 1e3 if rows else float("nan"))
        if rows:  # where the time went: stream, decode, batch window | compute | kernel
            row["wait"].append((rows[0]["begun"] - t0) * 1e3)
            row["compute"].append(rows[0]["compute_s"] * 1e3)
            row["apply"].append(rows[0]["apply_s"] * 1e3)
        row["tx"].append(sum(r["tx"] for r in rows))
        row["syncs"].append(len(rows))
        row["ops"].append(_merged(rows))
        rss = rows[-1]["rss_mib"] if rows else rss
    out: dict[str, Any] = {"rss_mib": rss, "syncs_after_startup": len(late)}
    for name, row in got.items():
        ms = [v for v in row["ms"] if v == v]
        out[name] = {
            "ms": summary(ms),
            "until_sync_ms": summary(row["wait"]),
            "compute_ms": summary(row["compute"]),
            "apply_ms": summary(row["apply"]),
            "tx": {"min": min(row["tx"], default=0), "max": max(row["tx"], default=0)},
            "ops": row["ops"][-1] if row["ops"] else {},
            "samples": len(row["ms"]),
            "answered": len(ms),
            "syncs": sum(row["syncs"]),
        }
    return out


def _merged(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for k, v in r["ops"].items():
            out[k] = out.get(k, 0) + v
    return out


def run(path: str, opts: list[str], node: str, samples: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    api, pods = serve(path)
    out: dict[str, Any] = {"serve_seconds": round(time.perf_counter() - t0, 3)}
    agent = AgentProc(api.url, [*opts, "--node", node])
    try:
        out["startup"] = startup(agent, pods, limit=600.0)
        out["events"] = measure(api, agent, node, samples)
    finally:
        out["kernel_matches"] = agent.stop()
        api.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.watch")
    ap.add_argument("file")
    ap.add_argument("--backend", default="nftables")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default=gen.NODE)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--batch-window", type=float, help="the agent's batch window, seconds")
    a = ap.parse_args(argv)
    opts = ["--backend", a.backend, *(["--no-opt"] if a.no_opt else [])]
    if a.batch_window is not None:
        opts += ["--batch-window", str(a.batch_window)]
    result = run(a.file, opts, a.node, a.samples)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    os._exit(0)  # the server's threads need no orderly end


if __name__ == "__main__":
    main()
