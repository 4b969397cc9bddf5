"""The Kubernetes API source, driven by the real, unpatched ``kubernetes`` client against the
loopback fake API server (list/watch protocol: resourceVersion, chunked watch streams,
BOOKMARK, 410 Gone, dropped connections, injected failures).

Disconnections that must last while the test changes the cluster are held open with an
injected 503 carrying ``Retry-After: 1``: the source honours it, which gives the test a full
second (instead of a race against a backoff of milliseconds) to make its changes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policyc.kinds import Key, Kind, Model
from policyc.load import RawObject
from policyc.model import NetworkPolicy, Pod
from policyc.parse import read_one
from tests.fakeapi import FakeAPIServer, api_client, write_kubeconfig
from tests.fakeapi import objects as o
from watcher.sources.base import Event, EventType
from watcher.sources.k8s import KubernetesSource
from watcher.sources.k8s_watch import KIND_SPECS, backoff_delay

N_KINDS = len(KIND_SPECS)  # one list and one watch per kind
FAST: dict[str, Any] = {"backoff": (0.05, 0.3), "watch_timeout": 30}


@pytest.fixture
def api() -> Iterator[FakeAPIServer]:
    with FakeAPIServer(bookmark_interval=0) as server:
        yield server


class Running:
    """``source.run`` on a thread, recording every emitted Event and the emitting thread."""

    def __init__(self, source: KubernetesSource) -> None:
        self.source = source
        self.events: list[Event] = []
        self.emit_threads: set[int] = set()
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.source.run(self._emit, self.stop)
        except BaseException as exc:  # run must never raise: reported by close()
            self.error = exc

    def _emit(self, ev: Event) -> None:
        with self.cond:
            self.events.append(ev)
            self.emit_threads.add(threading.get_ident())
            self.cond.notify_all()

    def wait(self, pred: Callable[[list[Event]], bool], timeout: float = 15.0) -> list[Event]:
        """Wait until ``pred(events)``; it is polled, as it may also read the source's state."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; events={self.events}"
                self.cond.wait(min(left, 0.02))
            return list(self.events)

    def wait_synced(self, timeout: float = 15.0) -> list[Event]:
        return self.wait(lambda _: self.source.synced(), timeout)

    def of(self, kind: str) -> list[Event]:
        with self.cond:
            return [e for e in self.events if e.kind == kind]

    def close(self) -> float:
        """Set ``stop``; returns how long ``run`` took to return."""
        start = time.monotonic()
        self.stop.set()
        self.thread.join(5.0)
        took = time.monotonic() - start
        assert not self.thread.is_alive(), "run did not return"
        assert self.error is None, repr(self.error)
        return took


@pytest.fixture
def start(api: FakeAPIServer) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def starter(source: KubernetesSource | None = None, **kwargs: Any) -> Running:
        src = source or KubernetesSource(api_client(api.url), **{**FAST, **kwargs})
        r = Running(src)
        running.append(r)
        return r

    yield starter
    for r in running:
        if not r.stop.is_set():
            r.close()
        r.source.api_client.close()


def seed(api: FakeAPIServer) -> None:
    for ns in ("default", "prod"):
        api.create(o.namespace(ns, {"team": ns}))
    api.create(o.node("n1", internal_ip="192.0.2.1", pod_cidrs=["10.1.0.0/24"]))
    api.create(o.node("n2", internal_ip="192.0.2.2", pod_cidrs=["10.2.0.0/24"]))
    for i, (ns, node) in enumerate(
        [("default", "n1"), ("default", "n2"), ("prod", "n1"), ("prod", "n2"), ("prod", "n2")]
    ):
        api.create(o.pod(f"p{i}", ns, node=node, labels={"app": f"a{i}"}, ip=f"10.9.0.{i}"))
    api.create(o.network_policy("deny", "prod", egress=[{}]))
    api.create(
        o.network_policy(
            "web",
            "default",
            pod_selector={"matchLabels": {"app": "a0"}},
            ingress=[{"from": [o.peer(cidr="10.0.0.0/8")], "ports": [o.port("http")]}],
        )
    )


