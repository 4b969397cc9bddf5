"""Issue 13 §1–§3, one test per repro and backend (``repros.REPROS``).

The ones that fail today are marked from ``known.KNOWN_FAILING`` only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.mark import ParameterSet

from tests.hostile.drive import BACKENDS, judge
from tests.hostile.known import repro_reason
from tests.hostile.repros import REPROS
from tests.hostile.runner import Bounds

# "All of these must end with exit 2, a location and a clear message, fast."
REPRO_BOUNDS = Bounds(seconds=10.0)


def _params() -> list[ParameterSet]:
    out: list[ParameterSet] = []
    for ident in REPROS:
        for b in BACKENDS:
            reason = repro_reason(ident, b)
            marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
            out.append(pytest.param(ident, b, id=f"{ident}-{b}", marks=marks))
    return out


@pytest.mark.parametrize(("ident", "backend"), _params())
def test_repro(ident: str, backend: str, tmp_path: Path, scratch_netns: str) -> None:
    verdict = judge(REPROS[ident], backend, tmp_path / "run", scratch_netns, REPRO_BOUNDS)
    assert not verdict.findings, verdict.report()
