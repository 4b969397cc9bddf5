"""The watcher through the loopback API server (issue 9, Deliver 5), small.

A generated cluster (``bench.scale.gen``, 300 pods, 30 policies) is served
by ``tests.fakeapi``; the real agent (``bench.scale.watch_agent``: the
Kubernetes source, the builder, the Dataplane) programs the kernel of a
scratch network namespace.  Then each of pod add, pod delete, pod label
change, namespace label change and policy change is made twice on the API
server (``bench.scale.watch``).  Each must reach the kernel in exactly one
transaction whose size follows what changed: set elements only for the four
pod and namespace changes, rules of the changed policy's chains (never a
table) for the policy change.  No timing is asserted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.scale import gen
from bench.scale.netns import Scratch

from .kernelcheck import require_kernel

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = 2
ELEMENTS_ONLY = ("pod_add", "pod_delete", "pod_label", "namespace_label")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_kernel()
    path = tmp_path_factory.mktemp("watch") / "cluster.json"
    gen.write(dataclasses.replace(gen.SIZES["S"], pods=300, policies=30), str(path))
    argv = [sys.executable, "-m", "bench.scale.watch", str(path), "--samples", str(SAMPLES)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with Scratch("wsc") as scratch:
        ns = scratch.add("node")
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            env=env,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got: dict[str, Any] = json.loads(proc.stdout)
    return got


def test_start_up_programs_everything_once(figures: dict[str, Any]) -> None:
    assert figures["startup"]["syncs"] == 1
    assert figures["events"]["syncs_after_startup"] == 0
    assert figures["startup"]["tx"] > 0
    assert figures["kernel_matches"] is True


@pytest.mark.parametrize("change", ELEMENTS_ONLY)
def test_pod_and_namespace_changes_touch_elements_only(
    figures: dict[str, Any], change: str
) -> None:
    row = figures["events"][change]
    assert row["syncs"] == row["samples"] == SAMPLES  # one transaction per change
    ops = row["ops"]
    assert ops and set(ops) <= {"add element", "delete element"}, ops
    # The 300-pod cluster's namespaces hold 50 pods: a namespace label change
    # moves at most those pods' elements; the others move a handful.
    bound = 2 * gen.PODS_PER_NS if change == "namespace_label" else 20
    assert sum(ops.values()) <= bound, ops


def test_policy_change_touches_its_rules_only(figures: dict[str, Any]) -> None:
    row = figures["events"]["policy_change"]
    assert row["syncs"] == row["samples"] == SAMPLES
    ops = row["ops"]
    assert not any(k.endswith(" table") for k in ops), ops
    assert row["tx"]["max"] < figures["startup"]["tx"]
