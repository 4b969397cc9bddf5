"""`policyc explain` / `matrix`: a bad PORT[/PROTOCOL] is an error line, exit 2.

Trial: `explain x/a z/a 80/xyz`, `explain x/a z/a abc` and `matrix --port x`
ended in ValueError tracebacks, and `explain ... 70000` answered ALLOWED for
a port that cannot exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyc.cli import main

CASE = str(Path(__file__).resolve().parent.parent / "fixtures" / "ipblock-except")


@pytest.mark.parametrize("port", ["80/xyz", "abc", "70000", "0", "-1", "/tcp", "80/"])
def test_bad_port_is_an_error_line(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "x/a", "z/a", port, CASE]) == 2
    # matrix takes a container port name too (abc): tests/test_matrix.py.
    assert port == "abc" or main(["matrix", "--port", port, CASE]) == 2
    err = capsys.readouterr().err
    # explain resolves a name against the destination's containerPorts.
    want = 0 if port == "abc" else 2
    assert err.count(f"policyc: error: port {port!r}: want PORT[/PROTOCOL]") == want
    if port == "abc":
        assert "policyc: error: port 'abc': not a containerPort name of z/a (it has " in err


def test_good_ports_still_answer() -> None:
    assert main(["explain", "192.0.2.5", "z/a", "80/udp", CASE]) == 0
    assert main(["explain", "x/a", "z/a", "80", CASE]) == 3  # denied
    assert main(["matrix", "--port", "81/SCTP", CASE]) == 0


def test_empty_protocol_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``80/`` was read as 80/TCP."""
    assert main(["explain", "x/a", "z/a", "80/", CASE]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "policyc: error: port '80/': want PORT[/PROTOCOL] with PROTOCOL one of TCP, UDP, SCTP\n"
    )
