"""``policyc logs`` and ``policyc status`` against a metrics server in
process (the agent's, with fixed /pods and /drops contents)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.logprefix import Tag
from policyc.model import Direction
from watcher.droplog import DropBus, DropRecord
from watcher.metrics import Metrics, serve

REC = DropRecord(
    ts=1796030061.5,
    tag=Tag.DROP,
    direction=Direction.INGRESS,
    proto="TCP",
    src="10.244.1.13",
    dst="10.244.1.10",
    sport=40000,
    dport=80,
    src_pods=("y/a",),
    dst_pods=("x/a",),
    pod="x/a",
    policies=("x/deny",),
    chain="in4_ab",
)
AUDIT = DropRecord(
    **{**{f: getattr(REC, f) for f in REC.__slots__}, "tag": Tag.AUDIT, "policies": ("y/aud",)}  # type: ignore[arg-type]
)
PODS = {
    "x/a": {
        "pod": "x/a",
        "ips": ["10.244.1.10"],
        "enforced": True,
        "since": 1796030061.0,
        "enforced_at": 1796030061.05,
        "latency": 0.05,
        "generation": 1,
        "ingress_policies": ["x/deny"],
        "egress_policies": [],
        "audit_policies": [],
    },
    "x/b": {"pod": "x/b", "ips": [], "enforced": False, "since": 1796030061.0},
}


@pytest.fixture
def agent() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bus = DropBus()
    bus(REC)
    bus(AUDIT)
    http = serve(Metrics(), f"127.0.0.1:{port}", lambda: True, lambda: True, lambda: PODS, bus)
    yield f"127.0.0.1:{port}"
    http.shutdown()


def test_logs_filters(agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "--agent", agent]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert "DROP ingress y/a (10.244.1.13:40000) -> x/a (10.244.1.10:80) TCP by x/deny" in out[0]
    assert "WOULD-DROP (audit)" in out[1] and out[1].endswith("by y/aud")
    assert main(["logs", "--agent", agent, "--policy", "deny", "-o", "json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["policies"] == ["x/deny"]
    assert main(["logs", "--agent", agent, "--pod", "z/a"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["logs", "--agent", agent, "-n", "y", "--policy", "y/aud"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_logs_policy_filter_matches_cluster_network_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ClusterNetworkPolicy drop names ``Kind name``: both the key and the
    bare name select it (neither did: only ``ns/name`` keys were split)."""
    cnp = {**REC.to_json(), "policies": ["ClusterNetworkPolicy no-y"], "rule": "block-y"}
    cnp |= {"tier": "Admin", "policy": "ClusterNetworkPolicy no-y"}
    f = tmp_path / "agent.log"
    f.write_text(json.dumps(REC.to_json()) + "\n" + json.dumps(cnp) + "\n")
    for want in ("no-y", "ClusterNetworkPolicy no-y"):
        assert main(["logs", str(f), "--policy", want, "-o", "json"]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["rule"] == "block-y"
    assert main(["logs", str(f), "--policy", "x/no-y"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["logs", str(f), "--policy", "no-y"]) == 0
    assert capsys.readouterr().out.endswith("by ClusterNetworkPolicy no-y rule block-y (Admin)\n")


def test_logs_from_a_file_of_agent_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "agent.log"
    f.write_text('{"level": "info", "msg": "applied"}\n' + json.dumps(REC.to_json()) + "\nnoise\n")
    assert main(["logs", str(f)]) == 0
    assert "by x/deny" in capsys.readouterr().out


def test_status(agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "x/a", "--agent", agent]) == 0
    out = capsys.readouterr().out
    assert "enforced: yes, since" in out and "ingress:  x/deny" in out
    assert "egress:   not isolated" in out
    assert main(["status", "b", "-n", "x", "--agent", agent]) == 3
    assert main(["status", "x/zz", "--agent", agent]) == 2
    assert "not a pod of the agent's node" in capsys.readouterr().err


def test_agent_given_as_an_http_url(agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--agent http://HOST:PORT[/]`` is the agent at HOST:PORT (it asked
    ``http://http://...`` and could not reach it)."""
    assert main(["status", "x/a", "--agent", f"http://{agent}"]) == 0
    assert main(["logs", "--agent", f"http://{agent}/"]) == 0
    out, err = capsys.readouterr()
    assert "enforced: yes" in out and "by x/deny" in out and err == ""


def test_status_without_an_agent(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["status", "x/a", "--agent", f"127.0.0.1:{port}"]) == 1
    assert "cannot reach the agent" in capsys.readouterr().err


def test_status_of_something_else_than_the_agent(capsys: pytest.CaptureFixture[str]) -> None:
    """--agent naming another HTTP server: one line, exit 1 (it was a
    JSONDecodeError traceback)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>hi</html>" if self.path == "/pods" else b"[1]")

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert main(["status", "x/a", "--agent", f"127.0.0.1:{srv.server_port}"]) == 1
        err = capsys.readouterr().err
        assert "not the JSON of a policyc agent's /pods" in err and "Traceback" not in err
    finally:
        srv.shutdown()
        srv.server_close()


class _Once(http.server.BaseHTTPRequestHandler):
    """An agent that sends its two drop lines and goes away (closes)."""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200)
        self.end_headers()
        for rec in (REC, AUDIT):
            self.wfile.write(json.dumps(rec.to_json()).encode() + b"\n")

    def log_message(self, *args: object) -> None:
        pass


def test_logs_follow_says_when_the_agent_goes_away(capsys: pytest.CaptureFixture[str]) -> None:
    """``logs -f`` ended with exit 0 and no word when the agent stopped: now
    one line on stderr names the agent and where the stream stopped, exit 1."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Once)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    agent = f"127.0.0.1:{srv.server_port}"
    try:
        assert main(["logs", "-f", "--agent", agent, "--policy", "x/deny"]) == 1
        out, err = capsys.readouterr()
        assert len(out.splitlines()) == 1 and "by x/deny" in out
        assert err == (
            f"policyc: error: the agent at http://{agent}/drops?follow=1 closed the stream "
            "(after 2 drop lines, the last of 2026-11-30T09:14:21.500000Z)\n"
        )
        assert main(["logs", "--agent", agent]) == 0  # not followed: the end is the end
        assert len(capsys.readouterr().out.splitlines()) == 2
    finally:
        srv.shutdown()
        srv.server_close()


def test_logs_and_status_help_say_what_their_exit_codes_mean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for cmd, want in (
        ("logs", "  1    the agent could not be reached"),
        ("status", "  3  not yet"),
    ):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert (
            f"\nfor {cmd}:\n" in out and want in out and out.index("exit codes:") < out.index(want)
        )


def test_drops_follow_streams_new_lines() -> None:
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bus = DropBus()
    bus(REC)
    http = serve(Metrics(), f"127.0.0.1:{port}", lambda: True, lambda: True, None, bus)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/drops?follow=1", timeout=10) as r:
            assert json.loads(r.readline())["policies"] == ["x/deny"]
            bus(AUDIT)
            assert json.loads(r.readline())["verdict"] == "would-drop"
    finally:
        http.shutdown()
