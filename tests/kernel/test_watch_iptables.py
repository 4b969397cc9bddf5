"""``policyc watch --backend iptables`` on a real kernel: the 9-pod lab, an
agent process with a directory source, policy and pod label changes.

* after each change the reachability matrix equals the reference evaluator;
* a pod label change reaches the kernel as ipset member changes only: the
  saved text of policyc's iptables, ip6tables and ebtables chains is
  unchanged while the sets' members changed;
* ``--cleanup`` removes policyc's hooks, chains and sets, nothing else.

Once per iptables variant (nft, legacy) when its tools are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.iptables.kernel import VARIANT_ENV
from tests.support.figures import count
from tests.support.scenarios import labels, nss, pods, pol
from tests.support.world import dump, world

from .agent_proc import AgentProc
from .kernelcheck import REQUIRE_ENV
from .netlab import Lab, matrix_diff
from .world import POLICYC, PORTS4, expected_matrix

REPO = Path(__file__).resolve().parents[2]

VARIANTS = ("nft", "legacy")
PORT = 9781
TRANSACTIONS = "policyc_transactions_total"

POLICIES_1 = [
    pol("x", "deny", types=["Ingress"]),
    pol("x", "from-b", labels(pod="a"), ingress=[{"from": [pods(pod="b")]}]),
]
POLICIES_2 = POLICIES_1 + [
    pol("y", "egress-to-x", {}, types=["Egress"], egress=[{"to": [nss(ns="x")]}]),
]
POLICIES_3 = [
    pol(
        "z",
        "web",
        labels(pod="c"),
        ingress=[{"from": [pods(pod="a")], "ports": [{"port": 81, "protocol": "UDP"}]}],
    ),
]
# x/c takes x/b's labels: it becomes an allowed peer of x/a (set members only)
RELABEL = {("Pod", "x", "c"): {"pod": "b"}}


def _tools_missing(variant: str) -> str | None:
    for tool in ("ipset", "ebtables-nft", f"iptables-{variant}-save"):
        if shutil.which(tool) is None:
            return tool
    return None


def write_world(src: Path, objs: list[dict[str, Any]]) -> None:
    tmp = src.parent / "world.yaml.tmp"
    tmp.write_text(dump(objs))
    os.replace(tmp, src / "world.yaml")


def chains_text(lab: Lab, variant: str) -> str:
    """policyc's chains and hooks as saved, without counters."""
    out = []
    for tool in (f"iptables-{variant}-save", f"ip6tables-{variant}-save", "ebtables-nft-save"):
        saved = lab.node_exec([tool]).stdout
        out += [
            re.sub(r"\[\d+:\d+\]", "", ln)
            for ln in saved.splitlines()
            if "POLICYC-" in ln and not ln.startswith("#")
        ]
    return "\n".join(out)


def sets_text(lab: Lab) -> str:
    lines = lab.node_exec(["ipset", "save"]).stdout.splitlines()
    return "\n".join(sorted(ln for ln in lines if "policyc-" in ln))


def settle(agent: AgentProc, before: float, timeout: float = 15.0) -> float:
    """Wait for at least one more transaction, then for quiet (no new one for 0.4 s)."""
    deadline = time.monotonic() + timeout
    value = agent.metric(TRANSACTIONS)
    while value <= before:
        if time.monotonic() > deadline:
            raise AssertionError(f"no transaction after the change:\n{agent.logs()[-3000:]}")
        time.sleep(0.1)
        value = agent.metric(TRANSACTIONS)
    while True:
        time.sleep(0.4)
        again = agent.metric(TRANSACTIONS)
        if again == value or time.monotonic() > deadline:
            return again
        value = again


def check(lab: Lab, objs: list[dict[str, Any]], family: int = 4) -> None:
    expected = expected_matrix(lab, objs, family, PORTS4)
    diff = matrix_diff(expected, lab.matrix(ports=PORTS4, family=family))
    count("watch_iptables_cells", len(expected))
    assert diff == [], "\n".join(diff)


def reset(lab: Lab, variant: str) -> None:
    lab.flush_firewall()  # nft tables: iptables-nft and ebtables-nft rules too
    for fam in ("iptables", "ip6tables"):
        for table in ("raw", "filter"):
            for op in ("-F", "-X"):
                lab.node_exec([f"{fam}-{variant}", "-w", "-t", table, op], check=False)
    lab.node_exec(["ipset", "destroy"], check=False)


@pytest.fixture(params=VARIANTS)
def variant_lab(request: pytest.FixtureRequest, lab: Lab) -> Iterator[tuple[Lab, str]]:
    variant = str(request.param)
    tool = _tools_missing(variant)
    if tool is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{tool} is not installed ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(f"{tool} is not installed")
    reset(lab, variant)
    try:
        yield lab, variant
    finally:
        reset(lab, variant)


