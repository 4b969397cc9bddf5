"""The whitelist grammars themselves: they accept every golden output and
reject the injections issue 13 §1 describes.  No kernel needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.iptables.restore import BEGIN, END, FILES
from tests.hostile import grammar
from tests.hostile.grammar import Format, check_lines, check_nft


def split(text: str) -> dict[str, str]:
    """compile's bundle -> {section: that tool's input}, by its markers."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(BEGIN):
            current = out.setdefault(line[len(BEGIN) :], [])
        elif line.startswith(END):
            current = None
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.iptables").exists())


@pytest.mark.parametrize("case", CASES)
def test_golden_outputs_fit_their_grammar(case: str) -> None:
    sections = split((FIXTURES / case / "expected.iptables").read_text())
    for section, body in sections.items():
        assert check_lines(Format(FILES[section]), body.encode()) == [], (case, section)
    assert check_nft((FIXTURES / case / "expected.nft").read_bytes()) == []


@pytest.mark.parametrize(
    ("fmt", "line", "why"),
    [
        (Format.IPSET, "# " + "k" * 1021, "too-long"),  # 1,024 bytes with its newline
        (Format.IPSET, "flush", "grammar"),  # the tail of an overlong line
        (Format.IPSET, "destroy", "grammar"),
        (Format.IPSET, "create foreign hash:ip family inet", "grammar"),
        (Format.IPSET, "add policyc-x 10.244.1.1 ; flush", "grammar"),
        (Format.IPSET, "# a\x1bb", "grammar"),
        (Format.IPTABLES, "-F", "grammar"),
        (Format.IPTABLES, '-A POLICYC-X -m comment --comment "a" "b', "grammar"),
        (Format.IPTABLES, "-A POLICYC-X -j ACCEPT ; iptables -F", "grammar"),
        (Format.IPTABLES, "-A POLICYC-X " + "-s 10.244.1.1 " * 800, "too-long"),
        (Format.EBTABLES, "*filter\x00", "grammar"),
    ],
)
def test_grammar_rejects(fmt: Format, line: str, why: str) -> None:
    faults = check_lines(fmt, line.encode() + b"\n")
    assert why in {f.why for f in faults}, faults


def test_ipset_limit_counts_the_newline() -> None:
    assert grammar.IPSET_LINE_MAX == 1023
    assert check_lines(Format.IPSET, b"# " + b"k" * 1020 + b"\n") == []


def test_nft_rejects_control_and_unbalanced_quotes() -> None:
    assert check_nft(b'\t\tip saddr 10.244.1.1 accept comment "a\x1b[2Jb"\n')
    assert check_nft(b'\t\tip saddr 10.244.1.1 accept comment "a\n')
    assert check_nft(b"\t# fine comment\n") == []
