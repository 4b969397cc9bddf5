"""Drop attribution, the log prefix, ulogd's lines, the enforced signal and
the agent's view of both (issue 12), without a kernel."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from backends.iptables.restore import _split_rule
from backends.nftables import decode, printer
from backends.nftables.objects import Log, Payload, SetLimit
from policyc.chains import Verb
from policyc.compiler import Compiler
from policyc.evaluate import Evaluator
from policyc.kinds import Key, Kind
from policyc.load import parse_text
from policyc.logprefix import MAX_PREFIX, LogPrefix, Tag, parse_prefix
from policyc.lower_log import LogConfig
from policyc.model import Direction, Namespace
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of
from tests.support.scenarios import labels, nss, pods, pol
from tests.support.world import dump, world
from tests.test_watch_sequences import Idle, MemoryKernel
from watcher.agent import Agent, Options
from watcher.dataplane import Dataplane
from watcher.droplog import Attributor, DropBus, DropRecord, View, build_view
from watcher.enforced import EnforceTracker
from watcher.metrics import Metrics
from watcher.nflog import NflogPacket, config, parse_line
from watcher.sources.base import Event, EventType

NODE = "node-1"
# One line as ulogd 2.0.8's JSON output wrote it for a dropped SYN.
ULOGD_LINE = (
    '{"timestamp": "2026-11-30T09:14:21.638753", "dvc": "Netfilter", "raw.pktlen": 60, '
    '"oob.prefix": "pc:drop:I:ingress4", "oob.time.sec": 1796030061, "oob.time.usec": 638753, '
    '"oob.family": 2, "oob.protocol": 2048, "ip.protocol": 6, "src_port": 49838, '
    '"dest_port": 80, "tcp.syn": 1, "oob.in": "br0", "oob.out": "br0", '
    '"src_ip": "10.244.1.13", "dest_ip": "10.244.1.10"}'
)
AUDIT = {"annotations": {"policyc.io/mode": "audit"}}


def audit(policy: dict[str, object]) -> dict[str, object]:
    meta = policy["metadata"]
    assert isinstance(meta, dict)
    meta.update(AUDIT)
    return policy


def cluster_of(*policies: dict[str, object]):  # type: ignore[no-untyped-def]
    return build_cluster(parse_text(dump(world(list(policies))), "<t>"), warn=lambda m: None)


# -- the prefix and ulogd ------------------------------------------------------
def test_prefix_round_trips_and_fits_iptables() -> None:
    p = LogPrefix(Tag.AUDIT, Direction.EGRESS, "eg4_" + "f" * 80)
    assert len(str(p)) == MAX_PREFIX
    back = parse_prefix(str(p))
    assert back is not None and (back.tag, back.direction) == (Tag.AUDIT, Direction.EGRESS)
    assert parse_prefix("IN=eth0 ") is None and parse_prefix("pc:nope:E") is None


def test_ulogd_line_and_config() -> None:
    pkt = parse_line(ULOGD_LINE)
    assert pkt == NflogPacket(
        1796030061.638753, "pc:drop:I:ingress4", 4, 6, "10.244.1.13", "10.244.1.10", 49838, 80
    )
    assert parse_line("not json") is None and parse_line('{"oob.prefix": "x"}') is None
    text = config(7, "/run/x.sock", "/run/x.log")
    assert "stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON" in text
    assert "group=7" in text and 'mode="unix"' in text and 'file="/run/x.sock"' in text


# -- attribution ---------------------------------------------------------------
def compiler_of(*policies: dict[str, object]) -> Compiler:
    return Compiler(NODE).load(cluster_of(*policies))


def by_ip(c: Compiler) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for pod in c.pods.values():
        for ip in pod.ips:
            out[str(ip)] = (*out.get(str(ip), ()), pod.key)
    return out


def local(c: Compiler) -> list:  # type: ignore[type-arg]
    return [p for p in c.pods.values() if c.is_local(p)]


def test_drop_is_attributed_to_every_isolating_policy() -> None:
    c = compiler_of(
        pol("x", "deny", types=["Ingress"]),
        pol("x", "web", labels(pod="a"), ingress=[{"ports": [{"port": 81}]}]),
        audit(pol("y", "lockdown", types=["Egress"])),
    )
    att = Attributor()
    att.view = build_view(c, by_ip(c), local(c))
    rec = att.record(parse_line(ULOGD_LINE))  # type: ignore[arg-type]
    assert rec is not None
    assert (rec.pod, rec.policies, rec.direction) == ("x/a", ("x/deny", "x/web"), Direction.INGRESS)
    assert rec.src_pods == ("y/a",) and rec.dst_pods == ("x/a",)
    js = rec.to_json()
    assert js["verdict"] == "drop" and js["proto"] == "TCP" and js["dst"]["port"] == 80  # type: ignore[index]
    # the same attempt again (a SYN retransmission) is counted, not logged
    assert att.record(parse_line(ULOGD_LINE)) is None and att.suppressed == 1  # type: ignore[arg-type]
    # an audit line of y/b's egress names the audit policy
    pkt = NflogPacket(1.0, "pc:audit:E:eg4_x", 4, 6, "10.244.1.14", "10.244.1.10", 5000, 80)
    rec = att.record(pkt)
    assert rec is not None and rec.policies == ("y/lockdown",) and rec.tag is Tag.AUDIT
    assert rec.to_json()["verdict"] == "would-drop"


@pytest.mark.parametrize(
    ("ts", "time_", "ts_out"),
    [
        (1796030061.5213486, "2026-11-30T09:14:21.521349Z", 1796030061.521349),
        (1796030061.9999997, "2026-11-30T09:14:22.000000Z", 1796030062.0),
        (1796030061.0, "2026-11-30T09:14:21.000000Z", 1796030061.0),
    ],
)
def test_time_and_ts_say_the_same_microsecond(ts: float, time_: str, ts_out: float) -> None:
    """The "time" field truncated the microseconds and "ts" rounded them (.521348 vs
    .521349); both now come from one rounding, the carry into the second
    included."""
    pkt = NflogPacket(ts, "pc:drop:I:in4_x", 4, 6, "10.244.1.14", "10.244.1.10", 5000, 80)
    rec = Attributor().record(pkt)
    assert rec is not None
    js = rec.to_json()
    assert (js["time"], js["ts"]) == (time_, ts_out)


def test_one_attempt_audited_on_both_sides_gives_two_lines() -> None:
    """A packet would-dropped by y/b's egress audit policy passes on to
    x/a's ingress audit policy: each side logs; the second line is not a
    retransmission of the first (it was suppressed: same tag and 5-tuple)."""
    c = compiler_of(
        audit(pol("y", "lockdown", types=["Egress"])),
        audit(pol("x", "quiet", types=["Ingress"])),
    )
    att = Attributor()
    att.view = build_view(c, by_ip(c), local(c))
    out = NflogPacket(1.0, "pc:audit:E:eg4_x", 4, 6, "10.244.1.14", "10.244.1.10", 5000, 80)
    into = dataclasses.replace(out, prefix="pc:audit:I:in4_x")
    recs = [att.record(out), att.record(into), att.record(into)]
    assert [(r.pod, r.policies) if r else None for r in recs] == [
        ("y/b", ("y/lockdown",)),
        ("x/a", ("x/quiet",)),
        None,  # the SYN again: counted, not logged
    ]
    assert att.suppressed == 1


def test_bus_keeps_recent_lines_and_feeds_followers() -> None:
    c = compiler_of(pol("x", "deny", types=["Ingress"]))
    bus, lines = DropBus(keep=2), []
    att = Attributor([bus, lambda r: lines.append(r)])
    att.view = build_view(c, by_ip(c), local(c))
    q = bus.follow()
    pkt = parse_line(ULOGD_LINE)
    assert pkt is not None
    for port in (1, 2, 3):
        att(dataclasses.replace(pkt, sport=port))
    assert len(bus.recent) == 2 and q.qsize() == 3 and len(lines) == 3
    assert json.loads(q.get())["src"]["port"] == 1
    bus.unfollow(q)


def test_metrics_count_per_policy() -> None:
    c = compiler_of(pol("x", "deny", types=["Ingress"]))
    m = Metrics()
    att = Attributor([m.count_drop])
    att.view = build_view(c, by_ip(c), local(c))
    att(parse_line(ULOGD_LINE))  # type: ignore[arg-type]
    text = m.render().decode()
    labels_ = 'direction="Ingress",mode="enforce",namespace="x",policy="deny"'
    want = "policyc_policy_drops_total{" + labels_ + "} 1.0"
    assert want in text


def test_suppressed_retransmissions_are_exported() -> None:
    """``Attributor.suppressed`` was only an attribute: a flood of
    retransmissions looked like a quiet log.  It is a counter now."""
    c = compiler_of(pol("x", "deny", types=["Ingress"]))
    m = Metrics()
    att = Attributor([m.count_drop], on_suppressed=m.drop_lines_suppressed.inc)
    att.view = build_view(c, by_ip(c), local(c))
    for _ in range(3):
        att(parse_line(ULOGD_LINE))  # type: ignore[arg-type]
    text = m.render().decode()
    assert att.suppressed == 2 and "\npolicyc_drop_lines_suppressed_total 2.0\n" in text
    assert "\npolicyc_droplog_reader_restarts_total 0.0\n" in text


def test_the_agent_wires_the_reader_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    """``watch --log-drops`` hands both counters to the reader and the
    attributor (ulogd itself is not started here)."""
    from watcher import main as watch_main
    from watcher.nflog import UlogdReader

    monkeypatch.setattr(UlogdReader, "start", lambda self: None)

    class Holder:
        attributor: Attributor | None = None

    m, agent = Metrics(), Holder()
    reader, _bus = watch_main.start_drop_log(agent, m, 7)
    assert reader.on_restart == m.reader_restarts.inc
    assert agent.attributor is not None
    assert agent.attributor.on_suppressed == m.drop_lines_suppressed.inc
    reader.stop()


# -- the enforced signal --------------------------------------------------------
def test_tracker_times_from_the_first_pending_event() -> None:
    t = EnforceTracker()
    t.pending("x/a", ["10.244.1.10"])
    first = t.get("x/a")
    t.pending("x/a", ["10.244.1.10"])  # a second event before the commit
    assert t.get("x/a") == first and first is not None and not first.enforced
    ((pod, lat),) = t.committed({"x/a": {"Ingress": ("x/deny",), "Egress": (), "audit": ()}})
    assert pod == "x/a"
    st = t.get("x/a")
    assert st is not None and st.enforced and st.latency == lat and lat >= 0
    assert st.ingress_policies == ("x/deny",)
    assert t.committed() == []  # nothing pending
    t.pending("x/a", [])
    assert t.get("x/a").generation == 2 and not t.get("x/a").enforced  # type: ignore[union-attr]
    t.forget("x/a")
    assert t.snapshot() == {}


def agent() -> tuple[Agent, MemoryKernel]:
    from backends import BACKENDS

    kernel = MemoryKernel(BACKENDS["nftables"])
    a = Agent(Idle(), Dataplane(kernel, log_group=7), Options(NODE, routes=False))
    a.attributor = Attributor()
    cl = cluster_of()
    for kind, objs in (
        ("Namespace", cl.namespaces.values()),
        ("Node", cl.nodes.values()),
        ("Pod", cl.pods),
    ):
        a.handle(Event(EventType.SNAPSHOT, kind, objects=tuple(objs)))  # type: ignore[arg-type]
    for k in Kind:  # the first sync waits for a snapshot of every kind
        if k not in a.listed:
            a.handle(Event(EventType.SNAPSHOT, k, objects=()))
    return a, kernel


def test_agent_marks_pods_enforced_only_after_a_commit() -> None:
    a, kernel = agent()
    assert not a.enforce.snapshot()["x/a"]["enforced"]
    assert a.sync()
    snap = a.enforce.snapshot()
    assert all(s["enforced"] for s in snap.values()) and "x/a" in snap and "y/a" in snap
    policy = build_cluster(
        parse_text(dump([pol("x", "deny", types=["Ingress"])]), "<p>"), warn=lambda m: None
    ).policies[0]
    a.handle(Event(EventType.ADDED, "NetworkPolicy", obj=policy))  # type: ignore[arg-type]
    assert not a.enforce.snapshot()["x/a"]["enforced"]  # pending: not in the kernel yet
    assert a.enforce.snapshot()["y/a"]["enforced"]  # another namespace: untouched
    kernel.fail = OSError("nft failed")
    assert not a.sync()
    assert not a.enforce.snapshot()["x/a"]["enforced"]  # a failed commit enforces nothing
    assert a.sync()
    st = a.enforce.snapshot()["x/a"]
    assert st["enforced"] and st["ingress_policies"] == ("x/deny",)
    assert a.attributor is not None and a.attributor.view.local["10.244.1.10"].pod == "x/a"


def test_namespace_label_change_marks_its_pods_pending() -> None:
    a, _ = agent()
    assert a.sync()
    ns = Namespace("x", (("ns", "x"), ("team", "blue")))
    a.handle(Event(EventType.MODIFIED, "Namespace", obj=ns))  # type: ignore[arg-type]
    snap = a.enforce.snapshot()
    assert not snap["x/a"]["enforced"] and snap["y/a"]["enforced"]
    assert a.sync() and a.enforce.snapshot()["x/a"]["enforced"]
    a.handle(Event(EventType.MODIFIED, "Namespace", obj=ns))  # type: ignore[arg-type]
    assert a.enforce.snapshot()["x/a"]["enforced"]  # same labels: nothing to wait for


# -- audit mode ----------------------------------------------------------------
def test_audit_policy_enforces_nothing_and_the_evaluator_audits_it() -> None:
    deny = pol("x", "deny", types=["Ingress"])
    cl = cluster_of(audit(pol("x", "deny", types=["Ingress"])))
    assert cl.policies[0].audit
    enforced, audited = Evaluator(cl), Evaluator(cl, audited=True)
    assert enforced.allowed("10.244.1.13", "10.244.1.10", 80, "TCP").allowed
    assert not audited.allowed("10.244.1.13", "10.244.1.10", 80, "TCP").allowed
    # the compiled chains are those of no policy at all, and nobody is isolated
    none = ruleset_of(cluster_of(), NODE)
    got = ruleset_of(cl, NODE, log=LogConfig(7))
    extra = [c for c in got.forward if c not in none.forward]
    assert {c.name[:3] for c in extra} == {"in4", "in6"}  # the audit-only group chains
    for c in extra:  # they log "would drop" and drop nothing
        (log,) = c.rules
        assert log.action.verb is Verb.LOG and log.action.target.startswith("pc:audit:I:")
    assert all(not s.elements for s in got.sets if s.name.startswith("iso_"))
    enforced_sets = ruleset_of(cluster_of(deny), NODE).sets
    assert any(s.elements for s in enforced_sets if s.name.startswith("iso_in"))
    comp = Compiler(NODE).load(cl)
    assert comp.keys("NetworkPolicy") == {"x/deny"} and comp.policies["x/deny"].audit  # type: ignore[arg-type]
    assert all(n.audit for n in comp.graph().policies)


def test_unknown_mode_is_an_input_error() -> None:
    bad = pol("x", "deny", types=["Ingress"])
    bad["metadata"]["annotations"] = {"policyc.io/mode": "dry-run"}  # type: ignore[index]
    from policyc.errors import InputErrors

    with pytest.raises(InputErrors) as err:
        build_cluster(parse_text(dump([bad]), "p.yaml"), warn=lambda m: None)
    assert "metadata.annotations.policyc.io/mode: unknown mode 'dry-run'" in str(err.value.lines())


# -- lowering and the backends ---------------------------------------------------
def test_log_rule_precedes_each_drop_and_round_trips_nft_json() -> None:
    rs = ruleset_of(cluster_of(pol("x", "deny", types=["Ingress"])), NODE, log=LogConfig(7))
    ends = [
        (c.rules[i].action.verb, c.rules[i + 1].action.verb)
        for c in rs.forward
        for i in range(len(c.rules) - 1)
        if c.rules[i].action.verb is Verb.LOG
    ]
    assert ends and all(pair == (Verb.LOG, Verb.DROP) for pair in ends)
    for s in (
        Log("pc:drop:I:in4", 7),
        SetLimit("pclog_i4", Payload("ip", "daddr"), 10, 10),
    ):
        assert decode.stmt(printer.stmt_json(s)) == s
    assert printer.stmt_text(Log("p", 7)) == 'log prefix "p" group 7'


def test_iptables_target_with_options_reads_back_whole() -> None:
    words = "-m hashlimit --hashlimit-upto 10/sec -m comment --comment -j".split()
    words += ["-j", "NFLOG", "--nflog-prefix", "pc:drop:E", "--nflog-group", "7"]
    rule = _split_rule(words)
    assert rule.target == ("-j", "NFLOG", "--nflog-prefix", "pc:drop:E", "--nflog-group", "7")
    assert _split_rule(["-s", "10.0.0.1", "-j", "DROP"]).target == ("-j", "DROP")


def test_traced_ruleset_with_audit_and_logging_is_the_enforced_verdict() -> None:
    """Audit groups, audit policies beside enforced ones and log rules: the
    compiled ruleset (traced) passes exactly what the enforced evaluator does."""
    from policyc.model import Protocol
    from policyc.trace import Packet, trace

    cl = cluster_of(
        audit(pol("x", "lock", types=["Ingress", "Egress"])),  # x: audit only
        pol("y", "web", labels(pod="a"), ingress=[{"ports": [{"port": 80}]}]),
        audit(pol("y", "tight", labels(pod="a"), ingress=[{"ports": [{"port": 81}]}])),
        audit(pol("z", "dup", labels(pod="b"), ingress=[{"ports": [{"port": 80}]}])),
        pol("z", "dup-enforced", labels(pod="b"), ingress=[{"ports": [{"port": 80}]}]),
    )
    ev = Evaluator(cl)
    for opt in (True, False):
        rs = ruleset_of(cl, NODE, opt, LogConfig(7))
        for src in cl.pods:
            for dst in (p for p in cl.pods if p is not src):  # loopback never leaves the pod
                for port in (80, 81):
                    s, d = src.ips[0], dst.ips[0]
                    want = ev.allowed(s, d, port, "TCP").allowed
                    assert trace(rs, Packet(s, d, Protocol.TCP, port)).allowed == want, (
                        src.key,
                        dst.key,
                        port,
                        opt,
                    )


def test_allowed_packets_walk_the_same_rules_with_logging_on() -> None:
    """The cost argument of docs/observability.md, exactly: an allowed packet's
    path through the ruleset is the same rule for rule with --log-drops."""
    from policyc.model import Protocol
    from policyc.trace import Packet, trace

    cl = cluster_of(
        pol("x", "deny", types=["Ingress"]),
        pol(
            "x",
            "web",
            labels(pod="a"),
            ingress=[{"from": [pods(pod="b")], "ports": [{"port": 80}]}],
        ),
        pol("y", "out", types=["Egress"], egress=[{"to": [nss(ns="x")]}]),
    )
    plain, logged = ruleset_of(cl, NODE), ruleset_of(cl, NODE, log=LogConfig(7))
    allowed = 0
    for src in cl.pods:
        for dst in (p for p in cl.pods if p is not src):
            pkt = Packet(src.ips[0], dst.ips[0], Protocol.TCP, 80)
            a, b = trace(plain, pkt), trace(logged, pkt)
            assert a.allowed == b.allowed
            if a.allowed:
                allowed += 1
                assert a.steps == b.steps
            else:  # a drop: the same path, plus the log rule just before the drop
                path = [(s.chain, s.comment, s.verb) for s in b.steps if s.verb is not Verb.LOG]
                assert path == [(s.chain, s.comment, s.verb) for s in a.steps]
                assert b.steps[-2].verb is Verb.LOG
    assert allowed > 10


def test_explain_and_matrix_show_the_audited_verdict(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from policyc.cli import main
    from policyc.matrix import Mark, build_matrix, parse_port

    f = tmp_path / "world.yaml"
    f.write_text(dump(world([audit(pol("x", "lock", types=["Ingress"]))])))
    assert main(["explain", "y/a", "x/a", "80/tcp", str(f)]) == 0
    out = capsys.readouterr().out
    assert "audited (audit-mode policies enforced): DENIED" in out, out
    cl = cluster_of(audit(pol("x", "lock", types=["Ingress"])))
    q = parse_port("80")
    enforced, audited = build_matrix(cl, q), build_matrix(cl, q, audited=True)
    assert enforced.counts()[Mark.DENIED] == 0 and audited.counts()[Mark.DENIED] > 0
    assert main(["matrix", "--audited", str(f)]) == 0


def test_matrix_audited_says_so_in_every_format(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``matrix --audited`` printed the plain matrix's header: each output
    now says it holds the audited verdicts; the enforced one says nothing new."""
    from policyc.cli import main
    from policyc.matrix import AUDITED_NOTE

    f = tmp_path / "world.yaml"
    f.write_text(dump(world([audit(pol("x", "lock", types=["Ingress"]))])))
    outs = {}
    for audited in ([], ["--audited"]):
        for fmt in ("text", "json", "html"):
            assert main(["matrix", *audited, "-o", fmt, str(f)]) == 0
            outs[fmt, bool(audited)] = capsys.readouterr().out
    assert outs["text", True].startswith(AUDITED_NOTE + "\nport 80/TCP:")
    assert json.loads(outs["json", True])["verdicts"] == "audited"
    assert "<title>policyc matrix: port 80/TCP (audited)</title>" in outs["html", True]
    assert AUDITED_NOTE in outs["html", True]
    assert not any("audit" in outs[fmt, False] for fmt in ("text", "json", "html"))


