"""Never blackhole a node by mistake (issue 11, "Safety first").

``apply`` refuses a missing or unknown ``--node`` and an empty input
(tests/test_cli_badargs.py holds those rows); ``watch`` refuses, after its
first complete list, a node the cluster does not know; both say "needs root
(CAP_NET_ADMIN)" without it.  Nothing here reaches a kernel: the root checks
run as root with CAP_NET_ADMIN dropped (setpriv), and the watch refusal
happens before the dataplane is first programmed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import backends.sysctl
from policyc.cli import main
from policyc.kinds import Kind
from policyc.model import Node, Pod
from watcher.agent import Agent, Options
from watcher.sources.base import Emit, Event, EventType

ROOT = Path(__file__).resolve().parent.parent
CASE = str(ROOT / "fixtures" / "ipblock-except")
POLICYC = str(Path(sys.executable).with_name("policyc"))
SETPRIV = shutil.which("setpriv")


def without_net_admin(*argv: str) -> subprocess.CompletedProcess[str]:
    """``policyc ARGV`` with CAP_NET_ADMIN gone from every capability set."""
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed")
    drop = ["--inh-caps=-net_admin", "--bounding-set=-net_admin"]
    return subprocess.run(
        [SETPRIV, *drop, POLICYC, *argv], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "--node", "node-1", CASE],
        ["watch", "--node", "node-1", "--source", f"dir:{CASE}", "--cni-socket", ""],
    ],
)
def test_without_cap_net_admin_says_needs_root(argv: list[str]) -> None:
    proc = without_net_admin(*argv)
    assert proc.returncode == 1, proc.stderr
    assert "needs root (CAP_NET_ADMIN)" in proc.stderr and "Traceback" not in proc.stderr


def test_input_errors_come_before_the_root_check() -> None:
    proc = without_net_admin("apply", "--node", "node-z", CASE)
    assert proc.returncode == 2 and "node 'node-z' is neither" in proc.stderr


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(backends.sysctl, "ensure_bridge_netfilter", lambda: [])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level  # watch installs its own


def test_watch_refuses_a_node_the_listed_cluster_does_not_know(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DaemonSet passes spec.nodeName; a typo, or a --source that is not this
    cluster, must crash-loop visibly rather than drop every pod."""
    shutil.copytree(CASE, tmp_path / "cluster")
    argv = ["watch", "--node", "node-z", "--source", f"dir:{tmp_path / 'cluster'}"]
    argv += ["--listen", "127.0.0.1:0", "--cni-socket", "", "--no-routes", "--log-format", "text"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "policyc: error: node 'node-z' is neither a Node object nor any pod's" in err


class Listed:
    """A source whose first list is done."""

    name = "listed"

    def run(self, emit: Emit, stop: threading.Event) -> None:
        stop.wait()

    def synced(self) -> bool:
        return True


class Recording:
    def __init__(self) -> None:
        self.syncs = 0

    def sync(self, compiler: object) -> object:
        self.syncs += 1
        raise OSError("no kernel in this test")


@pytest.mark.parametrize(
    "objects, known",
    [
        ((), False),
        ((Node("node-1"),), True),
        ((Pod("p", "x", node_name="node-1"),), True),
        ((Pod("p", "x", node_name="node-2"), Node("node-2")), False),
    ],
)
def test_agent_checks_the_node_before_programming(objects: tuple[object, ...], known: bool) -> None:
    agent = Agent(Listed(), Recording(), Options("node-1", require_node=True, routes=False))
    for obj in objects:
        kind = Kind.NODE if isinstance(obj, Node) else Kind.POD
        agent.handle(Event(EventType.SNAPSHOT, kind, objects=(obj,)))  # type: ignore[arg-type]
    assert agent.node_known() is known
    if known:
        agent.sync()  # goes on to the dataplane (whose failure the agent logs)
        assert agent.dp.syncs == 1 and not agent.refused and not agent.stop.is_set()
    else:
        assert agent.sync() is False and agent.stop.is_set()
        assert "node 'node-1' is neither" in agent.refused and agent.dp.syncs == 0
