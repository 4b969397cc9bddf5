"""Keep a compiled ruleset and put it in or take it out of the kernel on request.

    ip netns exec NODE python -m bench.scale.program FILE [--backend nftables]
        [--no-opt] [--node node-0]

Compiles once, prints ``ready``, then reads commands from stdin, one a line:
``apply`` (program the whole ruleset: ``diff(None, state)``), ``remove``
(``backend.remove()``); answers ``ok`` or ``error: ...`` per line.  The
connection-rate rounds alternate the two without compiling again.
"""

from __future__ import annotations

import argparse
import sys

from backends import BACKENDS
from bench.scale import gen
from policyc.errors import BackendError
from policyc.pipeline import read_cluster, ruleset_of


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.program")
    ap.add_argument("file")
    ap.add_argument("--backend", default="nftables")
    ap.add_argument("--no-opt", action="store_true")
    ap.add_argument("--node", default=gen.NODE)
    a = ap.parse_args(argv)
    b = BACKENDS[a.backend]
    state = b.render(ruleset_of(read_cluster([a.file]), a.node, not a.no_opt))
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            if line.strip() == "apply":
                b.apply(b.diff(None, state))
            elif line.strip() == "remove":
                b.remove()
            else:
                raise BackendError(f"unknown command {line.strip()!r}")
            print("ok", flush=True)
        except BackendError as exc:
            print(f"error: {exc}", flush=True)


if __name__ == "__main__":
    main()
