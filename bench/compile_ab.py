"""Old tree vs this tree, ``compile_bench.py`` alternated (on demand; asserts nothing).

    .venv/bin/python bench/compile_ab.py OLD_TREE [--rounds 3] -- [compile_bench args]

``OLD_TREE`` is a checkout of the baseline (``git archive REV | tar -x -C DIR``).
Each round runs the baseline then this tree, each in a fresh interpreter, so
that a noisy machine weighs on both alike; prints every round's figures and
the medians' ratios (new / old).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
FIGURES = {
    "build ms": re.compile(r"full compile: (\d+) ms"),
    "optimise+lower+render ms": re.compile(r"optimise\+lower\+render: (\d+) ms"),
    "pod event median ms": re.compile(r"median ([\d.]+) ms"),
}


def run(tree: Path, args: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "compile_bench.py"), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {k: float(m.group(1)) for k, rx in FIGURES.items() if (m := rx.search(out))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args, rest = ap.parse_known_args()
    rest = [a for a in rest if a != "--"]
    seen: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for i in range(args.rounds):
        for label, tree in (("old", args.old), ("new", HERE)):
            figs = run(tree, rest)
            print(f"round {i + 1} {label}: {figs}", flush=True)
            for k, v in figs.items():
                seen[label].setdefault(k, []).append(v)
    print(f"{'figure':28} {'old':>10} {'new':>10} {'new/old':>8}")
    for k in FIGURES:
        old, new = seen["old"].get(k), seen["new"].get(k)
        if old and new:
            o, n = statistics.median(old), statistics.median(new)
            print(f"{k:28} {o:10.2f} {n:10.2f} {n / o if o else float('nan'):8.3f}")


if __name__ == "__main__":
    main()
