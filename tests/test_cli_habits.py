"""kubectl habits (issue 11): -o picks a format, files go to --output-file or
--output-dir, -n defaults namespaces and says where, version, completion, and
help for every command and argument."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from policyc import __version__
from policyc.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "fixtures" / "ipblock-except"
NODE = ["--node", "node-1"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> tuple[str, str]:
    assert main(argv) == code, capsys.readouterr().err
    out, err = capsys.readouterr()
    return out, err


@pytest.mark.parametrize(
    "argv, golden",
    [
        ([], "expected.nft"),
        (["-o", "nft"], "expected.nft"),
        (["-o", "iptables"], "expected.iptables"),
        (["--backend", "iptables"], "expected.iptables"),
        (["--backend", "iptables", "-o", "iptables"], "expected.iptables"),
    ],
)
def test_output_formats_match_the_goldens(
    argv: list[str], golden: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = run(["compile", *NODE, *argv, str(CASE)], capsys)
    assert out == (CASE / golden).read_text()


def test_json_is_the_nft_ruleset_as_libnftables_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = run(["compile", *NODE, "-o", "json", str(CASE)], capsys)
    cmds = json.loads(out)["nftables"]
    tables = {c["add"]["table"]["family"] for c in cmds if "table" in c.get("add", {})}
    assert tables == {"inet", "bridge"}
    assert any("rule" in c.get("add", {}) for c in cmds)


def test_graph_yaml_and_json_are_the_same_rule_graph(capsys: pytest.CaptureFixture[str]) -> None:
    as_json = json.loads(run(["compile", *NODE, "-o", "graph-json", str(CASE)], capsys)[0])
    as_yaml = yaml.safe_load(run(["compile", *NODE, "-o", "graph-yaml", str(CASE)], capsys)[0])
    alias = yaml.safe_load(run(["compile", *NODE, "-o", "yaml", str(CASE)], capsys)[0])
    assert as_json == as_yaml == alias
    assert as_json["node"] == "node-1" and as_json["endpoints"] and as_json["sets"]


def test_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x.nft"
    out, _ = run(["compile", *NODE, "--output-file", str(target), str(CASE)], capsys)
    assert out == "" and target.read_text() == (CASE / "expected.nft").read_text()


def test_minus_o_with_a_path_points_at_output_file(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue: -o json wrote the nft script to a file named json."""
    with pytest.raises(SystemExit) as exc:
        main(["compile", "-o", "out.nft", str(CASE)])
    assert exc.value.code == 2
    assert "use --output-file FILE" in capsys.readouterr().err


NAMESPACELESS = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: argocd}
spec: {nodeName: node-1, containers: [{name: c, image: i}]}
status: {podIPs: [{ip: 10.244.1.10}]}
"""


def test_namespace_flag_defaults_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "argocd.yaml"
    path.write_text(NAMESPACELESS)
    out, err = run(["graph", "-n", "argocd", *NODE, str(path)], capsys)
    assert f"policyc: note: {path}:1:1: NetworkPolicy deny-all: no metadata.namespace: " in err
    assert "namespace argocd (-n argocd)" in err
    assert "argocd/deny-all" in out


def test_no_namespace_flag_says_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue: namespace-less manifests went to default, silently."""
    path = tmp_path / "argocd.yaml"
    path.write_text(NAMESPACELESS)
    _, err = run(["compile", *NODE, str(path)], capsys)
    assert "NetworkPolicy deny-all: no metadata.namespace: namespace default" in err
    assert "choose with -n" in err


def test_namespace_flag_conflict_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "argocd.yaml"
    path.write_text(NAMESPACELESS)
    _, err = run(["compile", "-n", "web", *NODE, str(path)], capsys, code=2)
    assert err == (
        f"policyc: error: {path}:8:26: Pod argocd/server: metadata.namespace: the object's "
        "namespace 'argocd' does not match -n 'web'; pass -n argocd or drop -n\n"
    )


