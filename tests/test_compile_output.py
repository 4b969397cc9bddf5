"""`policyc compile -o`: a directory gets the backend's files, for every backend.

Trial: `policyc compile CASE -o DIR/` (the nftables default) ended in an
IsADirectoryError traceback: only the iptables backend was sent to its
``files()``, though every backend has one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyc.cli import main

CASE = Path(__file__).resolve().parent.parent / "fixtures" / "ipblock-except"


@pytest.mark.parametrize("existing", [True, False])
def test_nftables_output_dir_gets_policyc_nft(tmp_path: Path, existing: bool) -> None:
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    target = str(out) if existing else f"{out}/"
    assert main(["compile", "--output-dir", target, str(CASE)]) == 0
    assert [p.name for p in out.iterdir()] == ["policyc.nft"]
    assert (out / "policyc.nft").read_text() == (CASE / "expected.nft").read_text()


@pytest.mark.parametrize(
    "flag, where",
    [
        ("--output-file", "missing/x.nft"),
        ("--output-dir", "file/"),
        ("--output-file", "file/x.nft"),
    ],
)
def test_unwritable_output_is_an_error_line_not_a_traceback(
    tmp_path: Path, flag: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trial: -o into a missing folder, or a folder path that is a file,
    raised FileNotFoundError / FileExistsError tracebacks.  The path is
    checked before compiling: a bad argument, exit 2."""
    (tmp_path / "file").write_text("")
    assert main(["compile", flag, f"{tmp_path}/{where}", str(CASE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"policyc: error: {flag} ") and "Traceback" not in err
    assert err.count("\n") == 1
