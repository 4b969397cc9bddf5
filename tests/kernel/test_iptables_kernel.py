"""The iptables backend on a real kernel, with iptables-nft and iptables-legacy.

Each variant gets its own lab (a node namespace with the 9 e2e pods); the
variant is chosen with ``POLICYC_IPTABLES_VARIANT``, which ``policyc apply``
inherits through ``ip netns exec``.  Covered:

* every conformance scenario and random policies, cell by cell against the
  reference evaluator (0 wrong cells);
* unrelated iptables rules and ipsets in the node survive two applies
  byte-identical;
* an apply that fails halfway (a new set vanishes between ipset restore and
  iptables-restore) leaves the previous policy in effect.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from backends.iptables import render_parts
from backends.iptables_apply import VARIANT_ENV
from policyc.load import parse_text
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of

from .kernelcheck import REQUIRE_ENV, require_kernel
from .netlab import Lab, build_standard, matrix_diff
from .randpol import policies
from .scenarios import SCENARIOS, Scenario, block, labels, pods, pol
from .world import PORTS4, apply_world, count, dump, expected_matrix, world

VARIANTS = ("nft", "legacy")
BACKEND = ("--backend", "iptables")
EXAMPLES = int(os.environ.get("POLICYC_IPTABLES_RANDOM_EXAMPLES", "30"))
ROOT = Path(__file__).resolve().parents[2]


def _missing_tools(variant: str) -> str | None:
    for tool in ("ipset", f"iptables-{variant}-restore", f"ip6tables-{variant}-restore"):
        if shutil.which(tool) is None:
            return tool
    return None


@pytest.fixture(scope="module", params=VARIANTS)
def iplab(request: pytest.FixtureRequest) -> Iterator[tuple[Lab, str]]:
    require_kernel()
    variant = str(request.param)
    tool = _missing_tools(variant)
    if tool is not None:
        reason = f"{tool} is not installed"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    old = os.environ.get(VARIANT_ENV)
    os.environ[VARIANT_ENV] = variant
    try:
        with Lab() as lab:
            build_standard(lab, ipv6=True)
            yield lab, variant
    finally:
        if old is None:
            os.environ.pop(VARIANT_ENV, None)
        else:
            os.environ[VARIANT_ENV] = old


def reset(lab: Lab, variant: str) -> None:
    """Remove every rule, chain and set in the lab's node (this variant)."""
    for fam in ("iptables", "ip6tables"):
        for table in ("raw", "filter"):
            for op in ("-F", "-X"):
                lab.node_exec([f"{fam}-{variant}", "-w", "-t", table, op], check=False)
    lab.node_exec(["ipset", "destroy"], check=False)


@pytest.fixture
def node(iplab: tuple[Lab, str]) -> Iterator[tuple[Lab, str]]:
    lab, variant = iplab
    reset(lab, variant)
    yield lab, variant
    reset(lab, variant)


def check(lab: Lab, objs: list[dict[str, Any]], family: int = 4) -> list[str]:
    apply_world(lab, objs, *BACKEND)
    expected = expected_matrix(lab, objs, family, PORTS4)
    actual = lab.matrix(ports=PORTS4, family=family)
    count("iptables_cells", len(expected))
    return matrix_diff(expected, actual)


# -- conformance ------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(iplab: tuple[Lab, str], scenario: Scenario) -> None:
    lab, _ = iplab
    diff = check(lab, world(scenario.policies, scenario.relabel), scenario.family)
    count("iptables_scenarios")
    assert diff == [], "\n".join(diff)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pols=policies())
def test_random_policies(iplab: tuple[Lab, str], pols: list[dict[str, object]]) -> None:
    lab, _ = iplab
    family = 6 if len(pols) == 2 else 4  # about a third of the examples on IPv6
    diff = check(lab, world(pols), family)
    count("iptables_random_policies", len(pols))
    assert diff == [], "\n".join(diff)


# -- other components' rules -------------------------------------------------

POLICY_A = [
    pol("x", "deny", types=["Ingress"]),
    pol("x", "from-net", labels(pod="a"), ingress=[{"from": [block("10.244.1.0/24",
                                                                  "10.244.1.16/30")]}]),
]
POLICY_B = [
    pol("x", "deny", types=["Ingress", "Egress"]),
    pol("y", "from-b", labels(pod="a"), ingress=[{"from": [pods(pod="b")]}]),
]

UNRELATED = {
    "iptables": [
        "-t filter -N KUBE-TEST",
        "-t filter -A KUBE-TEST -s 192.0.2.7/32 -j ACCEPT",
        "-t filter -A FORWARD -s 192.0.2.1/32 -m comment --comment other -j ACCEPT",
        "-t filter -A FORWARD -j KUBE-TEST",
        "-t filter -A INPUT -m set --match-set other-set src -j DROP",
        "-t raw -A PREROUTING -s 192.0.2.9/32 -j NOTRACK",
    ],
    "ip6tables": [
        "-t filter -A FORWARD -s 2001:db8:244:ff::1/128 -j ACCEPT",
        "-t raw -A PREROUTING -s 2001:db8:244:ff::2/128 -j NOTRACK",
    ],
}


