"""Switching backend between two applies removes the other backend's rules
(issue 11), in both directions, on the kernel of a scratch network namespace
holding foreign state that must survive.  Also: ``compile -o json`` is a
ruleset libnftables accepts (``nft -j -c -f``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.hostile.netns import add_foreign, fresh_netns, sh, snapshot
from tests.kernel.kernelcheck import require_kernel

ROOT = Path(__file__).resolve().parents[2]
CASE = str(ROOT / "fixtures" / "ipblock-except")
POLICYC = str(Path(sys.executable).with_name("policyc"))


def apply(ns: str, backend: str) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, POLICYC, "apply", "--node", "node-1", "--backend", backend]
        + [CASE],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def has_nft(state: dict[str, str]) -> bool:
    return "table inet policyc" in state["nft"] and "table bridge policyc" in state["nft"]


def has_iptables(state: dict[str, str]) -> bool:
    return ":POLICYC-" in state["iptables"] and "policyc-" in state["ipset"]


def foreign(state: dict[str, str]) -> list[bool]:
    return [
        "table inet foreign" in state["nft"],
        "foreign-set" in state["ipset"],
        "FOREIGN" in state["iptables"],
    ]


def test_switching_backend_removes_the_other_backends_rules() -> None:
    require_kernel()
    with fresh_netns("switch") as ns:
        add_foreign(ns)
        apply(ns, "nftables")
        state = snapshot(ns)
        assert has_nft(state) and not has_iptables(state)

        err = apply(ns, "iptables")
        state = snapshot(ns)
        assert has_iptables(state) and not has_nft(state), state
        assert "removed the nftables ruleset (switched to iptables)" in err

        err = apply(ns, "nftables")
        state = snapshot(ns)
        assert has_nft(state) and not has_iptables(state), state
        assert "removed the iptables ruleset (switched to nftables)" in err
        assert foreign(state) == [True, True, True]

        err = apply(ns, "nftables")  # same backend again: nothing to remove
        assert "removed" not in err and has_nft(snapshot(ns))


def _watch_until(ns: str, backend: str, done: Callable[[dict[str, str]], bool]) -> str:
    """Run ``policyc watch --backend BACKEND`` in ``ns`` until ``done(snapshot)``;
    SIGTERM it (rules stay) and return its log."""
    cmd = [POLICYC, "watch", "--source", f"dir:{CASE}", "--node", "node-1", "--backend"]
    cmd += [backend, "--listen", "127.0.0.1:0", "--cni-socket", "", "--no-routes"]
    agent = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done(snapshot(ns)):
            assert agent.poll() is None, agent.stderr.read() if agent.stderr else ""
            time.sleep(0.2)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert done(snapshot(ns)), err
    return err


def test_watch_switching_backend_removes_the_other_backends_rules() -> None:
    """The agent, too: its first commit in, the other backend's rules go (a
    DaemonSet moved from --backend iptables to nftables must not leave the
    old chains dropping what the new policy allows)."""
    require_kernel()
    with fresh_netns("wswitch") as ns:
        add_foreign(ns)
        apply(ns, "iptables")
        err = _watch_until(ns, "nftables", lambda st: has_nft(st) and not has_iptables(st))
        assert "removed the iptables ruleset (switched to nftables)" in err
        err = _watch_until(ns, "iptables", lambda st: has_iptables(st) and not has_nft(st))
        assert "removed the nftables ruleset (switched to iptables)" in err
        assert foreign(snapshot(ns)) == [True, True, True]


def test_compile_json_is_accepted_by_libnftables() -> None:
    require_kernel()
    out = subprocess.run(
        [POLICYC, "compile", "--node", "node-1", "-o", "json", CASE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with fresh_netns("json") as ns:
        res = sh(ns, "nft -j -c -f -", out.encode())
        assert res.returncode == 0, res.stderr
