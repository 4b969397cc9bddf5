"""The incremental compiler, fed events in any order, ends where a fresh
compile of the final state ends: same graph, same set elements.

Pod events also move pods onto other pods' addresses and add "guest" pods
that share a base pod's addresses (on either node, with their own labels and
named ports), so the least-privilege rule for shared addresses (every
claimant for granting sets, any for isolation) is held to the same property.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from policyc.compiler import Compiler, compile_cluster
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.parse import build_cluster
from policyc.setspecs import Claim
from tests.support.randpol import policy
from tests.support.world import base_objects, dump

BASE = base_objects()
BASE_PODS = [o for o in BASE if o["kind"] == "Pod"]
GUESTS = ("g1", "g2")


def cluster_of(objs: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    return build_cluster(parse_text(dump(objs), "<t>"), warn=lambda m: None)


@st.composite
def pod_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A base pod relabelled (maybe moved onto another pod's addresses), or
    a guest pod sharing a base pod's addresses."""
    pod = copy.deepcopy(draw(st.sampled_from(BASE_PODS)))
    meta = pod["metadata"]
    meta["labels"] = {"pod": draw(st.sampled_from("abcd"))}
    if draw(st.booleans()):
        pod["status"] = copy.deepcopy(draw(st.sampled_from(BASE_PODS))["status"])
    if draw(st.booleans()):
        meta["name"] = draw(st.sampled_from(GUESTS))
        meta["namespace"] = draw(st.sampled_from("xyz"))
        pod["spec"]["nodeName"] = draw(st.sampled_from(["node-1", "node-2"]))
        ports = pod["spec"]["containers"][0]["ports"]
        kept = draw(st.lists(st.sampled_from(ports), max_size=4, unique_by=lambda p: p["name"]))
        shift = draw(st.sampled_from([0, 1]))  # a name on another number
        pod["spec"]["containers"][0]["ports"] = [
            {**p, "containerPort": p["containerPort"] + shift} for p in kept
        ]
    return pod


@st.composite
def event_streams(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["policy", "policy-del", "pod", "pod-del", "ns"]))
        if kind.startswith("policy"):
            pol = draw(policy(draw(st.integers(0, 3))))
            events.append((kind, pol))
        elif kind.startswith("pod"):
            events.append((kind, draw(pod_objects())))
        else:
            ns = draw(st.sampled_from("xyz"))
            events.append(
                (
                    kind,
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": ns, "labels": {"ns": draw(st.sampled_from("xyz"))}},
                    },
                )
            )
    return events


@settings(max_examples=80, deadline=None)
@given(stream=event_streams(), node=st.sampled_from([None, "node-1", "node-2"]))
def test_incremental_equals_batch(
    stream: list[tuple[str, dict[str, Any]]], node: str | None
) -> None:
    state: dict[tuple[str, str, str], dict[str, Any]] = {}
    for obj in BASE:
        meta = obj["metadata"]
        state[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
    inc = Compiler(node).load(cluster_of(list(state.values())))
    mirror: dict[str, set[object]] = {}

    def follow() -> None:
        """Replay the change journal onto a mirror, as a dataplane would."""
        ch = inc.changes()
        for name in ch.reset:
            if name in inc.members:
                mirror[name] = set(inc.members[name])
            else:
                mirror.pop(name, None)
        for name, elems in ch.added.items():
            mirror[name] |= elems
        for name, elems in ch.removed.items():
            mirror[name] -= elems

    follow()
    for kind, obj in stream:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        one = cluster_of([obj])
        if kind == "policy":
            state[key] = obj
            inc.put(one.policies[0])
        elif kind == "policy-del":
            state.pop(key, None)
            inc.remove(Kind.NETWORK_POLICY, f"{meta['namespace']}/{meta['name']}")
        elif kind == "pod":
            state[key] = obj
            inc.put(one.pods[0])
        elif kind == "pod-del":
            state.pop(key, None)
            inc.remove(Kind.POD, f"{meta['namespace']}/{meta['name']}")
        else:
            state[key] = obj
            inc.put(one.namespaces[meta["name"]])
        follow()
    assert inc.graph() == compile_cluster(cluster_of(list(state.values())), node)
    assert mirror == {name: set(m) for name, m in inc.members.items()}
    assert_least_privilege(inc)
    event(f"shared addresses: {min(inc.m.shared, 2)}")


def assert_least_privilege(comp: Compiler) -> None:
    """Recount every pod-driven set from scratch: an EVERY set holds the
    elements that every live claimant of their address contributes (every
    local claimant for EVERY_LOCAL), an ANY set the union of all."""
    pods = [p for p in comp.pods.values() if not p.host_network]
    claimants = Counter(ip for p in pods for ip in p.ips)
    local = Counter(ip for p in pods if comp.is_local(p) for ip in p.ips)
    for name, spec in comp.specs.items():
        if spec.member is None:
            continue
        contrib = Counter(e for p in pods for e in set(spec.member(p, comp.world)))
        if spec.claim is not Claim.ANY:
            total = local if spec.claim is Claim.EVERY_LOCAL else claimants
            want = {e for e, n in contrib.items() if n == total[spec.address_of(e)]}
        else:
            want = set(contrib)
        assert set(comp.members[name]) == want, name
    assert comp.m.shared == sum(n > 1 for n in claimants.values())