def test_watch_iptables_incremental(variant_lab: tuple[Lab, str], tmp_path: Path) -> None:
    lab, variant = variant_lab
    src = tmp_path / "src"
    src.mkdir()
    lab.node_exec([f"iptables-{variant}", "-w", "-t", "filter", "-N", "OTHER-CHAIN"])
    lab.node_exec(
        [f"iptables-{variant}", "-w", "-A", "FORWARD", "-s", "192.0.2.3/32", "-j", "OTHER-CHAIN"]
    )
    lab.node_exec(["ipset", "create", "other-set", "hash:ip"])
    objs = world(POLICIES_1)
    write_world(src, objs)
    agent = AgentProc(
        lab.node.netns,
        "node-1",
        src,
        PORT,
        "--backend",
        "iptables",
        "--no-routes",
        "--cleanup",
        env={VARIANT_ENV: variant},
    )
    agent.start()
    try:
        n = settle(agent, 0)
        check(lab, objs)

        # a policy change: chains rewritten
        objs = world(POLICIES_2)
        write_world(src, objs)
        n = settle(agent, n)
        check(lab, objs)
        check(lab, objs, family=6)

        # a pod label change: ipset members only, no chain rewritten
        chains, sets = chains_text(lab, variant), sets_text(lab)
        objs = world(POLICIES_2, RELABEL)
        write_world(src, objs)
        n = settle(agent, n)
        assert chains_text(lab, variant) == chains, "a pod label change rewrote chains"
        assert sets_text(lab) != sets
        check(lab, objs)
        count("watch_iptables_label_changes")

        # and back, then another policy set
        objs = world(POLICIES_2)
        write_world(src, objs)
        n = settle(agent, n)
        assert chains_text(lab, variant) == chains
        assert sets_text(lab) == sets
        objs = world(POLICIES_3, RELABEL)
        write_world(src, objs)
        n = settle(agent, n)
        check(lab, objs)
        assert agent.metric('policyc_errors_total{stage="apply"}') == 0
        assert agent.metric("policyc_repairs_total") == 0  # no false drift
    finally:
        rc = agent.stop(signal.SIGTERM)
    assert rc == 0, agent.logs()[-3000:]
    # --cleanup: policyc's hooks, chains and sets gone; the others stay
    assert chains_text(lab, variant) == ""
    assert "policyc-" not in lab.node_exec(["ipset", "list", "-n"]).stdout
    assert "other-set" in lab.node_exec(["ipset", "list", "-n"]).stdout
    saved = lab.node_exec([f"iptables-{variant}-save"]).stdout
    assert "-A FORWARD -s 192.0.2.3/32 -j OTHER-CHAIN" in saved


def wait_metric(agent: AgentProc, name: str, above: float, timeout: float = 20.0) -> float:
    deadline = time.monotonic() + timeout
    while (value := agent.metric(name)) <= above:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} stayed at {value}:\n{agent.logs()[-3000:]}")
        time.sleep(0.2)
    return value


def test_watch_iptables_failed_apply_and_drift(
    variant_lab: tuple[Lab, str], tmp_path: Path
) -> None:
    """A failed apply (the test-only faulty backend) leaves the previous rules
    in force and converges once the fault is gone; an edited policyc chain is
    drift, repaired on the next resync, and so is a foreign ACCEPT inserted
    above the FORWARD hook jump (the jump is moved first again)."""
    import backends

    if not all(hasattr(b, "name") for b in backends.BACKENDS.values()):
        pytest.skip("tests.support.faulty wraps every backend: each needs the contract's name")
    lab, variant = variant_lab
    src = tmp_path / "src"
    src.mkdir()
    fault = tmp_path / "fault"
    objs = world(POLICIES_1)
    write_world(src, objs)
    agent = AgentProc(
        lab.node.netns,
        "node-1",
        src,
        PORT + 1,
        "--backend",
        "iptables",
        "--no-routes",
        "--cleanup",
        env={VARIANT_ENV: variant, "PYTHONPATH": str(REPO)},
    )
    ip_netns_exec = agent.argv.index(POLICYC)
    agent.argv[ip_netns_exec : ip_netns_exec + 1] = [
        sys.executable,
        "-m",
        "tests.support.faulty",
        str(fault),
    ]
    agent.start()
    try:
        n = settle(agent, 0)
        check(lab, objs)
        errors = 'policyc_errors_total{stage="apply"}'
        fault.touch()
        write_world(src, world(POLICIES_3))
        wait_metric(agent, errors, 0)
        check(lab, objs)  # the previous rules are still in force
        fault.unlink()
        objs = world(POLICIES_3)
        n = settle(agent, n)
        check(lab, objs)

        lab.node_exec([f"iptables-{variant}", "-w", "-I", "POLICYC-FORWARD", "1", "-j", "DROP"])
        wait_metric(agent, "policyc_repairs_total", 0)
        n = settle(agent, n)
        check(lab, objs)

        # a foreign ACCEPT above the hook jump bypasses policy: drift too
        repairs = agent.metric("policyc_repairs_total")
        bypass = ["-I", "FORWARD", "1", "-s", "10.244.0.0/16", "-j", "ACCEPT"]
        lab.node_exec([f"iptables-{variant}", "-w", *bypass])
        wait_metric(agent, "policyc_repairs_total", repairs)
        settle(agent, n)
        check(lab, objs)
        saved = lab.node_exec([f"iptables-{variant}-save", "-t", "filter"]).stdout
        forward = [ln for ln in saved.splitlines() if ln.startswith("-A FORWARD ")]
        assert forward[:2] == [
            "-A FORWARD -j POLICYC-FORWARD",
            "-A FORWARD -s 10.244.0.0/16 -j ACCEPT",
        ]
    finally:
        rc = agent.stop(signal.SIGTERM)
    assert rc == 0, agent.logs()[-3000:]
    assert chains_text(lab, variant) == ""
    assert "policyc-" not in lab.node_exec(["ipset", "list", "-n"]).stdout
