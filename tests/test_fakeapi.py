"""Fidelity of the fake API server, proven with the real, unpatched ``kubernetes`` client.

Client behaviour pinned here (kubernetes 37.x, urllib3 2.x):

* Watch from a compacted resourceVersion: the server answers 200 and one ERROR event
  carrying a 410 "Expired" Status.  ``Watch.stream`` turns it into
  ``kubernetes.client.exceptions.ApiException`` (status 410, reason
  ``"Expired: too old resource version: ..."``).  Without ``timeout_seconds`` the client
  first retries once from the same resourceVersion (two watch requests), then raises.
* A watch connection cut mid-stream raises ``urllib3.exceptions.ProtocolError``
  ("Response ended prematurely") out of the generator: not an ApiException.
* A watch stream that ends cleanly (``timeoutSeconds`` elapsed, graceful drop) ends the
  generator when ``timeout_seconds`` was passed; otherwise ``Watch.stream`` silently opens a
  new watch from the last resourceVersion it saw.
* BOOKMARK events arrive with ``object`` left as the raw dict; they advance
  ``Watch.resource_version``.
"""

# The client's models type every field Optional; these tests read them directly.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException, NotFoundException, ServiceException
from kubernetes.informer import SharedInformer

from tests.fakeapi import APIError, FakeAPIServer, api_client, write_kubeconfig
from tests.fakeapi import objects as o

SAFETY = (2, 3)  # (connect, read) seconds: no test can hang on a silent stream


@pytest.fixture
def api() -> Iterator[FakeAPIServer]:
    with FakeAPIServer(bookmark_interval=0) as server:
        yield server


@pytest.fixture
def ac(api: FakeAPIServer) -> Iterator[client.ApiClient]:
    with api_client(api.url) as c:
        yield c


