"""Faults of the node agent, on the two-node topology, with real packets:

* an apply that fails (``tests.support.faulty``) is retried with backoff while
  the previous rules stay in force; /readyz reports it; then it recovers;
* SIGTERM leaves rules and routes in place (fail safe); ``--cleanup`` removes them;
* kill -9 at random moments of a stream of policy and pod changes (and during
  start-up) always leaves one complete ruleset: the tables equal what
  ``policyc compile`` makes of one of the states written since the last
  convergence, no cell denied by all of them is open, and a restarted agent
  converges;
* drift (a rule and a set element deleted behind the agent's back) is repaired
  by the periodic resync, and ``policyc_repairs_total`` counts it;
* an agent restarted on a node converges without losing one packet of
  allowed flows whose policy did not change;
* an invalid file in the source folder keeps the previous policy in force.
"""

from __future__ import annotations

import random
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from tests.support.figures import STATS
from tests.support.scenarios import labels, nss, pods, pol, port
from tests.support.world import ROOT

from .kernelcheck import require_kernel
from .nsutil import in_netns
from .twonode import (
    Cell,
    Node,
    NodeAgent,
    Obj,
    TwoNode,
    kernel_tables,
    median,
    record_figures,
    reference_tables,
    table_diff,
)

FIGURES: dict[str, object] = {}

DENY_X = pol("x", "default-deny", types=["Ingress"])
ALLOW_X_FROM_Y = pol("x", "from-y", labels(pod="a"), ingress=[{"from": [nss(ns="y")]}])


@pytest.fixture(scope="module")
def cluster() -> Iterator[TwoNode]:
    require_kernel()
    with TwoNode() as c:
        c.start_agents()
        n1, n2 = c.nodes
        for node, ns, name in ((n1, "x", "a"), (n1, "y", "a"), (n2, "x", "b"), (n2, "z", "b")):
            c.add_pod(node, ns, name, wait_known=True)
        yield c
        FIGURES.setdefault("module", "done")
        record_figures("faults", {k: v for k, v in FIGURES.items() if k != "module"})


def restart(
    c: TwoNode,
    policies: Sequence[Obj],
    *extra: str,
    env: dict[str, str] | None = None,
    cmd: tuple[str, ...] | None = None,
) -> tuple[NodeAgent, NodeAgent]:
    """Kill the agents, reset the folder to the base pods and ``policies``, start
    fresh agents and wait until the matrix matches."""
    c.kill_agents()
    for key in [k for k in c.objects if k[0] == "NetworkPolicy"]:
        c.remove(*key)
    for rec in c.pods.values():
        if rec.labels != {"pod": rec.pod.name}:
            c.relabel(rec.pod.key, {"pod": rec.pod.name})
    c.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"ns": "x"}}}
    )
    for p in policies:
        c.put_policy(p)
    agents = [c.agent(n, *extra, env=env, cmd=cmd).start(wait_ready=False) for n in c.nodes]
    for a in agents:
        a.wait_ready()
    enforced(c, time.monotonic(), "restart")
    return agents[0], agents[1]


def enforced(
    c: TwoNode, t0: float, what: str, limit: float = 2.0, cells: Sequence[Cell] | None = None
) -> float:
    took, wrong = c.wait_enforced(t0, cells, limit=limit)
    assert not wrong, (
        f"{what}: not enforced within {limit}s:\n" + "\n".join(wrong[:30]) + (c.dump_state())
    )
    return took


def same_matrix(
    c: TwoNode, objects: Sequence[Obj], what: str, cells: Sequence[Cell] | None = None
) -> None:
    """Probe now (one round, retried once for a lost datagram) against ``objects``."""
    cells = c.cells() if cells is None else cells
    exp = c.expected(cells, objects)
    wrong: list[str] = []
    for _ in range(2):
        wrong = c.diff(exp, c.probe(cells, 0.3))
        if not wrong:
            return
    raise AssertionError(f"{what}:\n" + "\n".join(wrong[:30]) + c.dump_state())