def test_a_shared_address_names_every_claimants_policies() -> None:
    c = compiler_of(pol("x", "deny", labels(pod="a"), types=["Ingress"]))
    a, b = c.pods["x/a"], c.pods["x/b"]
    twin = dataclasses.replace(b, ips=a.ips)  # x/b claims x/a's address too
    view = build_view(c, by_ip(c), [a, twin])
    iso = view.local[str(a.ips[0])]
    assert iso.pod == "x/a,x/b" and iso.enforced[Direction.INGRESS] == ("x/deny",)


def test_a_line_newer_than_the_view_waits_for_the_next_view() -> None:
    """A drop the view cannot attribute (the rules that dropped it were
    committed, the view not yet replaced) is held and attributed with the
    next view; with no view in time, it goes out as it is."""
    c = compiler_of(pol("x", "deny", types=["Ingress"]))
    out: list[DropRecord] = []
    att = Attributor([out.append], hold=60)
    att.view = build_view(compiler_of(), by_ip(c), local(c))  # before the commit
    att(parse_line(ULOGD_LINE))  # type: ignore[arg-type]
    assert out == []
    att.view = build_view(c, by_ip(c), local(c))  # after it
    assert [(r.pod, r.policies) for r in out] == [("x/a", ("x/deny",))]
    att.view = View()
    att(parse_line(ULOGD_LINE.replace("49838", "49839")))  # type: ignore[arg-type]
    att.flush(everything=True)
    assert [(r.pod, r.policies) for r in out[1:]] == [("", ())]


