"""``watch --pod-condition``: the agent's PATCH of pods/status against the
loopback API server (tests/fakeapi), merged by condition type."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator

import pytest

from tests.fakeapi.client import api_client
from tests.fakeapi.server import FakeAPIServer
from watcher.podcondition import CONDITION, PodConditions, condition_patch

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "a", "namespace": "x"},
    "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
}


@pytest.fixture
def api() -> Iterator[FakeAPIServer]:
    with FakeAPIServer() as srv:
        srv.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        srv.create(POD)
        yield srv


def conditions(api: FakeAPIServer) -> dict[str, str]:
    pod = api.get("Pod", "x", "a")
    assert pod is not None
    return {c["type"]: c["status"] for c in pod["status"]["conditions"]}


def test_patch_sets_the_condition_and_keeps_the_kubelets(api: FakeAPIServer) -> None:
    with api_client(api.url) as client:
        pc = PodConditions(client)
        pc.enforced("x/a", 0.04)
        pc.enforced("x/a", 0.05)  # once per pod
        assert pc.queue.qsize() == 1
        assert pc.send("x/a", 0.04)
        assert conditions(api) == {"Ready": "False", CONDITION: "True"}
        assert pc.send("x/gone", 0.1)  # a deleted pod is done, not retried


def test_sender_thread_marks_enforced_pods(api: FakeAPIServer) -> None:
    with api_client(api.url) as client:
        pc = PodConditions(client)
        pc.start()
        pc.enforced("x/a", 0.01)
        deadline = time.monotonic() + 10
        while pc.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        pc.stop.set()
        assert conditions(api)[CONDITION] == "True"


def test_patch_body() -> None:
    now = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)
    (cond,) = condition_patch(0.25, now)["status"]["conditions"]
    assert cond["type"] == CONDITION and cond["status"] == "True"
    assert cond["lastTransitionTime"] == "2026-11-30T09:00:00Z" and "0.250s" in cond["message"]
