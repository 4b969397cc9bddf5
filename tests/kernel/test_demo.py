"""``policyc demo --once`` on the real kernel, then ``policyc demo down``.

The demo makes only ``pcdemo-*`` network namespaces (its pods wired by the
real policyc-cni) and the directory it is given; ``down`` must leave none of
them, and a second ``down`` must succeed too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from policyc.demo_net import PREFIX

from .kernelcheck import require_kernel

POLICYC = [sys.executable, "-m", "policyc.cli"]


def _pcdemo_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def _demo(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POLICYC, "demo", *argv], capture_output=True, text=True, timeout=300, check=False
    )


def test_demo_once_then_down_leaves_nothing(tmp_path: Path) -> None:
    require_kernel()
    state = tmp_path / "demo"
    try:
        once = _demo("--once", "--dir", str(state))
        assert once.returncode == 0, once.stdout + once.stderr
        rows = {line.split()[0]: line.split()[1:] for line in once.stdout.splitlines()[2:6]}
        # columns: shop/web shop/db shop/client other/client (IPv4 then IPv6 each)
        assert rows == {
            "shop/web": ["-", "XX", "XX", ".."],
            "shop/db": ["XX", "-", "XX", ".."],
            "shop/client": ["..", "XX", "-", ".."],
            "other/client": ["XX", "XX", "XX", "-"],
        }, once.stdout  # and no cell has the '!' of a probe the evaluator disagrees with
        assert sorted(_pcdemo_namespaces()) == sorted(
            f"{PREFIX}{n}" for n in ("node", "shop-web", "shop-db", "shop-client", "other-client")
        )
        pid = int((state / "agent.pid").read_text())
        assert not os.path.exists(f"/proc/{pid}")  # --once stops the agent
    finally:
        down = _demo("down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert _pcdemo_namespaces() == []
    assert not state.exists()
    again = _demo("down", "--dir", str(state))
    assert again.returncode == 0, again.stderr


def test_sigterm_stops_the_agent(tmp_path: Path) -> None:
    """``kill`` (or a closed terminal) of a running demo left its agent
    running, orphaned in its own session, until ``demo down``."""
    require_kernel()
    state = tmp_path / "demo"
    demo = subprocess.Popen(
        [*POLICYC, "demo", "--dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stderr is not None
        for line in demo.stderr:  # blocks until the first matrix is shown
            if "policyc: demo: up in" in line:
                break
        pid = int((state / "agent.pid").read_text())
        demo.terminate()
        _, err = demo.communicate(timeout=60)
        assert demo.returncode == 0 and "agent stopped" in err, err
        assert not os.path.exists(f"/proc/{pid}")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        down = _demo("down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert _pcdemo_namespaces() == []
