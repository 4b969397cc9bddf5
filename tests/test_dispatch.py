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
from backends.iptables.diff import Transaction as IptTransaction
from backends.iptables.state import IptablesState, Tool
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


def ops_of(tx: object) -> list[object]:
    ops = getattr(tx, "ops", None) or getattr(tx, "steps", None) or ()
    return [op[1] if isinstance(op, tuple) else op for op in ops]


def assert_elements_only(tx: object, ports: bool, some: bool = True) -> None:
    """Set/map elements only.  ``ports``: a local pod's port came or went;
    on iptables its anti-spoofing rules are ``-m physdev`` rules (the set
    match cannot see the bridge port: docs/iptables.md), so that chain, and
    only that chain, is rewritten in ``raw`` and ebtables ``nat``."""
    ops = ops_of(tx)
    assert ops or not some
    for obj in ops:
        if isinstance(obj, TableWrite):
            assert ports, obj
            assert obj.table == "raw" or obj.tool is Tool.EBTABLES, obj
            assert [ch.name for ch in obj.chains] == ["POLICYC-ANTISPOOF"], obj
            assert not (obj.remove or obj.add_hooks or obj.del_hooks), obj
            continue
        assert isinstance(obj, Element | SetAdd | SetDel), obj


def programmed(backend: str) -> tuple[Compiler, Dataplane]:
    c = compiler()
    dp = Dataplane(BACKENDS[backend])
    c.changes()
    dp.programmed = dp.backend.render(dp.ruleset(c))
    dp.adopt = False
    return c, dp


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_pod_event_in_existing_group_is_element_only(backend: str) -> None:
    c, dp = programmed(backend)
    # A new local pod whose policy set is an existing group's: same labels.
    twin = local_pod(c, "x", lambda p: p.label_map.get("pod") == "a")
    addr = ipaddress.ip_address("10.244.1.250")
    new = dataclasses.replace(twin, name="twin", ips=(addr,))
    c.put(new)
    changes = c.changes()
    assert not changes.rules
    sets = {n: c.set_def(n, elements=n in changes.reset) for n in changes.dirty if n in c.specs}
    # The backend's element path takes it (no render of the whole ruleset).
    assert dp.programmed is not None
    tx = dp.backend.patch(dp.programmed, changes, sets)
    assert tx is not None
    assert_elements_only(tx, ports=True)
    assert str(addr) in repr(ops_of(tx))
    # ... and it equals a full render of the same model.
    assert tx.after == dp.backend.render(dp.ruleset(c))
    if backend == "iptables":
        assert isinstance(tx, IptTransaction)
        assert tx.trusted  # its undo snapshot is ``before``: nothing read back first
        # A state read from the kernel: render + diff.
        read = dp.programmed
        assert isinstance(read, IptablesState)
        read = dataclasses.replace(read, bridge=None)
        assert dp.backend.patch(read, changes, sets) is None
    dp.programmed = tx.after
    # Deleting it again: elements (and on iptables its anti-spoofing rules).
    c.remove(Kind.POD, new.key)
    tx = dp.transaction(c)
    assert_elements_only(tx, ports=True)
    assert tx.after == dp.backend.render(dp.ruleset(c))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_label_change_into_existing_group_is_element_only(backend: str) -> None:
    """A local pod moving to an existing group keeps its port: set/map
    elements only, on iptables too (no rule at all)."""
    c, dp = programmed(backend)
    pod = local_pod(c, "x", lambda p: p.label_map.get("pod") == "a")
    other = local_pod(c, "x", lambda p: p.label_map.get("pod") != "a")
    # A second member keeps x/web's group when ``pod`` leaves it.
    ips = (ipaddress.ip_address("10.244.1.250"), ipaddress.ip_address("2001:db8:244:1::250"))
    c.put(dataclasses.replace(pod, name="twin", ips=ips))
    dp.programmed = dp.transaction(c).after
    c.put(dataclasses.replace(pod, labels=other.labels))
    tx = dp.transaction(c)
    assert_elements_only(tx, ports=False)
    assert tx.after == dp.backend.render(dp.ruleset(c))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_remote_pod_add_and_delete_are_element_only(backend: str) -> None:
    """A pod of another node has no port here: elements only, no rule."""
    c, dp = programmed(backend)
    pod = local_pod(c, "x", lambda p: p.label_map.get("pod") == "a")
    ips = (ipaddress.ip_address("10.244.7.250"),)
    new = dataclasses.replace(pod, name="far", node_name="node-2", ips=ips)
    c.put(new)
    tx = dp.transaction(c)
    assert_elements_only(tx, ports=False, some=False)  # in no set of these policies
    assert tx.after == dp.backend.render(dp.ruleset(c))
    dp.programmed = tx.after
    c.remove(Kind.POD, new.key)
    tx = dp.transaction(c)
    assert_elements_only(tx, ports=False, some=False)
    assert tx.after == dp.backend.render(dp.ruleset(c))


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
