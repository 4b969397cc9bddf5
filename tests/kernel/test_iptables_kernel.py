"""The iptables backend on a real kernel, with iptables-nft and iptables-legacy.

Each variant gets its own lab (a node namespace with the 9 e2e pods); the
variant is chosen with ``POLICYC_IPTABLES_VARIANT``, which ``policyc apply``
inherits through ``ip netns exec``.  Covered:

* conformance scenarios and random policies, cell by cell against the
  reference evaluator (0 wrong cells): all 54 scenarios and
  ``POLICYC_IPTABLES_RANDOM_EXAMPLES`` (20) random worlds for the default
  variant (nft), a representative subset (``OTHER_SCENARIOS``: every kind of
  match, both families, label changes) and ``POLICYC_IPTABLES_RANDOM_OTHER``
  (12) random worlds for legacy.  Most checks apply in-process (the applier
  run inside the node namespace); the byte-identity test goes through
  ``policyc apply`` itself;
* ARP and other ethertypes (ebtables): a forged ARP sent from a pod with raw
  AF_PACKET is not delivered, other ethertypes are not, and a ``pc*`` port
  no compiled pod owns carries nothing;
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

from backends.iptables import BACKEND as IPT
from backends.iptables.diff import TableWrite
from backends.iptables.diff import diff as ipt_diff
from backends.iptables.ebtables import CHAIN
from backends.iptables.kernel import VARIANT_ENV, Kernel
from backends.iptables.state import Tool
from policyc.compiler import Compiler
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of
from tests.support.figures import count
from tests.support.randpol import policies
from tests.support.scenarios import SCENARIOS, Scenario, block, labels, pods, pol
from tests.support.world import dump, world
from watcher.dataplane import Dataplane

from .kernelcheck import REQUIRE_ENV, require_kernel
from .netlab import Lab, build_standard, matrix_diff
from .nsutil import in_netns
from .world import PORTS4, apply_world, expected_matrix

VARIANTS = ("nft", "legacy")
DEFAULT_VARIANT = "nft"  # gets every scenario; the others get OTHER_SCENARIOS
BACKEND = ("--backend", "iptables")
EXAMPLES = int(os.environ.get("POLICYC_IPTABLES_RANDOM_EXAMPLES", "20"))
EXAMPLES_OTHER = int(os.environ.get("POLICYC_IPTABLES_RANDOM_OTHER", "12"))
ROOT = Path(__file__).resolve().parents[2]
# One or two of each kind: deny-all both ways, selectors and expressions,
# ports/endPort/named ports, ipBlock with except, label changes, IPv6.
OTHER_SCENARIOS = (
    "deny-all-ingress-x",
    "deny-all-egress-x",
    "allow-all-ingress-with-deny",
    "ingress-ns-and-pod",
    "ingress-expr-notin",
    "ingress-port-81-udp",
    "ingress-endport",
    "ingress-named-port",
    "egress-named-port",
    "ipblock-except",
    "ipblock-egress-except",
    "union-of-policies",
    "label-change-pod",
    "label-change-namespace",
    "v6-pods",
    "v6-ipblock-except",
    "v6-named-egress",
)
CASES = [
    (v, s) for v in VARIANTS for s in SCENARIOS if v == DEFAULT_VARIANT or s.name in OTHER_SCENARIOS
]


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
    for op in ("-F", "-X"):
        lab.node_exec(["ebtables-nft", "-t", "nat", op], check=False)
    lab.node_exec(["ipset", "destroy"], check=False)


@pytest.fixture
def node(iplab: tuple[Lab, str]) -> Iterator[tuple[Lab, str]]:
    lab, variant = iplab
    reset(lab, variant)
    yield lab, variant
    reset(lab, variant)


def apply_here(lab: Lab, objs: list[dict[str, Any]]) -> None:
    """What ``policyc apply --backend iptables`` does, without starting a
    process: render here, run the applier's tools inside the node namespace."""
    desired = IPT.render(ruleset_of(build_cluster(parse_text(dump(objs), "<world>")), "node-1"))
    kernel = Kernel.from_env()
    with in_netns(lab.node.netns):  # the tools are forked in the node netns
        tx = ipt_diff(kernel.read_kernel(), desired)
        kernel.apply(tx)
        # the kernel, read back through the save tools, holds exactly tx.after
        assert kernel.read_kernel() == tx.after


