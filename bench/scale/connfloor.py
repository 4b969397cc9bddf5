"""What a new connection pays before any policy: the floor under ``--parts conn``.

    sudo .venv/bin/python -m bench.scale.connfloor [--rounds 5] [--seconds 3]
        [--json FILE]

The same two-pod lab as ``bench.scale.connrate`` (scratch namespaces, deleted
by name), but instead of a policyc ruleset it programs minimal ones with
``nft -f`` and compares each with no ruleset, ABBA-alternated in one run:

    hook       an inet ``forward`` chain that accepts everything
    ct         the same, with ``ct state established,related accept`` first
               (conntrack: what "replies of allowed flows" needs)
    ct+bridge  plus a bridge ``prerouting`` chain like policyc's anti-spoofing

A policyc ruleset can cost no less than ``ct+bridge``; dividing its ratio by
this one's gives policyc's own share (docs/bench.md).  Prints a table, writes
JSON, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from typing import Any

from bench.scale import gen
from bench.scale.connrate import PAIR, PY, Lab, _ready, _round, build
from bench.scale.netns import Scratch

_FORWARD = """table inet pcfloor {
  chain forward {
    type filter hook forward priority 0;
%s    accept
  }
}
"""
_BRIDGE = """table bridge pcfloor {
  chain prerouting {
    type filter hook prerouting priority 0;
    iifname != "pc*" accept
    accept
  }
}
"""
CT = "    ct state established,related accept\n"
RULESETS = {
    "hook": _FORWARD % "",
    "ct": _FORWARD % CT,
    "ct+bridge": _FORWARD % CT + _BRIDGE,
}


def _nft(netns: str, args: list[str], text: str | None = None) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", *args], input=text, text=True, check=True)


def _compare(lab: Lab, ruleset: str, rounds: int, seconds: float) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"ruleset": [], "none": []}
    for r in range(rounds):
        for mode in ("ruleset", "none") if r % 2 == 0 else ("none", "ruleset"):
            _nft(lab.node, ["flush", "ruleset"])
            if mode == "ruleset":
                _nft(lab.node, ["-f", "-"], ruleset)
            got = _round(lab, seconds)
            rates[mode].append(round(got["connections"] / got["seconds"], 1))
    _nft(lab.node, ["flush", "ruleset"])
    med = {m: statistics.median(v) for m, v in rates.items()}
    ratio = round(med["ruleset"] / med["none"], 3) if med["none"] else None
    return {"per_second": rates, "median": med, "ratio": ratio}


def measure(rounds: int, seconds: float) -> dict[str, Any]:
    """Each of ``RULESETS`` against no ruleset: rates per round, medians, ratio."""
    with Scratch("floor") as scratch:
        lab = build(scratch)
        argv = ["ip", "netns", "exec", lab.server, PY, "-m", "bench.scale.tcploop", "serve"]
        server = subprocess.Popen(
            [*argv, PAIR[1][2], str(gen.HTTP_PORT)], stdout=subprocess.PIPE, text=True
        )
        try:
            _ready(server, "the TCP server")
            return {name: _compare(lab, text, rounds, seconds) for name, text in RULESETS.items()}
        finally:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale.connfloor", description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="rounds per mode (ABBA)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per round")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    a = ap.parse_args(argv)
    result = measure(a.rounds, a.seconds)
    print(f"{'ruleset':10} {'conn/s':>8} {'none':>8} {'ratio':>6}")
    for name, r in result.items():
        med = r["median"]
        print(f"{name:10} {med['ruleset']:8.0f} {med['none']:8.0f} {r['ratio']:6}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
