"""Golden output of ``policyc explain`` and ``policyc diff``.

``fixtures/<case>/explain.args`` lists explain invocations (``SRC DST PORT
[options]``, one a line, run on the case's folder); their output, stderr and
exit code go to ``fixtures/<case>/expected.explain``.  ``fixtures/_diff/<case>/args``
lists ``OLD NEW [options]`` lines (paths from the repository root) and
``expected.diff`` holds their output.  ``pytest --update-golden`` rewrites both.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from policyc.cli import main

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "fixtures"
EXPLAIN = sorted(p.parent.name for p in ROOT.glob("*/explain.args"))
DIFF = sorted(p.name for p in (ROOT / "_diff").iterdir() if p.is_dir())


def transcript(calls: list[list[str]], capsys: pytest.CaptureFixture[str]) -> str:
    """``$ policyc ARGS``, stdout, stderr and ``exit N`` for each call."""
    out = []
    for argv in calls:
        rc = main(argv)
        got = capsys.readouterr()
        out.append(f"$ policyc {shlex.join(argv)}\n{got.out}{got.err}exit {rc}\n")
    return "\n".join(out)


def check(path: Path, text: str, update: bool) -> None:
    if update or not path.exists():
        path.write_text(text)
    assert text == path.read_text()


def _lines(path: Path) -> list[list[str]]:
    return [shlex.split(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", EXPLAIN)
def test_explain_golden(
    case: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    update_golden: bool,
) -> None:
    monkeypatch.chdir(REPO)
    calls = [
        ["explain", *args[:3], f"fixtures/{case}", *args[3:]]
        for args in _lines(ROOT / case / "explain.args")
    ]
    check(ROOT / case / "expected.explain", transcript(calls, capsys), update_golden)


@pytest.mark.parametrize("case", DIFF)
def test_diff_golden(
    case: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    update_golden: bool,
) -> None:
    monkeypatch.chdir(REPO)
    calls = [["diff", *args] for args in _lines(ROOT / "_diff" / case / "args")]
    check(ROOT / "_diff" / case / "expected.diff", transcript(calls, capsys), update_golden)


def test_enough_cases() -> None:
    assert len(EXPLAIN) >= 5 and len(DIFF) >= 5


def readme_examples() -> list[tuple[list[str], str]]:
    """The ``$ policyc explain|diff ...`` blocks of the README and their output."""
    lines = (REPO / "README.md").read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith(("    $ policyc explain ", "    $ policyc diff ")):
            out = []
            for body in lines[i + 1 :]:
                if not body.strip():
                    break
                out.append(body[4:] + "\n")
            found.append((shlex.split(line[len("    $ policyc ") :]), "".join(out)))
    return found


def test_readme_shows_real_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    examples = readme_examples()
    assert len(examples) >= 3
    for argv, shown in examples:
        main(argv)
        assert capsys.readouterr().out == shown, argv