# -- (a) apply failure ---------------------------------------------------------
def test_failed_apply_keeps_old_rules_and_retries_with_backoff(cluster: TwoNode) -> None:
    c = cluster
    fault = c.tmp / "fault-apply"
    # The agent runs through the test-only wrapper whose backend's apply fails
    # while ``fault`` exists; production code keeps no fault switch.
    faulty = (sys.executable, "-m", "tests.support.faulty", str(fault))
    a1, a2 = restart(c, [DENY_X], env={"PYTHONPATH": str(ROOT)}, cmd=faulty)
    old = list(c.objects.values())
    err = 'policyc_errors_total{stage="apply"}'
    before = [a.metric(err) for a in (a1, a2)]
    fault.write_text("fail\n")
    c.put_policy(ALLOW_X_FROM_Y)  # the change that cannot be applied
    time.sleep(1.5)
    # the previous rules stay in force, the agents say why they are not ready
    same_matrix(c, old, "old policy not in force while applies fail")
    after = [a.metric(err) for a in (a1, a2)]
    assert all(n >= b + 3 for n, b in zip(after, before, strict=True)), (
        before,
        after,
    )  # ~0.1+0.2+0.4+0.8
    assert all(a.get("/readyz")[0] == 503 for a in (a1, a2))
    assert "apply failed, previous rules stay in force" in a1.logs()
    time.sleep(0.5)
    slow = [a.metric(err) for a in (a1, a2)]
    assert all(s - n <= 2 for s, n in zip(slow, after, strict=True)), "no backoff"
    t0 = time.monotonic()
    fault.unlink()
    took = enforced(c, t0, "after the fault cleared", limit=6.0)
    assert all(a.get("/readyz")[0] == 200 for a in (a1, a2))
    FIGURES["apply_fault_failures"] = [int(s - b) for s, b in zip(slow, before, strict=True)]
    FIGURES["apply_fault_recovery_ms"] = round(took * 1000, 1)
    STATS["watch_fault_recovery_ms"] = round(took * 1000)
    print(
        f"\napply failures {FIGURES['apply_fault_failures']} in 2 s; "
        f"enforced {took * 1000:.0f} ms after the fault cleared"
    )


# -- (b) SIGTERM -------------------------------------------------------------------
def test_sigterm_leaves_rules_cleanup_removes_them(cluster: TwoNode) -> None:
    c = cluster
    a1, a2 = restart(c, [DENY_X])
    objs = list(c.objects.values())
    for a in (a1, a2):
        assert a.stop(signal.SIGTERM) == 0
        assert "rules left in place" in a.logs()
    for n in c.nodes:
        assert {"table inet policyc", "table bridge policyc"} <= c.tables(n)
        assert c.routes201(n) == c.wanted_routes(n)
    same_matrix(c, objs, "rules gone after SIGTERM")  # still filtered, still routed

    a1, a2 = restart(c, [DENY_X], "--cleanup")
    for a in (a1, a2):
        assert a.stop(signal.SIGTERM) == 0
        assert "rules removed (--cleanup)" in a.logs()
    for n in c.nodes:
        assert not any("policyc" in t for t in c.tables(n)), c.tables(n)
        assert c.routes201(n) == set()
    # nothing filters any more: a cell the policy denies is open on the same node
    xa, ya = c.pods["x/a"].pod, c.pods["y/a"].pod
    assert c.probe([(4, (ya, xa, "tcp", 80))], 0.5) == {(4, (ya, xa, "tcp", 80)): True}


# -- (c) kill -9 -------------------------------------------------------------------
POLICY_VARIANTS: list[Obj | None] = [
    None,
    DENY_X,
    pol("x", "default-deny", types=["Ingress", "Egress"]),
]
ALLOW_VARIANTS: list[Obj | None] = [
    None,
    ALLOW_X_FROM_Y,
    pol("x", "from-y", labels(pod="a"), ingress=[{"from": [pods(pod="b")], "ports": [port(81)]}]),
]
LABELS = [{"pod": "a"}, {"pod": "a", "tier": "db"}, {"pod": "b"}]


