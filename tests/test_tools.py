"""The tools people reach for when policy surprises them: explain, matrix,
graph; and the shape guarantees (no quadratic growth, deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyc.cli import main
from policyc.load import parse_text
from policyc.lower import lower
from policyc.parse import build_cluster
from policyc.pipeline import graph_of
from tests.support.world import base_objects, dump

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


def test_explain_names_the_allowing_rule(capsys: pytest.CaptureFixture[str]) -> None:
    case = str(ROOT / "multi-policy-union")
    assert main(["explain", "y/a", "x/a", "80/tcp", case]) == 0
    out = capsys.readouterr().out
    assert "ALLOWED" in out
    assert "ingress of x/a: isolated by " in out
    assert "      allowed by x/allow-80-from-y ingress[0]" in out


def test_explain_denied_exit_code_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    case = str(ROOT / "multi-policy-union")
    assert main(["explain", "y/a", "x/a", "81/tcp", case]) == 3
    out = capsys.readouterr().out
    assert "DENIED" in out and "ingress of x/a: isolated by " in out
    assert "denied: no rule of these policies admits it" in out


def test_explain_unknown_pod_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "nope/a", "x/a", "80", str(ROOT / "default-deny-all")]) == 2
    assert "no pod 'nope/a'" in capsys.readouterr().err


def test_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", str(ROOT / "default-deny-ingress")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "legend:" and len(lines) == 18
    row_ya = next(line for line in lines if line.startswith("4 y/a")).split()
    assert row_ya[2:5] == ["X", "X", "X"] and row_ya[5] == "."


def test_graph_is_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(ROOT / "named-ports")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph policyc {") and "x/egress-named egress[0]" in out


def test_other_kinds_warn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(ROOT / "kind-list")]) == 0
    err = capsys.readouterr().err
    assert "ConfigMap x/ignored: kind 'ConfigMap' is not used by policyc, ignored" in err


def _cluster_with_extra_pods(n: int):  # type: ignore[no-untyped-def]
    objs = base_objects()
    for i in range(n):
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"p{i}",
                    "namespace": "xyz"[i % 3],
                    "labels": {"pod": "abc"[i % 3]},
                },
                "spec": {
                    "nodeName": "node-1" if i % 2 else "node-9",
                    "containers": [
                        {"name": "c", "ports": [{"name": "serve-80-tcp", "containerPort": 80}]}
                    ],
                },
                "status": {"podIPs": [{"ip": f"10.244.{2 + i // 250}.{i % 250 + 1}"}]},
            }
        )
    text = (ROOT / "named-ports" / "policy.yaml").read_text()
    text += "\n---\n" + (ROOT / "match-expressions" / "policy.yaml").read_text()
    return build_cluster(parse_text(dump(objs) + "\n---\n" + text, "<t>"))


def test_rules_do_not_grow_with_pods() -> None:
    """No quadratic shapes: the rules depend on the policies, not on the pods;
    pods only change set elements."""
    small = lower(graph_of(_cluster_with_extra_pods(0), "node-1"))
    large = lower(graph_of(_cluster_with_extra_pods(600), "node-1"))
    assert large.forward == small.forward
    assert large.bridge == small.bridge
    assert [s.name for s in large.sets] == [s.name for s in small.sets]
    assert sum(len(s.elements) for s in large.sets) > sum(len(s.elements) for s in small.sets)
