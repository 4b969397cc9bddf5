"""The node agent against the fake API server, reporting each transaction.

    python -m bench.scale.watch_agent URL [--backend nftables] [--no-opt]
        [--node node-0] [--page-size 500]

The real agent (``watcher.agent.Agent``) with the real Kubernetes source
(``watcher.sources.k8s.KubernetesSource``, paginated list then watch) and
the real ``Dataplane``, programming the kernel of the network namespace it
runs in (``bench.scale.watch`` starts it under ``ip netns exec``).  Route
sync is off: the scratch namespace has no underlay.

Prints one JSON line per committed sync on stdout: ``t`` (``time.monotonic``
when the kernel had it, CLOCK_MONOTONIC, comparable across processes),
``begun`` (when the sync began), ``compute_s`` (builder changes, or graph,
lower, render and diff) and ``apply_s`` (the kernel commit),
``tx`` (``len(tx)``), ``ops`` (what it changed, by verb and object; an
element op counts its elements), ``ready``, ``pods`` (pods the builder
holds), ``started`` (monotonic time the agent started) and ``rss_mib``
(this process's peak RSS).  Stops when stdin closes, and then prints
``{"kernel_matches": bool}``: the kernel read back equals what it programmed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from typing import Any

STARTED = time.monotonic()

from backends import BACKENDS  # noqa: E402  (after STARTED: imports count as start-up)
from bench.scale.stages import _rss  # noqa: E402
from policyc.compiler import Compiler  # noqa: E402
from policyc.kinds import Kind  # noqa: E402
from watcher.agent import Agent, Options  # noqa: E402
from watcher.dataplane import Dataplane, SyncResult  # noqa: E402
from watcher.sources.k8s import KubernetesSource  # noqa: E402


def tx_ops(tx: Any) -> dict[str, int]:
    """What a transaction changes: ``"<verb> <object>"`` -> count.  nftables
    ops are (verb, object) and an element op counts its values; iptables
    steps count by their type."""
    out: Counter[str] = Counter()
    ops = getattr(tx, "ops", None) or getattr(tx, "steps", None) or ()
    for op in ops:
        if isinstance(op, tuple) and len(op) == 2:
            verb, obj = op
            what = type(obj).__name__.lower()
            out[f"{verb} {what}"] += len(obj.values) if what == "element" else 1
        else:
            out[type(op).__name__.lower()] += 1
    return dict(out)


class Reporting(Dataplane):
    """The watcher's Dataplane, printing each committed transaction."""

    agent: Agent | None = None
    last: Any = None
    computed = 0.0  # time.monotonic() when the last transaction was computed

    def transaction(self, builder: Compiler) -> Any:
        self.last = super().transaction(builder)
        self.computed = time.monotonic()
        return self.last

    def sync(self, builder: Compiler) -> SyncResult:
        begun = self.computed = time.monotonic()
        result = super().sync(builder)
        agent = self.agent
        now = time.monotonic()
        row = {
            "t": now,
            "begun": begun,
            "compute_s": round(self.computed - begun, 3),
            "apply_s": round(now - self.computed, 3),
            "tx": result.commands,
            "ops": tx_ops(self.last),
            "ready": bool(agent and agent.source.synced()),
            "pods": len(builder.keys(Kind.POD)),
            "started": STARTED,
            "rss_mib": _rss(),
        }
        print(json.dumps(row), flush=True)
        return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.watch_agent")
    ap.add_argument("url")
    ap.add_argument("--backend", default="nftables")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default="node-0")
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--batch-window", type=float, default=Options.batch_window)
    ap.add_argument("--log", action="store_true", help="the agent's log on stderr")
    a = ap.parse_args(argv)
    if a.log:
        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)6.0f %(message)s")
    from tests.fakeapi.client import api_client

    source = KubernetesSource(api_client(a.url), node_name=a.node, page_size=a.page_size)
    dp = Reporting(BACKENDS[a.backend], not a.no_opt)
    agent = Agent(
        source,
        dp,
        Options(a.node, resync_interval=3600.0, routes=False, batch_window=a.batch_window),
    )
    dp.agent = agent

    def stop_on_eof() -> None:
        sys.stdin.read()
        agent.stop.set()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    try:
        agent.run()
        matches = dp.programmed is not None and dp.backend.read_kernel() == dp.programmed
        print(json.dumps({"kernel_matches": matches}), flush=True)
    finally:
        dp.cleanup()


if __name__ == "__main__":
    main()
