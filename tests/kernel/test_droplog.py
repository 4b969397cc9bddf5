"""Drop logging, audit mode and the enforced signal on the kernel (issue 12).

``policyc watch --log-drops`` (ulogd reading NFLOG) on the 9-pod lab, both
backends, IPv4 and IPv6.  Each denied attempt gives exactly one drop record
naming the policies isolating the pod on the dropping side; allowed probes
none; ``/pods`` says enforced only when a probe that must be denied is.
A ClusterNetworkPolicy Deny's record names its tier, policy and rule.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cnp_builders import admin, baseline, p_ns, rule, s_ns
from tests.support.scenarios import labels, pods, pol, port

from .droplab import WAIT, DropLab, Probe, rec_key
from .netlab import Lab
from .probes import ProbeRequest, run_probes
from .test_watch_iptables import reset

PORT = 9793
BOTH = (4, 6)


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def dl(
    request: pytest.FixtureRequest, lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DropLab]:
    if shutil.which("ulogd") is None:
        pytest.skip("ulogd2 is not installed (scripts/bootstrap.sh)")
    reset(lab, "nft")
    d = DropLab(lab, str(request.param), tmp_path_factory.mktemp("droplog"), PORT)
    d.start()
    try:
        yield d
    finally:
        rc = d.stop()
        reset(lab, "nft")
    assert rc == 0, d.agent.logs()[-3000:]


def test_allowed_probes_log_nothing(dl: DropLab) -> None:
    probes: list[Probe] = [(f, "y/a", "x/a", "tcp", 80) for f in BOTH]
    assert dl.collect(probes, 0) == []


def test_enforced_signal_then_default_deny_ingress_logged(dl: DropLab) -> None:
    # Enforced (by /pods) means: a probe that must be denied is denied now.
    dl.put(pol("x", "deny-in", types=["Ingress"]), "x/a")
    probes: list[Probe] = [(f, "y/a", "x/a", pr, 80) for f in BOTH for pr in ("tcp", "udp")]
    recs = dl.collect(probes, len(probes))
    assert sorted(map(rec_key, recs)) == sorted(dl.key(p) for p in probes), recs
    for r in recs:
        assert (r["verdict"], r["direction"], r["pod"]) == ("drop", "Ingress", "x/a"), r
        assert r["policies"] == ["x/deny-in"], r
        assert (r["src"]["pods"], r["dst"]["pods"]) == (["y/a"], ["x/a"]), r


def test_ingress_drop_names_every_isolating_policy(dl: DropLab) -> None:
    allow = pol("x", "allow-81", labels(pod="a"), ingress=[{"ports": [port(81, "TCP")]}])
    dl.put(allow, "x/a")
    recs = dl.collect([(f, "y/a", "x/a", "tcp", 80) for f in BOTH], 2)
    assert len(recs) == 2, recs
    assert all(r["policies"] == ["x/allow-81", "x/deny-in"] for r in recs), recs
    assert dl.collect([(f, "y/a", "x/a", "tcp", 81) for f in BOTH], 0) == []
    dl.remove("x", "allow-81", "x/a")
    dl.remove("x", "deny-in", "x/a")


def test_egress_default_deny_logged(dl: DropLab) -> None:
    dl.put(pol("y", "deny-out", labels(pod="b"), types=["Egress"]), "y/b")
    recs = dl.collect([(f, "y/b", "z/c", "tcp", 81) for f in BOTH], 2)
    assert len(recs) == 2, recs
    for r in recs:
        assert (r["direction"], r["pod"], r["policies"]) == ("Egress", "y/b", ["y/deny-out"]), r
        assert r["dst"]["pods"] == ["z/c"], r
    dl.remove("y", "deny-out", "y/b")


def test_cluster_network_policy_deny_names_its_tier_and_rule(dl: DropLab) -> None:
    """An Admin Deny (ingress) and a Baseline Deny (egress): one record per
    denied attempt naming the policy and rule; an allowed probe, none."""
    no_y = admin("no-y", 5, s_ns(ns="x"), ingress=[rule("Deny", p_ns(ns="y"), name="block-y")])
    dl.put(no_y, "x/a")
    probes: list[Probe] = [(f, "y/a", "x/a", pr, 80) for f in BOTH for pr in ("tcp", "udp")]
    recs = dl.collect(probes, len(probes))
    assert sorted(map(rec_key, recs)) == sorted(dl.key(p) for p in probes), recs
    for r in recs:
        assert (r["verdict"], r["direction"], r["pod"]) == ("drop", "Ingress", "x/a"), r
        assert (r["tier"], r["policy"], r["rule"]) == (
            "Admin",
            "ClusterNetworkPolicy no-y",
            "block-y",
        ), r
        assert r["policies"] == ["ClusterNetworkPolicy no-y"], r
    assert dl.collect([(f, "z/a", "x/a", "tcp", 80) for f in BOTH], 0) == []
    dl.remove("", "no-y", "x/a")
    out = baseline("no-out", 5, s_ns(ns="z"), egress=[rule("Deny", p_ns(ns="y"))])
    dl.put(out, "z/b")
    recs = dl.collect([(f, "z/b", "y/c", "tcp", 81) for f in BOTH], 2)
    assert [(r["direction"], r["tier"], r["rule"]) for r in recs] == [
        ("Egress", "Baseline", "egress[0]")
    ] * 2, recs
    assert dl.collect([(f, "z/b", "x/c", "tcp", 81) for f in BOTH], 0) == []
    dl.remove("", "no-out", "z/b")


def test_identical_denies_of_two_policies_name_their_own(dl: DropLab) -> None:
    """Two Admin policies with the same Deny rule, for x and for z: their
    groups' chains would coincide, yet each drop names its own policy."""
    deny = rule("Deny", p_ns(ns="y"), name="no-y")
    dl.put(admin("twin-x", 6, s_ns(ns="x"), ingress=[deny]), "x/b")
    dl.put(admin("twin-z", 6, s_ns(ns="z"), ingress=[deny]), "z/b")
    probes: list[Probe] = [(f, "y/b", dst, "tcp", 80) for f in BOTH for dst in ("x/b", "z/b")]
    recs = dl.collect(probes, len(probes))
    assert sorted((r["pod"], r["policy"]) for r in recs) == sorted(
        [("x/b", "ClusterNetworkPolicy twin-x"), ("z/b", "ClusterNetworkPolicy twin-z")] * 2
    ), recs
    dl.remove("", "twin-x", "x/b")
    dl.remove("", "twin-z", "z/b")