def test_kill9_at_random_moments_leaves_a_consistent_ruleset(cluster: TwoNode) -> None:
    c = cluster
    rnd = random.Random(9)
    n1 = c.nodes[0]
    a1, _ = restart(c, [])
    refs: dict[tuple[int, ...], list[Obj]] = {}
    state = [0, 0, 0]

    def world() -> list[Obj]:
        return [dict(o) for o in c.objects.values()]

    def ref(key: tuple[int, ...], objs: list[Obj]) -> list[Obj]:
        if key not in refs:
            refs[key] = reference_tables(c, n1, objs)
        return refs[key]

    def step() -> None:
        which = rnd.randrange(3)
        state[which] = (state[which] + rnd.randrange(1, 3)) % 3
        if which == 0:
            p = POLICY_VARIANTS[state[0]]
            c.put_policy(p) if p else c.remove_policy("x", "default-deny")
        elif which == 1:
            p = ALLOW_VARIANTS[state[1]]
            c.put_policy(p) if p else c.remove_policy("x", "from-y")
        else:
            c.relabel("x/a", LABELS[state[2]])  # a pod change on the killed node

    kills = 0
    outcomes: dict[str, int] = {"oldest": 0, "intermediate": 0, "newest": 0}
    cells4 = c.cells(families=(4,))
    restart_ms: list[float] = []
    for rnd_i in range(12):
        # candidates: every state from the last convergence to the kill
        candidates = [(tuple(state), world())]
        during_start = rnd_i >= 9  # the last rounds kill the agent while it starts
        if during_start:
            a1.kill9()  # the converged agent goes; changes land while none runs
            for _ in range(rnd.randrange(1, 3)):
                step()
                candidates.append((tuple(state), world()))
            a1 = c.agent(n1).start(wait_ready=False)
            time.sleep(rnd.uniform(0.2, 1.2))
            a1.kill9()
        else:
            kill_at = time.monotonic() + rnd.uniform(0.0, 0.3)
            while time.monotonic() < kill_at:
                step()
                candidates.append((tuple(state), world()))
                time.sleep(min(rnd.uniform(0.0, 0.08), max(0.0, kill_at - time.monotonic())))
            a1.kill9()
        kills += 1
        # one complete state: the tables equal one written state's compiled tables
        have = kernel_tables(c, n1)
        assert not any("missing" in item for item in have), have
        matches = [i for i, (k, objs) in enumerate(candidates) if have == ref(k, objs)]
        assert matches, "ruleset after kill -9 is none of the states:\n" + "\n".join(
            table_diff(have, ref(*candidates[-1]))
        )
        i = matches[-1]
        outcomes[
            "newest" if i == len(candidates) - 1 else "oldest" if i == 0 else "intermediate"
        ] += 1
        # real packets: never open where every candidate state denies
        exps = [c.expected(cells4, objs) for _, objs in candidates]
        got = c.probe(cells4, 0.3)
        opened = [cell for cell in cells4 if got[cell] and not any(e[cell] for e in exps)]
        assert not opened, f"open after kill -9 although denied by every state: {opened[:5]}"
        # restart: converges to the newest state
        if rnd_i % 2:
            step()  # and a change made while the agent was down
        t0 = time.monotonic()
        a1 = c.agent(n1).start()
        restart_ms.append((time.monotonic() - t0) * 1000)
        enforced(c, time.monotonic(), f"restart after kill {kills}")
        d = table_diff(kernel_tables(c, n1), reference_tables(c, n1, world()))
        assert not d, "restarted agent did not converge:\n" + "\n".join(d)
    FIGURES["kill9"] = {
        "kills": kills,
        **outcomes,
        "restart_to_ready_ms_median": round(median(restart_ms), 1),
    }
    STATS["watch_kill9_kills"] = kills
    print(
        f"\nkill -9: {kills} kills, ruleset found in state {outcomes}, restart to ready "
        f"median {median(restart_ms):.0f} ms"
    )


# -- (d) drift -------------------------------------------------------------------
def _handle(c: TwoNode, node: Node, comment: str) -> tuple[str, int]:
    """The (chain, handle) of the rule whose comment holds ``comment``: the
    rule sits in a group chain named by a hash (docs/dataplane.md)."""
    out = c.node_exec(node, "nft", "-a", "list", "table", "inet", "policyc").stdout
    chain = ""
    for line in out.splitlines():
        if line.strip().startswith("chain "):
            chain = line.split()[1]
        if comment in line and "# handle" in line:
            return chain, int(line.rsplit("# handle", 1)[1])
    raise AssertionError(f"no rule {comment!r}:\n{out}")


