"""The incremental compiler, fed events in any order, ends where a fresh
compile of the final state ends: same graph, same set elements."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.compiler import Compiler, compile_cluster
from policyc.load import parse_text
from policyc.parse import build_cluster
from tests.support.randpol import policy
from tests.support.world import base_objects, dump

BASE = base_objects()


def cluster_of(objs: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    return build_cluster(parse_text(dump(objs), "<t>"), warn=lambda m: None)


@st.composite
def event_streams(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["policy", "policy-del", "pod", "pod-del", "ns"]))
        if kind.startswith("policy"):
            pol = draw(policy(draw(st.integers(0, 3))))
            events.append((kind, pol))
        elif kind.startswith("pod"):
            pod = dict(draw(st.sampled_from([o for o in BASE if o["kind"] == "Pod"])))
            pod["metadata"] = dict(pod["metadata"])
            pod["metadata"]["labels"] = {"pod": draw(st.sampled_from("abcd"))}
            events.append((kind, pod))
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
            inc.upsert_policy(one.policies[0])
        elif kind == "policy-del":
            state.pop(key, None)
            inc.upsert_policy(f"{meta['namespace']}/{meta['name']}", delete=True)
        elif kind == "pod":
            state[key] = obj
            inc.upsert_pod(one.pods[0])
        elif kind == "pod-del":
            state.pop(key, None)
            inc.delete_pod(f"{meta['namespace']}/{meta['name']}")
        else:
            state[key] = obj
            inc.upsert_namespace(one.namespaces[meta["name"]])
        follow()
    assert inc.graph() == compile_cluster(cluster_of(list(state.values())), node)
    assert mirror == {name: set(m) for name, m in inc.members.items()}
