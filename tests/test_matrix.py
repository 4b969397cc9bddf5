"""`policyc matrix` (issue 11, deliverable 6): a legend, IPv4 and IPv6,
--namespace and --node filters, -o text|json|html, text that wraps instead
of 1,572-character lines, colour only on a terminal, named ports resolved
per destination pod.

Golden files: fixtures/<case>/expected.matrix (text, every case) and
expected.matrix-json (a few cases; not .json, which the
directory reader would load as input); ``pytest --update-golden`` rewrites them.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.errors import InputError
from policyc.matrix import Mark, PortQuery, build_matrix, parse_port
from policyc.matrix_text import matrix_text
from policyc.model import Protocol
from policyc.pipeline import read_cluster
from policyc.views_cli import use_colour

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(
    p.name for p in ROOT.iterdir() if p.is_dir() and p.name[0] != "_" and p.name != "passes"
)
JSON_CASES = {"egress-ipv6-block": ["--port", "80"], "node-filter": ["--port", "http"]}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["matrix", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def check_golden(path: Path, out: str, update: bool) -> None:
    if update or not path.exists():
        path.write_text(out)
    assert out == path.read_text()


@pytest.mark.parametrize("case", CASES)
def test_golden_text(case: str, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    out = run([str(ROOT / case)], capsys)
    check_golden(ROOT / case / "expected.matrix", out, update_golden)


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_golden_json(case: str, capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    out = run([*JSON_CASES[case], "-o", "json", str(ROOT / case)], capsys)
    check_golden(ROOT / case / "expected.matrix-json", out, update_golden)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("80", PortQuery(80, None, Protocol.TCP)),
        ("53/udp", PortQuery(53, None, Protocol.UDP)),
        ("http", PortQuery(None, "http", None)),
        ("dns-tcp/TCP", PortQuery(None, "dns-tcp", Protocol.TCP)),
    ],
)
def test_parse_port(text: str, want: PortQuery) -> None:
    assert parse_port(text) == want


@pytest.mark.parametrize(
    "text", ["", "/tcp", "0", "70000", "80/icmp", "80/tcp/x", "HTTP", "a_b", "-1", "x" * 16]
)
def test_bad_port_is_an_input_error(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError):
        parse_port(text)
    assert main(["matrix", "--port", text, str(ROOT / "node-filter")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "want PORT[/PROTOCOL] or NAME[/PROTOCOL]" in err or "does not match ICMP" in err


def test_named_port_resolves_per_destination() -> None:
    """`http` is 8080 on web-1 and 8081 on web-2; the client has no such port."""
    m = build_matrix(read_cluster([str(ROOT / "node-filter")]), parse_port("http"))
    keys = [p.name for p in m.pods]
    assert keys == ["client", "web-1", "web-2"]
    row = m.cells[0]  # from the client
    assert row[0].mark is Mark.NO_PORT
    assert (row[1].port, row[2].port) == (8080, 8081)
    assert row[1].mark is Mark.ALLOWED and m.cells[1][2].mark is Mark.DENIED


def test_ipv4_and_ipv6_each_have_a_verdict() -> None:
    """egress-ipv6-block: x's pods may reach an IPv6 block only."""
    m = build_matrix(read_cluster([str(ROOT / "egress-ipv6-block")]), parse_port("80"))
    by = {(m.pods[i].name, m.pods[i].namespace): i for i in range(len(m.pods))}
    cell = m.cells[by[("a", "x")]][by[("a", "y")]]
    assert (cell.v4, cell.v6, cell.mark) == (False, True, Mark.ONLY_V6)


def test_filters(capsys: pytest.CaptureFixture[str]) -> None:
    case = str(ROOT / "named-ports")
    out = run(["--namespace", "y", "--namespace", "z", case], capsys)
    assert "x/a" not in out and "y/a" in out and "z/c" in out
    out = run(["--node", "node-2", "--port", "http", str(ROOT / "node-filter")], capsys)
    assert "shop/web-2" in out and "shop/web-1" not in out


def test_text_wraps_at_the_width() -> None:
    """57 pods used to make 1,572-character lines."""
    m = build_matrix(read_cluster([str(ROOT / "named-ports")]), parse_port("80"))
    text = matrix_text(m, width=24)
    grid = [line for line in text.splitlines() if re.match(r"^( *\d| +[xyz]( |$))", line)]
    assert len(grid) == 2 * (2 + 9) and max(len(line) for line in grid) <= 24
    assert "columns 1-6 (block 1 of 2):" in text and "columns 7-9 (block 2 of 2):" in text
    for j in range(1, 10):  # every column number appears in some header
        assert re.search(rf"^ +(\d+ +)*{j}( +\d+)*$", text, re.M)


def test_namespace_names_are_never_clipped(tmp_path: Path) -> None:
    """A namespace wider than its columns printed only what fitted
    (``kube-system`` over one column read ``ku``): its name now starts above
    its first column, on a second header line where it would overlap."""
    docs = []
    for i, ns in enumerate(("kube-system", "monitoring", "ops", "a")):
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {ns}}}\n"
            "spec: {containers: [{name: c, image: i}]}\n"
            f"status: {{podIP: 10.244.1.{10 + i}}}\n"
        )
    (tmp_path / "c.yaml").write_text("---\n".join(docs))
    m = build_matrix(read_cluster([str(tmp_path / "c.yaml")]), parse_port("80"))
    lines = matrix_text(m, width=200).splitlines()
    head = lines.index("                 1  2  3  4")  # the column numbers
    assert lines[head - 3 : head] == [
        "                 a  kube-system",
        "                       monitoring",
        "                          ops",
    ], "\n".join(lines)


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour("auto", Tty()) and not use_colour("auto", io.StringIO())
    assert use_colour("always", io.StringIO()) and not use_colour("never", Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour("auto", Tty())


def test_colour_codes_wrap_only_the_marks(capsys: pytest.CaptureFixture[str]) -> None:
    case = str(ROOT / "default-deny-ingress")
    plain = run([case], capsys)
    coloured = run(["--color", "always", case], capsys)
    assert "\x1b[1;31mX\x1b[0m" in coloured and ANSI.sub("", coloured) == plain


def test_json_has_every_cell(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(["-o", "json", str(ROOT / "default-deny-ingress")], capsys))
    assert len(data["cells"]) == len(data["pods"]) ** 2
    assert set(data["legend"]) == {m.value for m in Mark}
