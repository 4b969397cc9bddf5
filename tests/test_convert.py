"""``policyc convert`` and ``policyc fmt``: lossless, canonical, idempotent."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from grammar.convert import convert
from grammar.fmt import format_pol
from grammar.policylang import parse_policies
from policyc.cli import main
from policyc.load import parse_text
from policyc.model import Direction, NetworkPolicy
from policyc.parse import read_all
from tests.support import randpol

EXAMPLES = 300
ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "policy-language"


def _models(raws: Any) -> list[NetworkPolicy]:
    return [p for p in read_all(raws) if isinstance(p, NetworkPolicy)]


def _enforced(p: NetworkPolicy) -> NetworkPolicy:
    """The policy without the rules of a direction policyTypes does not list
    (not enforced, and left out by both writers with a warning)."""
    return dataclasses.replace(
        p,
        ingress=p.ingress if Direction.INGRESS in p.policy_types else (),
        egress=p.egress if Direction.EGRESS in p.policy_types else (),
    )


def _quiet(_: str) -> None:
    pass


@settings(max_examples=EXAMPLES, deadline=None)
@given(randpol.policies(max_size=4, protocols=("TCP", "UDP", "SCTP", None)))
def test_networkpolicy_to_pol_and_back_is_the_same_policy(objs: list[dict[str, Any]]) -> None:
    yaml_text = yaml.safe_dump_all(objs)
    raws = parse_text(yaml_text, "in.yaml")
    pol = convert(raws, "pol", _quiet)
    back = _models(parse_policies(pol, "out.pol"))
    assert back == [_enforced(p) for p in _models(raws)]
    assert format_pol(pol, "out.pol") == pol  # the writer's layout is fmt's


@settings(max_examples=EXAMPLES, deadline=None)
@given(randpol.policies(max_size=4))
def test_yaml_to_pol_to_yaml_is_the_same_yaml(objs: list[dict[str, Any]]) -> None:
    raws = parse_text(yaml.safe_dump_all(objs), "in.yaml")
    canonical = convert(raws, "yaml", _quiet)
    pol = convert(raws, "pol", _quiet)
    again = convert(parse_policies(pol, "mid.pol"), "yaml", _quiet)
    assert list(yaml.safe_load_all(again)) == list(yaml.safe_load_all(canonical))
    assert again == canonical  # byte for byte: one canonical form
    assert convert(parse_text(again, "out.yaml"), "yaml", _quiet) == again


def test_rules_policytypes_leaves_out_are_reported() -> None:
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]},
    }
    warned: list[str] = []
    out = convert(parse_text(yaml.safe_dump(obj), "in.yaml"), "pol", warned.append)
    assert out == "policy p in x {\n  egress {}\n}\n"
    assert len(warned) == 1 and "spec.ingress: left out" in warned[0]


def test_pol_refuses_what_it_cannot_hold(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--to", "pol", str(ROOT / "cluster.yaml")]) == 2
    assert "holds only NetworkPolicy objects" in capsys.readouterr().err
    labelled = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: p, namespace: x, labels: {a: b}}\nspec: {podSelector: {}}\n"
    )
    raws = parse_text(labelled, "l.yaml")
    with pytest.raises(Exception, match="cannot hold labels"):
        convert(raws, "pol", _quiet)
    assert "labels:\n    a: b" in convert(raws, "yaml", _quiet)


def test_convert_says_where_namespace_less_policies_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Argo CD's policies name no namespace (they are meant for kubectl apply
    -n argocd); convert wrote them ``in default`` without a word.  It now says
    so on stderr and takes -n, as compile does."""
    path = tmp_path / "argocd.yaml"
    path.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: argocd-server-network-policy}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{}]}\n"
    )
    assert main(["convert", "--to", "pol", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("policy argocd-server-network-policy in default {")
    assert "no metadata.namespace: namespace default (default; choose with -n)" in err
    assert main(["convert", "--to", "yaml", "-n", "argocd", str(path)]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["metadata"]["namespace"] == "argocd" and "(-n argocd)" in err


def test_convert_reads_pol_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "policy.pol").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["convert", "--format", "pol", "--to", "yaml", "-"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in docs] == ["web", "deny-all"]


def test_compile_reads_pol_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pol = (ROOT / "policy.pol").read_text()
    cluster = (ROOT / "cluster.yaml").read_text()
    assert main(["compile", str(ROOT / "cluster.yaml"), str(ROOT / "policy.pol")]) == 0
    want = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(pol))
    assert main(["compile", "--format", "pol", str(ROOT / "cluster.yaml"), "-"]) == 0
    assert capsys.readouterr().out == want
    monkeypatch.setattr("sys.stdin", io.StringIO(cluster))
    assert main(["compile", "--format", "pol", "-"]) == 2  # YAML is not .pol
    assert "syntax error in policy language" in capsys.readouterr().err


def test_fmt_in_place_check_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    messy = (
        "# header\npolicy  web in x{select app=web # trailing\n"
        "ingress{allow from pods( app = c ) ports TCP/80}\n  # inside\n}\n"
        "policy deny in y { ingress { } }\n# end\n"
    )
    want = (
        "# header\npolicy web in x {\n  select app=web  # trailing\n  ingress {\n"
        "    allow from pods(app=c) ports tcp/80\n  }\n}\n\n"
        "# inside\npolicy deny in y {\n  ingress {}\n}\n\n# end\n"
    )
    path = tmp_path / "p.pol"
    path.write_text(messy)
    assert main(["fmt", "--check", str(path)]) == 1
    assert "would reformat" in capsys.readouterr().err and path.read_text() == messy
    assert main(["fmt", str(tmp_path)]) == 0
    assert path.read_text() == want
    assert main(["fmt", "--check", str(path)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(messy))
    assert main(["fmt"]) == 0
    assert capsys.readouterr().out == want


def test_fmt_bad_input_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "a.pol", tmp_path / "b.pol"
    good.write_text("policy a in x {ingress{}}")
    bad.write_text("policy b in x {\n  ingress { allow ports tcp/ }\n}\n")
    assert main(["fmt", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:30: NetworkPolicy x/b: syntax error" in err
    assert "expected" in err and "^" in err and "Traceback" not in err
    assert good.read_text() == "policy a in x {ingress{}}"


def test_fmt_keeps_file_order_and_every_policy() -> None:
    one = (ROOT / "policy.pol").read_text()
    text = "\n".join(
        one.replace("policy web", f"policy web{i}").replace("deny-all", f"d{i}") for i in (3, 1, 2)
    )
    out = format_pol(text, "f.pol")
    assert _models(parse_policies(out, "o.pol")) == _models(parse_policies(text, "f.pol"))
    assert [line.split()[1] for line in out.splitlines() if line.startswith("policy")] == [
        "web3",
        "d3",
        "web1",
        "d1",
        "web2",
        "d2",
    ]


@settings(max_examples=EXAMPLES // 3, deadline=None)
@given(randpol.policies(max_size=3), st.lists(st.tuples(st.integers(0, 200), st.booleans())))
def test_fmt_keeps_every_comment_and_is_idempotent(
    objs: list[dict[str, Any]], where: list[tuple[int, bool]]
) -> None:
    lines = convert(parse_text(yaml.safe_dump_all(objs), "in.yaml"), "pol", _quiet).splitlines()
    for n, (at, trailing) in enumerate(where):
        i = at % (len(lines) + 1)
        if trailing and i < len(lines):
            lines[i] += f"  # c{n}"
        else:
            lines.insert(i, f"# c{n}")
    text = "\n".join(lines) + "\n"
    once = format_pol(text, "c.pol")
    assert format_pol(once, "c.pol") == once
    assert sorted(re.findall(r"# c\d+", once)) == sorted(re.findall(r"# c\d+", text))
    assert _models(parse_policies(once, "o.pol")) == _models(parse_policies(text, "c.pol"))
