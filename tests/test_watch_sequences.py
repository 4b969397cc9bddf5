"""The watcher's suspect sequences (issue 13 §6), without a kernel:
incremental ≡ batch through the dataplane.

The agent is driven by hand (``handle`` and ``sync``, as its loop does) over
the e2e world with policies that read namespace labels, and the dataplane's
backend is the real one's pure verbs (render, diff, patch) over an in-memory
kernel that records every committed transaction.  After every sync that
succeeds, what the kernel holds must equal ``render`` of a compiler fed the
agent's model whole, on both backends.

The sequences mix what the report had (namespace ``y`` gaining and losing a
label) with what may race with it: pod relabels folded into the same batch,
CNI ADD re-putting a pod, namespaces and pods deleted and put again,
namespace relists (snapshots, with ``kept`` objects), policy changes, and
applies that fail after the dataplane has taken the change journal (a
``BackendError``, or an ``OSError`` as a tool that cannot be started raises
under load).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import BACKENDS
from policyc.compiler import Compiler
from policyc.errors import BackendError
from policyc.kinds import Key, Kind
from policyc.load import parse_text
from policyc.model import Namespace, Pod
from policyc.parse import build_cluster
from tests.support.scenarios import labels, nss, pods, pol, port
from tests.support.world import dump, world
from watcher.agent import Agent, CniAdd, Options
from watcher.dataplane import Dataplane
from watcher.sources.base import Emit, Event, EventType

NODE = "node-1"
POLICIES = [
    pol("x", "deny", types=["Ingress"]),
    pol("x", "from-on", {}, ingress=[{"from": [nss(stress="on")], "ports": [port(80, "TCP")]}]),
    pol(
        "z",
        "from-on-clients",
        labels(pod="a"),
        ingress=[{"from": [{**nss(stress="on"), **pods(role="client")}]}],
    ),
    pol("y", "egress", labels(pod="b"), types=["Egress"], egress=[{"to": [nss(stress="on")]}]),
]
CLUSTER = build_cluster(parse_text(dump(world(POLICIES)), "<stress>"), warn=lambda m: None)


class Idle:
    name = "idle"

    def run(self, emit: Emit, stop: threading.Event) -> None:
        stop.wait()

    def synced(self) -> bool:
        return True


class MemoryKernel:
    """The real backend's pure verbs over a kernel in memory; ``fail`` makes
    the next apply raise it (nothing committed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.held: Any = None
        self.fail: Exception | None = None
        self.commits = 0

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def apply(self, tx: Any) -> None:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        self.held = tx.after
        self.commits += 1

    def read_kernel(self) -> Any:
        if self.held is None or not hasattr(self.held, "read"):
            return self.held
        return dataclasses.replace(self.held, read=True)


def batch(agent: Agent, dp: Dataplane) -> Any:
    """What a fresh compiler makes of the agent's model, rendered."""
    fresh = Compiler(NODE)
    c = agent.compiler
    for objs in (c.namespaces, c.nodes, c.policies, c.pods):
        for obj in objs.values():
            fresh.put(obj)
    return dp.backend.render(dp.ruleset(fresh))


def start(backend: str) -> tuple[Agent, Dataplane, MemoryKernel]:
    kernel = MemoryKernel(BACKENDS[backend])
    dp = Dataplane(kernel)
    agent = Agent(Idle(), dp, Options(NODE, routes=False))
    for kind, objs in (
        (Kind.NAMESPACE, CLUSTER.namespaces.values()),
        (Kind.NODE, CLUSTER.nodes.values()),
        (Kind.NETWORK_POLICY, CLUSTER.policies),
        (Kind.POD, CLUSTER.pods),
    ):
        agent.handle(Event(EventType.SNAPSHOT, kind, objects=tuple(objs)))
    for kind in Kind:  # no ClusterNetworkPolicy objects: empty snapshots
        if kind.cluster_policy:
            agent.handle(Event(EventType.SNAPSHOT, kind, objects=()))
    assert agent.sync()
    assert kernel.held == batch(agent, dp)
    return agent, dp, kernel


def namespace(name: str, on: bool) -> Namespace:
    ns = CLUSTER.namespaces[name]
    extra = (("stress", "on"),) if on else (("stress", "off"),)
    kept = tuple(kv for kv in ns.labels if kv[0] != "stress")
    return dataclasses.replace(ns, labels=tuple(sorted(kept + extra)))


def relabel(pod: Pod, role: str) -> Pod:
    kept = tuple(kv for kv in pod.labels if kv[0] != "role")
    return dataclasses.replace(pod, labels=tuple(sorted(kept + (("role", role),))))


STEP = st.one_of(
    st.tuples(st.just("ns"), st.sampled_from("xyz"), st.booleans()),
    st.tuples(st.just("pod"), st.integers(0, len(CLUSTER.pods) - 1), st.booleans()),
    st.tuples(st.just("gone"), st.sampled_from(["x", "y", "z", 0, 3, 6]), st.booleans()),
    st.tuples(st.just("cni"), st.integers(0, len(CLUSTER.pods) - 1), st.booleans()),
    st.tuples(st.just("relist"), st.sampled_from("xyz"), st.booleans()),
    st.tuples(st.just("policy"), st.integers(0, len(POLICIES) - 1), st.booleans()),
    st.tuples(st.just("fail"), st.sampled_from(["backend", "os"]), st.booleans()),
    st.tuples(st.just("sync"), st.just(""), st.booleans()),
)


def step(agent: Agent, kernel: MemoryKernel, what: str, arg: Any, flag: bool) -> None:
    c = agent.compiler
    if what == "ns":
        agent.handle(Event(EventType.MODIFIED, Kind.NAMESPACE, obj=namespace(arg, flag)))
    elif what == "pod":
        pod = CLUSTER.pods[arg]
        agent.handle(
            Event(EventType.MODIFIED, Kind.POD, obj=relabel(pod, "client" if flag else "x"))
        )
    elif what == "gone":  # a namespace or a pod deleted (put again by a later step)
        if isinstance(arg, str):
            key = Key(Kind.NAMESPACE, "", arg)
        else:
            key = Key.of(CLUSTER.pods[arg])
        agent.handle(Event(EventType.DELETED, key.kind, obj=key))
    elif what == "cni":
        pod = CLUSTER.pods[arg]
        ips = tuple(str(ip) for ip in pod.ips) if flag else ()
        agent.handle(CniAdd(pod.namespace, pod.name, ips))
    elif what == "relist":  # namespaces listed again; ``arg`` did not validate
        objs = tuple(ns for n, ns in c.namespaces.items() if n != arg or not flag)
        kept = (Key(Kind.NAMESPACE, "", arg),) if flag else ()
        agent.handle(Event(EventType.SNAPSHOT, Kind.NAMESPACE, objects=objs, kept=kept))
    elif what == "policy":
        p = CLUSTER.policies[arg]
        if flag:
            agent.handle(Event(EventType.MODIFIED, Kind.NETWORK_POLICY, obj=p))
        else:
            agent.handle(Event(EventType.DELETED, Kind.NETWORK_POLICY, obj=Key.of(p)))
    elif what == "fail":
        kernel.fail = BackendError("injected") if arg == "backend" else OSError(11, "EAGAIN")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=30))
