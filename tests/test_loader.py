"""The loader: JSON and YAML agree on locations, Lists split per item,
readers come from the caller, and error output stays one line per error."""

from __future__ import annotations

import ast
import copy
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from policyc import load_json, load_yaml
from policyc.cli import main
from policyc.errors import MAX_SHOWN, InputError, InputErrors, printable
from policyc.load import load_paths, parse_file, parse_text
from policyc.raw import RawObject

ROOT = Path(__file__).resolve().parent.parent

POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "web", "namespace": "team-a", "labels": {"a": "b"}},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {"from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": []}}], "ports": []},
            {"ports": [{"protocol": "TCP", "port": 80}, {"port": "http"}]},
        ],
        "policyTypes": ["Ingress"],
    },
}


def yaml_locs(text: str) -> dict[tuple[str | int, ...], tuple[int, int]]:
    loader = yaml.CSafeLoader(text)
    builder = load_yaml.Builder("f", loader)
    node = loader.get_single_node()
    assert node is not None
    builder.build(node)
    return {p: (loc.line, loc.col) for p, loc in builder.locs.items()}


@pytest.mark.parametrize("indent", [None, 0, 2, "\t"])
def test_json_locations_equal_yaml_locations(indent: int | str | None) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [POLICY, {**POLICY, "x": [[], {}]}]}
    text = json.dumps(doc, indent=indent)
    want = yaml_locs(text.replace("\t", " "))  # YAML refuses tabs; one column each
    locs = load_json.JsonLocs("f", text)
    got = {p: locs.get(p) for p in want}
    assert {p: (loc.line, loc.col) for p, loc in got.items() if loc} == want


def test_json_location_of_an_escaped_key() -> None:
    text = '{"a\\"b": {"c\\u0041": [1, "x,]}"]}}'
    locs = load_json.JsonLocs("f", text)
    assert locs.get(('a"b', "cA", 1)) == load_json.Location("f", 1, 26)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_list_items_share_the_document_locations(fmt: str) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [copy.deepcopy(POLICY) for _ in "abc"]}
    text = json.dumps(doc, indent=1) if fmt == "json" else yaml.safe_dump(doc)
    objs = parse_text(text, f"f.{fmt}")
    assert [o.prefix for o in objs] == [("items", 0), ("items", 1), ("items", 2)]
    assert len({o.loc(("spec", "podSelector")).line for o in objs}) == 3
    assert objs[2].loc(("spec", "nope")) == objs[2].loc(("spec",))


@pytest.mark.parametrize(
    "text,where,message",
    [
        ('{"kind": "Pod",\n "kind": "Pod"}', "2:2", "duplicate key 'kind'"),
        ('{"kind": "Pod",\n "a": ' + "9" * 4301 + "}", "2:7", "integer too long"),
        ('{"kind": "Pod",\n "a": ' + "[" * 5000 + "]" * 5000 + "}", "2:", "nesting depth"),
        ("[1, 2]", "1:1", "expected a Kubernetes object (a mapping)"),
    ],
)
def test_json_the_c_parser_refuses_is_reported_with_a_location(
    text: str, where: str, message: str
) -> None:
    with pytest.raises(InputError) as exc:
        parse_text(text, "f.json")
    assert str(exc.value).startswith(f"f.json:{where}")
    assert message in str(exc.value)


def test_yaml_merge_keys_still_work() -> None:
    text = "x: &b {k: v}\nkind: Namespace\nmetadata:\n  name: x\n  labels: {<<: *b, j: w}\n"
    (obj,) = parse_text(text, "f")
    assert obj.data["metadata"]["labels"] == {"k": "v", "j": "w"}


def test_alias_bomb_in_a_mapping_key_is_refused() -> None:
    with pytest.raises(InputError, match="key must be a scalar"):
        parse_text("a: &a [x, x]\n? *a\n: 1\n", "f")


def test_yaml_typed_keys_read_as_kubectl_reads_them() -> None:
    # sigs.k8s.io/yaml: a bool key is "true"/"false", a number its text.
    text = "kind: Namespace\nmetadata:\n  name: x\n  labels: {true: a, off: b, 1: c, 1.5: d}\n"
    (obj,) = parse_text(text, "f")
    assert obj.data["metadata"]["labels"] == {"true": "a", "false": "b", "1": "c", "1.5": "d"}


def test_null_mapping_key_is_refused_at_its_mark() -> None:
    with pytest.raises(InputError, match="key must not be null") as exc:
        parse_text("kind: Namespace\nmetadata:\n  labels: {null: a}\n", "f")
    assert str(exc.value).startswith("f:3:12: ")


# --- readers by suffix -------------------------------------------------------


def test_policyc_does_not_import_grammar() -> None:
    offenders = []
    for path in (ROOT / "policyc").glob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "grammar"]
    assert not offenders


POL = "policy web in shop {\n  select app=web\n  ingress {}\n}\n"


