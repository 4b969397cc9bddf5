"""Dataplane properties beyond the reachability matrix: anti-spoofing with
real forged packets, fail-closed ports, atomic and idempotent apply, other
tables left alone, and the golden scripts accepted by ``nft -c``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.figures import count
from tests.support.scenarios import block, pods, pol
from tests.support.world import ROOT, world

from .netlab import Lab
from .world import POLICYC, apply_world

# x/a may receive UDP only from x/b; x/c forges x/b's address.
ALLOW_B = [pol("x", "only-b", {"matchLabels": {"pod": "a"}}, ingress=[{"from": [pods(pod="b")]}])]


@pytest.mark.parametrize("family", [4, 6])
def test_spoofed_udp_is_dropped(clean_lab: Lab, family: int) -> None:
    lab = clean_lab
    apply_world(lab, world(ALLOW_B))
    xa, xb, xc = lab.pod("x/a"), lab.pod("x/b"), lab.pod("x/c")
    sink = lab.udp_sink(xa, 9000, family)
    # The genuine peer gets through: the sink and the rules work.
    lab.send_spoofed_udp(xb, xb.addr(family), xa.addr(family), 9000, b"genuine")
    assert sink.sources(timeout=1.0, expect=b"genuine") == {xb.addr(family)}
    sink.clear()
    # x/c forging x/b's address (allowed peer) and a node address: both dropped.
    lab.send_spoofed_udp(xc, xb.addr(family), xa.addr(family), 9000, b"forged-peer")
    gw = "10.244.1.1" if family == 4 else "2001:db8:244:1::1"
    lab.send_spoofed_udp(xc, gw, xa.addr(family), 9000, b"forged-node")
    outside = "192.0.2.77" if family == 4 else "2001:db8:244:9::77"
    lab.send_spoofed_udp(xc, outside, xa.addr(family), 9000, b"forged-outside")
    assert sink.collect(timeout=0.5) == []
    count("spoofed_packets_dropped", 3)


def test_spoof_allowed_by_ipblock_is_still_dropped(clean_lab: Lab) -> None:
    """Even when policy allows the forged address (ipBlock), anti-spoofing drops it."""
    lab = clean_lab
    apply_world(lab, world([pol("x", "cidr", {}, ingress=[{"from": [block("192.0.2.0/24")]}])]))
    xa, xc = lab.pod("x/a"), lab.pod("x/c")
    sink = lab.udp_sink(xa, 9001)
    lab.send_spoofed_udp(xc, "192.0.2.5", xa.addr(4), 9001, b"forged")
    assert sink.collect(timeout=0.5) == []


def test_unknown_pod_port_fails_closed(clean_lab: Lab) -> None:
    """A pc* port that no compiled pod owns carries no traffic at all."""
    lab = clean_lab
    objs = [
        o
        for o in world([])
        if not (
            o["kind"] == "Pod"
            and o["metadata"]["name"] == "c"
            and o["metadata"]["namespace"] == "z"
        )
    ]
    apply_world(lab, objs)
    zc, xa = lab.pod("z/c"), lab.pod("x/a")
    cases = [
        (zc, xa.addr(4), "tcp", 80),
        (xa, zc.addr(4), "tcp", 80),
        (lab.pod("x/b"), xa.addr(4), "tcp", 80),
    ]
    res = lab.probe(cases)
    assert [res[c] for c in cases] == [False, False, True]


def test_apply_is_idempotent_and_leaves_other_tables(clean_lab: Lab) -> None:
    lab = clean_lab
    other = (
        "table ip other {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n"
        "\t\tip saddr 192.0.2.99 counter drop\n\t}\n}\n"
    )
    lab.nft(other)
    before = lab.node_exec(["nft", "list", "table", "ip", "other"]).stdout
    objs = world(ALLOW_B)
    apply_world(lab, objs)
    first = lab.node_exec(["nft", "list", "ruleset"]).stdout
    apply_world(lab, objs)
    assert lab.node_exec(["nft", "list", "ruleset"]).stdout == first
    apply_world(lab, world([]))
    assert lab.node_exec(["nft", "list", "table", "ip", "other"]).stdout == before


def test_failed_apply_keeps_previous_ruleset(clean_lab: Lab, tmp_path: Path) -> None:
    """A ruleset the kernel rejects changes nothing: the old policy stays in force."""
    lab = clean_lab
    apply_world(lab, world(ALLOW_B))
    before = lab.node_exec(["nft", "list", "ruleset"]).stdout
    xa, xc = lab.pod("x/a"), lab.pod("x/c")
    assert lab.probe([(xc, xa.addr(4), "tcp", 80)]) == {(xc, xa.addr(4), "tcp", 80): False}
    # A script whose last line the kernel rejects (a jump to a missing chain).
    good = lab.node_exec(
        [POLICYC, "compile", "--node", "node-1", str(ROOT / "fixtures" / "allow-all-ingress")]
    ).stdout
    bad = good.replace("jump to_pods", "jump no_such_chain")
    script = tmp_path / "bad.nft"
    script.write_text(bad)
    proc = lab.node_exec(["nft", "-f", str(script)], check=False)
    assert proc.returncode != 0
    assert lab.node_exec(["nft", "list", "ruleset"]).stdout == before
    assert lab.probe([(xc, xa.addr(4), "tcp", 80)]) == {(xc, xa.addr(4), "tcp", 80): False}


def test_apply_bad_input_changes_nothing(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    apply_world(lab, world(ALLOW_B))
    before = lab.node_exec(["nft", "list", "ruleset"]).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\n"
        "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n"
        "  ingress: [{ports: [{port: 80, endPort: 79}]}]\n"
    )
    proc = lab.node_exec([POLICYC, "apply", str(bad)], check=False)
    assert proc.returncode == 2
    assert f"{bad}:6:" in proc.stderr and "endPort" in proc.stderr
    assert lab.node_exec(["nft", "list", "ruleset"]).stdout == before


GOLDEN = sorted((ROOT / "fixtures").glob("*/expected.nft"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.parent.name for p in GOLDEN])
def test_golden_accepted_by_nft_check(lab: Lab, path: Path) -> None:
    proc = lab.node_exec(["nft", "-c", "-f", str(path)], check=False)
    assert proc.returncode == 0, proc.stderr
