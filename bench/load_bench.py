"""Loader scale benchmark (on demand; prints a table, writes JSON, asserts nothing).

    .venv/bin/python bench/load_bench.py [--out bench-load.json] [--scale 1.0]

Each case is generated, written to a temporary file and read as
``policyc compile`` reads it: ``load_paths`` (parse + List split) and then
``build_cluster`` (validation).  Cases: a mixed ``kind: List`` of 1,628
objects (26 s before the linear loader), 15,000 Pods, 20,000 Namespaces in
one List (282 s before), each as YAML and as JSON; and one policy with
20,000 invalid ports (135 s to report before), which must fail with the
first 100 errors and a count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policyc.errors import InputErrors  # noqa: E402
from policyc.load import load_paths  # noqa: E402
from policyc.parse import build_cluster  # noqa: E402


def namespace(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": f"ns{i}", "labels": {"team": f"t{i % 7}"}},
    }


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"p{i}",
            "namespace": f"ns{i % 50}",
            "labels": {"app": f"a{i % 20}", "tier": f"t{i % 3}"},
        },
        "spec": {
            "nodeName": f"node-{i % 50}",
            "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": 8080 + i % 3}]}
            ],
        },
        "status": {"podIP": f"10.244.{i // 250}.{i % 250 + 1}"},
    }


def policy(i: int, ports: int = 1, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"pol{i}", "namespace": f"ns{i % 50}"},
        "spec": {
            "podSelector": {"matchLabels": {"app": f"a{i % 20}"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"tier": f"t{i % 3}"}}}],
                    "ports": [{"protocol": "TCP", "port": port} for _ in range(ports)],
                }
            ],
        },
    }


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def mixed(n: int) -> dict[str, Any]:
    """``n`` objects: 50 Namespaces, then Pods and NetworkPolicies, 4 to 1."""
    items = [namespace(i) for i in range(50)]
    rest = n - len(items)
    items += [pod(i) for i in range(rest * 4 // 5)]
    items += [policy(i) for i in range(rest - rest * 4 // 5)]
    return as_list(items)


def cases(scale: float) -> dict[str, tuple[dict[str, Any], bool]]:
    """name -> (document, valid)."""
    n = lambda k: max(1, int(k * scale))  # noqa: E731
    return {
        f"mixed List of {n(1628)}": (mixed(n(1628)), True),
        f"{n(15000)} Pods": (
            as_list([namespace(i) for i in range(50)] + [pod(i) for i in range(n(15000))]),
            True,
        ),
        f"{n(20000)} Namespaces": (as_list([namespace(i) for i in range(n(20000))]), True),
        f"{n(20000)} invalid ports": (
            as_list([namespace(i) for i in range(50)] + [policy(0, n(20000), 70000)]),
            False,
        ),
    }


def measure(path: str, valid: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    raws = load_paths([path])
    t1 = time.perf_counter()
    errors = 0
    try:
        build_cluster(raws, warn=lambda m: None)
    except InputErrors as exc:
        errors = len(exc.errors)
        lines = len(exc.lines())
        assert lines <= 101, lines
    t2 = time.perf_counter()
    if valid != (errors == 0):
        raise SystemExit(f"{path}: expected {'no ' if valid else ''}errors, got {errors}")
    return {"objects": len(raws), "load_s": t1 - t0, "validate_s": t2 - t1, "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench-load.json", help="JSON results file")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    args = ap.parse_args()
    dumpers: dict[str, Callable[[Any], str]] = {
        "yaml": lambda d: yaml.dump(d, Dumper=yaml.CSafeDumper, sort_keys=False),
        "json": lambda d: json.dumps(d, indent=2),
    }
    results = []
    print(
        f"{'case':<28} {'fmt':<5} {'bytes':>11} {'objects':>8} {'load s':>8} {'valid s':>8} errors"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (doc, valid) in cases(args.scale).items():
            for fmt, dump in dumpers.items():
                path = Path(tmp) / f"case.{fmt}"
                path.write_text(dump(doc), encoding="utf-8")
                row = {"case": name, "format": fmt, "bytes": path.stat().st_size}
                row |= measure(str(path), valid)
                results.append(row)
                print(
                    f"{name:<28} {fmt:<5} {row['bytes']:>11,} {row['objects']:>8} "
                    f"{row['load_s']:>8.2f} {row['validate_s']:>8.2f} {row['errors']}"
                )
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
