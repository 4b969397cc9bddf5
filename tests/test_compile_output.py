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
    assert main(["compile", "-o", target, str(CASE)]) == 0
    assert [p.name for p in out.iterdir()] == ["policyc.nft"]
    assert (out / "policyc.nft").read_text() == (CASE / "expected.nft").read_text()
