"""`policyc ... | head`: a reader that went away is not a traceback.

Trial: `policyc matrix CASE | head -3` printed a BrokenPipeError traceback.
The pipe's read end is closed before policyc starts, so its first write fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASE = str(ROOT / "fixtures" / "ipblock-except")


@pytest.mark.parametrize("cmd", [["matrix", CASE], ["compile", "--node", "node-1", CASE]])
def test_closed_stdout_is_quiet(cmd: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "policyc.cli", *cmd],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            check=False,
        )
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


def test_help_into_a_closed_pipe_is_quiet() -> None:
    """`policyc compile --help | head -0` printed a BrokenPipeError traceback."""
    import subprocess
    import sys

    proc = subprocess.run(
        f"{sys.executable} -m policyc.cli compile --help | head -c 0",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in proc.stderr
