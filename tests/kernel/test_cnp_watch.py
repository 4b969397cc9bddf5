"""``policyc watch`` and ClusterNetworkPolicy on the real kernel, on both backends.

The agent runs in the node namespace of the CNP lab (:mod:`tests.kernel.cnpworld`) on
``--source k8s`` against the loopback fake API server (``tests/fakeapi``), which serves
the policy.networking.k8s.io CRDs or answers 404 as a cluster without them does.

* A ClusterNetworkPolicy added, changed (tier, peers, a ``nodes`` peer toward the node's
  own address) and deleted at runtime is enforced each time: every cell (pods, node,
  outside host; TCP/UDP 80, 81) matches the evaluator of what the API holds.
* With the CRDs absent (404; nftables only) the agent keeps enforcing NetworkPolicy; once the CRDs
  appear it picks up a ClusterNetworkPolicy on its retry.

A change may take a while on a loaded machine: cells are probed in rounds until they
all match, within a generous deadline (not a timing assertion).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cnp_builders import (
    ALL,
    NP_ALLOW_X_IN_Y,
    NP_DENY_IN_Y,
    admin,
    anp,
    baseline,
    p_nodes,
    p_ns,
    rule,
    s_ns,
)
from tests.support.figures import count
from tests.support.world import world

from .agent_proc import AgentProc
from .cnpworld import (
    BACKEND_NAMES,
    CnpLab,
    all_cells,
    cluster_of,
    cnp_lab,
    end_name,
    expected,
    not_enforced,
    probe,
    reset,
)
from .kernelcheck import require_kernel
from .nsutil import in_netns

DEADLINE = 30.0  # seconds for a change to show: a bound for a loaded machine, not a target
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def cnpworld() -> Iterator[CnpLab]:
    require_kernel()
    if reason := not_enforced():
        pytest.skip(f"the dataplane does not lower ClusterNetworkPolicy yet ({reason})")
    with cnp_lab() as w:
        yield w


def wait_enforced(w: CnpLab, policies: list[Obj], what: str) -> None:
    """Probe rounds until every IPv4 cell matches the evaluator of ``policies``."""
    cluster = cluster_of(world(policies))
    want = expected(cluster, all_cells(w, 4), 4)
    deadline = time.monotonic() + DEADLINE
    while True:
        got = probe(w.lab, list(want), 4)
        count("cnp_watch_probes", len(want))
        wrong = [c for c in want if got[c] != want[c]]
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lines = [
        f"{end_name(s)} -> {end_name(d)} {port}/{proto}: want {want[(s, d, proto, port)]}"
        for s, d, proto, port in wrong
    ]
    assert not wrong, f"{what}: not enforced after {DEADLINE}s:\n" + "\n".join(sorted(lines))
    count("cnp_watch_changes")


class Api:
    """The fake API server in the node namespace (where the agent reaches it), holding
    the e2e world's Namespaces, Node and Pods, and a kubeconfig pointing at it."""

    def __init__(self, w: CnpLab, crds: bool, tmp: Path) -> None:
        from tests.fakeapi import FakeAPIServer, write_kubeconfig

        with in_netns(w.lab.node.netns):
            self.server = FakeAPIServer(bookmark_interval=0, crds=crds)
        for obj in world([]):
            self.server.upsert(obj)
        self.kubeconfig = write_kubeconfig(self.server.url, tmp / "kubeconfig")
        self.policies: dict[tuple[str, str, str], Obj] = {}

    def put(self, obj: Obj) -> list[Obj]:
        meta = obj["metadata"]
        self.server.upsert(obj)
        self.policies[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return list(self.policies.values())

    def delete(self, obj: Obj) -> list[Obj]:
        meta = obj["metadata"]
        self.server.delete(obj["kind"], meta.get("namespace"), meta["name"])
        del self.policies[(obj["kind"], meta.get("namespace", ""), meta["name"])]
        return list(self.policies.values())


def start_agent(w: CnpLab, api: Api, backend: str, tmp: Path, port: int) -> AgentProc:
    source = tmp / "unused"
    source.mkdir()
    extra = ("--source", "k8s", "--kubeconfig", str(api.kubeconfig), "--backend", backend)
    return AgentProc(w.lab.node.netns, "node-1", source, port, *extra, "--no-routes").start()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_cluster_policy_added_changed_deleted(cnpworld: CnpLab, backend: str) -> None:
    w = cnpworld
    reset(w.lab)
    with tempfile.TemporaryDirectory(prefix="policyc-cnpwatch-") as tmp:
        api = Api(w, True, Path(tmp))
        agent = start_agent(w, api, backend, Path(tmp), 19460 + BACKEND_NAMES.index(backend))
        try:
            wait_enforced(w, api.put(NP_ALLOW_X_IN_Y), "a NetworkPolicy")
            deny = admin("deny-z", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))])
            wait_enforced(w, api.put(deny), "an Admin Deny added over the NetworkPolicy")
            changed = admin(
                "deny-z",
                10,
                s_ns(ns="x"),
                ingress=[rule("Accept", p_ns(ns="z"))],
                egress=[rule("Deny", p_nodes()), rule("Pass", ALL)],
            )
            wait_enforced(w, api.put(changed), "the policy changed: subject, peers, nodes")
            base = baseline("base", 5, s_ns(ns="z"), ingress=[rule("Deny", ALL)])
            wait_enforced(w, api.put(base), "a Baseline policy added")
            old = anp("old", 3, s_ns(ns="z"), ingress=[rule("Allow", p_ns(ns="y"))])
            wait_enforced(w, api.put(old), "a v1alpha1 AdminNetworkPolicy added")
            wait_enforced(w, api.delete(changed), "the Admin policy deleted")
            wait_enforced(w, api.delete(base), "the Baseline policy deleted")
            wait_enforced(w, api.delete(old), "the v1alpha1 policy deleted")
            assert agent.proc is not None and agent.proc.poll() is None, agent.logs()
        finally:
            agent.stop()
            api.server.stop()
            reset(w.lab)


def test_networkpolicy_enforced_without_the_crds(cnpworld: CnpLab) -> None:
    """The 404 is the source's business, not the backend's: nftables only."""
    w, backend = cnpworld, BACKEND_NAMES[0]
    reset(w.lab)
    with tempfile.TemporaryDirectory(prefix="policyc-cnpwatch-") as tmp:
        api = Api(w, False, Path(tmp))
        agent = start_agent(w, api, backend, Path(tmp), 19470 + BACKEND_NAMES.index(backend))
        try:
            wait_enforced(w, api.put(NP_DENY_IN_Y), "NetworkPolicy with the CRDs absent (404)")
            wait_enforced(w, api.put(NP_ALLOW_X_IN_Y), "a second NetworkPolicy, CRDs absent")
            assert agent.proc is not None and agent.proc.poll() is None, agent.logs()
            api.server.set_crds(True)
            deny = admin("deny-x", 1, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))])
            wait_enforced(w, api.put(deny), "the CRDs installed, then a ClusterNetworkPolicy")
        finally:
            agent.stop()
            api.server.stop()
            reset(w.lab)
