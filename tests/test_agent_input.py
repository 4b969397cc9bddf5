"""Sources -> agent -> builder, one way: the directory source emits validated model
objects (a delete is a Key), and the agent only puts and removes them."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path

import pytest

from policyc.errors import InputError
from policyc.kinds import Key, Kind
from policyc.model import Namespace, NetworkPolicy, Pod
from watcher.agent import Agent, CniAdd, Options
from watcher.sources.base import Emit, Event, EventType
from watcher.sources.directory import DirectorySource

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n"
POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: prod, labels: {app: %s}}\n"
    "spec: {nodeName: n1}\nstatus: {phase: Running, podIP: %s}\n"
)
DENY = (
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    "metadata: {name: deny, namespace: prod}\nspec: {podSelector: {}}\n"
)


class Idle:
    name = "idle"

    def run(self, emit: Emit, stop: threading.Event) -> None:
        stop.wait()

    def synced(self) -> bool:
        return True


def pod(name: str, ip: str = "", app: str = "a") -> Pod:
    ips = (ipaddress.ip_address(ip),) if ip else ()
    return Pod("prod", name, (("app", app),), "n1", ips)


def snapshot(kind: Kind, *objs: object, kept: tuple[Key, ...] = ()) -> Event:
    return Event(EventType.SNAPSHOT, kind, objects=tuple(objs), kept=kept)  # type: ignore[arg-type]


def test_agent_puts_and_removes() -> None:
    agent = Agent(Idle(), None, Options("n1"))
    c = agent.compiler
    agent.handle(snapshot(Kind.NAMESPACE, Namespace("prod")))
    agent.handle(snapshot(Kind.POD, pod("p1", "10.244.1.1"), pod("p2", "10.244.1.2")))
    assert c.keys(Kind.POD) == {"prod/p1", "prod/p2"} and c.keys(Kind.NAMESPACE) == {"prod"}
    agent.handle(Event(EventType.MODIFIED, Kind.POD, obj=pod("p1", "10.244.1.1", "b")))
    assert c.pods["prod/p1"].label_map == {"app": "b"}
    # A relist in which p1 did not validate: p1 is kept as it was, p2 is gone.
    agent.handle(snapshot(Kind.POD, kept=(Key(Kind.POD, "prod", "p1"),)))
    assert c.keys(Kind.POD) == {"prod/p1"} and c.pods["prod/p1"].label_map == {"app": "b"}
    agent.handle(Event(EventType.DELETED, Kind.POD, obj=Key(Kind.POD, "prod", "p1")))
    agent.handle(Event(EventType.DELETED, Kind.NAMESPACE, obj=Key(Kind.NAMESPACE, "", "prod")))
    assert c.keys(Kind.POD) == set() and c.keys(Kind.NAMESPACE) == set()
    assert agent.api_pods == {} and agent.pending


def test_cni_add_gives_a_pod_its_ips_until_it_is_deleted() -> None:
    agent = Agent(Idle(), None, Options("n1"))
    agent.handle(Event(EventType.ADDED, Kind.POD, obj=pod("new")))  # no IP in the API yet
    agent.handle(CniAdd("prod", "new", ("10.244.1.7",)))
    assert agent.compiler.pods["prod/new"].ips == (ipaddress.ip_address("10.244.1.7"),)
    agent.handle(Event(EventType.MODIFIED, Kind.POD, obj=pod("new", app="b")))
    assert agent.compiler.pods["prod/new"].ips == (ipaddress.ip_address("10.244.1.7"),)
    agent.handle(Event(EventType.DELETED, Kind.POD, obj=Key(Kind.POD, "prod", "new")))
    assert agent.cni_ips == {} and agent.compiler.keys(Kind.POD) == set()


def test_builder_put_rejects_other_values() -> None:
    agent = Agent(Idle(), None, Options("n1"))
    with pytest.raises(TypeError, match="not a policyc model object"):
        agent.compiler.put({"kind": "Pod"})  # type: ignore[arg-type]


def test_directory_source_emits_models_and_keys(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NS % "prod")
    (tmp_path / "pods.yaml").write_text(POD % ("p1", "a", "10.244.1.1"))
    (tmp_path / "bad.yaml").write_text(POD % ("p9", "a", "10.244.1.999"))
    src = DirectorySource(str(tmp_path), interval=3600)  # polled by hand below
    events: list[Event] = []
    stop = threading.Event()
    stop.set()  # run emits its snapshots and returns
    src.run(events.append, stop)
    assert [e.type for e in events] == [EventType.SNAPSHOT] * len(Kind)  # one per kind
    by_kind = {e.kind: e.objects for e in events}
    assert by_kind[Kind.POD] == (pod("p1", "10.244.1.1"),) and src.errors == 1
    assert by_kind[Kind.NAMESPACE] == (
        Namespace("prod", (("kubernetes.io/metadata.name", "prod"),)),
    )
    # Changes: a valid edit, a new policy, then a half-written file: its objects stay.
    (tmp_path / "pods.yaml").write_text(POD % ("p1", "b", "10.244.1.1"))
    (tmp_path / "pol.yaml").write_text(DENY)
    events.clear()
    assert src.poll()
    src._emit_changes(events.append, src.desired())
    assert [(e.type, e.kind) for e in events] == [
        (EventType.ADDED, Kind.NETWORK_POLICY),
        (EventType.MODIFIED, Kind.POD),
    ]
    assert isinstance(events[0].obj, NetworkPolicy) and events[1].obj == pod(
        "p1", "10.244.1.1", "b"
    )
    (tmp_path / "pods.yaml").write_text(POD % ("p1", "c", "nope"))
    events.clear()
    assert src.poll()
    src._emit_changes(events.append, src.desired())
    assert events == [] and src.errors == 2
    (tmp_path / "pods.yaml").unlink()
    assert src.poll()
    src._emit_changes(events.append, src.desired())
    assert [(e.type, e.obj) for e in events] == [(EventType.DELETED, Key(Kind.POD, "prod", "p1"))]


def test_directory_source_keeps_objects_while_the_folder_is_gone(tmp_path: Path) -> None:
    """Trial: a folder that is missing (unmounted, moved, mistyped) read as an
    empty state, so every pod's port went to the fail-closed drop."""
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "pods.yaml").write_text(NS % "prod" + "---\n" + POD % ("p1", "a", "10.244.1.1"))
    src = DirectorySource(str(folder), interval=3600)
    assert src.poll() and Key(Kind.POD, "prod", "p1") in src.desired()
    folder.rename(tmp_path / "moved")
    assert not src.poll() and Key(Kind.POD, "prod", "p1") in src.desired()
    (tmp_path / "moved").rename(folder)
    (folder / "pods.yaml").unlink()
    assert src.poll() and src.desired() == {}


def test_watch_refuses_a_source_folder_that_does_not_exist(tmp_path: Path) -> None:
    from watcher.main import make_source

    with pytest.raises(InputError, match="not a directory"):  # exit 2 through main()
        make_source(f"dir:{tmp_path / 'missing'}", None)
    assert isinstance(make_source(f"dir:{tmp_path}", None), DirectorySource)
