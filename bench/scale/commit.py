"""Time the nftables start-up commit: one whole ruleset, JSON or text.

    ip netns exec NS python -m bench.scale.commit FILE --mode text|json
        [--no-opt] [--node node-0]

Compiles FILE, then programs ``diff(None, state)`` through libnftables
either as one JSON command list (``printer.commands`` + ``kernel.run``) or
as one ``nft -f`` buffer (``printer.command_text`` + ``kernel.run_text``),
reads the table back and checks it equals ``tx.after``, then removes it.
Prints one JSON object: ``{"mode", "operations", "encode_s", "commit_s",
"read_s", "equal", "peak_rss_mib", "rss_before_mib"}``.  Run it in a scratch
namespace; it never touches any other.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from backends.nftables import BACKEND, kernel, printer
from bench.scale import gen
from policyc.pipeline import read_cluster, ruleset_of


def _hwm_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.commit")
    ap.add_argument("file")
    ap.add_argument("--mode", choices=("text", "json"), default="text")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default=gen.NODE)
    a = ap.parse_args(argv)
    state = BACKEND.render(ruleset_of(read_cluster([a.file]), a.node, not a.no_opt))
    tx = BACKEND.diff(None, state)
    before = _hwm_mib()
    t0 = time.perf_counter()
    if a.mode == "json":
        cmds = printer.commands(tx)
        t1 = time.perf_counter()
        kernel.run(cmds)
    else:
        script = printer.command_text(tx)
        t1 = time.perf_counter()
        kernel.run_text(script)
    t2 = time.perf_counter()
    equal = BACKEND.read_kernel() == tx.after
    t3 = time.perf_counter()
    BACKEND.remove()
    out = {
        "mode": a.mode,
        "operations": len(tx),
        "encode_s": round(t1 - t0, 3),
        "commit_s": round(t2 - t1, 3),
        "read_s": round(t3 - t2, 3),
        "equal": equal,
        "rss_before_mib": round(before),
        "peak_rss_mib": round(_hwm_mib()),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
