"""``--kubeconfig``/``--context``/``--from-cluster``: compile, explain, matrix and
graph read the live cluster through the real ``kubernetes`` client, paginated,
against the loopback API server (``tests/fakeapi``), and see exactly what they
see in the same objects as files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import policyc.cli.live
from policyc.cli import main
from tests.fakeapi import FakeAPIServer, write_kubeconfig

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "fixtures" / "ipblock-except"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPIServer]:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    with FakeAPIServer(bookmark_interval=0) as server:
        for path in sorted(CASE.glob("*.yaml")):
            for obj in yaml.safe_load_all(path.read_text()):
                if obj:
                    server.create(obj)
        yield server


@pytest.fixture
def kubeconfig(api: FakeAPIServer, tmp_path: Path) -> str:
    return str(write_kubeconfig(api.url, tmp_path / "config", context="fake"))


def out_of(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> str:
    assert main(argv) == code, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "cmd",
    [
        ["compile", "--node", "node-1"],
        ["compile", "--node", "node-1", "--backend", "iptables"],
        ["explain", "x/a", "z/a", "80/tcp"],
        ["matrix"],
        ["graph", "--node", "node-1"],
    ],
)
def test_live_cluster_reads_as_the_files_do(
    kubeconfig: str, capsys: pytest.CaptureFixture[str], cmd: list[str]
) -> None:
    code = 3 if cmd[0] == "explain" else 0
    files = out_of([*cmd, str(CASE)], capsys, code)
    live = out_of([*cmd, "--kubeconfig", kubeconfig, "--context", "fake"], capsys, code)
    assert live == files and live


def test_lists_are_paginated(
    api: FakeAPIServer,
    kubeconfig: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policyc.cli.live, "PAGE_SIZE", 2)
    files = out_of(["compile", "--node", "node-1", str(CASE)], capsys)
    api.reset_counters()
    assert out_of(["compile", "--node", "node-1", "--kubeconfig", kubeconfig], capsys) == files
    pods = [r for r in api.requests if r.resource == "pods" and r.verb == "list"]
    assert len(pods) == 5  # 9 pods, 2 a page
    assert all(r.query.get("limit") == "2" for r in pods)
    assert sum(1 for r in pods if r.query.get("continue")) == 4


def test_from_cluster_uses_KUBECONFIG(
    kubeconfig: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    out = out_of(["compile", "--from-cluster", "--node", "node-1"], capsys)
    assert out == out_of(["compile", "--node", "node-1", str(CASE)], capsys)


def test_unknown_context_is_exit_2(kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--kubeconfig", kubeconfig, "--context", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("policyc: error: --kubeconfig ") and "nope" in err


def test_unreachable_api_server_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAPIServer(bookmark_interval=0) as gone:
        url = gone.url
    config = write_kubeconfig(url, tmp_path / "config")
    assert main(["compile", "--kubeconfig", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"policyc: error: {url}: cannot list /api/v1/namespaces: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_invalid_live_object_is_located_exit_2(
    api: FakeAPIServer, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "bad", "namespace": "x"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]},
        }
    )
    assert main(["compile", "--kubeconfig", kubeconfig]) == 2
    err = capsys.readouterr().err
    assert "/apis/networking.k8s.io/v1/networkpolicies" in err and "NetworkPolicy x/bad" in err


def test_diff_from_cluster_applies_n_to_new_only(
    kubeconfig: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``diff --from-cluster -n z NEW``: the live objects keep their own
    namespaces (they used to be rejected as "not -n z"); NEW's namespace-less
    objects go to z, as with ``kubectl apply -n z``.  NEW is the z pods and the
    z policy without its namespace: nothing changes among the z pods (exit 0);
    had the policy gone to default, they would all open (exit 1)."""
    docs = []
    for path in ("cluster.yaml", "policy.yaml"):
        for obj in yaml.safe_load_all((CASE / path).read_text()):
            if obj and obj["metadata"].get("namespace") in (None, "z"):
                obj["metadata"].pop("namespace", None)
                docs.append(obj)
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump_all(docs))
    out = out_of(["diff", "--kubeconfig", kubeconfig, "-n", "z", str(new)], capsys)
    assert "no change in reachability among the 3 pods" in out.lower()


def test_n_with_from_cluster_is_exit_2(kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Live objects always carry a namespace: ``-n`` would reject them all, one
    error per object; one line says why instead."""
    assert main(["compile", "--kubeconfig", kubeconfig, "-n", "x", "--node", "node-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-n x with --from-cluster" in err