def model(obj: dict[str, Any]) -> Model:
    """What the source makes of one API object: the validated model object."""
    out = read_one(RawObject(obj, "<test>"))
    assert out is not None
    return out


def models(api: FakeAPIServer, kind: str) -> list[Model]:
    """The model objects of every ``kind`` object the API holds, in the API's order."""
    return [model(obj) for obj in api.objects(kind)]


def pod_key(ns: str, name: str) -> Key:
    return Key(Kind.POD, ns, name)


def snapshots(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind and e.type is EventType.SNAPSHOT]


def changes(events: list[Event], kind: str) -> list[tuple[str, str]]:
    """(type, name) of the non-SNAPSHOT events of ``kind``."""
    return [
        (e.type.value, e.obj.name)
        for e in events
        if e.kind == kind and e.type is not EventType.SNAPSHOT and e.obj is not None
    ]


def watch_rvs(api: FakeAPIServer, resource: str) -> list[str | None]:
    return [
        r.query.get("resourceVersion")
        for r in api.requests
        if r.verb == "watch" and r.resource == resource
    ]


def loops_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("policyc-k8s-")]


def hold_pod_watch_down(api: FakeAPIServer) -> None:
    """Cut every watch; the pods watch's next attempt gets 503 + Retry-After: 1 and is
    therefore down for a second.  Returns once that failed attempt was made and the other
    kinds' watches are back."""
    before = api.request_count("watch", resource="pods")
    api.fail_next(1, 503, verb="watch", resource="pods", retry_after=1)
    assert api.drop_watches() == N_KINDS
    assert api.wait_for_requests(before + 1, "watch", resource="pods", timeout=3.0)
    assert api.wait_for_watches(N_KINDS - 1, timeout=3.0)


