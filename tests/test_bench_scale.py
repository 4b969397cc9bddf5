"""Smoke test of ``bench.scale``: the S generator at a tiny size, through every
compile stage (no timing is asserted; the benchmark itself asserts nothing)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.scale import gen, stages


def tiny() -> gen.Size:
    return dataclasses.replace(gen.SIZES["S"], pods=50, policies=10)


def test_generator_is_a_kubectl_list_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    gen.write(tiny(), str(a), seed=7)
    gen.write(tiny(), str(b), seed=7)
    assert a.read_bytes() == b.read_bytes()
    doc = json.loads(a.read_text())
    assert doc["kind"] == "List"
    kinds = {i["kind"] for i in doc["items"]}
    assert kinds == {"Namespace", "Node", "Pod", "NetworkPolicy"}
    assert sum(i["kind"] == "Pod" for i in doc["items"]) == 50


def test_tiny_cluster_compiles_through_every_stage(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    gen.write(tiny(), str(path))
    for backend in ("nftables", "iptables"):
        for opt in (True, False):
            got = stages.run(str(path), backend, opt, gen.NODE, False, stages.STAGES[-1])
            assert [r["stage"] for r in got["stages"]] == ["start", *stages.STAGES]
            assert got["size"]["rules"] > 0 and got["size"]["elements"] > 0
