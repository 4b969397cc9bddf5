"""The incremental compiler with ClusterNetworkPolicy events (add, replace,
delete), pod, namespace and Node label events in any order ends where a fresh
compile of the final state ends: same graph (groups with their tiers, tier
rule nodes) and the same set elements, followed through the change journal
as a dataplane would (``nodes`` peer sets change by elements on Node events)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyc.compiler import Compiler, compile_cluster
from policyc.kinds import Kind
from tests.support.randcnp import cluster_policy
from tests.test_incremental import BASE, cluster_of, pod_objects

Obj = dict[str, Any]


def node(name: str, role: str) -> Obj:
    n = 1 if name == "node-1" else 2
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"role": role}},
        "spec": {"podCIDRs": [f"10.244.{n}.0/24", f"2001:db8:244:{n}::/64"]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": f"192.0.2.{n}"},
                {"type": "InternalIP", "address": f"2001:db8::{n}"},
            ]
        },
    }


@st.composite
def events(draw: st.DrawFn) -> list[tuple[str, Obj]]:
    out: list[tuple[str, Obj]] = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["cnp", "cnp-del", "pod", "ns", "node"]))
        if kind.startswith("cnp"):
            out.append((kind, draw(cluster_policy(draw(st.integers(0, 2))))))
        elif kind == "pod":
            out.append((kind, draw(pod_objects())))
        elif kind == "node":
            name = draw(st.sampled_from(["node-1", "node-2"]))
            out.append((kind, node(name, draw(st.sampled_from(["worker", "infra"])))))
        else:
            ns = draw(st.sampled_from("xyz"))
            labels = {"ns": draw(st.sampled_from("xyz"))}
            out.append(
                (
                    kind,
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": ns, "labels": labels},
                    },
                )
            )
    return out


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


@settings(max_examples=60, deadline=None)
@given(stream=events(), node_name=st.sampled_from([None, "node-1"]))
def test_incremental_equals_batch_with_tiers(
    stream: list[tuple[str, Obj]], node_name: str | None
) -> None:
    state = {_key(o): o for o in BASE}
    inc = Compiler(node_name).load(cluster_of(list(state.values())))
    mirror: dict[str, set[object]] = {}

    def follow() -> None:
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
        one = cluster_of([obj])
        if kind == "cnp-del":
            state.pop(_key(obj), None)
            inc.remove(Kind(obj["kind"]), obj["metadata"]["name"])
        else:
            state[_key(obj)] = obj
            if kind == "cnp":
                inc.put(one.cluster_policies[0])
            elif kind == "pod":
                inc.put(one.pods[0])
            elif kind == "node":
                inc.put(one.nodes[obj["metadata"]["name"]])
            else:
                inc.put(one.namespaces[obj["metadata"]["name"]])
        follow()
    assert inc.graph() == compile_cluster(cluster_of(list(state.values())), node_name)
    assert mirror == {name: set(m) for name, m in inc.members.items()}
