"""`policyc watch` exits non-zero when its agent loop dies.

The trial found an exception in the agent thread (a refused route) ending
the process with exit code 0 and "stopped; rules left in place (fail safe)",
the words of a clean SIGTERM: a supervisor could not tell a crash from a
stop.  No kernel here: the loop is made to raise before it touches one.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import pytest

import backends.sysctl
from policyc.cli import main
from watcher.agent import Agent


def test_agent_loop_dying_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(self: Agent) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Agent, "run", boom)
    monkeypatch.setattr(backends.sysctl, "ensure_bridge_netfilter", lambda: [])
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    monkeypatch.setattr("threading.excepthook", lambda args: None)
    argv: list[Any] = ["watch", "--node", "n1", "--source", f"dir:{tmp_path}"]
    argv += ["--listen", "127.0.0.1:0", "--cni-socket", "", "--no-routes"]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert main(argv) == 1
    finally:  # run() installs its own log handler
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert "agent loop died" in err and "fail safe" not in err