def test_compile_log_group_reaches_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """``compile --log-drops --log-group N`` logs to group N (the agent's
    ``watch --log-group``), on both backends."""
    from policyc.cli import main

    case = str(Path(__file__).resolve().parents[1] / "fixtures" / "default-deny-ingress")
    for backend, text in (("nftables", '" group 9 comment'), ("iptables", "--nflog-group 9\n")):
        argv = ["compile", "--node", "node-1", "--backend", backend, "--log-drops"]
        assert main([*argv, "--log-group", "9", case]) == 0
        assert text in capsys.readouterr().out


def test_a_deleted_policy_takes_its_drop_series_along() -> None:
    a, _ = agent()
    m = a.metrics
    c = compiler_of(pol("x", "deny", types=["Ingress"]))
    att = Attributor([m.count_drop], hold=0)
    att.view = build_view(c, by_ip(c), local(c))
    att(parse_line(ULOGD_LINE))  # type: ignore[arg-type]
    cnp_key = "ClusterNetworkPolicy no-y"
    m.drops.labels("", cnp_key, "Ingress", "enforce").inc()
    assert 'policy="deny"' in m.render().decode()
    gone = (Key(Kind.NETWORK_POLICY, "x", "deny"), Key(Kind.CLUSTER_NETWORK_POLICY, "", "no-y"))
    for key in gone:
        a.handle(Event(EventType.DELETED, key.kind, obj=key))  # type: ignore[arg-type]
    text = m.render().decode()
    assert 'policy="deny"' not in text and cnp_key not in text


def test_held_lines_go_out_when_no_view_comes() -> None:
    """Without a new view, a held line goes out on its own after ``hold``
    (one timer for all held lines), attributed with the view as it is."""
    out: list[DropRecord] = []
    att = Attributor([out.append], hold=0.05)
    for port in ("49838", "49839", "49840"):
        att(parse_line(ULOGD_LINE.replace("49838", port)))  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while len(out) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(r.pod, r.policies) for r in out] == [("", ())] * 3