def test_audit_cluster_network_policy_logs_and_drops_nothing(dl: DropLab) -> None:
    """An audit-mode Admin Deny: the probe passes, one "would-drop" line
    naming the first Deny that matches (not the second); what its earlier
    Accept takes gives none, as if the policy were enforced."""
    spy = admin(
        "audit-y",
        5,
        s_ns(ns="x"),
        ingress=[
            rule("Accept", p_ns(ns="z")),
            rule("Deny", p_ns(ns="y"), name="block-y"),
            rule("Deny", p_ns(), name="block-all"),
        ],
    )
    dl.put(_audit(spy), "x/c")
    probes: list[Probe] = [(f, "y/a", "x/c", "tcp", 80) for f in BOTH]
    recs = dl.collect(probes, 2)  # the verdicts (allowed) are checked against the evaluator
    assert sorted(map(rec_key, recs)) == sorted(dl.key(p) for p in probes), recs
    for r in recs:
        assert (r["verdict"], r["tier"], r["rule"]) == ("would-drop", "Admin", "block-y"), r
    assert dl.collect([(f, "z/a", "x/c", "tcp", 80) for f in BOTH], 0) == []
    dl.remove("", "audit-y", "x/c")


def test_audit_v1alpha1_admin_network_policy(dl: DropLab) -> None:
    """The annotation on a v1alpha1 AdminNetworkPolicy: the same, its Deny
    logged "would-drop", nothing dropped."""
    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "audit-anp", "annotations": {"policyc.io/mode": "audit"}},
        "spec": {
            "priority": 7,
            "subject": {"namespaces": {"matchLabels": {"ns": "x"}}},
            "ingress": [
                {
                    "name": "no-y",
                    "action": "Deny",
                    "from": [{"namespaces": {"matchLabels": {"ns": "y"}}}],
                }
            ],
        },
    }
    dl.put(anp, "x/b")
    probes: list[Probe] = [(f, "y/b", "x/b", "tcp", 80) for f in BOTH]
    recs = dl.collect(probes, 2)
    assert sorted(map(rec_key, recs)) == sorted(dl.key(p) for p in probes), recs
    for r in recs:
        assert (r["verdict"], r["tier"], r["policy"], r["rule"]) == (
            "would-drop",
            "Admin",
            "AdminNetworkPolicy audit-anp",
            "no-y",
        ), r
    dl.remove("", "audit-anp", "x/b")


