"""evaluator == trace(optimised) == trace(unoptimised), with no root and no kernel.

Random policies (TCP, UDP, SCTP, IPv4 and IPv6, ipBlocks with except, named
ports, port ranges, pod and namespace selectors) over a two-node world, and
random packets between pods, the nodes' addresses and outside addresses.
A packet is traced through the ruleset of each node whose forward hook it
crosses (its source pod's and its destination pod's), entering the source
node's bridge from the source pod's port, or from another pod's port when
spoofed (then it must be dropped whatever the policies say).

Hypothesis runs derandomized (the same examples on every run and machine,
as long as this file is unchanged) and does not shrink; ``POLICYC_TRACE_EXAMPLES``
raises the count for a longer hunt, ``POLICYC_TRACE_SHRINK=1`` shrinks.  The figures
(``trace_*``) are printed in the test run's summary.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from policyc.chains import (
    ACCEPT,
    DROP,
    RETURN,
    Action,
    Chain,
    CtEstablished,
    Field,
    Hook,
    InSet,
    Match,
    Rule,
    Ruleset,
    Verb,
)
from policyc.compiler import compile_cluster
from policyc.evaluate import Evaluator
from policyc.ir import Family, SetDef, SetKind
from policyc.load import parse_text
from policyc.model import Cluster, Pod, Protocol
from policyc.names import pod_iface
from policyc.parse import build_cluster
from policyc.passes import PASSES
from policyc.pipeline import ruleset_of
from policyc.trace import Packet, TraceError, Verdict, trace
from tests.support.figures import count
from tests.support.randworld import NODE2, Draw, clusters, packets
from tests.support.world import dump, world

EXAMPLES = int(os.environ.get("POLICYC_TRACE_EXAMPLES", "100"))
NODES = ("node-1", "node-2")
# Shrinking recompiles the world for each try and stops after hypothesis's
# five minutes; the unshrunk world and the failing packet are printed anyway.
PHASES = tuple(Phase) if os.environ.get("POLICYC_TRACE_SHRINK") else (Phase.generate,)


@functools.lru_cache(maxsize=8)
def compiled(text: str) -> tuple[Evaluator, dict[tuple[str, bool], Ruleset]]:
    """The oracle and each node's rulesets, optimised and not; cached, as
    shrinking a failure redraws the packets far more often than the world."""
    cluster = build_cluster(parse_text(text, "<random>"), warn=lambda m: None)
    rulesets = {(n, opt): ruleset_of(cluster, n, opt) for n in NODES for opt in (True, False)}
    return Evaluator(cluster), rulesets


def traced(rulesets: dict[str, Ruleset], ev: Evaluator, d: Draw) -> bool:
    """Accepted by every node whose forward hook the packet crosses?"""
    src, dst = ev.pod_at(d.src), ev.pod_at(d.dst)
    nodes = dict.fromkeys(p.node_name for p in (src, dst) if p is not None) or {"node-1": None}
    ok = True
    for node in nodes:
        iif = None
        if src is not None and src.node_name == node:
            iif = _iface(ev.cluster, src, d.spoof)
        ok &= trace(rulesets[node], Packet(d.src, d.dst, d.protocol, d.dport, iif)).allowed
    return ok


def _iface(cluster: Cluster, src: Pod, spoof: bool) -> str:
    if spoof:  # another local pod's port: the bridge must drop it
        other = next(p for p in cluster.pods if p.node_name == src.node_name and p != src)
        return pod_iface(other.namespace, other.name)
    return pod_iface(src.namespace, src.name)


def check(ev: Evaluator, rulesets: dict[tuple[str, bool], Ruleset], d: Draw) -> None:
    verdict = ev.allowed(d.src, d.dst, d.dport, d.protocol)
    if verdict.reason.startswith("loopback"):
        count("trace_loopback_skipped")
        return  # never leaves the pod: no hook sees it
    expected = verdict.allowed and not (d.spoof and ev.pod_at(d.src) is not None)
    for opt in (True, False):
        got = traced({n: rulesets[n, opt] for n in NODES}, ev, d)
        assert got == expected, (d, "optimised" if opt else "unoptimised", verdict)
        count("trace_verdicts")
    count("trace_packets")
    count("trace_allowed", expected)
    count("trace_allowed_by_a_policy", bool(verdict.egress_by or verdict.ingress_by))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(world=clusters(), version=st.sampled_from((4, 6)), data=st.data())
def test_evaluator_equals_trace_of_both_rulesets(
    world: tuple[list[dict[str, Any]], int], version: int, data: st.DataObject
) -> None:
    """Random packets, then every pod pair of one family on the ports the
    random policies name (79 to 82) in every protocol."""
    objs, n_policies = world
    ev, rulesets = compiled(dump(objs))
    count("trace_policies", n_policies)
    pod_ips = [ip for p in ev.cluster.pods for ip in p.ips]
    for d in data.draw(st.lists(packets(pod_ips), min_size=5, max_size=20), label="packets"):
        check(ev, rulesets, d)
    mine = [ip for ip in pod_ips if ip.version == version]
    for src, dst, proto, port in itertools.product(mine, mine, Protocol, (79, 80, 81, 82)):
        check(ev, rulesets, Draw(src, dst, proto, port, spoof=False))


def test_random_worlds_exercise_every_pass() -> None:
    """The worlds the property test draws (the same examples, derandomized)
    give every pass in ``PASSES`` something to change, so the equivalence
    above covers each: port ranges and same peers on other ports, ipBlocks
    with except in rules on the same ports, sets of one definition, covered
    and repeated rules, sets no rule reads."""
    fired: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=(Phase.generate,),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=clusters())
    def run(world: tuple[list[dict[str, Any]], int]) -> None:
        cluster = build_cluster(parse_text(dump(world[0]), "<random>"), warn=lambda m: None)
        for node in NODES:
            graph = compile_cluster(cluster, node)
            for p in PASSES:
                after = p(graph)
                fired[p.__name__] += after != graph
                graph = after

    run()
    for p in PASSES:
        count(f"trace_pass_{p.__name__}", fired[p.__name__])
    assert all(fired[p.__name__] for p in PASSES), dict(fired)


# -- the walk itself, on hand-made rulesets ---------------------------------


def drop_if(*matches: Match) -> Ruleset:
    return forward(base(Rule(matches, DROP)))


A, B = ipaddress.ip_address("10.244.1.10"), ipaddress.ip_address("10.244.1.11")
A6 = ipaddress.ip_address("2001:db8:244:1::10")
SETS = (
    SetDef("a4", SetKind.ADDR, Family.V4, (A,)),
    SetDef("a6", SetKind.ADDR, Family.V6, (A6,)),
    SetDef("net4", SetKind.CIDR, Family.V4, ((A, B),)),
    SetDef("web", SetKind.PORTS, None, ((Protocol.TCP, 80, 81),)),
    SetDef("named4", SetKind.NAMED, Family.V4, ((B, Protocol.SCTP, 80),)),
)


def forward(*chains: Chain) -> Ruleset:
    return Ruleset(forward=chains, bridge=(), sets=SETS, bridge_sets=())


def base(*rules: Rule) -> Chain:
    return Chain("forward", rules, Hook.FORWARD)


def rule(*matches: Match, action: Action = ACCEPT) -> Rule:
    return Rule(matches, action)


def pkt(proto: Protocol = Protocol.TCP, port: int = 80, src: Any = A, dst: Any = B) -> Packet:
    return Packet(src, dst, proto, port)


SA, SA_NOT = InSet(Field.SADDR, "a4", Family.V4), InSet(Field.SADDR, "a4", Family.V4, True)
WEB = InSet(Field.PROTO_DPORT, "web", None)
J, G = Action(Verb.JUMP, "c"), Action(Verb.GOTO, "d")
CASES = [
    ("policy accept", forward(base()), pkt(), Verdict.ACCEPT),
    ("established never matches", drop_if(CtEstablished()), pkt(), Verdict.ACCEPT),
    ("addr set", drop_if(SA), pkt(), Verdict.DROP),
    ("negated addr set", drop_if(SA_NOT), pkt(), Verdict.ACCEPT),
    ("cidr interval", drop_if(InSet(Field.DADDR, "net4", Family.V4)), pkt(), Verdict.DROP),
    ("other family never matches", drop_if(SA_NOT), pkt(src=A6, dst=A6), Verdict.ACCEPT),
    ("port range", drop_if(WEB), pkt(port=81), Verdict.DROP),
    ("port range miss", drop_if(WEB), pkt(port=82), Verdict.ACCEPT),
    ("protocol miss", drop_if(WEB), pkt(Protocol.UDP), Verdict.ACCEPT),
    ("all matches", drop_if(SA, WEB), pkt(Protocol.UDP), Verdict.ACCEPT),
    (
        "named port",
        drop_if(InSet(Field.DADDR_PROTO_DPORT, "named4", Family.V4)),
        pkt(Protocol.SCTP),
        Verdict.DROP,
    ),
    # "jump" comes back to the caller's next rule; "goto" does not, and a
    # "return" in a goto'd chain goes back to the chain that jumped.
    (
        "jump returns",
        forward(base(rule(action=J), rule(action=DROP)), Chain("c", ())),
        pkt(),
        Verdict.DROP,
    ),
    (
        "goto does not return",
        forward(
            base(rule(action=J), rule(action=DROP)),
            Chain("c", (rule(action=G), rule(action=DROP))),
            Chain("d", (rule(action=RETURN), rule(action=DROP))),
        ),
        pkt(),
        Verdict.DROP,
    ),
    (
        "goto'd chain ends",
        forward(
            base(rule(action=J)), Chain("c", (rule(action=G), rule(action=DROP))), Chain("d", ())
        ),
        pkt(),
        Verdict.ACCEPT,
    ),
]


@pytest.mark.parametrize(("name", "ruleset", "packet", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_walk(name: str, ruleset: Ruleset, packet: Packet, verdict: Verdict) -> None:
    assert trace(ruleset, packet).verdict is verdict


def test_steps_name_chain_index_and_comment() -> None:
    rs = forward(
        base(Rule((), Action(Verb.JUMP, "c"), "to c")), Chain("c", (Rule((), DROP, "no"),))
    )
    steps = trace(rs, pkt()).steps
    assert [(s.chain, s.index, s.comment, s.verb) for s in steps] == [
        ("forward", 0, "to c", Verb.JUMP),
        ("c", 0, "no", Verb.DROP),
    ]


@pytest.mark.parametrize(
    ("ruleset", "fragment"),
    [
        (drop_if(SA_NOT, object()), "unsupported match"),  # type: ignore[arg-type]
        (drop_if(InSet(Field.SADDR, "nope", Family.V4)), "does not define"),
        (drop_if(InSet(Field.SADDR, "web", Family.V4)), "cannot be looked up"),
        (drop_if(InSet(Field.SADDR, "a6", Family.V4)), "holds ip6 keys"),
        (forward(base(rule(action=J))), "unknown chain"),
        (forward(base(rule(action=Action(Verb.GOTO, "forward")))), "loop"),
    ],
)
def test_what_it_cannot_model_raises(ruleset: Ruleset, fragment: str) -> None:
    with pytest.raises(TraceError, match=fragment):
        trace(ruleset, pkt())


@pytest.mark.xfail(strict=True, reason="compile without --node: node4 holds every node's addresses")
def test_other_nodes_address_is_not_the_node() -> None:
    """Without ``--node`` every pod is local and the node sets hold every
    node's addresses, so node-2's address reaching a pod on node-1 passes as
    "from the node", where the evaluator (and node-1's own ruleset) deny it."""
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    cluster = build_cluster(parse_text(dump(world([deny]) + [NODE2]), "<t>"))
    src, dst = ipaddress.ip_address("192.0.2.20"), ipaddress.ip_address("10.244.1.10")
    assert not Evaluator(cluster).allowed(src, dst, 80, Protocol.TCP)
    assert not trace(ruleset_of(cluster, "node-1"), Packet(src, dst, Protocol.TCP, 80)).allowed
    assert not trace(ruleset_of(cluster, None), Packet(src, dst, Protocol.TCP, 80)).allowed
