"""ClusterNetworkPolicy (and v1alpha1 objects) are enforced: ``compile``
accepts them on both backends and the rules name them; the builder holds,
replaces and forgets them, and their groups come and go with them.  (Until
the tiers were lowered these objects were refused with exit 2: never
silently ignored.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyc.compiler import Compiler
from policyc.kinds import Key, Kind
from policyc.model import ClusterNetworkPolicy, Subject, Tier
from tests.support.cnp_builders import admin, anp, banp, netpol, p_ns, rule, s_ns
from tests.support.world import dump, world

OBJECTS = {
    "v1alpha2": admin("deny-z", 1, s_ns(), ingress=[rule("Deny", p_ns(ns="z"))]),
    "anp": anp("old", 1, s_ns(), ingress=[rule("Allow", p_ns())]),
    "banp": banp(s_ns(), egress=[rule("Deny", p_ns())]),
}


@pytest.mark.parametrize("what", OBJECTS)
@pytest.mark.parametrize("cmd", [["compile"], ["compile", "--backend", "iptables"]])
def test_compile_enforces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, cmd: list[str]
) -> None:
    from policyc.cli import main

    path = tmp_path / "cluster.yaml"
    path.write_text(dump(world([netpol("x", "np"), OBJECTS[what]])))
    code = main([*cmd, "--node", "node-1", str(path)])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    kind, name = OBJECTS[what]["kind"], OBJECTS[what]["metadata"]["name"]
    assert f"{kind} {name} " in out  # rule comments name the policy


def test_builder_holds_and_forgets() -> None:
    c = Compiler("n1")
    pol = ClusterNetworkPolicy("x", Tier.BASELINE, 3, Subject())
    c.put(pol)
    assert c.keys(Kind.CLUSTER_NETWORK_POLICY) == {"x"}
    assert c.keys(Kind.ADMIN_NETWORK_POLICY) == set()
    c.remove(Kind.CLUSTER_NETWORK_POLICY, "x")
    assert c.keys(Kind.CLUSTER_NETWORK_POLICY) == set() and not c.graph().tiers
    assert Key.of(ClusterNetworkPolicy("x", Tier.ADMIN, 3, Subject())).id == "x"