def test_rate_limit_bounds_a_flood(dl: DropLab) -> None:
    """40 denied attempts at once from one pod: all dropped, at most the
    burst (10) and what refills meanwhile is logged, one line per attempt."""
    dl.put(pol("z", "deny-all-in", types=["Ingress"]), "z/b")
    src, dst = dl.pod("x/c"), dl.pod("z/b")
    reqs = [(i, ProbeRequest(src.netns, dst.addr(4), "tcp", 80)) for i in range(40)]
    before = len(dl.drops())
    got = run_probes(reqs, dl.lab._source_ports, 0.3)
    assert not any(r.ok for r in got.values())
    deadline = time.monotonic() + WAIT
    while len(flood := [r for r in dl.drops()[before:] if r["dst"]["pods"] == ["z/b"]]) < 10:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    recs = [r for r in dl.drops()[before:] if r["dst"]["pods"] == ["z/b"]]
    assert len(flood) >= 10 and 10 <= len(recs) <= 20, len(recs)
    assert len({r["src"]["port"] for r in recs}) == len(recs)  # one line per attempt
    dl.remove("z", "deny-all-in", "z/b")


def _rundir(pid: int) -> str | None:
    """The run directory of ulogd ``pid`` (``-c DIR/ulogd.conf``), if it is
    one the agent made (``/tmp/policyc-ulogd-*``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return None
    conf = argv[argv.index(b"-c") + 1].decode() if b"-c" in argv[:-1] else ""
    rundir = os.path.dirname(conf)
    return rundir if os.path.basename(rundir).startswith("policyc-ulogd-") else None


def _ulogd_pids(agent_pid: int) -> list[int]:
    """The agent's live ulogd children.  A child listed a moment ago may be
    gone (the one just killed, reaped): its /proc entries vanish mid-read."""
    pids = []
    for task in os.listdir(f"/proc/{agent_pid}/task"):
        try:
            kids = Path(f"/proc/{agent_pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for kid in kids:
            try:
                comm = Path(f"/proc/{kid}/comm").read_text().strip()
            except FileNotFoundError:
                continue
            if comm == "ulogd":
                pids.append(int(kid))
    return pids


def test_reader_restarts_when_ulogd_dies(dl: DropLab) -> None:
    """ulogd killed: the agent starts another and drops are logged again."""
    assert dl.agent.proc is not None
    (old,) = _ulogd_pids(dl.agent.proc.pid)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while not (new := _ulogd_pids(dl.agent.proc.pid)) or new == [old]:
        assert time.monotonic() < deadline, "no new ulogd"
        time.sleep(0.1)
    time.sleep(1.0)  # it connects to the agent's socket
    dl.put(pol("z", "deny-in-again", types=["Ingress"]), "z/a")
    recs = dl.collect([(4, "y/c", "z/a", "udp", 81)], 1)
    assert [r["policies"] for r in recs] == [["z/deny-in-again"]], recs
    dl.remove("z", "deny-in-again", "z/a")


def _audit(policy: dict[str, Any]) -> dict[str, Any]:
    policy["metadata"]["annotations"] = {"policyc.io/mode": "audit"}
    return policy


def test_audit_policy_drops_nothing_and_logs_would_drop(dl: DropLab) -> None:
    only_from_a = _audit(pol("x", "audit-in", labels(pod="b"), ingress=[{"from": [pods(pod="a")]}]))
    dl.put(only_from_a, "x/b")
    # y/a -> x/b: allowed (the audit policy drops nothing), one audit line each
    probes: list[Probe] = [(f, "y/a", "x/b", pr, 80) for f in BOTH for pr in ("tcp", "udp")]
    recs = dl.collect(probes, len(probes))
    assert sorted(map(rec_key, recs)) == sorted(dl.key(p) for p in probes), recs
    for r in recs:
        assert (r["event"], r["verdict"], r["direction"]) == (
            "policy-audit",
            "would-drop",
            "Ingress",
        )
        assert (r["pod"], r["policies"]) == ("x/b", ["x/audit-in"]), r
    # what the audit policy allows gives no line
    assert dl.collect([(f, "x/a", "x/b", "tcp", 81) for f in BOTH], 0) == []


def test_audit_egress_and_enforced_beside_audit(dl: DropLab) -> None:
    dl.put(_audit(pol("z", "audit-out", labels(pod="c"), types=["Egress"])), "z/c")
    recs = dl.collect([(f, "z/c", "x/c", "tcp", 80) for f in BOTH], 2)
    assert [(r["verdict"], r["direction"], r["policies"]) for r in recs] == [
        ("would-drop", "Egress", ["z/audit-out"])
    ] * 2, recs
    # An enforced policy isolates x/b too: its drops name it alone, and the
    # audit policy (which can only open traffic now) logs nothing.
    dl.put(pol("x", "deny-b", labels(pod="b"), types=["Ingress"]), "x/b")
    recs = dl.collect([(f, "y/a", "x/b", "tcp", 80) for f in BOTH], 2)
    assert [(r["verdict"], r["policies"]) for r in recs] == [("drop", ["x/deny-b"])] * 2, recs
    dl.remove("x", "deny-b", "x/b")
    dl.remove("x", "audit-in", "x/b")
    dl.remove("z", "audit-out", "z/c")


def test_ulogd_dies_with_its_agent(dl: DropLab) -> None:
    """SIGKILL the agent: its ulogd goes too (PR_SET_PDEATHSIG); a new agent
    starts its own and logs."""
    assert dl.agent.proc is not None
    readers = _ulogd_pids(dl.agent.proc.pid)
    assert readers
    rundirs = [d for d in map(_rundir, readers) if d is not None]
    dl.agent.proc.kill()
    dl.agent.proc.wait()
    deadline = time.monotonic() + WAIT
    while any(os.path.exists(f"/proc/{p}") for p in readers):
        assert time.monotonic() < deadline, f"ulogd {readers} outlived its agent"
        time.sleep(0.05)
    for rundir in rundirs:  # a SIGKILLed agent cannot remove what it made: we do
        shutil.rmtree(rundir, ignore_errors=True)
    dl.start()
    time.sleep(1.0)  # the new ulogd connects
    dl.put(pol("y", "deny-c", labels(pod="c"), types=["Ingress"]), "y/c")
    recs = dl.collect([(6, "x/a", "y/c", "tcp", 80)], 1)
    assert [r["policies"] for r in recs] == [["y/deny-c"]], recs
    dl.remove("y", "deny-c", "y/c")
