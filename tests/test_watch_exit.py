"""`policyc watch` exits non-zero when its agent loop dies.

The trial found an exception in the agent thread (a refused route) ending
the process with exit code 0 and "stopped; rules left in place (fail safe)",
the words of a clean SIGTERM: a supervisor could not tell a crash from a
stop.  No kernel here: the loop is made to raise before it touches one.
"""

from __future__ import annotations

import logging
import signal
import socket
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


@pytest.mark.parametrize("listen, code", [("127.0.0.1:notaport", 2), ("taken", 1)])
def test_bad_or_taken_listen_address_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    listen: str,
    code: int,
) -> None:
    """Trial: --listen with a port that is not a number, or one already in
    use, ended in a ValueError / OSError traceback."""
    monkeypatch.setattr(backends.sysctl, "ensure_bridge_netfilter", lambda: [])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if listen == "taken":
            listen = f"127.0.0.1:{busy.getsockname()[1]}"
        argv = ["watch", "--node", "n1", "--source", f"dir:{tmp_path}", "--listen", listen]
        try:
            assert main([*argv, "--cni-socket", "", "--no-routes"]) == code
        finally:
            root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert f"policyc watch: --listen {listen}: " in err and "Traceback" not in err


@pytest.mark.parametrize("group", ["0", "-1", "65536", "seven"])
def test_log_group_out_of_range_is_exit_2(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The kernel keeps 16 bits (65536 was programmed as group 0, conntrack's,
    while ulogd listened elsewhere): refused before anything starts."""
    argv = ["watch", "--node", "n1", "--source", "dir:/nonexistent", "--log-drops"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--log-group", group])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--log-group" in err and "1-65535" in err and "Traceback" not in err


def test_taken_listen_address_stops_the_drop_log_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trial: with --log-drops, a --listen port in use ended the agent after
    ulogd had started; its /tmp/policyc-ulogd-* directory was left behind."""
    import watcher.main

    stopped: list[bool] = []

    class Reader:
        def stop(self) -> None:
            stopped.append(True)

    monkeypatch.setattr(backends.sysctl, "ensure_bridge_netfilter", lambda: [])
    monkeypatch.setattr(watcher.main, "start_drop_log", lambda *a: (Reader(), None))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv = ["watch", "--node", "n1", "--source", f"dir:{tmp_path}", "--log-drops"]
        argv += ["--listen", f"127.0.0.1:{busy.getsockname()[1]}", "--cni-socket", ""]
        try:
            assert main([*argv, "--no-routes"]) == 1
        finally:
            root.handlers[:], root.level = handlers, level
    assert stopped == [True]
    assert "Address already in use" in capsys.readouterr().err
