"""The larger hostile-input run (on demand; prints figures JSON, exits 1 on
any finding not in tests/hostile/known.py).

    .venv/bin/python bench/hostile_bench.py [--seed N] [--mutations 1000]
        [--clusters 300] [--heavy] [--seconds 20]

The same generators and oracles as ``tests/hostile`` (CI runs 40 mutations
and 15 clusters per backend), with more inputs, the full huge-list sizes
(up to 20,000 entries) and, with ``--heavy``, the heavy-but-valid inputs of
issue 13 §2.  Needs root: kernel checks run in a namespace it creates and
deletes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.clusters import cluster  # noqa: E402
from tests.hostile.drive import BACKENDS, judge  # noqa: E402
from tests.hostile.figures import FIGURES  # noqa: E402
from tests.hostile.heavy import all_heavy  # noqa: E402
from tests.hostile.inputs import HostileInput  # noqa: E402
from tests.hostile.mutate import BENCH_LISTS, mutation  # noqa: E402
from tests.hostile.netns import fresh_netns  # noqa: E402
from tests.hostile.repros import all_repros  # noqa: E402
from tests.hostile.runner import Bounds  # noqa: E402
from tests.hostile.seed import SEED  # noqa: E402


def inputs(args: argparse.Namespace) -> list[HostileInput]:
    out = all_repros()
    out += [mutation(args.seed, i, BENCH_LISTS) for i in range(args.mutations)]
    out += [cluster(args.seed, i) for i in range(args.clusters)]
    if args.heavy:
        out += all_heavy()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--mutations", type=int, default=1000)
    p.add_argument("--clusters", type=int, default=300)
    p.add_argument("--heavy", action="store_true")
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    FIGURES.seed = args.seed
    bounds = Bounds(seconds=args.seconds)
    unknown = 0
    print(f"policyc hostile bench: seed {args.seed} (POLICYC_SEED={args.seed})", file=sys.stderr)
    with fresh_netns("bench") as ns, tempfile.TemporaryDirectory() as tmp:
        for n, inp in enumerate(inputs(args)):
            for backend in BACKENDS:
                verdict = judge(inp, backend, Path(tmp) / f"{n}-{backend}", ns, bounds)
                if verdict.unknown() and inp.cls != "repro":
                    unknown += 1
                    print(verdict.report(), file=sys.stderr)
    print(FIGURES.as_json())
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