def foreign_state(lab: Lab, variant: str) -> str:
    """Everything in the node that is not policyc's, as saved text."""
    out = []
    for fam in ("iptables", "ip6tables"):
        saved = lab.node_exec([f"{fam}-{variant}-save"]).stdout
        out += [  # packet counters of the builtin chains' policies are not rules
            re.sub(r"\[\d+:\d+\]$", "[-]", line) for line in saved.splitlines()
            if not line.startswith("#") and "POLICYC-" not in line
        ]
    sets = lab.node_exec(["ipset", "save"]).stdout
    out += [
        re.sub(r" initval 0x[0-9a-f]+", "", line) for line in sets.splitlines()
        if "policyc-" not in line
    ]
    return "\n".join(out) + "\n"


def test_unrelated_rules_stay_byte_identical(node: tuple[Lab, str]) -> None:
    lab, variant = node
    lab.node_exec(["ipset", "create", "other-set", "hash:ip"])
    lab.node_exec(["ipset", "add", "other-set", "192.0.2.5"])
    for fam, cmds in UNRELATED.items():
        for cmd in cmds:
            lab.node_exec([f"{fam}-{variant}", "-w", *cmd.split()])
    before = foreign_state(lab, variant)
    assert "KUBE-TEST" in before and "other-set" in before
    for policy in (POLICY_A, POLICY_B):
        diff = check(lab, world(policy))
        assert diff == [], "\n".join(diff)
    assert foreign_state(lab, variant) == before
    for fam in ("iptables", "ip6tables"):
        saved = lab.node_exec([f"{fam}-{variant}-save"]).stdout
        assert saved.count("-A FORWARD -j POLICYC-FORWARD") == 1  # hooks inserted once
        assert saved.count("-A PREROUTING -j POLICYC-ANTISPOOF") == 1
    sets = lab.node_exec(["ipset", "list", "-n"]).stdout.split()
    assert not [s for s in sets if s.startswith("policyc-net_")]  # stale set removed
    assert not [s for s in sets if s.startswith(("policyc-t-", "policyc-o-"))]


# -- failure halfway ----------------------------------------------------------

FAIL_SCRIPT = """
import subprocess, sys
from backends.iptables import split
from backends.iptables_apply import Applier
from policyc.errors import BackendError
from policyc.pipeline import read_cluster, render

path, variant, victim = sys.argv[1:4]
text = render(read_cluster([path]), "iptables", "node-1")
def vanish():
    subprocess.run(["ipset", "destroy", victim], check=True)
try:
    Applier(variant, between=vanish).apply(split(text))
except BackendError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def new_set_of(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    def names(objs: list[dict[str, Any]]) -> set[str]:
        cluster = build_cluster(parse_text(dump(objs), "<t>"))
        text = render_parts(ruleset_of(cluster, "node-1"))["ipset"]
        return set(re.findall(r"^create (policyc-(?!t-)\S+)", text, re.M))

    fresh = sorted(n for n in names(new) - names(old) if n.endswith("4"))
    assert fresh, "policy B must need a new IPv4 set"
    return fresh[0]


def test_failure_halfway_keeps_previous_policy(node: tuple[Lab, str], tmp_path: Path) -> None:
    lab, variant = node
    objs_a, objs_b = world(POLICY_B), world(POLICY_A)  # B needs a new ipBlock set
    assert check(lab, objs_a) == []
    state = {f: lab.node_exec([f"{f}-{variant}-save"]).stdout for f in ("iptables", "ip6tables")}
    sets = lab.node_exec(["ipset", "list", "-n"]).stdout
    victim = new_set_of(objs_a, objs_b)
    path = tmp_path / "b.yaml"
    path.write_text(dump(objs_b))
    proc = lab.node_exec(
        [sys.executable, "-c", FAIL_SCRIPT, str(path), variant, victim], check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert "previous rules are still in effect" in proc.stderr, proc.stderr
    assert victim in proc.stderr
    expected = expected_matrix(lab, objs_a, 4, PORTS4)
    diff = matrix_diff(expected, lab.matrix(ports=PORTS4, family=4))
    assert diff == [], "\n".join(diff)

    def policyc_lines(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if "POLICYC-" in ln]

    for f in ("iptables", "ip6tables"):
        after = lab.node_exec([f"{f}-{variant}-save"]).stdout
        assert policyc_lines(after) == policyc_lines(state[f])
    assert lab.node_exec(["ipset", "list", "-n"]).stdout == sets
    # and the next apply of B goes through
    assert check(lab, objs_b) == []
