"""``policyc compile`` on a directory holding NetworkPolicy, ClusterNetworkPolicy
and v1alpha1 objects emits rulesets the tools accept (issue 10, "Acceptance"):
``nft -c -f`` for nftables, ``ipset restore`` plus ``iptables-restore --test``
and ``ip6tables-restore --test`` for iptables, optimised and ``--no-opt``.
One scratch netns per case, deleted by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from backends import BACKENDS
from policyc.cli import main
from policyc.pipeline import read_cluster, ruleset_of
from tests.hostile.netns import fresh_netns, sh
from tests.support.cnp_builders import (
    admin,
    anp,
    banp,
    baseline,
    named,
    netpol,
    p_nets,
    p_nodes,
    p_ns,
    p_pods,
    rule,
    s_ns,
    s_pods,
    sctp,
    sel,
    tcp,
    udp,
)
from tests.support.world import dump, world

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a scratch netns)")


def objects() -> list[dict[str, Any]]:
    return [
        netpol("x", "np"),
        admin(
            "deny-z",
            10,
            s_ns(),
            ingress=[rule("Deny", p_ns(ns="z")), rule("Pass", p_pods(sel(ns="y"), sel()))],
            egress=[
                rule(
                    "Deny",
                    p_nets("192.0.2.0/24", "2001:db8::/32"),
                    protocols=(tcp(443), udp(53, 54)),
                ),
                rule("Deny", p_nodes()),
                rule("Accept", p_ns(), protocols=(named("serve-80-tcp"), sctp(80))),
            ],
        ),
        baseline(
            "pods",
            10,
            s_pods(sel(ns="x"), sel()),
            egress=[rule("Pass", p_ns(), protocols=(udp(81),))],
        ),
        anp("old", 1, s_ns(), ingress=[rule("Allow", p_ns())], egress=[rule("Allow", p_ns())]),
        banp(s_ns(), egress=[rule("Deny", p_ns())]),
    ]


@pytest.mark.parametrize("opt", [[], ["--no-opt"]])
def test_compile_output_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opt: list[str]
) -> None:
    src = tmp_path / "cluster"
    src.mkdir()
    (src / "cluster.yaml").write_text(dump(world(objects())), encoding="utf-8")
    assert main(["compile", *opt, "--node", "node-1", str(src)]) == 0
    (tmp_path / "out.nft").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["compile", *opt, "--backend", "iptables", "--node", "node-1", str(src)]) == 0
    capsys.readouterr()
    ipt = BACKENDS["iptables"]
    ruleset = ruleset_of(read_cluster([str(src)]), "node-1", not opt)
    for name, body in ipt.files(ipt.render(ruleset)).items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    with fresh_netns("cnpchk") as ns:
        checks = {
            "nft": f"nft -c -f {tmp_path}/out.nft",
            "ipset": f"ipset restore < {tmp_path}/ipset.restore",
            "iptables": f"iptables-restore --test < {tmp_path}/iptables.rules",
            "ip6tables": f"ip6tables-restore --test < {tmp_path}/ip6tables.rules",
        }
        try:
            for tool, cmd in checks.items():
                done = sh(ns, cmd)
                assert done.returncode == 0, (tool, done.stderr.decode(errors="replace")[-400:])
        finally:
            sh(ns, "ipset destroy")