def pol_reader(text: str, file: str) -> list[RawObject]:
    from grammar.policylang import parse_policies

    return parse_policies(text, file)


def test_pol_on_stdin_by_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(POL))
    (obj,) = load_paths(["-"], readers={".pol": pol_reader}, fmt="pol")
    assert obj.ident == "NetworkPolicy shop/web" and obj.file == "<stdin>"


def test_unknown_format_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(POL))
    with pytest.raises(InputError, match="unknown input format 'pol'"):
        load_paths(["-"], fmt="pol")


def test_without_a_pol_reader_directories_skip_pol_files(tmp_path: Path) -> None:
    (tmp_path / "a.pol").write_text(POL)
    assert load_paths([str(tmp_path)]) == []
    assert len(load_paths([str(tmp_path)], readers={".pol": pol_reader})) == 1
    assert parse_file(POL, "a.pol", {".pol": pol_reader})[0].kind == "NetworkPolicy"


# --- error output ------------------------------------------------------------


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert printable("a\nb\x1b[2J\x00\r\t\u2028c é") == "a\\nb\\x1b[2J\\x00\\r\\t\\u2028c é"
    assert printable("plain 'text'") == "plain 'text'"


def test_control_characters_from_the_input_stay_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "esc.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: "w\\e[31m\\nx", namespace: "a\\u2028b"}
            spec:
              podSelector: {matchLabels: {"k\\0": "v\\r\\nw"}}
            """
        )
    )
    assert main(["compile", str(path)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x00" not in err and "\r" not in err and "\u2028" not in err
    lines = err.splitlines()
    assert all(line.startswith("policyc: error: ") for line in lines), err
    assert "w\\x1b[31m\\nx" in err


def test_many_errors_report_the_first_hundred_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = MAX_SHOWN + 150
    doc = {**POLICY, "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 0}] * n}]}}
    path = tmp_path / "ports.json"
    path.write_text(json.dumps(doc))
    assert main(["compile", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == MAX_SHOWN + 1
    assert lines[-1] == "policyc: error: 150 more errors not shown (first 100 above)"
    assert "ports[99].port" in lines[-2]


def test_input_errors_str_is_capped() -> None:
    errors = [InputError(f"e{i}") for i in range(MAX_SHOWN + 5)]
    assert str(InputErrors(errors)).count("\n") == MAX_SHOWN


def test_an_error_line_is_bounded_whatever_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 1 MB label value and a 100,000-character name were echoed whole in
    # every error of their object: 6 MB of stderr, 1.3 MB lines.
    doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "q" * 100_000, "labels": {"k" * 100_000: "a" * 1_000_000 + "-"}},
    }
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps(doc))
    assert main(["compile", str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3 and all(len(line) < 2_000 + len(str(bad)) for line in lines)
    assert lines[-1].endswith("name part must be no more than 63 characters") or any(
        "must be no more than 63 characters" in line for line in lines
    )
    assert all("characters]..." in line for line in lines)


@pytest.mark.parametrize("target", ["missing-dir/out.nft", "/dev/full"])
def test_an_unwritable_output_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    # -o into a missing directory or onto a full device raised OSError with a
    # traceback (exit 1); so did stdout redirected to /dev/full or closed.
    ns = tmp_path / "ns.yaml"
    ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    out = target if target.startswith("/") else str(tmp_path / target)
    code = main(["compile", "--output-file", out, str(ns)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    # A missing directory is a bad argument, seen before compiling (exit 2);
    # a full device is found only while writing (exit 1).
    if target.startswith("/"):
        assert code == 1 and errors == [errors[0]]
        assert errors[0].startswith(f"policyc: error: cannot write {out}: ")
    else:
        assert code == 2 and errors == [errors[0]]
        assert errors[0].startswith(f"policyc: error: --output-file {out}: ")


def test_closed_stdout_is_one_error_line(tmp_path: Path) -> None:
    ns = tmp_path / "ns.yaml"
    ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    policyc = Path(sys.executable).parent / "policyc"
    proc = subprocess.run(
        [str(policyc), "compile", str(ns)],
        stdout=subprocess.DEVNULL,
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        pass_fds=(),
        preexec_fn=lambda: os.close(1),
    )
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("policyc: warning:")]
    assert proc.returncode == 1 and errors == [
        "policyc: error: cannot write standard output: closed"
    ]


@pytest.mark.parametrize("port", ["80/icmp", "serve-80-tcp", "99999999/tcp", "0", "9" * 5000])
def test_explain_refuses_a_bad_port_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    # int() and Protocol() raised with a traceback, or 99999999 was "ALLOWED".
    ns = tmp_path / "ns.yaml"
    ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    assert main(["explain", "10.244.1.10", "10.244.1.11", port, str(ns)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("policyc: error: port '") and err.count("\n") == 1 and len(err) < 1_000


def test_a_missing_file_names_the_file_without_a_made_up_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["compile", str(missing)]) == 2
    assert capsys.readouterr().err == f"policyc: error: {missing}: no such file or directory\n"
