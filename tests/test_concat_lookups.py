"""passes.concat_lookups and policyc.concat: disjoint boxes, the bound, the
rendered lookups, and pod events on a chain with merged sets."""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import BACKENDS
from policyc import concat
from policyc.chains import Field, InSet
from policyc.compiler import Compiler
from policyc.ir import Family, SetKind
from policyc.lower import lower
from policyc.model import Pod, Protocol
from policyc.passes import optimise
from policyc.pipeline import read_cluster

pass_module = importlib.import_module("policyc.passes.concat_lookups")
CASE = Path(__file__).resolve().parent.parent / "fixtures/passes/concat_lookups/blocks-and-ports"
spans = st.tuples(st.integers(0, 40), st.integers(0, 40)).map(sorted).map(tuple)
protos = st.sampled_from([Protocol.TCP, Protocol.UDP])
products = st.lists(
    st.tuples(
        st.lists(spans, min_size=1, max_size=3),
        st.lists(st.tuples(protos, st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=3),
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(products)
def test_boxes_are_disjoint_and_cover_exactly_the_union(prods: list) -> None:  # type: ignore[type-arg]
    prods = [(a, [(p, min(lo, hi), max(lo, hi)) for p, lo, hi in ports]) for a, ports in prods]
    got = concat.boxes(prods, Family.V4)
    assert got is not None
    want = {
        (a, p, port)
        for addrs, ports in prods
        for lo, hi in addrs
        for p, plo, phi in ports
        for a, port in itertools.product(range(lo, hi + 1), range(plo, phi + 1))
    }
    cells = [
        (a, p, port)
        for first, last, p, plo, phi in got
        for a, port in itertools.product(range(int(first), int(last) + 1), range(plo, phi + 1))  # type: ignore[call-overload]
    ]
    assert len(cells) == len(set(cells))  # disjoint: the kernel refuses overlaps
    assert set(cells) == want


def test_boxes_over_the_bound_are_none() -> None:
    prods = [([(i * 4, i * 4 + 1)], [(Protocol.TCP, i, i)]) for i in range(10)]
    assert concat.boxes(prods, Family.V4, limit=5) is None
    assert concat.boxes(prods, Family.V4, limit=10) is not None


def _compiler() -> Compiler:
    cluster = read_cluster([str(CASE / "cluster.yaml"), str(CASE / "policy.yaml")])
    return Compiler("node-1").load(cluster)


def test_merged_rules_are_one_concatenated_lookup() -> None:
    ruleset = lower(optimise(_compiler().graph()))
    cat = {s.name for s in ruleset.sets if s.kind is SetKind.NET_PORTS}
    assert len(cat) == 2  # one per family of the web group
    looks = [
        m
        for c in ruleset.forward
        for r in c.rules
        for m in r.matches
        if isinstance(m, InSet) and m.set in cat
    ]
    assert sorted(m.field for m in looks) == [Field.SADDR_PROTO_DPORT] * 2
    nft = BACKENDS["nftables"]
    text = nft.write(nft.render(ruleset))
    assert "ip saddr . meta l4proto . th dport @cat_" in text
    assert "192.0.2.64/26 . tcp . 80-83" in text
    ipt = BACKENDS["iptables"]
    text = ipt.write(ipt.render(ruleset))
    assert "-s 192.0.2.64/26 -p tcp --dport 80:83" in text
    assert "-m iprange --src-range 192.0.2.200-192.0.2.203" not in text  # an aligned /30


def test_over_the_bound_the_rules_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pass_module, "MAX_BOXES", 1)
    graph = pass_module.concat_lookups(_compiler().graph())
    assert not any(s.kind is SetKind.NET_PORTS for s in graph.sets)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_pod_events_stay_element_changes(backend: str) -> None:
    """The merged sets are static: a remote pod joining a pod peer set of
    the merged group, then relabelled out of it, patches elements only, and
    each patched state equals a fresh render."""
    be = BACKENDS[backend]
    comp = _compiler()
    programmed = be.render(lower(optimise(comp.graph())))
    assert any(g.rules for g in optimise(comp.graph()).groups)
    comp.changes()
    ips = (ipaddress.ip_address("10.244.2.7"), ipaddress.ip_address("2001:db8:244:2::7"))
    pod = Pod("x", "r", (("app", "db"),), "node-2", ips)
    for labels in (pod.labels, (("app", "other"),)):
        comp.put(dataclasses.replace(pod, labels=labels))
        ch = comp.changes()
        assert not ch.rules and ch.dirty
        sets = {n: comp.set_def(n, elements=n in ch.reset) for n in ch.dirty if n in comp.specs}
        tx = be.patch(programmed, ch, sets)
        assert tx is not None and len(tx) > 0
        assert tx.after == be.render(lower(optimise(comp.graph())))
        programmed = tx.after
