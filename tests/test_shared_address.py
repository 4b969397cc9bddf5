"""An address held by more than one live pod gets least privilege (issue 13 §5).

The repro: ``y/old-trusted`` (role=trusted) and ``z/newcomer`` both Running at
10.244.1.50, ``x/db`` admitting only role=trusted.  Before the fix the peer
set held the address (the union of the claimants' rights), so the kernel let
``z/newcomer`` reach ``x/db:80``, while the evaluator picked one pod by name.
Here the compiled sets, the change journal, the evaluator, ``explain`` and
``compile``'s warning are checked; tests/kernel/test_shared_kernel.py probes
both backends for real.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from policyc.cli import main
from policyc.compiler import Compiler, compile_cluster
from policyc.evaluate import Evaluator, shared_address_warnings
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.model import Cluster
from policyc.parse import build_cluster
from tests.support.scenarios import labels, nss, pods, pol, port
from tests.support.world import dump
from watcher.metrics import Metrics

Obj = dict[str, Any]
SHARED = "10.244.1.50"
X = ipaddress.ip_address(SHARED)


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(ns: str, name: str, ip: str, phase: str = "Running", **lbl: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(lbl)},
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {"name": "c", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}
            ],
        },
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}]},
    }


DB_ONLY_TRUSTED = pol(
    "x",
    "db-only-trusted",
    labels(app="db"),
    types=["Ingress"],
    ingress=[{"from": [{**nss(), **pods(role="trusted")}], "ports": [port(80)]}],
)


def repro(*extra: Obj, newcomer: bool = True) -> list[Obj]:
    objs = [
        namespace("x"),
        namespace("y"),
        namespace("z"),
        pod("x", "db", "10.244.1.10", app="db"),
        pod("y", "real-trusted", "10.244.1.20", role="trusted"),
        pod("y", "old-trusted", SHARED, role="trusted"),
        DB_ONLY_TRUSTED,
    ]
    if newcomer:
        objs.append(pod("z", "newcomer", SHARED, app="web"))
    return objs + list(extra)


def cluster(objs: list[Obj]) -> Cluster:
    return build_cluster(parse_text(dump(objs), "<shared>"), warn=lambda m: None)


def ev(objs: list[Obj]) -> Evaluator:
    return Evaluator(cluster(objs))


def peer_set(comp: Compiler) -> str:
    (name,) = [n for n in comp.specs if n.startswith("peer_") and n.endswith("4")]
    return name


# -- the rule graph ----------------------------------------------------------


def test_peer_set_holds_a_shared_address_only_if_every_claimant_matches() -> None:
    comp = Compiler().load(cluster(repro()))
    peers = comp.members[peer_set(comp)]
    assert ipaddress.ip_address("10.244.1.20") in peers
    assert X not in peers
    assert comp.m.shared == 1


def test_a_claimant_leaving_restores_the_others_rights_in_the_journal() -> None:
    comp = Compiler().load(cluster(repro()))
    comp.changes()
    name = peer_set(comp)
    comp.remove(Kind.POD, "z/newcomer")
    ch = comp.changes()
    assert ch.added.get(name) == frozenset({X})
    assert X in comp.members[name]
    assert comp.m.shared == 0
    # ... and it is taken away again when a second claimant comes back.
    comp.put(cluster(repro()).pods[-1])
    assert [p.key for p in comp.pods.values() if X in p.ips] == ["y/old-trusted", "z/newcomer"]
    assert comp.changes().removed.get(name) == frozenset({X})


def test_isolation_holds_a_shared_address_if_any_claimant_is_isolated() -> None:
    deny = pol("z", "deny-in", types=["Ingress"])
    allow = pol("y", "allow-80", types=["Ingress"], ingress=[{"ports": [port(80)]}])
    graph = compile_cluster(cluster(repro(deny, allow)))
    sets = {s.name: set(s.elements) for s in graph.sets}
    assert X in sets["iso_in4"]
    # The selected set of y/allow-80 grants: z/newcomer is not selected by it.
    (sel,) = [p.selected for p in graph.policies if p.policy == "y/allow-80" and p.family == "ip"]
    assert X not in sets[sel]
    assert ipaddress.ip_address("10.244.1.20") in sets[sel]


def test_named_ports_of_a_shared_address_need_every_claimant() -> None:
    named = pol("x", "to-http", types=["Egress"], egress=[{"ports": [port("http")]}])
    objs = repro(named)
    objs[5]["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080  # old-trusted
    graph = compile_cluster(cluster(objs))
    (elems,) = [
        set(s.elements) for s in graph.sets if s.name.startswith("named_") and s.name.endswith("4")
    ]
    assert not any(e[0] == X for e in elems)  # type: ignore[index]
    e = ev(objs)
    assert not e.allowed("10.244.1.10", SHARED, 80, "TCP")
    assert not e.allowed("10.244.1.10", SHARED, 8080, "TCP")
    objs[-2]["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080  # newcomer too
    graph = compile_cluster(cluster(objs))
    (elems,) = [
        set(s.elements) for s in graph.sets if s.name.startswith("named_") and s.name.endswith("4")
    ]
    assert {e for e in elems if e[0] == X} == {(X, "TCP", 8080)}  # type: ignore[index]
    assert ev(objs).allowed("10.244.1.10", SHARED, 8080, "TCP")


# -- the evaluator ------------------------------------------------------------


def test_repro_newcomer_does_not_inherit_the_stale_pods_access() -> None:
    e = ev(repro())
    v = e.allowed(SHARED, "10.244.1.10", 80, "TCP")
    assert not v
    assert "shared by y/old-trusted, z/newcomer" not in v.reason  # the denial is db's ingress
    assert "ingress of x/db denied" in v.reason
    assert e.allowed("10.244.1.20", "10.244.1.10", 80, "TCP")  # a real trusted pod


def test_the_old_pod_gets_its_rights_back_once_it_is_alone() -> None:
    assert ev(repro(newcomer=False)).allowed(SHARED, "10.244.1.10", 80, "TCP")


def test_finished_pods_are_not_claimants() -> None:
    gone = pod("z", "newcomer", SHARED, phase="Succeeded", app="web")
    objs = repro(gone, newcomer=False)
    assert ev(objs).allowed(SHARED, "10.244.1.10", 80, "TCP")
    assert Compiler().load(cluster(objs)).m.shared == 0


def test_pending_pods_are_claimants() -> None:
    pending = pod("z", "newcomer", SHARED, phase="Pending", app="web")
    assert not ev(repro(pending, newcomer=False)).allowed(SHARED, "10.244.1.10", 80, "TCP")


def test_shared_destination_is_isolated_by_any_and_selected_by_every_claimant() -> None:
    # y/old-trusted admits port 80 from anyone; z/newcomer is not isolated.
    allow = pol("y", "allow-80", types=["Ingress"], ingress=[{"ports": [port(80)]}])
    e = ev(repro(allow))
    v = e.allowed("10.244.1.20", SHARED, 80, "TCP")
    assert not v
    assert "shared by y/old-trusted, z/newcomer" in v.reason
    # Each claimant allowed by a policy of its own namespace: allowances that
    # differ per claimant are dropped, not intersected.
    own = pol("z", "allow-80", types=["Ingress"], ingress=[{"ports": [port(80)]}])
    assert not ev(repro(allow, own)).allowed("10.244.1.20", SHARED, 80, "TCP")
    # One policy selecting every claimant grants.
    mate = pod("y", "mate", SHARED, app="web")
    assert ev(repro(allow, mate, newcomer=False)).allowed("10.244.1.20", SHARED, 80, "TCP")
    # And the newcomer alone (the old pod gone): not isolated, allowed.
    assert ev(repro(newcomer=False)).allowed("10.244.1.20", SHARED, 81, "TCP")


def test_shared_source_is_egress_isolated_by_any_claimant() -> None:
    deny = pol("y", "deny-egress", types=["Egress"])
    e = ev(repro(deny))
    v = e.allowed(SHARED, "10.244.1.20", 80, "TCP")
    assert not v and v.reason.startswith(f"egress of {SHARED} (shared by")


def test_three_claimants_all_must_match() -> None:
    third = pod("y", "third", SHARED, role="trusted")
    assert not ev(repro(third)).allowed(SHARED, "10.244.1.10", 80, "TCP")
    objs = repro(third, newcomer=False)
    assert ev(objs).allowed(SHARED, "10.244.1.10", 80, "TCP")
    comp = Compiler().load(cluster(repro(third)))
    assert comp.m.claimants[X] == 3
    assert X not in comp.members[peer_set(comp)]
    comp.remove(Kind.POD, "z/newcomer")
    assert X in comp.members[peer_set(comp)]


def test_a_peer_list_matches_when_each_claimant_matches_some_peer() -> None:
    # from: [role=trusted, app=web]: each claimant matches one of them, so each
    # alone would be admitted, and the shared address is too, in both models.
    either = pol(
        "x",
        "db-either",
        labels(app="db"),
        types=["Ingress"],
        ingress=[{"from": [{**nss(), **pods(role="trusted")}, {**nss(), **pods(app="web")}]}],
    )
    objs = repro(either)
    assert ev(objs).allowed(SHARED, "10.244.1.10", 81, "TCP")
    graph = compile_cluster(cluster(objs))
    assert any(X in s.elements for s in graph.sets if s.name.startswith("peer_"))


# -- the command line and the agent's gauge ----------------------------------


def test_explain_says_denied(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(dump(repro()))
    assert main(["explain", "z/newcomer", "x/db", "80/tcp", str(path)]) == 3
    out = capsys.readouterr().out
    assert "z/newcomer -> x/db 80/TCP: DENIED" in out
    assert "  10.244.1.50 -> 10.244.1.10: DENIED" in out
    assert main(["explain", "y/real-trusted", "x/db", "80/tcp", str(path)]) == 0


def test_compile_warns_once_per_shared_address(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(dump(repro()))
    assert main(["compile", "--node", "node-1", str(path)]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert lines == [
        "policyc: warning: address 10.244.1.50 is held by 2 live pods "
        "(y/old-trusted, z/newcomer): least privilege, it gets only what every one "
        "of them would get"
    ]
    assert shared_address_warnings(cluster(repro(newcomer=False)).pods) == []


def test_agent_exports_a_shared_address_gauge() -> None:
    m = Metrics()
    m.shared_addresses.set(Compiler().load(cluster(repro())).m.shared)
    assert b"policyc_shared_addresses 1.0" in m.render()


def test_a_claimant_leaving_brings_back_the_others_own_group() -> None:
    """x/db's group chain is its own; while its address is shared it has no
    map element, so the group is unused.  When the other claimant goes, the
    element comes back and the group must still be defined (it was dropped:
    KeyError in ``changes``, and the agent's every later sync failed)."""
    deny_y = pol("y", "deny-in", types=["Ingress"])  # a group in use beside x/db's
    objs = repro(deny_y, newcomer=False) + [pod("z", "newcomer", "10.244.1.10", app="web")]
    comp = Compiler("node-1").load(cluster(objs))
    comp.changes()
    comp.graph()
    comp.remove(Kind.POD, "z/newcomer")
    assert comp.changes().rules
    assert len(comp.graph().groups) == 2


def test_agent_keeps_syncing_after_a_shared_address_goes() -> None:
    """The trial's sequence through the agent: x/a has a group of its own
    (and an IPv6 address, so that group stays in use for IPv6), y/dup comes
    at x/a's IPv4 address and goes.  Every sync after that failed with
    KeyError, "previous rules stay in force", for good."""
    from policyc.kinds import Key
    from tests.test_droplog import agent
    from watcher.sources.base import Event, EventType

    a, _ = agent()
    assert a.sync()
    web = pol("x", "web", labels(pod="a"), types=["Ingress"])
    dup = pod("y", "dup", "10.244.1.10", pod="dup")
    objs = cluster([namespace("x"), namespace("y"), web, dup])
    (policy,), (the_dup,) = objs.policies, objs.pods
    a.handle(Event(EventType.ADDED, Kind.NETWORK_POLICY, obj=policy))
    assert a.sync()
    a.handle(Event(EventType.ADDED, Kind.POD, obj=the_dup))
    assert a.sync() and a.compiler.m.shared == 1
    a.handle(Event(EventType.DELETED, Kind.POD, obj=Key.of(the_dup)))
    assert a.sync() and a.failures == 0