def test_resync_repairs_deleted_rule_and_set_element(cluster: TwoNode) -> None:
    c = cluster
    n1 = c.nodes[0]
    a1, _ = restart(c, [DENY_X, ALLOW_X_FROM_Y])
    want = reference_tables(c, n1, c.objects.values())
    assert kernel_tables(c, n1) == want
    before = a1.metric("policyc_repairs_total")
    ya = c.pods["y/a"].pod
    # behind the agent's back: the allow rule goes, and y/a's anti-spoof element
    chain, handle = _handle(c, n1, "x/from-y ingress[0]")
    script = (
        f"delete rule inet policyc {chain} handle {handle}\n"
        f'delete element bridge policyc spoof4 {{ "{ya.iface}" . {ya.ip4} }}\n'
    )
    c.node_exec(n1, "nft", "-f", "-", input=script)  # fails if either is missing
    t0 = time.monotonic()
    # (no "is it broken now" probe: the 1 s resync may already have repaired it)
    while kernel_tables(c, n1) != want:
        assert time.monotonic() - t0 < 15.0, "drift not repaired:\n" + "\n".join(
            table_diff(kernel_tables(c, n1), want)
        )
        time.sleep(0.05)
    took = time.monotonic() - t0
    enforced(c, t0, "after the repair")
    assert a1.metric("policyc_repairs_total") >= before + 1
    FIGURES["drift_repair_ms"] = round(took * 1000, 1)
    print(f"\ndrift repaired after {took * 1000:.0f} ms (resync interval 1 s)")


# -- (e) restart without loss ------------------------------------------------------
class UdpStream:
    """Datagrams every 4 ms from one pod to another's UDP echo server; counts echoes."""

    def __init__(self, src_netns: str, dst: str, port_: int = 80) -> None:
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
        with in_netns(src_netns):
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.connect((dst, port_))
        self.sock.settimeout(0.05)
        self.sent = 0
        self.got: set[int] = set()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._recv, daemon=True),
        ]

    def _send(self) -> None:
        while not self.stop.is_set():
            try:
                self.sock.send(struct.pack("!I", self.sent))
            except OSError:
                pass  # e.g. an ICMP error reported on the connected socket: counted as lost
            self.sent += 1
            time.sleep(0.004)

    def _recv(self) -> None:
        deadline = None
        while deadline is None or time.monotonic() < deadline:
            if deadline is None and self.stop.is_set():
                deadline = time.monotonic() + 0.3  # the last echoes
            try:
                data = self.sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                continue
            if len(data) == 4:
                self.got.add(struct.unpack("!I", data)[0])

    def start(self) -> UdpStream:
        for t in self.threads:
            t.start()
        return self

    def finish(self) -> tuple[int, int]:
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join()
        self.sock.close()
        return self.sent, self.sent - len(self.got)


def test_restart_converges_without_dropping_unchanged_flows(cluster: TwoNode) -> None:
    c = cluster
    n1, n2 = c.nodes
    a1, a2 = restart(c, [DENY_X, ALLOW_X_FROM_Y])
    xa, ya, zb = (c.pods[k].pod for k in ("x/a", "y/a", "z/b"))
    assert ya.ip6 is not None and xa.ip6 is not None
    z_open = pol("x", "from-z", labels(pod="a"), ingress=[{"from": [nss(ns="z")]}])
    streams = [
        UdpStream(ya.netns, xa.ip4).start(),  # same node, allowed by x/from-y
        UdpStream(ya.netns, xa.ip6).start(),
    ]
    try:
        time.sleep(0.3)
        # agent A (node-1) goes with SIGTERM; meanwhile a policy for other flows changes
        assert a1.stop(signal.SIGTERM) == 0, a1.logs()
        c.put_policy(z_open)
        time.sleep(0.2)
        t0 = time.monotonic()
        b1 = c.agent(n1).start()  # agent B: reads the kernel, converges
        start_ms = (time.monotonic() - t0) * 1000
        enforced(c, time.monotonic(), "agent B on node-1")
        # and the same on node-2, with a cross-node flow running (z/b is now allowed)
        streams.append(UdpStream(zb.netns, xa.ip4).start())
        time.sleep(0.3)
        assert a2.stop(signal.SIGTERM) == 0, a2.logs()
        b2 = c.agent(n2).start()
        enforced(c, time.monotonic(), "agent B on node-2")
        time.sleep(0.3)
    finally:
        results = [s.finish() for s in streams]
    lost = sum(r[1] for r in results)
    sent = sum(r[0] for r in results)
    assert all(r[0] > 100 for r in results), results
    assert lost == 0, f"lost {lost} of {sent} datagrams across the agents' restart: {results}"
    assert b1.get("/readyz")[0] == 200 and b2.get("/readyz")[0] == 200
    FIGURES["restart_stream"] = {
        "sent": sent,
        "lost": lost,
        "start_to_ready_ms": round(start_ms, 1),
    }
    STATS["watch_restart_datagrams_lost"] = lost
    print(f"\nrestart: {sent} datagrams over 3 flows, {lost} lost")


