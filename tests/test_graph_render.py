"""`policyc graph -o dot|svg|html` (issue 11, deliverable 7): pods are
connected to the policies that select them, and sets are labelled by their
selector, CIDRs or ports, not by hashes.

Golden files: fixtures/<case>/expected.graph.dot for a few cases.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.graph_render import NodeKind, drawing
from policyc.pipeline import graph_of, read_cluster

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
DOT_CASES = ["endport-range", "ipblock-except", "named-ports", "namespace-selector"]
HASH = re.compile(r"\b(sel|peer|net|port|named)_[0-9a-f]{6,}")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["graph", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


@pytest.mark.parametrize("case", DOT_CASES)
def test_golden_dot(case: str, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    out = run([str(ROOT / case)], capsys)
    path = ROOT / case / "expected.graph.dot"
    if update_golden or not path.exists():
        path.write_text(out)
    assert out == path.read_text()


def test_pods_point_at_the_policies_that_select_them(capsys: pytest.CaptureFixture[str]) -> None:
    out = run([str(ROOT / "ipblock-except")], capsys)
    for pod in ("z/a", "z/b", "z/c"):
        assert f'"pod {pod}" -> "policy z/cidr Ingress" [label="selected by"];' in out
    assert '"pod x/a" -> ' not in out


@pytest.mark.parametrize("case", DOT_CASES + ["match-expressions", "egress-ipv6-block"])
def test_sets_are_labelled_by_what_defines_them(case: str) -> None:
    d = drawing(graph_of(read_cluster([str(ROOT / case)])))
    sets = [n for n in d.nodes if n.kind is NodeKind.SET]
    assert sets
    for n in sets:
        assert not any(HASH.search(line) for line in n.lines), n.lines


def test_labels(capsys: pytest.CaptureFixture[str]) -> None:
    out = run([str(ROOT / "endport-range")], capsys)
    assert 'label="tcp 80-81\\nudp 1000-2000"' in out
    out = run([str(ROOT / "namespace-selector")], capsys)
    assert "pods: ns[ns in (y)] pod[*]" in out
    out = run([str(ROOT / "ipblock-except")], capsys)
    assert "ipBlock: 10.244.1.0/24 except\\n10.244.1.10/31, 10.244.1.16/32" in out


def test_node_filter_draws_only_local_pods(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["--node", "node-2", str(ROOT / "node-filter")], capsys)
    assert '"pod shop/web-2"' in out and '"pod shop/web-1"' not in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_svg(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["-o", "svg", str(ROOT / "ipblock-except")], capsys)
    assert "<svg" in out and "z/cidr ingress[0]" in out


def test_svg_without_dot_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", "-o", "html", str(ROOT / "ipblock-except")]) == 1
    err = capsys.readouterr().err
    assert "need Graphviz's dot" in err and "Traceback" not in err


def test_pods_no_policy_selects_share_a_node(capsys: pytest.CaptureFixture[str]) -> None:
    out = run([str(ROOT / "ipblock-except")], capsys)
    assert (
        '"unselected x" [shape=box,' in out
        and 'label="3 pods no policy selects\\na\\nb\\nc"' in out
    )
    assert '"pod x/a"' not in out and '"unselected z"' not in out


V4_POD_V6_POLICY = """
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c}]}
status: {phase: Running, podIPs: [{ip: 10.244.1.10}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: v6-only, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: "2001:db8::/32"}}]}]
"""


def test_selection_survives_the_dropped_selected_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The optimiser drops the IPv4 selected set of a policy with no IPv4
    rule; the pod -> policy edge comes from the podSelector then."""
    path = tmp_path / "c.yaml"
    path.write_text(V4_POD_V6_POLICY)
    out = run([str(path)], capsys)
    assert '"pod x/a" -> "policy x/v6-only Egress" [label="selected by"];' in out


CNP = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: deny-z
spec:
  tier: Baseline
  priority: 5
  subject:
    namespaces:
      matchLabels: {ns: z}
  ingress:
  - name: deny-all
    action: Deny
    from:
    - namespaces: {}
"""


def test_cluster_network_policies_are_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ClusterNetworkPolicy was missing from the drawing, and the pods its
    subject selects were drawn as pods "no policy selects"."""
    (tmp_path / "cnp.yaml").write_text(CNP)
    out = run([str(ROOT / "_base"), str(tmp_path / "cnp.yaml")], capsys)
    pid = '"policy ClusterNetworkPolicy deny-z Ingress"'
    for pod in ("z/a", "z/b", "z/c"):
        assert f'"pod {pod}" -> {pid} [label="selected by"];' in out
    assert '"pod x/a" -> ' + pid not in out
    assert 'ingress[0]\\nDeny"' in out  # the rule's action under its name
    assert "unselected z" not in out
