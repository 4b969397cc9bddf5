"""The nftables backend without a kernel: dialect, printer, decoder,
transaction validation, diff and patch."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import BACKENDS
from backends.nftables import decode, dialect, elements, printer
from backends.nftables.diff import diff, patch
from backends.nftables.elements import ElementSet
from backends.nftables.objects import (
    Chain,
    Element,
    Match,
    Meta,
    Op,
    Raw,
    Rule,
    Set,
    SetRef,
    State,
    Table,
    Transaction,
    TxVerb,
    Verdict,
)
from backends.nftables.render import REV_CHAIN, render
from policyc import chains as low
from policyc.cli import READERS
from policyc.compiler import Compiler
from policyc.errors import BackendError
from policyc.ir import Family, SetDef, SetKind
from policyc.kinds import Kind
from policyc.load import parse_text
from policyc.lower import lower
from policyc.parse import build_cluster
from policyc.passes import optimise
from policyc.pipeline import read_cluster, ruleset_of
from tests.support.randpol import policies
from tests.support.world import dump, world

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
GOLDEN = sorted(p.parent for p in ROOT.glob("*/expected.nft"))
NFT = BACKENDS["nftables"]


def golden_state(case: Path) -> State:
    args = (case / "args").read_text().split() if (case / "args").exists() else []
    node = args[1] if args[:1] == ["--node"] else None
    cluster = read_cluster([str(case)], warn=lambda m: None, readers=READERS)
    return render(ruleset_of(cluster, node))


def listing(cmds: list[dict[str, Any]], family: str) -> list[dict[str, Any]]:
    """What ``nft -j list table`` would print after a whole-table transaction:
    a tiny fake kernel (knftables ``fake.go``) for the adds policyc sends."""
    sets: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    for cmd in cmds:
        ((verb, body),) = cmd.items()
        ((kind, obj),) = body.items()
        if verb != "add" or kind == "table" or obj["family"] != family:
            continue
        if kind in ("set", "map"):
            sets[obj["name"]] = dict(obj)
            items.append({kind: sets[obj["name"]]})
        elif kind == "element":
            sets[obj["name"]].setdefault("elem", []).extend(obj["elem"])
        else:
            items.append({kind: obj})
    return items


@pytest.mark.parametrize("case", GOLDEN, ids=[p.name for p in GOLDEN])
def test_json_decodes_back_to_the_state_the_text_prints(case: Path) -> None:
    """One printer writes both dialects: the JSON of a state decodes to the
    state whose text is the golden file."""
    state = golden_state(case)
    assert NFT.write(state) == (case / "expected.nft").read_text()
    cmds = printer.commands(diff(None, state))
    back = tuple(decode.table(listing(cmds, t.family), t.family, t.name) for t in state.tables)
    assert State(back) == state


@pytest.mark.parametrize("case", GOLDEN, ids=[p.name for p in GOLDEN])
def test_full_transaction_commits_to_the_state(case: Path) -> None:
    state = golden_state(case)
    assert diff(None, state).after == state
    assert len(diff(state, state)) == 0


def _state(pols: list[dict[str, Any]]) -> State:
    cluster = build_cluster(parse_text(dump(world(pols)), "<t>"), warn=lambda m: None)
    return render(ruleset_of(cluster, "node-1"))


@settings(max_examples=30, deadline=None)
@given(before=policies(0, 3), after=policies(0, 3))
def test_diff_reaches_the_desired_state(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    old, new = _state(before), _state(after)
    tx = diff(old, new)
    assert tx.after == new
    verbs = {(v, type(o).__name__) for v, o in tx.ops}
    if old.tables[0].chains == new.tables[0].chains:
        assert (TxVerb.DELETE, "Table") not in verbs


def _table(*chains: Chain, sets: tuple[Set, ...] = ()) -> State:
    return State((Table("inet", "t", {s.name: s for s in sets}, {c.name: c for c in chains}),))


def test_transaction_refuses_what_the_state_does_not_have() -> None:
    s = Set("inet", "t", "s", ("ipv4_addr",))
    state = _table(Chain("inet", "t", "c"), sets=(s,))
    with pytest.raises(BackendError, match="no such set"):
        Transaction(state).add(Element("inet", "t", "nope", ("192.0.2.1",)))
    jump = Rule("inet", "t", "c", (Verdict(low.Verb.JUMP, "gone"),))
    with pytest.raises(BackendError, match="no such chain"):
        Transaction(state).add(jump)
    lookup = Rule(
        "inet", "t", "c", (Match(Op.EQ, Meta("iifname"), SetRef("x")), Verdict(low.Verb.DROP))
    )
    with pytest.raises(BackendError, match="no such set"):
        Transaction(state).add(lookup)
    with pytest.raises(BackendError, match="not a member"):
        Transaction(state).delete(Element("inet", "t", "s", ("192.0.2.1",)))
    with pytest.raises(BackendError, match="fields"):
        Transaction(state).add(
            Element(
                "inet",
                "t",
                "s",
                (
                    dialect.element(
                        SetKind.NAMED,
                        (ipaddress.ip_address("192.0.2.1"), next(iter(dialect.PROTO_NAMES)), 80),
                    ),
                ),
            )
        )
    with pytest.raises(BackendError, match="no table"):
        Transaction(None).add(s)


def test_transaction_after_is_built_as_it_goes() -> None:
    s = Set("inet", "t", "s", ("ipv4_addr",))
    tx = Transaction(_table(Chain("inet", "t", "c"), sets=(s,)))
    tx.add(Element("inet", "t", "s", ("192.0.2.1", "192.0.2.2")))
    tx.delete(Element("inet", "t", "s", ("192.0.2.1",)))
    assert list(tx.after.tables[0].sets["s"].elements) == ["192.0.2.2"]
    assert len(tx) == 2


def test_unknown_match_is_unsupported_not_dropped() -> None:
    with pytest.raises(BackendError, match="Unsupported match for nftables"):
        dialect.statements(object())  # type: ignore[arg-type]


def test_comments_are_bounded_and_escaped() -> None:
    long = 'a "quoted"\nname ' * 500
    r = dialect.rule(low.Rule((), low.ACCEPT, long), "inet", "t", "c")
    line = printer.rule_text(r)
    assert len(line) < 200 and "\n" not in line and '"quoted"' not in line
    s = dialect.set_(SetDef("s", SetKind.ADDR, Family.V4, (), long), "inet", "t")
    assert all(len(x) < 260 for x in printer.set_text(s))


def test_the_compile_text_leaves_the_revision_marker_out() -> None:
    state = golden_state(GOLDEN[0])
    assert REV_CHAIN in state.tables[0].chains
    assert REV_CHAIN not in NFT.write(state)


def _compiler(pols: list[dict[str, Any]], drop: str = "") -> Compiler:
    objs = [o for o in world(pols) if o["metadata"]["name"] != drop or o["kind"] != "Pod"]
    return Compiler("node-1").load(
        build_cluster(parse_text(dump(objs), "<t>"), warn=lambda m: None)
    )


ALLOW_SAME_NS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "p", "namespace": "x"},
    "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
}


def test_pod_events_patch_elements_only_and_reach_the_fresh_state() -> None:
    comp = _compiler([ALLOW_SAME_NS])
    programmed = render(lower(optimise(comp.graph())))
    comp.changes()
    gone = _compiler([ALLOW_SAME_NS], drop="c")
    for key in sorted(comp.pods):
        if key not in gone.pods:
            comp.remove(Kind.POD, key)
    ch = comp.changes()
    assert not ch.rules and ch.dirty
    tx = patch(programmed, ch, {n: comp.set_def(n, elements=n in ch.reset) for n in ch.dirty})
    assert tx is not None and len(tx) > 0
    assert {type(o) for _, o in tx.ops} == {Element}
    assert tx.after == render(lower(optimise(comp.graph())))


def test_adoption_converges_only_elements() -> None:
    want = _state([ALLOW_SAME_NS])
    inet = want.tables[0]
    edited = {
        n: replace(c, rules=c.rules[:-1]) if n == "forward" else c for n, c in inet.chains.items()
    }
    read = State((Table(inet.family, inet.name, inet.sets, edited), want.tables[1]), read=True)
    # Same revision, but a rule is gone from the kernel (trial: `policyc apply`
    # left a deleted drop rule missing): the edited chain is refilled.
    tx = diff(read, want)
    assert len(tx) > 0 and tx.after == want
    assert {type(o) for _, o in tx.ops} <= {Chain, Rule}
    # Same revision, same chains, elements differ: adopted, elements only.
    fewer = {
        n: replace(s, elements=dict.fromkeys(list(s.elements)[1:])) for n, s in inet.sets.items()
    }
    read = State((Table(inet.family, inet.name, fewer, inet.chains), want.tables[1]), read=True)
    tx = diff(read, want)
    assert len(tx) > 0 and {type(o) for _, o in tx.ops} == {Element} and tx.after == want


def test_statements_policyc_never_writes_decode_as_drift() -> None:
    counter = {"counter": {"packets": 0, "bytes": 0}}
    odd = {"match": {"op": "<", "left": {"meta": {"key": "mark"}}, "right": 3}}
    assert isinstance(decode.stmt(counter), Raw) and isinstance(decode.stmt(odd), Raw)
    assert decode.stmt({"jump": {"target": "c"}}) == Verdict(low.Verb.JUMP, "c")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=40),
    st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 60), max_size=30)), max_size=40),
)
def test_element_set_updates_like_a_set(
    base: list[int], steps: list[tuple[bool, list[int]]]
) -> None:
    fold_often = 2  # small overlays: the fold path runs too
    saved, elements.OVERLAY_MAX = elements.OVERLAY_MAX, fold_often
    try:
        ref = dict.fromkeys(base)
        es = ElementSet(dict(ref))
        for add, values in steps:
            es = es.changed(add=values) if add else es.changed(remove=values)
            for v in values:
                if add:
                    ref[v] = None
                else:
                    ref.pop(v, None)
            assert es == ref and len(es) == len(ref) and set(es) == set(ref)
            assert all(v in es for v in ref) and 61 not in es
    finally:
        elements.OVERLAY_MAX = saved


def test_a_rejected_transaction_names_each_error_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial: a table the kernel refuses (owned by another process) gave the
    same 'Operation not permitted' line once per command, about 50 times."""
    from backends.nftables import kernel

    line = "internal:0:0-0: Error: Could not process rule: Operation not permitted"

    class Refusing:
        def json_cmd(self, cmds: Any) -> tuple[int, str, str]:
            return 1, "", "\n\n".join([line] * 50) + "\n"

    monkeypatch.setattr(kernel, "_ctx", Refusing)
    with pytest.raises(BackendError) as exc:
        kernel.run([{"add": {"table": {"family": "inet", "name": "policyc"}}}])
    assert str(exc.value) == (
        f"nft rejected the transaction (nothing was changed): {line} (50 times)"
    )


def test_undecodable_listing_is_a_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial: with 'inet policyc' owned by another process, libnftables 1.0.6
    printed JSON that did not parse and the JSONDecodeError ended the agent
    thread; a BackendError is retried with backoff instead."""
    from backends.nftables import kernel

    class Garbled:
        def cmd(self, text: str) -> tuple[int, str, str]:
            return 0, '{"nftables": [{"table": {"flags": "\x01\n', ""

    monkeypatch.setattr(kernel, "_ctx", Garbled)
    with pytest.raises(BackendError, match="cannot decode 'nft -j list table inet policyc'"):
        kernel.read("policyc")
