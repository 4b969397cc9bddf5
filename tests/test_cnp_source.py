"""ClusterNetworkPolicy and the v1alpha1 kinds through the Kubernetes source: listed and
watched with the client's CustomObjectsApi against the loopback fake API server, which
serves the CRDs (or, ``crds=False``, answers 404 as a cluster without them does)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from policyc.kinds import Key, Kind
from policyc.model import Action, ClusterNetworkPolicy, Origin, Tier
from tests.fakeapi import FakeAPIServer, api_client
from tests.fakeapi import objects as o
from tests.test_source_k8s import FAST, Running, changes, snapshots
from watcher.sources.base import EventType
from watcher.sources.k8s import KubernetesSource

GROUP = "policy.networking.k8s.io"
CRD_KINDS = ("ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


def cnp(name: str, tier: str = "Admin", priority: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "tier": tier,
            "priority": priority,
            "subject": {"namespaces": {}},
            "ingress": [
                {"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]},
            ],
        },
    }


def anp(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "priority": 5,
            "subject": {"namespaces": {}},
            "egress": [{"action": "Allow", "to": [{"networks": ["192.0.2.0/24"]}]}],
        },
    }


def banp() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "subject": {"namespaces": {}},
            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}],
        },
    }


@pytest.fixture
def running() -> Iterator[list[Running]]:
    runs: list[Running] = []
    yield runs
    for r in runs:
        if not r.stop.is_set():
            r.close()
        r.source.api_client.close()


def _start(api: FakeAPIServer, runs: list[Running]) -> Running:
    run = Running(KubernetesSource(api_client(api.url), **FAST))
    runs.append(run)
    return run


def test_fakeapi_serves_the_crds_through_custom_objects_api() -> None:
    with FakeAPIServer(bookmark_interval=0) as api:
        api.create(cnp("a"))
        api.create(anp("b"))
        api.create(banp())
        ac = api_client(api.url)
        custom = client.CustomObjectsApi(ac)
        got: Any = custom.list_cluster_custom_object(GROUP, "v1alpha2", "clusternetworkpolicies")
        assert [i["metadata"]["name"] for i in got["items"]] == ["a"]
        got = custom.list_cluster_custom_object(GROUP, "v1alpha1", "adminnetworkpolicies")
        assert [i["metadata"]["name"] for i in got["items"]] == ["b"]
        api.set_crds(False)
        with pytest.raises(ApiException) as exc:
            custom.list_cluster_custom_object(GROUP, "v1alpha2", "clusternetworkpolicies")
        assert exc.value.status == 404
        ac.close()


def test_crds_are_listed_validated_and_watched(running: list[Running]) -> None:
    with FakeAPIServer(bookmark_interval=0) as api:
        api.create(o.namespace("default"))
        api.create(cnp("admin-deny"))
        api.create(anp("old-admin"))
        api.create(banp())
        run = _start(api, running)
        events = run.wait_synced()
        (snap,) = snapshots(events, "ClusterNetworkPolicy")
        (obj,) = snap.objects
        assert isinstance(obj, ClusterNetworkPolicy) and obj.tier is Tier.ADMIN
        assert obj.ingress[0].action is Action.DENY and obj.ingress[0].name == "deny-all"
        (old,) = snapshots(events, "AdminNetworkPolicy")[0].objects
        assert isinstance(old, ClusterNetworkPolicy) and old.origin is Origin.ANP
        assert old.egress[0].action is Action.ACCEPT  # Allow -> Accept
        (base,) = snapshots(events, "BaselineAdminNetworkPolicy")[0].objects
        assert isinstance(base, ClusterNetworkPolicy) and base.tier is Tier.BASELINE
        assert api.wait_for_watches(len(run.source.resource_versions()))
        api.create(cnp("late", tier="Baseline", priority=3))
        api.delete("ClusterNetworkPolicy", None, "admin-deny")
        events = run.wait(lambda ev: len(changes(ev, "ClusterNetworkPolicy")) == 2)
        assert changes(events, "ClusterNetworkPolicy") == [
            ("ADDED", "late"),
            ("DELETED", "admin-deny"),
        ]
        deleted = [e.obj for e in events if e.type is EventType.DELETED]
        assert deleted == [Key(Kind.CLUSTER_NETWORK_POLICY, "", "admin-deny")]
        run.close()


def test_absent_crds_are_empty_and_retried(running: list[Running]) -> None:
    """404 (no CRD): an empty SNAPSHOT, so the source is synced and NetworkPolicy is
    enforced; once the CRD is installed its objects arrive."""
    with FakeAPIServer(bookmark_interval=0, crds=False) as api:
        api.create(o.namespace("default"))
        api.create(o.network_policy("deny", "default"))
        run = _start(api, running)
        events = run.wait_synced()
        for kind in CRD_KINDS:
            (snap,) = snapshots(events, kind)
            assert snap.objects == ()
        assert len(snapshots(events, "NetworkPolicy")[0].objects) == 1
        api.set_crds(True)
        api.create(cnp("arrives"))
        events = run.wait(lambda ev: len(snapshots(ev, "ClusterNetworkPolicy")) == 2, 20.0)
        (obj,) = snapshots(events, "ClusterNetworkPolicy")[1].objects
        assert isinstance(obj, ClusterNetworkPolicy) and obj.name == "arrives"
        run.close()
