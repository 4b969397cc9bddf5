"""Dispatch by verdict map (issue 9 Deliver 3): pods with identical policy
sets share one group chain, and a pod event on a group that exists is a
transaction of set/map elements only, on both backends."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable

import pytest

from backends import BACKENDS
from backends.iptables.diff import SetAdd, SetDel, TableWrite
from backends.iptables.state import Tool
from backends.nftables.objects import Element
from policyc.compiler import Compiler
from policyc.ir import SetKind
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.model import Pod
from policyc.parse import build_cluster
from tests.support.scenarios import labels, pol, port
from tests.support.world import dump, world
from watcher.dataplane import Dataplane

NODE = "node-1"
POLICIES = [
    pol("x", "deny", types=["Ingress"]),
    pol("x", "web", labels(pod="a"), ingress=[{"ports": [port(80, "TCP")]}]),
]


def compiler() -> Compiler:
    cluster = build_cluster(parse_text(dump(world(POLICIES)), "<dispatch>"), warn=lambda m: None)
    return Compiler(NODE).load(cluster)


def local_pod(c: Compiler, ns: str, want: Callable[[Pod], bool]) -> Pod:
    return next(p for p in c.pods.values() if p.namespace == ns and p.node_name == NODE and want(p))


def test_identical_policy_sets_share_a_chain() -> None:
    g = compiler().graph()
    in4 = [gr for gr in g.groups if gr.name.startswith("in4_")]
    disp = next(s for s in g.sets if s.name == "disp_in4")
    assert disp.kind is SetKind.VMAP
    chains = {e[1] for e in disp.elements}  # type: ignore[index]
    assert chains == {gr.name for gr in in4}
    assert len(disp.elements) > len(chains)  # several pods per group


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_pod_event_in_existing_group_is_element_only(backend: str) -> None:
    c = compiler()
    dp = Dataplane(BACKENDS[backend])
    c.changes()
    dp.programmed = dp.backend.render(dp.ruleset(c))
    dp.adopt = False
    # A new local pod whose policy set is an existing group's: same labels.
    twin = local_pod(c, "x", lambda p: p.label_map.get("pod") == "a")
    addr = ipaddress.ip_address("10.244.1.250")
    new = dataclasses.replace(twin, name="twin", ips=(addr,))
    c.put(new)
    tx = dp.transaction(c)
    ops = tx.ops if backend == "nftables" else tx.steps  # type: ignore[attr-defined]
    assert ops
    for op in ops:
        obj = op[1] if isinstance(op, tuple) else op
        if isinstance(obj, TableWrite):
            # iptables' anti-spoofing is per-port physdev rules (its set match
            # cannot see the bridge port): those change with any pod, before
            # and after dispatch.  The forward path must not.
            assert obj.table == "raw" or obj.tool is Tool.EBTABLES, obj
            continue
        assert isinstance(obj, Element | SetAdd | SetDel), obj
    assert str(addr) in repr(ops)
    # ... and it equals a full render of the same model.
    assert tx.after == dp.backend.render(dp.ruleset(c))
    # Deleting it again: elements only.
    c.remove(Kind.POD, new.key)
    assert not c.changes().rules


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_groups_come_and_go_with_their_pods(backend: str) -> None:
    """A pod moving to an existing group is elements only; the first pod of
    a new group and the last pod leaving one change rules (one chain), and
    the diff's transaction is valid and reaches the full render."""
    c = compiler()
    dp = Dataplane(BACKENDS[backend])
    c.changes()
    dp.programmed = dp.backend.render(dp.ruleset(c))
    dp.adopt = False
    pod = local_pod(c, "x", lambda p: p.label_map.get("pod") == "a")
    other = local_pod(c, "x", lambda p: p.label_map.get("pod") != "a")
    # Into the group of "other" (an existing group): elements only.
    moved = dataclasses.replace(pod, labels=other.labels)
    c.put(moved)
    tx = dp.transaction(c)
    assert tx.after == dp.backend.render(dp.ruleset(c))
    dp.programmed = tx.after
    c.put(pod)  # back into x/web's group
    tx = dp.transaction(c)
    assert tx.after == dp.backend.render(dp.ruleset(c))
    dp.programmed = tx.after
    # Every pod of x/web's group leaves: its chain goes (a rules change).
    web = {g.name for g in c.graph().groups if "x/web" in g.policies}
    assert web
    for p in [p for p in c.pods.values() if p.namespace == "x" and p.label_map.get("pod") == "a"]:
        c.remove(Kind.POD, p.key)
    assert not web & {g.name for g in c.graph().groups}
    # The diff deletes the chain after the map elements that sent to it
    # (the transaction refuses otherwise) and reaches the full render.
    tx = dp.transaction(c)
    assert tx.after == dp.backend.render(dp.ruleset(c))
    text = repr(tx.after)
    assert not any(name in text for name in web)
