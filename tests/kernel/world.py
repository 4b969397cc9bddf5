"""The kernel side of the e2e world: the evaluator's expected matrix over the
lab's pods, and ``policyc apply`` inside the lab's node.  The world itself
(API objects, YAML) is in ``tests/support/world.py``."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.parse import build_cluster
from tests.support.figures import count
from tests.support.world import dump

from .netlab import Lab, MatrixKey

POLICYC = str(Path(sys.executable).with_name("policyc"))
PORTS4: tuple[tuple[str, int], ...] = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))


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
