"""Cold compile of one cluster file, stage by stage, in a fresh interpreter.

    python -m bench.scale.stages FILE [--backend nftables] [--no-opt]
        [--node node-0] [--heap] [--stop-after build]

prints one JSON object: ``{"stages": [{"stage", "seconds", "peak_rss_mib",
"heap_peak_mib"}...], "size": {...}, "text_bytes": n}``; the first row,
``start``, is the interpreter with the modules imported.  Stages, each the real module:

    load      policyc.load.open_paths         file -> raw objects (a List's
                                              items decoded as validated)
    validate  policyc.parse.build_cluster     raw objects -> typed cluster
    build     Compiler(node).load(c).graph()  cluster -> rule graph
    passes    policyc.passes.optimise         (enabled=False with --no-opt)
    lower     policyc.lower.lower             graph -> backend-neutral chains
    render    BACKENDS[b].render              chains -> typed kernel state
    write     BACKENDS[b].write               state -> the text ``compile`` prints

``peak_rss_mib`` is the process's peak RSS once the stage is done
(``VmHWM``, monotone: the largest stage so far sets it).  Each row is also
printed to stderr as it completes, so a run stopped for its size (L) still
leaves the stages it finished.  With ``--heap``
each stage runs under ``tracemalloc`` and ``heap_peak_mib`` is the Python
heap's peak of what that stage allocates (what earlier stages hold
is not counted); tracemalloc slows every allocation, so
the caller runs ``--heap`` as a second process and takes times from the first.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.scale.size import ruleset_size

MIB = 1024 * 1024
STAGES = ("load", "validate", "build", "passes", "lower", "render", "write")


def _stage_fns(path: str, backend: str, opt: bool, node: str) -> list[Callable[[Any], Any]]:
    """One function per stage, each taking the previous stage's result."""
    from backends import BACKENDS
    from policyc.compiler import Compiler
    from policyc.load import open_paths
    from policyc.lower import lower
    from policyc.parse import build_cluster
    from policyc.passes import optimise

    b = BACKENDS[backend]
    return [
        lambda _: open_paths([path]),
        build_cluster,
        lambda cluster: Compiler(node).load(cluster).graph(),
        lambda graph: optimise(graph, enabled=opt),
        lower,
        b.render,
        lambda state: (state, b.write(state)),
    ]


def _rss() -> float:
    """This process's peak RSS so far in MiB: ``VmHWM`` of /proc/self/status.

    Not ``ru_maxrss``: Linux carries the pre-exec image's peak into it, so a
    child forked from a parent that held the generated cluster would report
    the parent's size."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(
    path: str, backend: str, opt: bool, node: str, heap: bool, stop_after: str
) -> dict[str, Any]:
    """Run the stages up to ``stop_after``; the figures as a JSON-able dict."""
    out: list[dict[str, Any]] = []
    value: Any = None
    fns = _stage_fns(path, backend, opt, node)  # imports before the first stage
    out.append({"stage": "start", "seconds": 0.0, "peak_rss_mib": _rss()})
    for name, fn in zip(STAGES, fns, strict=True):
        if heap:
            tracemalloc.start()
        t0 = time.perf_counter()
        value = fn(value)
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"stage": name, "seconds": round(seconds, 4)}
        row["peak_rss_mib"] = _rss()
        if heap:
            row["heap_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / MIB, 1)
            tracemalloc.stop()
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # survives a killed run
        if name == stop_after and name != STAGES[-1]:
            return {"stages": out, "size": {}}
    state, text = value
    return {"stages": out, "size": ruleset_size(state), "text_bytes": len(text)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.stages")
    ap.add_argument("file")
    ap.add_argument("--backend", default="nftables")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default="node-0")
    ap.add_argument("--heap", action="store_true")
    ap.add_argument("--stop-after", choices=STAGES, default=STAGES[-1])
    a = ap.parse_args(argv)
    result = run(a.file, a.backend, not a.no_opt, a.node, a.heap, a.stop_after)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
