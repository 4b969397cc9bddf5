"""Golden cases: fixtures/<case>/ holds inputs and the expected output of
each backend.  ``pytest --update-golden`` rewrites them; review the diff like
code."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from policyc.cli import main

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
# fixtures/passes holds the per-pass graph pairs (tests/test_passes.py).
CASES = sorted(
    p.name
    for p in ROOT.iterdir()
    if p.is_dir() and not p.name.startswith("_") and p.name != "passes"
)
BACKENDS = {"nftables": "expected.nft", "iptables": "expected.iptables"}
# Goldens of the other tools' outputs: tests/test_matrix.py, tests/test_graph_render.py.
TOOL_GOLDENS = {"expected.matrix", "expected.matrix-json", "expected.graph.dot"}


def case_args(case: str) -> list[str]:
    args_file = ROOT / case / "args"
    return shlex.split(args_file.read_text()) if args_file.exists() else []


def compile_case(case: str, backend: str, capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["compile", "--backend", backend, *case_args(case), str(ROOT / case)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def test_enough_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES)
def test_golden_nft(case: str, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    out = compile_case(case, "nftables", capsys)
    expected = ROOT / case / BACKENDS["nftables"]
    if update_golden or not expected.exists():
        expected.write_text(out)
    assert out == expected.read_text()


@pytest.mark.parametrize("case", CASES)
def test_deterministic(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Same input, byte-identical output, whatever the order of the files."""
    files = sorted(str(p) for p in (ROOT / case).glob("*.yaml"))
    outs = set()
    for order in (files, list(reversed(files))):
        rc = main(["compile", *case_args(case), *order])
        assert rc == 0
        outs.add(capsys.readouterr().out)
    assert len(outs) == 1


def test_stdin_and_directory_agree(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    case = ROOT / "allow-from-same-namespace"
    text = "\n---\n".join(p.read_text() for p in sorted(case.glob("*.yaml")))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["compile", "-"]) == 0
    from_stdin = capsys.readouterr().out
    assert main(["compile", str(case)]) == 0
    assert capsys.readouterr().out == from_stdin


@pytest.mark.skipif(os.environ.get("POLICYC_GOLDEN_KEEP") == "1", reason="kept")
def test_no_stray_expected_files() -> None:
    for case in CASES:
        for name in os.listdir(ROOT / case):
            # expected.explain: tests/test_reach_golden.py
            known = name in BACKENDS.values() or name in TOOL_GOLDENS or name == "expected.explain"
            assert not name.startswith("expected") or known, name
