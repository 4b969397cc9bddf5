"""The demo's manifests and matrix text (no kernel: the kernel test is
tests/kernel/test_demo.py)."""

from __future__ import annotations

from pathlib import Path

from policyc.cli import READERS, main
from policyc.demo import PODS
from policyc.demo_files import render_matrix, write_manifests
from policyc.pipeline import read_cluster

IPS = {p.key: [f"10.244.200.{i + 2}", f"2001:db8:200::{i + 2}"] for i, p in enumerate(PODS)}


def test_manifests_compile_and_keep_the_users_policies(tmp_path: Path) -> None:
    write_manifests(str(tmp_path), PODS, IPS, 8080)
    pol = tmp_path / "policies.pol"
    assert "tcp/8080" in pol.read_text()
    cluster = read_cluster([str(tmp_path)], readers=READERS)
    assert [p.key for p in cluster.pods] == sorted(p.key for p in PODS)
    assert {p.key for p in cluster.policies} == {"shop/default-deny", "shop/web-from-clients"}
    pol.write_text("# mine\n")
    write_manifests(str(tmp_path), PODS, IPS, 80)
    assert pol.read_text() == "# mine\n"


def test_matrix_marks_a_probe_the_evaluator_disagrees_with() -> None:
    probes = {(s.key, d.key, ip): True for s in PODS for d in PODS for ip in IPS[d.key]}
    verdicts = {
        (a, b): True for s in IPS.values() for d in IPS.values() for a, b in zip(s, d, strict=True)
    }
    text, agree = render_matrix(PODS, IPS, 80, probes, verdicts)
    assert agree and text.splitlines()[2].split() == ["shop/web", "-", "..", "..", ".."]
    verdicts[(IPS["shop/db"][1], IPS["shop/web"][1])] = False
    text, agree = render_matrix(PODS, IPS, 80, probes, verdicts)
    assert not agree and text.splitlines()[3].split() == ["shop/db", "..!", "-", "..", ".."]


def test_demo_rejects_a_bad_port() -> None:
    assert main(["demo", "--once", "--port", "0", "--dir", "/nonexistent/pcdemo"]) in (1, 2)


def test_demo_refuses_a_dir_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("x")
    assert main(["demo", "--once", "--dir", str(tmp_path)]) in (1, 2)  # 1: not root
    assert (tmp_path / "precious").read_text() == "x" and not (tmp_path / ".pcdemo").exists()
