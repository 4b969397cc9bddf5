"""Every subcommand answers bad arguments with one message and exit 2, never a
traceback (issue 11, "No tracebacks, ever").

The table is keyed by command; a command registered in ``policyc.cli.COMMANDS``
without rows here fails :func:`test_every_command_has_rows`, so a new command
cannot skip it.  Rows run in-process through ``main`` (an exception escaping
it fails the test with its traceback) and then assert the message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import backends.sysctl
from policyc.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
CASE = str(ROOT / "fixtures" / "ipblock-except")

# (command, argv after the command, a fragment of the expected message).
# {tmp} is a scratch folder holding: dir/ (a directory), file (a file),
# garbage.kubeconfig (not YAML), ok.kubeconfig (a kubeconfig without a cluster).
ROWS: list[tuple[str, list[str], str]] = [
    # compile: inputs
    ("compile", ["{tmp}/missing.yaml"], "no such file or directory"),
    ("compile", ["--node", "node-1", "-n", "other", CASE], "does not match -n 'other'"),
    ("compile", ["-n", "Not_A_Namespace", "{tmp}/nons.yaml"], "invalid namespace"),
    ("compile", ["--from-cluster", CASE], "not both"),
    # compile: outputs (issue: -o DIR and -o /nonexistent/dir/x.nft raised)
    ("compile", ["-o", "{tmp}/dir", CASE], "--output-file"),
    ("compile", ["-o", "/nonexistent/dir/x.nft", CASE], "unknown format"),
    ("compile", ["-o", "xml", CASE], "unknown format 'xml'"),
    ("compile", ["--output-file", "{tmp}/dir", CASE], "is a directory"),
    ("compile", ["--output-file", "", CASE], "--output-file: empty path"),  # was stdout
    ("compile", ["--output-dir", "", CASE], "--output-dir: empty path"),
    ("compile", ["--log-drops", "--log-group", "65536", CASE], "want an NFLOG group 1-65535"),
    ("compile", ["--output-file", "/nonexistent/dir/x.nft", CASE], "does not exist"),
    ("compile", ["--output-file", "{tmp}/file/x.nft", CASE], "does not exist"),
    ("compile", ["--output-dir", "{tmp}/file", CASE], "not a directory"),
    ("compile", ["--output-dir", "/nonexistent/dir/out", CASE], "does not exist"),
    ("compile", ["-o", "graph-json", "--output-dir", "{tmp}/out", CASE], "one document"),
    ("compile", ["-o", "json", "--output-dir", "{tmp}/out", CASE], "one document"),
    ("compile", ["--output-file", "{tmp}/a", "--output-dir", "{tmp}/b", CASE], "not allowed"),
    # compile: flags
    ("compile", ["--backend", "pf", CASE], "invalid choice: 'pf'"),
    ("compile", ["-o", "iptables", "--backend", "nftables", CASE], "conflicts"),
    ("compile", ["-o", "json", "--backend", "iptables", CASE], "conflicts"),
    ("compile", ["--bogus", CASE], "unrecognized arguments"),
    # compile: the live cluster
    ("compile", ["--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent"),
    ("compile", ["--kubeconfig", "{tmp}/dir"], "{tmp}/dir"),
    ("compile", ["--kubeconfig", "{tmp}/garbage.kubeconfig"], "garbage.kubeconfig"),
    ("compile", ["--kubeconfig", "{tmp}/ok.kubeconfig", "--context", "nope"], "nope"),
    # apply: safety first (issue: node-z and /dev/null were applied)
    ("apply", [CASE], "--node NAME is required"),
    ("apply", ["--node", "node-1", "--log-group", "0", CASE], "want an NFLOG group 1-65535"),
    ("apply", ["--node", "node-z", CASE], "node 'node-z' is neither a Node"),
    ("apply", ["--node", "node-1", "/dev/null"], "--allow-empty"),
    ("apply", ["--node", "node-1", "{tmp}/missing.yaml"], "no such file or directory"),
    ("apply", ["--node", "node-1", "--backend", "pf", CASE], "invalid choice"),
    ("apply", ["--node", "node-1", "--kubeconfig", "/nonexistent"], "/nonexistent"),
    # explain: ports (issue: api-port, 80/icmp, 80/tcp/x raised; 99999 was accepted)
    ("logs", ["{tmp}/missing.jsonl"], "missing.jsonl"),
    ("logs", ["--agent", "9743"], "want HOST:PORT"),
    ("logs", ["-o", "xml"], "invalid choice: 'xml'"),
    # an unknown option is the command's error, as its others ("policyc: error:" was the top's)
    ("logs", ["--bogus"], "policyc logs: error: unrecognized arguments: --bogus"),
    ("logs", ["-", "--bogus"], "policyc logs: error: unrecognized arguments: --bogus"),
    ("matrix", ["--bogus", CASE], "policyc matrix: error: unrecognized arguments: --bogus"),
    ("status", [], "required"),
    ("status", ["x/a", "--agent", "localhost:http"], "want HOST:PORT"),
    # a URL: http:// is taken (tests/test_observe_cli.py); another scheme or a path is refused
    ("status", ["x/a", "--agent", "https://127.0.0.1:9743"], "serves plain http; want HOST:PORT"),
    ("logs", ["--agent", "http://http://127.0.0.1:9743"], "want HOST:PORT"),
    ("logs", ["--agent", "127.0.0.1:9743/drops"], "want HOST:PORT"),
    ("logs", ["--agent", "::1:9743"], "[::1]:9743"),
    ("status", ["x/a", "-o", "yaml"], "invalid choice"),
    ("explain", ["x/a", "x/b", "api-port", CASE], "api-port"),
    ("explain", ["x/a", "x/b", "80/icmp", CASE], "ICMP"),
    ("explain", ["x/a", "x/b", "80/tcp/x", CASE], "80/tcp/x"),
    ("explain", ["x/a", "x/b", "99999", CASE], "99999"),
    ("explain", ["x/a", "x/b", "0", CASE], "'0'"),
    ("explain", ["x/a", "x/b", "-1", CASE], "-1"),
    ("explain", ["x/a", "nope/b", "80", CASE], "nope/b"),
    ("explain", ["x/a", "x/b", "80", "{tmp}/missing.yaml"], "no such file"),
    ("explain", ["x/a", "x/b"], "required"),
    ("explain", ["x/a", "x/b", "80", "--kubeconfig", "/nonexistent"], "/nonexistent"),
    # matrix (issue: --port http raised; a container port name is valid now)
    ("matrix", ["--port", "-5", CASE], "-5"),
    ("matrix", ["--port", "99999", CASE], "99999"),
    ("matrix", ["--port", "80/icmp", CASE], "ICMP"),
    ("matrix", ["{tmp}/missing.yaml"], "no such file"),
    ("matrix", ["--width", "-5", CASE], "want 0 (never wrap) or a width"),  # was: never wrap
    ("matrix", ["--width", "wide", CASE], "invalid int value: 'wide'"),
    ("matrix", ["{tmp}/garbage.kubeconfig"], "garbage.kubeconfig"),
    ("matrix", ["--kubeconfig", "/nonexistent"], "/nonexistent"),
    # graph
    ("graph", ["{tmp}/missing.yaml"], "no such file"),
    ("graph", ["--context", "nope", "--kubeconfig", "{tmp}/ok.kubeconfig"], "nope"),
    ("graph", ["--kubeconfig", "/nonexistent"], "/nonexistent"),
    # watch (issue: --kubeconfig /nonexistent raised ConfigException)
    ("watch", ["--node", "n1", "--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent"),
    ("watch", ["--node", "n1", "--kubeconfig", "{tmp}/garbage.kubeconfig"], "garbage"),
    ("watch", ["--node", "n1", "--kubeconfig", "{tmp}/dir"], "{tmp}/dir"),
    ("watch", ["--node", "n1", "--source", "dir:{tmp}/missing"], "not a directory"),
    ("watch", ["--node", "n1", "--source", "etcd"], "unknown"),
    ("watch", ["--node", "n1", "--backend", "pf"], "invalid choice"),
    ("watch", ["--source", "dir:{tmp}/dir"], "--node"),
    ("watch", ["--node", "n1", "--resync-interval", "soon"], "invalid float"),
    # meta
    # diff
    ("diff", [CASE], "give OLD and NEW"),
    ("diff", [CASE, "{tmp}/missing.yaml"], "no such file"),
    ("diff", ["-", "-"], "cannot both be standard input"),  # NEW read nothing: exit 0
    ("diff", ["--from-cluster", CASE, CASE], "give only NEW"),
    ("diff", ["-o", "xml", CASE, CASE], "invalid choice: 'xml'"),
    ("diff", ["--kubeconfig", "/nonexistent", CASE], "/nonexistent"),
    # convert, fmt, demo
    ("convert", ["--to", "xml", CASE], "invalid choice: 'xml'"),
    ("convert", [CASE], "required"),
    ("convert", ["--to", "pol", "{tmp}/missing.yaml"], "no such file"),
    ("fmt", ["{tmp}/missing.pol"], "missing.pol"),
    ("demo", ["sideways"], "invalid choice: 'sideways'"),
    ("demo", ["--port", "http"], "invalid int value"),
    ("version", ["--bogus"], "unrecognized arguments"),
    ("completion", ["tcsh"], "invalid choice: 'tcsh'"),
    ("completion", [], "required"),
]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "garbage.kubeconfig").write_text("{[ not: yaml\n\x00")
    (tmp_path / "ok.kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts:\n"
        "- name: here\n  context: {cluster: none, user: none}\n"
        "current-context: here\nusers: []\n"
    )
    (tmp_path / "nons.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, image: i}]}\n"
    )
    return tmp_path


@pytest.fixture(autouse=True)
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing here may reach the kernel or the machine's sysctls."""
    monkeypatch.setattr(backends.sysctl, "ensure_bridge_netfilter", lambda: [])
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.kube/config of the machine
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level  # watch installs its own


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "cmd, argv, want", ROWS, ids=[f"{c}:{' '.join(a)}"[:80] for c, a, _ in ROWS]
)
def test_bad_arguments_exit_2_with_a_message(
    scratch: Path, capsys: pytest.CaptureFixture[str], cmd: str, argv: list[str], want: str
) -> None:
    argv = [a.replace("{tmp}", str(scratch)) for a in argv]
    code, err = run([cmd, *argv], capsys)
    assert "Traceback" not in err
    assert code == 2, err
    assert want.replace("{tmp}", str(scratch)) in err, err
    assert err.startswith("policyc"), err  # policyc's own lines, never a dump
    assert not os.path.exists(scratch / "out"), "nothing is written on bad arguments"


def test_every_command_has_rows() -> None:
    covered = {cmd for cmd, _, _ in ROWS}
    missing = [c.name for c in COMMANDS if c.name not in covered]
    assert not missing, f"add bad-argument rows for {missing} to ROWS"


@pytest.mark.parametrize("argv", [[], ["bogus"], ["--bogus"]])
def test_top_level_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err and "policyc: error:" in err