def check(lab: Lab, objs: list[dict[str, Any]], family: int = 4, cli: bool = False) -> list[str]:
    if cli:
        apply_world(lab, objs, *BACKEND)
    else:
        apply_here(lab, objs)
    expected = expected_matrix(lab, objs, family, PORTS4)
    actual = lab.matrix(ports=PORTS4, family=family)
    count("iptables_cells", len(expected))
    return matrix_diff(expected, actual)


# -- conformance ------------------------------------------------------------


@pytest.mark.parametrize(
    ("iplab", "scenario"), CASES, ids=[f"{v}-{s.name}" for v, s in CASES], indirect=["iplab"]
)
def test_scenario(iplab: tuple[Lab, str], scenario: Scenario) -> None:
    lab, variant = iplab
    count(f"iptables_scenarios_{variant}")
    diff = check(lab, world(scenario.policies, scenario.relabel), scenario.family)
    count("iptables_scenarios")
    assert diff == [], "\n".join(diff)


def test_random_policies(iplab: tuple[Lab, str]) -> None:
    lab, variant = iplab

    @settings(
        max_examples=EXAMPLES if variant == DEFAULT_VARIANT else EXAMPLES_OTHER,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(pols=policies())
    def one(pols: list[dict[str, object]]) -> None:
        family = 6 if len(pols) == 2 else 4  # about a third of the examples on IPv6
        diff = check(lab, world(pols), family)
        count("iptables_random_policies", len(pols))
        count(f"iptables_random_worlds_{variant}")
        assert diff == [], "\n".join(diff)

    one()


# -- other components' rules -------------------------------------------------

POLICY_A = [
    pol("x", "deny", types=["Ingress"]),
    pol(
        "x",
        "from-net",
        labels(pod="a"),
        ingress=[{"from": [block("10.244.1.0/24", "10.244.1.16/30")]}],
    ),
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
            re.sub(r"\[\d+:\d+\]$", "[-]", line)
            for line in saved.splitlines()
            if not line.startswith("#") and "POLICYC-" not in line
        ]
    sets = lab.node_exec(["ipset", "save"]).stdout
    out += [
        re.sub(r" initval 0x[0-9a-f]+", "", line)
        for line in sets.splitlines()
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
        diff = check(lab, world(policy), cli=True)
        assert diff == [], "\n".join(diff)
    assert foreign_state(lab, variant) == before
    for fam in ("iptables", "ip6tables"):
        saved = lab.node_exec([f"{fam}-{variant}-save"]).stdout
        assert saved.count("-A FORWARD -j POLICYC-FORWARD") == 1  # hooks inserted once
        assert saved.count("-A PREROUTING -j POLICYC-ANTISPOOF") == 1
    sets = lab.node_exec(["ipset", "list", "-n"]).stdout.split()
    assert not [s for s in sets if s.startswith("policyc-net_")]  # stale set removed
    assert not [s for s in sets if s.startswith(("policyc-t-", "policyc-o-"))]


def test_edited_rule_body_and_element_are_drift_and_remove_leaves_the_rest(
    node: tuple[Lab, str],
) -> None:
    """read_kernel() compares every rule body and element: an edited rule
    (same chain, same count, same comment) is drift, and so is a foreign
    member in a set; the diff back converges; remove() takes only ours."""
    lab, variant = node
    lab.node_exec(["ipset", "create", "other-set", "hash:ip"])
    lab.node_exec([f"iptables-{variant}", "-w", "-N", "KUBE-TEST"])
    objs = world(POLICY_A)
    desired = IPT.render(ruleset_of(build_cluster(parse_text(dump(objs), "<w>")), "node-1"))
    kernel = Kernel.from_env()
    with in_netns(lab.node.netns):
        kernel.apply(ipt_diff(kernel.read_kernel(), desired))
        assert kernel.read_kernel() == desired
    before = foreign_state(lab, variant)
    chain = next(c for t in desired.tables if t.name == "filter" for c in t.chains if c.rules)
    rule = chain.rules[0]
    flipped = "RETURN" if rule.target[-1] == "DROP" else "DROP"
    args = [*rule.args, "-j", flipped]
    lab.node_exec([f"iptables-{variant}", "-w", "-R", chain.name, "1", *args])
    with in_netns(lab.node.netns):
        drifted = kernel.read_kernel()
        assert drifted is not None and drifted != desired
        assert len(drifted.tables) == len(desired.tables)
        kernel.apply(ipt_diff(drifted, desired))
        assert kernel.read_kernel() == desired
    lab.node_exec(["ipset", "add", "policyc-node4", "192.0.2.99"])
    with in_netns(lab.node.netns):
        assert kernel.read_kernel() != desired
        kernel.remove()
        assert kernel.read_kernel() is None
    assert foreign_state(lab, variant) == before


# -- the hook jump stays first --------------------------------------------------

FOREIGN_FIRST = (  # other components' rules inserted above policyc's hooks
    "-t filter -I FORWARD 1 -s 10.244.0.0/16 -j ACCEPT",
    "-t raw -I PREROUTING 1 -s 192.0.2.9/32 -j ACCEPT",
)
FOREIGN_FIRST_EBT = "-t nat -I PREROUTING 1 -i eth9 -j ACCEPT"


def first_rule(saved: str, table: str, builtin: str) -> str:
    """The first ``-A <builtin>`` line of ``table`` in save output."""
    lines = saved.split(table + "\n", 1)[1].split("COMMIT", 1)[0].splitlines()
    return next(ln for ln in lines if ln.startswith(f"-A {builtin} "))


def insert_foreign_first(lab: Lab, variant: str) -> None:
    for cmd in FOREIGN_FIRST:
        lab.node_exec([f"iptables-{variant}", "-w", *cmd.split()])
    lab.node_exec(["ebtables-nft", *FOREIGN_FIRST_EBT.split()])


def test_foreign_accept_above_the_hook_is_drift_and_apply_moves_the_jump_first(
    node: tuple[Lab, str],
) -> None:
    """A foreign ``-I FORWARD 1 ... -j ACCEPT`` ends FORWARD before policyc's
    jump: the policy is bypassed.  read_kernel() sees the jump is no longer
    first (drift), and ``policyc apply`` deletes and re-inserts it at rule 1
    (FORWARD, raw PREROUTING, ebtables nat PREROUTING): denied again."""
    lab, variant = node
    objs = world(POLICY_B)  # namespace x: deny all ingress and egress
    assert check(lab, objs) == []
    desired = IPT.render(ruleset_of(build_cluster(parse_text(dump(objs), "<w>")), "node-1"))
    case = (lab.pod("y/b"), lab.pod("x/a").addr(4), "tcp", 80)
    assert lab.probe([case]) == {case: False}
    insert_foreign_first(lab, variant)
    assert lab.probe([case]) == {case: True}  # the bypass the hook position prevents
    kernel = Kernel.from_env()
    with in_netns(lab.node.netns):
        drifted = kernel.read_kernel()
    assert drifted is not None and drifted != desired
    moved = {(t.tool, h.builtin): h.first for t in drifted.tables for h in t.hooks}
    assert moved == {  # ip6tables untouched: its hooks are still first
        (Tool.IPTABLES, "FORWARD"): False,
        (Tool.IPTABLES, "PREROUTING"): False,
        (Tool.EBTABLES, "PREROUTING"): False,
        (Tool.IP6TABLES, "FORWARD"): True,
        (Tool.IP6TABLES, "PREROUTING"): True,
    }
    apply_world(lab, objs, *BACKEND)  # policyc apply --backend iptables
    with in_netns(lab.node.netns):
        assert kernel.read_kernel() == desired
    saved = lab.node_exec([f"iptables-{variant}-save"]).stdout
    assert first_rule(saved, "*filter", "FORWARD") == "-A FORWARD -j POLICYC-FORWARD"
    assert first_rule(saved, "*raw", "PREROUTING") == "-A PREROUTING -j POLICYC-ANTISPOOF"
    assert saved.count("-A FORWARD -j POLICYC-FORWARD") == 1
    assert saved.count("-A FORWARD -s 10.244.0.0/16 -j ACCEPT") == 1  # foreign rule kept
    ebt = lab.node_exec(["ebtables-nft-save", "-t", "nat"]).stdout
    assert first_rule(ebt, "*nat", "PREROUTING") == "-A PREROUTING -j POLICYC-ANTISPOOF"
    assert lab.probe([case]) == {case: False}


# -- failure halfway ----------------------------------------------------------

FAIL_SCRIPT = """
import subprocess, sys
from backends.iptables import BACKEND
from backends.iptables.kernel import Kernel
from policyc.errors import BackendError
from policyc.pipeline import read_cluster, ruleset_of

path, variant, victim = sys.argv[1:4]
desired = BACKEND.render(ruleset_of(read_cluster([path]), "node-1"))

class Vanishing(Kernel):
    def restore(self, tool, text):  # the new set vanishes before iptables-restore
        subprocess.run(["ipset", "destroy", victim], check=False)
        super().restore(tool, text)

kernel = Vanishing(variant)
try:
    kernel.apply(BACKEND.diff(kernel.read_kernel(), desired))
except BackendError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def new_set_of(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    def names(objs: list[dict[str, Any]]) -> set[str]:
        cluster = build_cluster(parse_text(dump(objs), "<t>"))
        return {s.name for s in IPT.render(ruleset_of(cluster, "node-1")).sets}

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


# -- ARP and other ethertypes (ebtables) ----------------------------------------

ETH_P_ALL, ETH_P_ARP, ETH_P_EXPERIMENTAL = 0x0003, 0x0806, 0x88B5
BROADCAST = b"\xff" * 6


class RawPort:
    """An AF_PACKET socket on a pod's eth0 (created inside the pod netns)."""

    def __init__(self, netns: str) -> None:
        import socket

        with in_netns(netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("eth0", 0))
        self.sock.setblocking(False)
        self.mac: bytes = self.sock.getsockname()[4]

    def send(self, ethertype: int, payload: bytes) -> None:
        import struct

        frame = BROADCAST + self.mac + struct.pack("!H", ethertype) + payload
        self.sock.send(frame.ljust(60, b"\0"))

    def arp(self, sender_ip: str, target_ip: str) -> bytes:
        """Send a broadcast ARP request; returns the frame's payload."""
        import ipaddress
        import struct

        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + self.mac
        body += ipaddress.IPv4Address(sender_ip).packed + b"\0" * 6
        body += ipaddress.IPv4Address(target_ip).packed
        self.send(ETH_P_ARP, body)
        return body

    def received(self, timeout: float = 0.4) -> list[bytes]:
        """Frames seen so far (payloads after the Ethernet header)."""
        import select
        import time

        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            try:
                out.append(self.sock.recv(2048)[14:])
            except BlockingIOError:
                continue
        return out

    def close(self) -> None:
        self.sock.close()


def delivered(lab: Lab, src: str, dst: str, kind: str, sender_ip: str = "") -> bool:
    """Does a broadcast frame from pod ``src`` reach pod ``dst`` over the bridge?"""
    tx, rx = RawPort(lab.pod(src).netns), RawPort(lab.pod(dst).netns)
    try:
        rx.received(0.05)  # drain
        if kind == "arp":  # unique target: the frame is recognisable and nobody answers
            want = tx.arp(sender_ip, "10.244.1.250")
        else:
            want = b"policyc-probe-" + os.urandom(6)
            tx.send(ETH_P_EXPERIMENTAL, want)
        return any(f.startswith(want) for f in rx.received())
    finally:
        tx.close()
        rx.close()


def test_arp_spoofing_and_other_ethertypes(node: tuple[Lab, str]) -> None:
    lab, _ = node
    xb, xc = lab.pod("x/b"), lab.pod("x/c")
    # Without policyc's rules everything is bridged: the probes work.
    assert delivered(lab, "x/c", "x/a", "arp", xb.ip4)
    assert delivered(lab, "x/c", "x/a", "other")
    check(lab, world([]), cli=True)  # policyc apply --backend iptables
    assert delivered(lab, "x/c", "x/a", "arp", xc.ip4)  # its own address: allowed
    assert delivered(lab, "x/c", "x/a", "arp", "0.0.0.0")  # RFC 5227 probe: allowed
    assert not delivered(lab, "x/c", "x/a", "arp", xb.ip4)  # forged sender: dropped
    assert not delivered(lab, "x/c", "x/a", "arp", "10.244.1.1")  # the gateway's
    assert not delivered(lab, "x/c", "x/a", "other")  # neither IPv4, IPv6 nor ARP
    count("iptables_arp_frames_dropped", 3)
    saved = lab.node_exec(["ebtables-nft-save", "-t", "nat"]).stdout
    assert saved.count("-A PREROUTING -j POLICYC-ANTISPOOF") == 1


def test_unknown_pod_port_carries_nothing(node: tuple[Lab, str]) -> None:
    lab, _ = node
    objs = [
        o
        for o in world([])
        if not (
            o["kind"] == "Pod"
            and o["metadata"]["namespace"] == "z"
            and o["metadata"]["name"] == "c"
        )
    ]
    check(lab, objs)
    zc, xa = lab.pod("z/c"), lab.pod("x/a")
    assert not delivered(lab, "z/c", "x/a", "arp", zc.ip4)  # even its own address
    assert not delivered(lab, "z/c", "x/a", "other")
    assert delivered(lab, "x/b", "x/a", "arp", lab.pod("x/b").ip4)
    cases = [(zc, xa.addr(4), "tcp", 80), (xa, zc.addr(4), "tcp", 80)]
    res = lab.probe(cases)
    assert [res[c] for c in cases] == [False, False]


def test_local_pod_port_comes_and_goes_through_patch(node: tuple[Lab, str]) -> None:
    """Issue 9: a local pod's add and delete take the watcher's patch path
    (ipset members plus the one anti-spoofing chain, no render), and the
    kernel enforces it: its port carries its own traffic once added and
    nothing once deleted (fail closed), forged ARP never."""
    lab, _ = node
    objs = world([])
    full = build_cluster(parse_text(dump(objs), "<world>"))
    pod = next(p for p in full.pods if (p.namespace, p.name) == ("z", "c"))
    c = Compiler("node-1").load(full)
    c.remove(Kind.POD, pod.key)
    dp = Dataplane(IPT)
    zc, xa = lab.pod("z/c"), lab.pod("x/a")
    cases = [(zc, xa.addr(4), "tcp", 80), (xa, zc.addr(4), "tcp", 80)]
    with in_netns(lab.node.netns):
        dp.sync(c)  # full: read the (empty) kernel, render, diff
    for step in ("add", "delete"):
        if step == "add":
            c.put(pod)
        else:
            c.remove(Kind.POD, pod.key)
        tx = dp.transaction(c)
        writes = [s for s in tx.steps if isinstance(s, TableWrite)]  # type: ignore[attr-defined]
        assert writes and all([ch.name for ch in w.chains] == [CHAIN] for w in writes), writes
        with in_netns(lab.node.netns):
            IPT.apply(tx)
            assert Kernel.from_env().read_kernel() == tx.after
        dp.programmed = tx.after
        added = step == "add"
        assert delivered(lab, "z/c", "x/a", "arp", zc.ip4) is added
        assert not delivered(lab, "z/c", "x/a", "arp", xa.ip4)
        res = lab.probe(cases)
        assert [res[k] for k in cases] == [added, added], step


# -- issue 13 §1: the documented pipeline under hostile input --------------------


def test_compiled_files_restored_by_hand_touch_nothing_else(tmp_path: Path) -> None:
    """``compile -o DIR`` of a policy with ``Exists`` on 16 long keys plus the
    key ``flush``, 128 excepts and a Node at 0.0.0.0: the documented
    ``ipset restore < ipset.restore`` and ``*-restore --noflush`` succeed and
    leave a foreign set and its member alone."""
    import subprocess

    from policyc.cli import main

    from ..test_iptables_hostile import cluster

    require_kernel()
    keys = [f"example.com/{'k' * 55}{i:02d}" for i in range(16)] + ["flush"]
    (tmp_path / "c.yaml").write_text(cluster(keys, ["v"] * 17, ["flush", "add"], 128))
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(
            ["compile", "--backend", "iptables", "--node", "node-1", "--output-dir", f"{out}/"]
            + [str(tmp_path / "c.yaml")]
        )
        == 0
    )
    netns = f"pct{os.getpid()}-ipt13"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:

        def run(*argv: str, stdin: str | None = None) -> str:
            proc = subprocess.run(
                ["ip", "netns", "exec", netns, *argv],
                input=stdin,
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            return proc.stdout

        run("ipset", "create", "other-set", "hash:ip")
        run("ipset", "add", "other-set", "192.0.2.5")
        run("ipset", "restore", stdin=(out / "ipset.restore").read_text())
        run("iptables-nft-restore", "-w", "--noflush", stdin=(out / "iptables.rules").read_text())
        run("ip6tables-nft-restore", "-w", "--noflush", stdin=(out / "ip6tables.rules").read_text())
        assert "192.0.2.5" in run("ipset", "list", "other-set")
        assert "policyc-node4" in run("ipset", "list", "-n")
        assert "0.0.0.0" not in run("ipset", "list", "policyc-node4")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