# ------------------------------------------------------------------- tests
def test_initial_list_paginated_snapshots(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start(page_size=2, node_name="n1")
    events = run.wait_synced()
    assert len(events) == N_KINDS and all(e.type is EventType.SNAPSHOT for e in events)
    assert sorted(e.kind for e in events) == sorted(spec.kind for spec in KIND_SPECS)
    for ev in events:
        # Exactly the API's objects, validated, all pods of all nodes.
        assert list(ev.objects) == models(api, ev.kind), ev.kind
        assert ev.kept == ()
    pods = snapshots(events, "Pod")[0]
    assert len(pods.objects) == 5 and pods.origin == "/api/v1/pods"
    assert all(isinstance(p, Pod) for p in pods.objects)
    np = snapshots(events, "NetworkPolicy")[0].objects[0]
    assert isinstance(np, NetworkPolicy) and np.key == "default/web"
    lists = [r for r in api.requests if r.verb == "list" and r.resource == "pods"]
    assert len(lists) == 3  # 5 pods, 2 a page
    assert [r.query.get("limit") for r in lists] == ["2", "2", "2"]
    assert "continue" not in lists[0].query and all("continue" in r.query for r in lists[1:])
    # Each watch starts at its list's resourceVersion, with bookmarks and a timeout.
    assert api.wait_for_watches(N_KINDS)
    watches = [r for r in api.requests if r.verb == "watch"]
    assert {r.query["resourceVersion"] for r in watches} == {api.resource_version}
    assert all(
        r.query["allowWatchBookmarks"] == "true" and r.query["timeoutSeconds"] == "30"
        for r in watches
    )
    assert run.source.stats["lists"] == N_KINDS and run.source.stats["relists"] == 0
    assert len(run.emit_threads) == 1
    run.close()


def test_changes_arrive_in_order_after_snapshot(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start(node_name="n1")
    run.wait_synced()
    assert api.wait_for_watches(N_KINDS)
    added = api.create(o.pod("new", "default", node="elsewhere", labels={"app": "x"}))
    mod = api.upsert(o.pod("new", "default", node="elsewhere", labels={"app": "y"}))
    api.create(o.namespace("staging"))
    gone = api.delete("Pod", "default", "new")
    api.delete("NetworkPolicy", "prod", "deny")
    events = run.wait(lambda ev: len(ev) >= N_KINDS + 5)
    assert changes(events, "Pod") == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]
    pod_events = [e for e in events if e.kind == "Pod"]
    assert pod_events[0].type is EventType.SNAPSHOT
    assert [e.obj for e in pod_events[1:]] == [model(added), model(mod), pod_key("default", "new")]
    assert isinstance(pod_events[2].obj, Pod) and pod_events[2].obj.label_map == {"app": "y"}
    assert changes(events, "Namespace") == [("ADDED", "staging")]
    assert changes(events, "NetworkPolicy") == [("DELETED", "deny")]
    assert run.source.resource_versions()["Pod"] == gone["metadata"]["resourceVersion"]
    assert run.source.stats["events"] == 5 and run.source.stats["errors"] == 0
    assert len(run.emit_threads) == 1 and run.emit_threads != {threading.get_ident()}
    run.close()


def test_bookmark_advances_rv_and_saves_a_relist(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start()
    run.wait_synced()
    assert api.wait_for_watches(N_KINDS)
    list_rv = api.resource_version
    for i in range(3):  # other kinds move the global resourceVersion; pods do not change
        api.create(o.namespace(f"ns{i}"))
    bookmark_rv = api.resource_version
    assert int(bookmark_rv) > int(list_rv)
    assert api.send_bookmark() == N_KINDS
    # The Namespace reflector already holds bookmark_rv from its ADDED events:
    # wait for every bookmark too, not only for the resourceVersions.
    run.wait(
        lambda _: (
            set(run.source.resource_versions().values()) == {bookmark_rv}
            and run.source.stats["bookmarks"] >= N_KINDS
        )
    )
    assert run.source.stats["bookmarks"] == N_KINDS
    # History before the bookmark is gone: resuming from the list's RV would be a 410.
    api.compact()
    api.drop_watches()
    assert api.wait_for_requests(2 * N_KINDS, "watch", timeout=3.0)
    assert api.wait_for_watches(N_KINDS)
    assert watch_rvs(api, "pods") == [list_rv, bookmark_rv]
    assert watch_rvs(api, "nodes") == [list_rv, bookmark_rv]
    api.create(o.pod("late", "prod"))
    events = run.wait(lambda ev: ("ADDED", "late") in changes(ev, "Pod"))
    assert len([e for e in events if e.type is EventType.SNAPSHOT]) == N_KINDS  # no relist
    assert run.source.stats["relists"] == 0
    assert api.request_count("list") == N_KINDS
    run.close()


def test_410_relists_with_changes_made_while_disconnected(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start()
    run.wait_synced()
    assert api.wait_for_watches(N_KINDS)
    list_rv = api.resource_version
    hold_pod_watch_down(api)
    # While the pods watch is down: a deletion, a change, an addition, then compaction.
    api.delete("Pod", "default", "p0")
    api.upsert(o.pod("p1", "default", node="n2", labels={"app": "changed"}, ip="10.9.0.1"))
    api.create(o.pod("p9", "prod", node="n1", ip="10.9.0.99"))
    api.compact()
    events = run.wait(lambda ev: len(snapshots(ev, "Pod")) == 2, timeout=5.0)
    relist = snapshots(events, "Pod")[1]
    assert list(relist.objects) == models(api, "Pod")
    names = [p.name for p in relist.objects]
    assert "p0" not in names and "p9" in names
    labels = {p.name: p.label_map for p in relist.objects if isinstance(p, Pod)}
    assert labels["p1"] == {"app": "changed"}
    # Nothing else reached the consumer meanwhile: it kept its last state until the relist.
    assert changes(events, "Pod") == []
    assert run.source.stats["relists"] == 1
    # The watch that got 410 resumed from the old RV; the next starts at the relist's RV.
    assert api.wait_for_watches(N_KINDS)
    rvs = watch_rvs(api, "pods")
    assert rvs[:3] == [list_rv, list_rv, list_rv] and rvs[-1] == api.resource_version
    statuses = [r.status for r in api.requests if r.resource == "pods"]
    assert statuses.count(503) == 1
    api.delete("Pod", "prod", "p9")
    events = run.wait(lambda ev: changes(ev, "Pod") == [("DELETED", "p9")])
    assert len(snapshots(events, "Pod")) == 2
    run.close()


def test_dropped_connection_resumes_with_exactly_the_missed_events(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start()
    run.wait_synced()
    assert api.wait_for_watches(N_KINDS)
    api.create(o.pod("before", "default"))
    run.wait(lambda ev: changes(ev, "Pod") == [("ADDED", "before")])
    last_rv = run.source.resource_versions()["Pod"]
    assert last_rv == api.resource_version
    hold_pod_watch_down(api)
    missed = [
        api.create(o.pod("during", "prod", node="n9")),
        api.upsert(o.pod("during", "prod", node="n9", labels={"v": "2"})),
        api.delete("Pod", "prod", "p2"),
    ]
    events = run.wait(lambda ev: len(changes(ev, "Pod")) == 4, timeout=5.0)
    time.sleep(0.2)  # nothing more may follow
    events = run.of("Pod")
    assert [e.type for e in events] == [
        EventType.SNAPSHOT,
        EventType.ADDED,
        EventType.ADDED,
        EventType.MODIFIED,
        EventType.DELETED,
    ]
    assert [e.obj for e in events[2:]] == [*map(model, missed[:2]), pod_key("prod", "p2")]
    rvs = watch_rvs(api, "pods")
    assert rvs[-2:] == [last_rv, last_rv]  # the 503, then the resumed watch
    assert run.source.stats["relists"] == 0 and api.request_count("list") == N_KINDS
    assert run.source.stats["errors"] >= 2  # the cut and the 503
    run.close()


def test_list_failures_back_off_then_succeed(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    api.fail_next(3, 500, verb="list", resource="pods")
    t0 = time.monotonic()
    run = start(backoff=(0.1, 1.0))
    run.wait_synced()
    took = time.monotonic() - t0
    # Backoff before the 2nd, 3rd and 4th attempt: at least 0.05 + 0.1 + 0.2 seconds.
    assert took >= 0.35
    assert [r.status for r in api.requests if r.resource == "pods" and r.verb == "list"] == [
        500,
        500,
        500,
        200,
    ]
    events = run.wait(lambda ev: len(ev) == N_KINDS)
    assert [e.kind for e in events][-1] == "Pod"  # the other kinds did not wait for pods
    assert list(events[-1].objects) == models(api, "Pod")
    assert run.source.stats["errors"] == 3 and run.source.stats["lists"] == N_KINDS
    run.close()


def test_stop_is_prompt_when_idle_and_while_backing_off(
    api: FakeAPIServer, start: Callable[..., Running]
) -> None:
    seed(api)
    run = start(watch_timeout=300)
    run.wait_synced()
    assert api.wait_for_watches(N_KINDS)
    assert run.close() < 1.0
    assert loops_alive() == []  # every list/watch loop has ended, not just ``run``
    api.fail_next(1000, 503, verb="list")
    slow = start(backoff=(5.0, 5.0))
    assert api.wait_for_requests(8, "list", timeout=3.0)  # 4 old lists + 4 failing now
    time.sleep(0.1)
    assert slow.close() < 1.0
    assert slow.events == [] and not slow.source.synced() and loops_alive() == []


def test_unreachable_api_never_raises_and_stops_promptly(start: Callable[..., Running]) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    run = start(KubernetesSource(api_client(url), **FAST))
    run.wait(lambda _: run.source.stats["errors"] >= 8, timeout=5.0)
    assert run.events == [] and not run.source.synced()
    assert run.close() < 1.0


def test_emit_failure_resyncs_the_kind(api: FakeAPIServer) -> None:
    seed(api)
    src = KubernetesSource(api_client(api.url), **FAST)
    got: list[Event] = []
    failed = threading.Event()

    def emit(ev: Event) -> None:
        if ev.type is EventType.ADDED and not failed.is_set():
            failed.set()
            raise RuntimeError("consumer hiccup")
        got.append(ev)

    stop = threading.Event()
    t = threading.Thread(target=src.run, args=(emit, stop), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 5.0
        while not src.synced() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert api.wait_for_watches(N_KINDS)
        api.create(o.pod("lost", "default"))
        while len(snapshots(got, "Pod")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        relist = snapshots(got, "Pod")[-1]
        assert "lost" in [p.name for p in relist.objects]
        assert src.stats["relists"] == 1 and src.stats["errors"] == 1
    finally:
        stop.set()
        t.join(3.0)
        src.api_client.close()
    assert not t.is_alive()


def test_kubeconfig(
    api: FakeAPIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: Callable[..., Running],
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a cluster
    seed(api)
    path = write_kubeconfig(api.url, tmp_path / "kubeconfig")
    explicit = KubernetesSource(kubeconfig=str(path), **FAST)
    assert explicit.host == api.url and explicit.config_origin == f"kubeconfig:{path}"
    monkeypatch.setenv("KUBECONFIG", str(path))
    fallback = KubernetesSource.from_config(page_size=3, **FAST)  # in-cluster fails first
    assert fallback.host == api.url and fallback.settings.page_size == 3
    for src in (explicit, fallback):
        run = start(src)
        events = run.wait_synced()
        assert [list(e.objects) for e in events if e.kind == "Pod"] == [models(api, "Pod")]
        run.close()


def test_backoff_delay_bounds() -> None:
    for failures, hi in [(1, 0.2), (2, 0.4), (3, 0.8), (6, 5.0), (30, 5.0)]:
        for _ in range(20):
            assert hi / 2 <= backoff_delay(failures, (0.2, 5.0)) <= hi
    assert backoff_delay(1, (0.2, 5.0), retry_after=3) == 3
    assert backoff_delay(1, (0.2, 5.0), retry_after=3600) == 60


def test_invalid_objects_are_skipped_and_kept(
    api: FakeAPIServer, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    """An object the API server took but policyc rejects is logged with its location and
    skipped: no event for it, no delete either; a SNAPSHOT names it in ``kept``."""
    seed(api)
    api.create(o.pod("bad", "default", node="n1", ip="10.9.0.999"))
    run = start()
    events = run.wait_synced()
    pods = snapshots(events, "Pod")[0]
    assert "bad" not in [p.name for p in pods.objects] and len(pods.objects) == 5
    assert pods.kept == (pod_key("default", "bad"),)
    assert "/api/v1/pods:1:1: Pod default/bad: status.podIPs[0].ip: must be" in caplog.text
    assert api.wait_for_watches(N_KINDS)
    good = api.upsert(o.pod("bad", "default", node="n1", ip="10.9.0.9"))
    api.upsert(o.pod("bad", "default", node="n1", ip="not-an-ip"))  # skipped
    api.upsert(o.network_policy("web", "default", ingress=[{"ports": [o.port(70000)]}]))
    gone = api.delete("Pod", "default", "bad")
    # The policy comes on its own watch: wait for both kinds.
    events = run.wait(
        lambda ev: ("DELETED", "bad") in changes(ev, "Pod") and run.source.stats["invalid"] == 3
    )
    pod_changes = [e.obj for e in events if e.kind == "Pod" and e.type is not EventType.SNAPSHOT]
    assert pod_changes == [model(good), pod_key("default", "bad")]
    assert gone["metadata"]["name"] == "bad"
    assert changes(run.events, "NetworkPolicy") == []
    assert run.source.stats["invalid"] == 3 and run.source.stats["events"] == 4
    assert "NetworkPolicy default/web: spec.ingress[0].ports[0].port" in caplog.text
    run.close()


def test_finished_pod_is_a_delete(api: FakeAPIServer, start: Callable[..., Running]) -> None:
    """A pod that has Succeeded or Failed leaves the snapshot and, on a watch, is deleted:
    its IPs may already belong to another pod."""
    seed(api)
    api.create(o.pod("done", "prod", node="n1", ip="10.9.0.50", phase="Succeeded"))
    run = start()
    events = run.wait_synced()
    pods = snapshots(events, "Pod")[0]
    assert "done" not in [p.name for p in pods.objects] and pods.kept == ()
    assert api.wait_for_watches(N_KINDS)
    api.upsert(o.pod("p2", "prod", node="n1", ip="10.9.0.2", phase="Failed"))
    events = run.wait(lambda ev: changes(ev, "Pod") == [("DELETED", "p2")])
    assert events[-1].obj == pod_key("prod", "p2") and events[-1].type is EventType.DELETED
    run.close()
