"""Heavy-but-valid inputs of issue 13 §2: compile time and kernel load time
(on demand; prints a table, writes JSON, asserts nothing).

    sudo .venv/bin/python bench/heavy_bench.py [--out bench-heavy.json]
        [--scale 1.0] [--only NAME] [--timeout 120]

Each case is written to a temporary directory beside the base cluster, then
``policyc compile`` runs for both backends.  The nftables script is checked
with ``nft -c -f -`` and ``nft -c -f FILE`` (1.0.6 reading a file is
quadratic in the words on one line); the iptables output is loaded with
``ipset restore`` and ``iptables-restore --test`` / ``ip6tables-restore
--test``.  The kernel steps run inside one scratch network namespace that
this script creates and deletes by name (``tests/hostile/netns.py``).

Cases (``tests/support/heavy_inputs.py``): a pod with 100,000 named
container ports (and a policy naming 100 of them); one policy with 100,000
pod-selector peers, 100,000 disjoint ipBlocks (no two merge), 100,000
adjacent ipBlocks (one interval), 100,000 named ports resolving against
that pod; and one with 10,000 mixed peers (pod and namespace selectors,
ipBlocks with excepts) in both directions.  ``in-process`` splits one
compile into load (YAML), validate, compile (graph, passes, lowering) and
each backend's render and text.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends import BACKENDS  # noqa: E402
from policyc.cli import READERS  # noqa: E402
from policyc.load import load_paths  # noqa: E402
from policyc.parse import build_cluster  # noqa: E402
from policyc.pipeline import ruleset_of  # noqa: E402
from tests.hostile.netns import fresh_netns  # noqa: E402
from tests.hostile.repros import BASE  # noqa: E402
from tests.support.heavy_inputs import cases  # noqa: E402

POLICYC = str(Path(sys.executable).with_name("policyc"))


def timed(argv: list[str], timeout: float, stdin: bytes = b"") -> tuple[float, int, str]:
    """(seconds, exit code, last stderr line); code -9 on timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t0, -9, "timeout"
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    return time.perf_counter() - t0, p.returncode, err[-1][:120] if err else ""


def in_ns(ns: str, script: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "sh", "-c", script]


def shape(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {"lines": len(lines), "longest_line": max((len(x) for x in lines), default=0)}


def phases(inputs: list[str]) -> dict[str, float]:
    """Seconds per stage, in this process: where a slow compile spends it."""
    out: dict[str, float] = {}
    t = time.perf_counter()

    def lap(key: str) -> None:
        nonlocal t
        now = time.perf_counter()
        out[key] = round(now - t, 3)
        t = now

    raws = load_paths(inputs, READERS)
    lap("load")
    cluster = build_cluster(raws, warn=lambda m: None)
    lap("validate")
    ruleset = ruleset_of(cluster)
    lap("compile")
    for name, backend in BACKENDS.items():
        state = backend.render(ruleset)
        lap(f"render_{name}")
        backend.files(state) if name == "iptables" else backend.write(state)
        lap(f"text_{name}")
    return out


def run_case(name: str, body: str, tmp: Path, ns: str, timeout: float) -> dict[str, Any]:
    (tmp / "cluster.yaml").write_bytes(BASE)
    (tmp / "case.yaml").write_text(body, encoding="utf-8")
    inputs = [str(tmp / "cluster.yaml"), str(tmp / "case.yaml")]
    row: dict[str, Any] = {"case": name, "input_bytes": len(body), "phases_s": phases(inputs)}
    nft = tmp / "out.nft"
    row["nft_compile_s"], row["nft_compile_rc"], _ = timed(
        [POLICYC, "compile", "--backend", "nftables", "-o", str(nft), *inputs], timeout
    )
    if nft.exists():
        row["nft_shape"] = shape(nft.read_text(encoding="utf-8"))
        row["nft_stdin_s"], row["nft_stdin_rc"], row["nft_stdin_err"] = timed(
            in_ns(ns, "nft -c -f -"), timeout, nft.read_bytes()
        )
        row["nft_file_s"], row["nft_file_rc"], row["nft_file_err"] = timed(
            in_ns(ns, f"nft -c -f {nft}"), timeout
        )
    ipt = tmp / "ipt"
    ipt.mkdir(exist_ok=True)
    row["ipt_compile_s"], row["ipt_compile_rc"], _ = timed(
        [POLICYC, "compile", "--backend", "iptables", "-o", str(ipt), *inputs], timeout
    )
    if (ipt / "ipset.restore").exists():
        row["ipset_shape"] = shape((ipt / "ipset.restore").read_text(encoding="utf-8"))
        load = (
            f"ipset restore < {ipt}/ipset.restore"
            f" && iptables-restore --test < {ipt}/iptables.rules"
            f" && ip6tables-restore --test < {ipt}/ip6tables.rules"
        )
        row["ipt_load_s"], row["ipt_load_rc"], row["ipt_load_err"] = timed(
            in_ns(ns, f"{load}; rc=$?; ipset destroy; exit $rc"), timeout
        )
    return row


def fmt(row: dict[str, Any], key: str) -> str:
    if f"{key}_s" not in row:
        return "-"
    rc = row[f"{key}_rc"]
    return f"{row[f'{key}_s']:.2f}" + ("" if rc == 0 else f"!{rc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-heavy.json", help="JSON results file")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("heavy_bench: needs root (kernel checks in a scratch netns)", file=sys.stderr)
        return 2
    cols = ("nft_compile", "nft_stdin", "nft_file", "ipt_compile", "ipt_load")
    print(f"{'case':<36} " + " ".join(f"{c:>11}" for c in cols) + "  longest line")
    results = []
    with fresh_netns("heavy") as ns, tempfile.TemporaryDirectory() as tmp:
        for name, make in cases(args.scale).items():
            if args.only not in name:
                continue
            row = run_case(name, make(), Path(tmp), ns, args.timeout)
            results.append(row)
            shapes = (row.get(s, {}) for s in ("nft_shape", "ipset_shape"))
            longest = max(s.get("longest_line", 0) for s in shapes)
            print(f"{name:<36} " + " ".join(f"{fmt(row, c):>11}" for c in cols) + f"  {longest}")
            print("    in-process: " + ", ".join(f"{k} {v}" for k, v in row["phases_s"].items()))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}  (seconds; '!N' = exit code N)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