@pytest.mark.parametrize(
    "argv, warning",
    [
        ([str(CASE)], "no --node: every pod of the input is treated as local"),
        (["--node", "node-z", str(CASE)], "node 'node-z' is neither a Node object"),
        (["--node", "node-1", "/dev/null"], "the input has no objects"),
    ],
)
def test_compile_warns_where_apply_refuses(
    argv: list[str], warning: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = run(["compile", *argv], capsys)
    assert "table inet policyc" in out and f"policyc: warning: {warning}" in err


@pytest.mark.parametrize("cmd", ["matrix", "graph"])
def test_views_warn_about_an_unknown_node(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A --node typo drew an empty matrix or a pod-less graph, exit 0, silently."""
    _, err = run([cmd, "--node", "node-z", str(CASE)], capsys)
    assert err == (
        "policyc: warning: node 'node-z' is neither a Node object nor any pod's "
        "spec.nodeName in the input (nodes: node-1)\n"
    )
    assert run([cmd, "--node", "node-1", str(CASE)], capsys)[1] == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(["version"], capsys)
    assert out.startswith(f"policyc {__version__} ")
    assert run(["version", "--short"], capsys)[0] == f"{__version__}\n"
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run(["completion", shell], capsys)
    assert "policyc" in out and "_ARGCOMPLETE" in out


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_every_command_and_argument_is_described() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest for c in sub._choices_actions}
    assert listed == {c.name for c in COMMANDS} and "watch" in listed
    undescribed = [
        f"{name} {a.dest}"
        for name, p in sub.choices.items()
        for a in _actions(p)
        if not (a.help and a.help.strip())
    ]
    assert not undescribed
    assert all("exit codes:" in (p.epilog or "") for p in sub.choices.values())


@pytest.mark.parametrize("cmd", [c.name for c in COMMANDS])
def test_help_fits_the_terminal(
    cmd: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """explain, diff, convert, fmt and demo printed their description as one
    line of up to 290 characters."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "--from-\n" not in out


def test_top_level_help_lists_watch_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "    watch " in out
    for code in ("0  success", "1  runtime error", "2  bad input", "3  explain"):
        assert code in out


def test_completion_completes_commands_and_flags() -> None:
    """What the shell script asks: the real program answers on fd 8."""
    import subprocess
    import sys

    policyc = str(Path(sys.executable).with_name("policyc"))

    def complete(line: str) -> set[str]:
        env = {"COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1"}
        env["_ARGCOMPLETE_IFS"] = " "
        proc = subprocess.run(
            ["bash", "-c", f"'{policyc}' 8>&1 9>/dev/null"],
            env={**env, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return set(proc.stdout.split())

    assert complete("policyc wa") == {"watch"}
    assert complete("policyc compile --output-") == {"--output-file", "--output-dir"}
    # -o names a format (kubectl's habit): it completed file names.
    assert complete("policyc compile -o graph-") == {"graph-yaml", "graph-json"}


# (command, its positional arguments, its options): each row parses alike with
# the options first, last, and between the positional arguments.
INTERMIXED: list[tuple[str, list[str], list[str]]] = [
    ("compile", ["a.yaml", "b.yaml"], ["--node", "node-1", "-o", "iptables"]),
    ("apply", ["a.yaml", "b.yaml"], ["--node", "node-1", "--backend", "iptables"]),
    ("explain", ["x/a", "x/b", "80/udp", "a.yaml", "b.yaml"], ["--family", "4", "-o", "json"]),
    ("diff", ["old", "new"], ["-o", "json", "-n", "x"]),
    ("matrix", ["a.yaml", "b.yaml"], ["--port", "81", "-n", "x"]),
    ("graph", ["a.yaml", "b.yaml"], ["-o", "dot", "--node", "node-1"]),
    ("convert", ["a.yaml", "b.yaml"], ["--to", "pol", "-n", "x"]),
    ("fmt", ["a.pol", "b.pol"], ["--check"]),
    ("logs", ["a.jsonl", "b.jsonl"], ["--pod", "x/a", "-o", "json"]),
]


@pytest.mark.parametrize("cmd, positional, options", INTERMIXED, ids=[r[0] for r in INTERMIXED])
def test_options_anywhere_among_the_positional_arguments(
    cmd: str, positional: list[str], options: list[str]
) -> None:
    """As kubectl: ``explain x/a x/b 80 a.yaml --family 4 b.yaml`` was refused
    (argparse ended the PATH list at the first option)."""
    parser = build_parser()
    first = parser.parse_args([cmd, *options, *positional])
    for cut in range(1, len(positional) + 1):
        argv = [cmd, *positional[:cut], *options, *positional[cut:]]
        assert parser.parse_args(argv) == first, argv
