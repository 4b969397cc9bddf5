"""The model side of the kernel tests: the e2e cluster as API objects, the
evaluator's expected matrix, and ``policyc apply`` inside the lab's node."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.parse import build_cluster

from .netlab import Lab, MatrixKey

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "fixtures" / "_base" / "cluster.yaml"
POLICYC = str(Path(sys.executable).with_name("policyc"))
PORTS4: tuple[tuple[str, int], ...] = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))

STATS: dict[str, int] = {}


def count(key: str, n: int = 1) -> None:
    STATS[key] = STATS.get(key, 0) + n


def base_objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(BASE.read_text()) if d]


def world(
    policies: Sequence[dict[str, Any]],
    relabel: dict[tuple[str, str, str], dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    objs = copy.deepcopy(base_objects())
    for obj in objs:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        if relabel and key in relabel:
            meta["labels"] = dict(relabel[key])
    return objs + [copy.deepcopy(p) for p in policies]


def dump(objs: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=True)


def expected_matrix(
    lab: Lab, objs: Sequence[dict[str, Any]], family: int, ports: Sequence[tuple[str, int]] = PORTS4
) -> dict[MatrixKey, bool]:
    cluster = build_cluster(parse_text(dump(objs), "<world>"))
    ev = Evaluator(cluster)
    pods = list(lab.pods.values())
    return {
        (s, d, proto, port): ev.allowed(s.addr(family), d.addr(family), port, proto).allowed
        for s in pods
        for d in pods
        for proto, port in ports
    }


def apply_world(lab: Lab, objs: Sequence[dict[str, Any]], *extra: str) -> str:
    """Write the objects to a file and run ``policyc apply`` in the node netns."""
    fd, path = tempfile.mkstemp(prefix="policyc-world-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(dump(objs))
        proc = lab.node_exec([POLICYC, "apply", "--node", "node-1", *extra, path], check=False)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise AssertionError(f"policyc apply failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stderr


def check_world(
    lab: Lab,
    objs: Sequence[dict[str, Any]],
    family: int = 4,
    ports: Sequence[tuple[str, int]] = PORTS4,
    extra: Sequence[str] = (),
) -> list[str]:
    """Apply, probe every ordered pair for real, and diff against the evaluator."""
    from .netlab import matrix_diff

    apply_world(lab, objs, *extra)
    expected = expected_matrix(lab, objs, family, ports)
    actual = lab.matrix(ports=ports, family=family)
    count("cells", len(expected))
    return matrix_diff(expected, actual)