def test_incremental_equals_batch_through_the_dataplane(
    backend: str, steps: list[tuple[str, Any, bool]]
) -> None:
    agent, dp, kernel = start(backend)
    for what, arg, flag in steps:
        step(agent, kernel, what, arg, flag)
        if what == "sync" or flag:
            if agent.sync():
                assert kernel.held == batch(agent, dp), (what, arg, flag)
    kernel.fail = None
    while agent.pending:
        assert agent.sync()
    assert kernel.held == batch(agent, dp)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("error", [BackendError("injected"), OSError(11, "EAGAIN")])
def test_namespace_label_survives_a_failed_apply(backend: str, error: Exception) -> None:
    """The report's sequence: ``y`` gains the label, the apply that carries it
    fails after the journal was taken, the retry must still carry it."""
    agent, dp, kernel = start(backend)
    agent.handle(Event(EventType.MODIFIED, Kind.NAMESPACE, obj=namespace("y", True)))
    kernel.fail = error
    assert not agent.sync()
    assert agent.pending
    assert agent.sync()
    assert kernel.held == batch(agent, dp)
    assert kernel.held != start(backend)[2].held  # the label did change the kernel


def test_cni_add_before_the_pod_has_ips() -> None:
    agent, dp, kernel = start("nftables")
    pod = CLUSTER.pods[0]
    bare = dataclasses.replace(pod, ips=())
    agent.handle(Event(EventType.MODIFIED, Kind.POD, obj=bare))
    agent.handle(Event(EventType.MODIFIED, Kind.NAMESPACE, obj=namespace(pod.namespace, True)))
    assert agent.sync() and kernel.held == batch(agent, dp)
    agent.handle(CniAdd(pod.namespace, pod.name, tuple(str(i) for i in pod.ips)))
    agent.handle(Event(EventType.MODIFIED, Kind.NAMESPACE, obj=namespace(pod.namespace, False)))
    assert agent.sync() and kernel.held == batch(agent, dp)
    assert agent.compiler.pods[pod.key].ips == tuple(
        ipaddress.ip_address(i) for i in map(str, pod.ips)
    )