@pytest.fixture
def core(ac: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(ac)


@pytest.fixture
def net(ac: client.ApiClient) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(ac)


class Background:
    """Run ``fn`` in a thread once a watch is open; join it (bounded) afterwards."""

    def __init__(self, api: FakeAPIServer, fn: Callable[[], object], watches: int = 1) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                assert api.wait_for_watches(watches, 2.0), "watch never opened"
                fn()
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(2.0)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def seed(api: FakeAPIServer) -> None:
    for ns in ("default", "prod"):
        api.create(o.namespace(ns, {"team": ns}))
    api.create(o.node("n1", internal_ip="192.0.2.1", pod_cidrs=["10.1.0.0/24"]))
    api.create(o.node("n2", internal_ip="192.0.2.2", pod_cidrs=["10.2.0.0/24"]))
    api.create(o.pod("web", "default", node="n1", labels={"app": "web"}, ip="10.1.0.5"))
    api.create(o.pod("db", "prod", node="n2", labels={"app": "db"}, ip="10.2.0.7"))
    api.create(o.pod("api", "prod", node="n1", labels={"app": "api"}, ip="10.1.0.9"))
    api.create(o.network_policy("deny", "prod", egress=[{}]))


def names(items: list[Any]) -> list[str]:
    return [i.metadata.name for i in items]


def events(stream: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ev in stream:
        out.append(ev)
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------------- lists
def test_lists_of_every_resource(
    api: FakeAPIServer, core: client.CoreV1Api, net: client.NetworkingV1Api
) -> None:
    seed(api)
    pods = core.list_pod_for_all_namespaces()
    assert isinstance(pods, client.V1PodList)
    assert pods.metadata.resource_version == api.resource_version
    assert names(pods.items) == ["web", "api", "db"]  # etcd key order: namespace, name
    assert isinstance(pods.items[0], client.V1Pod) and pods.items[0].status.pod_ip == "10.1.0.5"
    assert names(core.list_namespaced_pod("prod").items) == ["api", "db"]
    namespaces = core.list_namespace().items
    assert names(namespaces) == ["default", "prod"]
    assert namespaces[1].metadata.labels == {"team": "prod", "kubernetes.io/metadata.name": "prod"}
    assert names(core.list_node().items) == ["n1", "n2"]
    pols = net.list_network_policy_for_all_namespaces()
    assert isinstance(pols.items[0], client.V1NetworkPolicy)
    assert pols.items[0].spec.policy_types == ["Ingress", "Egress"]  # apiserver default
    assert names(net.list_namespaced_network_policy("default").items) == []
    pod = core.read_namespaced_pod("db", "prod")
    assert pod.kind == "Pod" and pod.metadata.uid and pod.metadata.creation_timestamp
    with pytest.raises(NotFoundException) as err:
        core.read_namespaced_pod("nope", "prod")
    body = json.loads(err.value.body or "")
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)


def test_raw_list_items_are_kindless(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    seed(api)
    resp: Any = core.list_node(_preload_content=False)  # the raw urllib3 response
    body = json.loads(resp.data)
    assert (body["kind"], body["apiVersion"]) == ("NodeList", "v1")
    assert "kind" not in body["items"][0] and body["items"][0]["metadata"]["name"] == "n1"


def test_selectors(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    seed(api)
    on_n1 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert names(on_n1.items) == ["web", "api"]
    assert names(
        core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=n1,metadata.namespace=prod"
        ).items
    ) == ["db"]
    assert names(
        core.list_pod_for_all_namespaces(label_selector="app in (web,db),app!=web").items
    ) == ["db"]
    assert names(core.list_namespace(label_selector="kubernetes.io/metadata.name=prod").items) == [
        "prod"
    ]
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=1")
    assert err.value.status == 400


def test_pagination_is_a_consistent_snapshot(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    for i in range(7):
        api.create(o.pod(f"p{i}", node="n1"))
    first = core.list_pod_for_all_namespaces(limit=3)
    assert names(first.items) == ["p0", "p1", "p2"]
    assert first.metadata.remaining_item_count == 4 and first.metadata._continue
    snapshot_rv = first.metadata.resource_version
    api.delete("Pod", "default", "p5")  # after the snapshot: must not show in later pages
    api.create(o.pod("p3a", node="n1"))
    second = core.list_pod_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    assert names(second.items) == ["p3", "p4", "p5"]
    assert second.metadata.resource_version == snapshot_rv
    third = core.list_pod_for_all_namespaces(limit=3, _continue=second.metadata._continue)
    assert names(third.items) == ["p6"]
    assert third.metadata._continue is None and third.metadata.remaining_item_count is None
    assert api.request_count("list", path="/api/v1/pods") == 3


def test_continue_token_expires_with_compaction(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    for i in range(4):
        api.create(o.pod(f"p{i}"))
    first = core.list_namespaced_pod("default", limit=2)
    api.create(o.pod("later"))
    api.compact()
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    body = json.loads(err.value.body or "")
    assert err.value.status == 410 and body["reason"] == "Expired"
    assert body["metadata"]["continue"]  # inconsistent continuation offered, as the real one
    rest = core.list_namespaced_pod("default", _continue=body["metadata"]["continue"])
    assert names(rest.items) == ["p2", "p3"]


def test_list_at_exact_resource_version(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    api.create(o.pod("a"))
    rv = api.resource_version
    api.create(o.pod("b"))
    old = core.list_pod_for_all_namespaces(resource_version=rv, resource_version_match="Exact")
    assert names(old.items) == ["a"] and old.metadata.resource_version == rv
    assert names(core.list_pod_for_all_namespaces(resource_version="0").items) == ["a", "b"]


def test_discovery(api: FakeAPIServer, ac: client.ApiClient) -> None:
    assert client.CoreApi(ac).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(ac).get_api_versions().groups
    assert [g.name for g in groups] == ["networking.k8s.io", "policy.networking.k8s.io"]
    core_res = client.CoreV1Api(ac).get_api_resources()
    assert {x.name for x in core_res.resources} == {"pods", "namespaces", "nodes"}
    net_res = client.NetworkingV1Api(ac).get_api_resources()
    assert [(x.name, x.namespaced) for x in net_res.resources] == [("networkpolicies", True)]
    assert client.VersionApi(ac).get_code().major == "1"


# -------------------------------------------------------------------- watches
def test_watch_delivers_changes_in_order(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    api.create(o.pod("web", node="n1"))
    rv = int(str(core.list_pod_for_all_namespaces().metadata.resource_version))

    def mutate() -> None:
        api.create(o.pod("db", node="n1"))
        pod = api.get("Pod", "default", "web")
        assert pod is not None
        pod["metadata"]["labels"] = {"app": "web"}
        api.update(pod)
        api.delete("Pod", "default", "db")

    bg = Background(api, mutate)
    w = watch.Watch()
    got = events(
        w.stream(
            core.list_pod_for_all_namespaces, resource_version=str(rv), _request_timeout=SAFETY
        ),
        3,
    )
    w.stop()
    bg.join()
    assert [(e["type"], e["object"].metadata.name) for e in got] == [
        ("ADDED", "db"),
        ("MODIFIED", "web"),
        ("DELETED", "db"),
    ]
    assert [e["object"].metadata.resource_version for e in got] == [
        str(rv + 1),
        str(rv + 2),
        str(rv + 3),
    ]
    assert isinstance(got[1]["object"], client.V1Pod)
    assert got[1]["object"].metadata.labels == {"app": "web"}
    assert w.resource_version == str(rv + 3)


def test_watch_without_rv_starts_with_synthetic_adds(
    api: FakeAPIServer, core: client.CoreV1Api
) -> None:
    seed(api)
    bg = Background(api, lambda: api.delete("Pod", "prod", "db"))
    got = events(watch.Watch().stream(core.list_namespaced_pod, "prod", _request_timeout=SAFETY), 3)
    bg.join()
    assert [(e["type"], e["object"].metadata.name) for e in got] == [
        ("ADDED", "api"),
        ("ADDED", "db"),
        ("DELETED", "db"),
    ]


def test_watch_selector_transitions(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    pod = api.create(o.pod("web", node="n1"))
    rv = api.resource_version

    def move() -> None:
        pod["spec"]["nodeName"] = "n2"  # unchanged spec elsewhere; leaves the selector
        moved = api.update(pod)
        moved["spec"]["nodeName"] = "n1"
        api.update(moved)

    bg = Background(api, move)
    got = events(
        watch.Watch().stream(
            core.list_pod_for_all_namespaces,
            field_selector="spec.nodeName=n1",
            resource_version=rv,
            _request_timeout=SAFETY,
        ),
        2,
    )
    bg.join()
    assert [(e["type"], e["object"].spec.node_name) for e in got] == [
        ("DELETED", "n2"),
        ("ADDED", "n1"),
    ]


def test_bookmarks(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    api.create(o.pod("web"))
    rv = api.resource_version

    def poke() -> None:
        assert api.send_bookmark() == 1
        api.create(o.pod("db"))
        api.send_bookmark()

    bg = Background(api, poke)
    w = watch.Watch()
    got = events(
        w.stream(
            core.list_pod_for_all_namespaces,
            resource_version=rv,
            allow_watch_bookmarks=True,
            _request_timeout=SAFETY,
        ),
        3,
    )
    bg.join()
    assert [e["type"] for e in got] == ["BOOKMARK", "ADDED", "BOOKMARK"]
    assert got[0]["raw_object"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": rv},
    }
    assert got[2]["raw_object"]["metadata"]["resourceVersion"] == str(int(rv) + 1)
    assert w.resource_version == str(int(rv) + 1)


def test_periodic_bookmarks_only_when_allowed() -> None:
    with FakeAPIServer(bookmark_interval=0.1) as api, api_client(api.url) as ac:
        core = client.CoreV1Api(ac)
        got = events(
            watch.Watch().stream(
                core.list_node, allow_watch_bookmarks=True, _request_timeout=SAFETY
            ),
            2,
        )
        assert [e["type"] for e in got] == ["BOOKMARK", "BOOKMARK"]
        seen = [e["type"] for e in watch.Watch().stream(core.list_node, timeout_seconds=1)]
        assert seen == []


def test_send_initial_events_ends_with_marked_bookmark(
    api: FakeAPIServer, core: client.CoreV1Api
) -> None:
    seed(api)
    got = events(
        watch.Watch().stream(
            core.list_node,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
            _request_timeout=SAFETY,
        ),
        3,
    )
    assert [e["type"] for e in got] == ["ADDED", "ADDED", "BOOKMARK"]
    meta = got[2]["raw_object"]["metadata"]
    assert meta == {
        "resourceVersion": api.resource_version,
        "annotations": {"k8s.io/initial-events-end": "true"},
    }


def test_watch_from_compacted_rv_is_410(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    old = api.resource_version
    for i in range(3):
        api.create(o.pod(f"p{i}"))
    api.compact(keep_last=1)
    # On the wire: 200, then one ERROR event with a Status, then the end of the stream.
    resp: Any = core.list_pod_for_all_namespaces(
        watch=True, resource_version=old, _preload_content=False
    )
    assert resp.status == 200
    lines = resp.data.decode().splitlines()
    assert len(lines) == 1
    error = json.loads(lines[0])
    assert error["type"] == "ERROR"
    assert {k: error["object"][k] for k in ("kind", "status", "reason", "code")} == {
        "kind": "Status",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
    }
    assert error["object"]["message"].startswith(f"too old resource version: {old} (")
    # The client: with timeout_seconds it raises at once ...
    api.reset_counters()
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_pod_for_all_namespaces,
                resource_version=old,
                timeout_seconds=1,
                _request_timeout=SAFETY,
            )
        )
    assert type(err.value) is ApiException and err.value.status == 410
    assert err.value.reason.startswith("Expired: too old resource version")
    assert api.request_count("watch") == 1
    # ... without it, it retries once from the same RV and then raises.
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_pod_for_all_namespaces, resource_version=old, _request_timeout=SAFETY
            )
        )
    assert err.value.status == 410 and api.request_count("watch") == 3
    # One event back is still inside the window.
    ok = events(
        watch.Watch().stream(
            core.list_pod_for_all_namespaces,
            resource_version=str(int(api.resource_version) - 1),
            _request_timeout=SAFETY,
        ),
        1,
    )
    assert ok[0]["object"].metadata.name == "p2"


def test_drop_watches_cuts_the_stream(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    api.create(o.pod("web"))
    got: list[str] = []
    with pytest.raises(urllib3.exceptions.ProtocolError, match="ended prematurely"):
        for ev in watch.Watch().stream(core.list_pod_for_all_namespaces, _request_timeout=SAFETY):
            got.append(ev["type"])
            assert api.drop_watches() == 1
    assert got == ["ADDED"]
    assert api.wait_for_no_watches(1.0) and api.request_count("watch") == 1


def test_graceful_drop_ends_or_rewatches(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    api.create(o.pod("web"))
    bg = Background(api, lambda: api.drop_watches(graceful=True))
    got = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_pod_for_all_namespaces, timeout_seconds=5, _request_timeout=SAFETY
        )
    ]
    bg.join()
    assert got == ["ADDED"]  # clean end with timeout_seconds: the generator just finishes

    rv = api.resource_version

    def drop_then_change() -> None:
        api.drop_watches(graceful=True)
        assert api.wait_for_requests(2, "watch", timeout=2.0)
        api.create(o.pod("db"))

    api.reset_counters()
    bg = Background(api, drop_then_change)
    got2 = events(
        watch.Watch().stream(
            core.list_pod_for_all_namespaces, resource_version=rv, _request_timeout=SAFETY
        ),
        1,
    )
    bg.join()
    assert [e["object"].metadata.name for e in got2] == ["db"]
    rewatch = [r for r in api.requests if r.verb == "watch"]
    assert [r.query["resourceVersion"] for r in rewatch] == [rv, rv]


def test_resume_from_last_seen_rv_gets_exactly_the_missed_events(
    api: FakeAPIServer, core: client.CoreV1Api
) -> None:
    seed(api)
    w = watch.Watch()
    stream = w.stream(core.list_pod_for_all_namespaces, _request_timeout=SAFETY)
    assert len(events(stream, 3)) == 3  # initial state
    api.create(o.pod("seen", "prod"))
    assert events(stream, 1)[0]["object"].metadata.name == "seen"
    last = w.resource_version
    api.drop_watches()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        next(stream)
    # While disconnected:
    api.create(o.pod("missed1", "prod"))
    api.delete("Pod", "prod", "db")
    web = api.get("Pod", "default", "web")
    assert web is not None
    web["status"]["phase"] = "Succeeded"
    api.update(web)
    api.create(o.namespace("other"))  # another resource: not part of the pod watch
    resumed = watch.Watch().stream(
        core.list_pod_for_all_namespaces,
        resource_version=last,
        allow_watch_bookmarks=True,
        _request_timeout=SAFETY,
    )
    got = events(resumed, 3)
    assert [(e["type"], e["object"].metadata.name) for e in got] == [
        ("ADDED", "missed1"),
        ("DELETED", "db"),
        ("MODIFIED", "web"),
    ]
    # Exactly those: the next thing on the stream is a bookmark sent now.
    assert api.send_bookmark() == 1
    after = events(resumed, 1)[0]
    assert after["type"] == "BOOKMARK"
    assert after["raw_object"]["metadata"]["resourceVersion"] == api.resource_version
    resumed.close()


def test_timeout_seconds_closes_the_stream(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    start = time.monotonic()
    got = list(
        watch.Watch().stream(core.list_namespace, timeout_seconds=1, _request_timeout=SAFETY)
    )
    assert got == [] and 0.9 <= time.monotonic() - start < 5  # upper: a loaded machine
    assert api.open_watches == 0  # deregistered before the stream's last chunk


def test_informer_relists_after_410(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    """The client's SharedInformer: dropped watch -> resume -> 410 -> relist -> watch."""
    api.create(o.pod("web"))
    seen: queue.Queue[tuple[object, ...]] = queue.Queue()
    inf = SharedInformer(core.list_pod_for_all_namespaces)
    inf.add_event_handler("ADDED", lambda obj: seen.put(("ADDED", obj.metadata.name)))
    inf.add_event_handler(
        "ERROR", lambda exc: seen.put(("ERROR", type(exc).__name__, getattr(exc, "status", None)))
    )
    inf.start()
    try:
        assert seen.get(timeout=2) == ("ADDED", "web")
        assert api.wait_for_watches(1)
        api.create(o.namespace("elsewhere"))  # the RV moves on; the pod watch sees nothing
        api.compact()
        api.drop_watches()  # resuming from web's RV is now too old
        errors = [seen.get(timeout=2), seen.get(timeout=2)]
        assert errors == [("ERROR", "ProtocolError", None), ("ERROR", "ApiException", 410)]
        assert api.wait_for_requests(2, "list", path="/api/v1/pods")
        assert api.wait_for_watches(1)
        api.create(o.pod("db"))
        assert seen.get(timeout=2) == ("ADDED", "db")
        assert api.request_count("watch") == 4  # first, 410, client's one retry, after relist
    finally:
        stopper = threading.Thread(target=inf.stop, daemon=True)
        stopper.start()
        stopper.join(2.0)
        assert not stopper.is_alive()


# --------------------------------------------------------- failures, counters
def test_fail_next_and_counters(api: FakeAPIServer, core: client.CoreV1Api) -> None:
    seed(api)
    api.fail_next(2, 500, verb="list")
    for _ in range(2):
        with pytest.raises(ServiceException) as err:
            core.list_pod_for_all_namespaces()
        body = json.loads(err.value.body or "")
        assert (err.value.status, body["kind"], body["reason"]) == (500, "Status", "InternalError")
    assert names(core.list_node().items) == ["n1", "n2"]
    api.fail_next(1, 429, resource="pods")
    with pytest.raises(ApiException) as err429:
        core.list_namespaced_pod("prod", watch=True, _preload_content=False)
    assert err429.value.status == 429
    # urllib3's default Retry replays 413/429/503 answers that carry Retry-After.
    api.fail_next(1, 503, resource="pods", retry_after=0)
    assert names(core.list_namespaced_pod("prod").items) == ["api", "db"]
    assert api.counts[("list", "/api/v1/pods")] == 2
    assert api.request_count("list", resource="nodes") == 1
    assert api.request_count("watch", path="/api/v1/namespaces/prod/pods") == 1
    assert [r.status for r in api.requests] == [500, 500, 200, 429, 503, 200]


def test_store_semantics(api: FakeAPIServer) -> None:
    pod = api.create(o.pod("web"))
    rv = api.resource_version
    assert api.update(pod) == pod and api.resource_version == rv  # no-op: no new RV
    pod["metadata"]["labels"] = {"v": "2"}
    newer = api.update(pod)
    assert int(newer["metadata"]["resourceVersion"]) == int(rv) + 1
    assert newer["metadata"]["uid"] == pod["metadata"]["uid"]
    with pytest.raises(APIError) as err:
        api.update(pod)  # stale resourceVersion
    assert err.value.code == 409
    with pytest.raises(APIError):
        api.create(o.pod("web"))
    with pytest.raises(APIError) as err:
        api.create({"kind": "Pod", "metadata": {"name": "bad"}, "spec": {}})
    assert err.value.code == 422
    gone = api.delete("Pod", "default", "web")
    assert gone["metadata"]["resourceVersion"] == api.resource_version


def test_kubeconfig_path(
    api: FakeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    api.create(o.namespace("kube-system"))
    path = write_kubeconfig(api.url, tmp_path / "kubeconfig")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == api.url
    with client.ApiClient(cfg) as ac:
        assert names(client.CoreV1Api(ac).list_namespace().items) == ["kube-system"]
    with config.new_client_from_config(config_file=str(path)) as ac2:
        assert names(client.CoreV1Api(ac2).list_namespace().items) == ["kube-system"]


def test_stop_is_bounded_with_open_watch() -> None:
    api = FakeAPIServer()
    outcome: list[BaseException | None] = []

    def consume() -> None:
        with api_client(api.url) as ac:
            try:
                for _ in watch.Watch().stream(
                    client.CoreV1Api(ac).list_node, _request_timeout=SAFETY
                ):
                    pass
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    assert api.wait_for_watches(1, 2.0)
    start = time.monotonic()
    api.stop()
    assert time.monotonic() - start < 2.5  # below the 3 s read timeout: stop does not wait
    t.join(2.0)
    assert not t.is_alive() and outcome
    assert isinstance(outcome[0], urllib3.exceptions.ProtocolError), outcome
    api.stop()  # idempotent
