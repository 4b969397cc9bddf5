"""Until the dataplane lowers the tiers, ``compile``, ``apply`` and ``watch`` refuse a
ClusterNetworkPolicy (or a v1alpha1 object) with exit 2 and "ClusterNetworkPolicy is not
enforced by this dataplane yet": never silently ignored, kernel untouched."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.errors import NOT_ENFORCED, NotEnforced
from policyc.kinds import Key, Kind
from policyc.model import ClusterNetworkPolicy, Subject, Tier
from tests.support.cnp_builders import admin, anp, banp, netpol, p_ns, rule, s_ns
from tests.support.world import dump, world
from watcher.agent import Agent, Options
from watcher.sources.base import Emit, Event, EventType

OBJECTS = {
    "v1alpha2": admin("deny-z", 1, s_ns(), ingress=[rule("Deny", p_ns(ns="z"))]),
    "anp": anp("old", 1, s_ns(), ingress=[rule("Allow", p_ns())]),
    "banp": banp(s_ns(), egress=[rule("Deny", p_ns())]),
}


@pytest.mark.parametrize("what", OBJECTS)
@pytest.mark.parametrize("cmd", [["compile"], ["compile", "--backend", "iptables"], ["apply"]])
def test_compile_and_apply_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, cmd: list[str]
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(dump(world([netpol("x", "np"), OBJECTS[what]])))
    code = main([*cmd, "--node", "node-1", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert NOT_ENFORCED in err and "Traceback" not in err
    kind = OBJECTS[what]["kind"]
    assert f"policyc: error: {kind} {OBJECTS[what]['metadata']['name']}: " in err


class Once:
    """A source that emits one SNAPSHOT per event given, then idles."""

    name = "once"

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def run(self, emit: Emit, stop: threading.Event) -> None:
        for ev in self.events:
            emit(ev)
        stop.wait()

    def synced(self) -> bool:
        return True


def test_agent_stops_with_exit_2_on_a_cluster_network_policy() -> None:
    cnp = ClusterNetworkPolicy("deny", Tier.ADMIN, 1, Subject())
    events = [
        Event(EventType.SNAPSHOT, Kind.CLUSTER_NETWORK_POLICY, objects=()),  # empty: fine
        Event(EventType.ADDED, Kind.CLUSTER_NETWORK_POLICY, obj=cnp),
    ]
    agent = Agent(Once(events), None, Options("n1", routes=False))
    loop = threading.Thread(target=agent.run, daemon=True)
    loop.start()
    loop.join(30)
    assert not loop.is_alive() and agent.exit_code == 2
    assert agent.fatal == f"ClusterNetworkPolicy deny: {NOT_ENFORCED}"


def test_builder_refuses_and_forgets_nothing() -> None:
    agent = Agent(Once([]), None, Options("n1", routes=False))
    with pytest.raises(NotEnforced):
        agent.compiler.put(ClusterNetworkPolicy("x", Tier.BASELINE, 3, Subject()))
    agent.compiler.remove(Kind.CLUSTER_NETWORK_POLICY, "x")  # never held: a no-op
    assert agent.compiler.keys(Kind.ADMIN_NETWORK_POLICY) == set()
    assert Key.of(ClusterNetworkPolicy("x", Tier.ADMIN, 3, Subject())).id == "x"
