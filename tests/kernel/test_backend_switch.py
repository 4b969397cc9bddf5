"""Switching backend between two applies removes the other backend's rules
(issue 11), in both directions, on the kernel of a scratch network namespace
holding foreign state that must survive.  Also: ``compile -o json`` is a
ruleset libnftables accepts (``nft -j -c -f``)."""

from __future__ import annotations

import subprocess
import sys
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