# -- (f) invalid file -------------------------------------------------------------
def test_invalid_file_keeps_previous_policy(cluster: TwoNode) -> None:
    c = cluster
    a1, a2 = restart(c, [DENY_X, ALLOW_X_FROM_Y])
    objs = list(c.objects.values())
    bad = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: from-y, namespace: x}\n"
        "spec: {podSelector: {}, ingress: [{ports: [{port: 99999}]}]}\n"
    )
    c.put_raw("NetworkPolicy", "x", "from-y", bad)
    c.put_raw("NetworkPolicy", "x", "default-deny", "kind: [unterminated\n")
    time.sleep(0.5)
    same_matrix(c, objs, "previous policy not kept after an invalid file")
    for a in (a1, a2):
        assert a.logs().count("file ignored, its previous objects stay in force") >= 2
        assert a.proc is not None and a.proc.poll() is None
    # a valid version of the file is picked up again
    t0 = c.remove_policy("x", "default-deny")
    c.put_policy(pol("x", "from-y", labels(pod="a"), ingress=[{"from": [nss(ns="z")]}]))
    enforced(c, t0, "valid file after an invalid one")


# -- Kubernetes source: dropped watch, 410, API disconnect --------------------------
def test_k8s_source_dropped_watch_410_and_disconnect() -> None:
    """The agent on ``--source k8s`` against the fake API server (run inside the node
    netns, where the agent can reach it): enforcement follows the API across a dropped
    watch, a 410 Gone (relist) and an outage, during which the last known state stays
    in force."""
    require_kernel()
    from tests.fakeapi import FakeAPIServer, write_kubeconfig

    with TwoNode(nodes=1) as c:
        n1 = c.nodes[0]
        with in_netns(n1.netns):  # its listening socket lives in the node netns
            api = FakeAPIServer(bookmark_interval=0)
        try:
            c.api = api
            for obj in c.objects.values():
                api.upsert(obj)
            kubeconfig = write_kubeconfig(api.url, c.tmp / "kubeconfig")
            agent = c.agent(n1, "--source", "k8s", "--kubeconfig", str(kubeconfig)).start()
            for ns, name in (("x", "a"), ("y", "a"), ("x", "b")):
                c.add_pod(n1, ns, name, wait_known=True)
            took = {"deny": enforced(c, c.put_policy(DENY_X), "k8s: default deny")}

            api.drop_watches()  # the connection is cut mid-stream
            took["dropped watch"] = enforced(c, c.put_policy(ALLOW_X_FROM_Y), "after a drop")

            api.compact()  # older resourceVersions are gone: the re-watch gets 410
            api.drop_watches()
            change = pol("x", "from-y", labels(pod="a"), ingress=[{"from": [pods(pod="b")]}])
            took["410 Gone"] = enforced(c, c.put_policy(change), "after a 410")

            # an outage: every request fails for a while (Retry-After 1 s)
            before = list(c.objects.values())
            api.fail_next(8, 503, retry_after=1)
            api.drop_watches()
            t0 = c.remove_policy("x", "from-y")  # made in the API while the agent is cut off
            same_matrix(c, before, "last known state not kept during the API outage")
            took["outage"] = enforced(c, t0, "after the outage", limit=8.0)
            assert agent.proc is not None and agent.proc.poll() is None
        finally:
            c.api = None
            api.stop()
    FIGURES["k8s_source_ms"] = {k: round(v * 1000, 1) for k, v in took.items()}
    print("\nk8s source, time to enforcement:", FIGURES["k8s_source_ms"])
