"""The process oracles on made-up outcomes: each bad shape is caught, and a
clean refusal passes.  No kernel, no subprocess."""

from __future__ import annotations

import pytest

from tests.hostile.inputs import Expect, HostileInput
from tests.hostile.oracles import check_process, traceback_class
from tests.hostile.runner import Outcome

INPUT = HostileInput("self", "t", (("in.yaml", b""),), Expect.INVALID)
GOOD = b"policyc: error: in.yaml:3:5: Namespace x: metadata.name: bad\n"


def outcome(stderr: bytes, code: int = 2, stdout: bytes = b"") -> Outcome:
    return Outcome(("policyc",), code, stdout, stderr, 0.1, False)


def kinds(o: Outcome) -> set[str]:
    return {f.kind for f in check_process(INPUT, o)}


def test_clean_refusal_passes() -> None:
    assert kinds(outcome(GOOD)) == set()
    summary = GOOD + b"policyc: error: and 19900 more errors\n"
    assert kinds(outcome(summary)) == set()


@pytest.mark.parametrize(
    ("stderr", "code", "kind"),
    [
        (
            b"Traceback (most recent call last):\nRecursionError: deep\n",
            1,
            "traceback:RecursionError",
        ),
        (GOOD, 0, "expect"),
        (GOOD, 3, "exit-code"),
        (b"policyc: error: in.yaml:-1:-1: syntax error\n", 2, "error-location"),
        (b"policyc: error: something went wrong\n", 2, "error-location"),
        (b"policyc: error: in.yaml:1:1: a\nforged\n", 2, "forged-line"),
        (b"policyc: error: other.yaml:1:1: forged\n", 2, "forged-line"),
        (b"policyc: error: in.yaml:1:1: a\x1b[2Jb\n", 2, "control-char"),
        ("policyc: error: in.yaml:1:1: a\u2028b\n".encode(), 2, "unicode-control"),
    ],
)
def test_bad_shapes_are_caught(stderr: bytes, code: int, kind: str) -> None:
    assert kind in kinds(outcome(stderr, code))


def test_bounds_are_caught() -> None:
    o = Outcome(("policyc",), -9, b"", b"", 20.0, True)
    assert "bound" in kinds(o)


def test_traceback_classes() -> None:
    digits = "Traceback\nValueError: Exceeds the limit (4300 digits) for integer string conversion"
    assert traceback_class(digits) == "traceback:int-digits"
    assert traceback_class("Traceback\nyaml.reader.ReaderError: x") == "traceback:ReaderError"
