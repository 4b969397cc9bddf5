"""The JSON dialect and the diff engine on the kernel.

Text script and JSON transaction program identical tables for every golden
case; and applying ``diff(old, new)`` on top of ``old`` leaves exactly what a
fresh ``new`` would, for random pairs of states.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from backends import nft_diff
from backends import nftables as nft_text
from policyc.pipeline import read_cluster, render, ruleset_of
from tests.support.randpol import policies
from tests.support.world import ROOT, dump, world

from .netlab import Lab
from .nsutil import in_netns

GOLDEN = sorted(p.parent for p in (ROOT / "fixtures").glob("*/expected.nft"))


def normalized() -> dict[str, Any]:
    """policyc's tables as data: set elements and chain rules, without handles."""
    import nftables  # type: ignore[import-not-found]

    nft = nftables.Nftables()
    nft.set_json_output(True)
    out: dict[str, Any] = {}
    for family in ("inet", "bridge"):
        rc, text, _ = nft.cmd(f"list table {family} policyc")
        if rc != 0:
            continue
        for item in json.loads(text)["nftables"]:
            if "set" in item:
                s = item["set"]
                elems = sorted(json.dumps(e, sort_keys=True) for e in s.get("elem", []))
                out[f"{family} set {s['name']}"] = (s["type"], elems)
            elif "chain" in item:
                out.setdefault(f"{family} chain {item['chain']['name']}", [])
            elif "rule" in item:
                r = item["rule"]
                out.setdefault(f"{family} chain {r['chain']}", []).append(
                    json.dumps([r["expr"], r.get("comment")], sort_keys=True)
                )
    return out


@pytest.mark.parametrize("case", GOLDEN, ids=[p.name for p in GOLDEN])
def test_json_and_text_program_the_same_tables(clean_lab: Lab, case: Path) -> None:
    args = (case / "args").read_text().split() if (case / "args").exists() else []
    node = args[1] if args[:1] == ["--node"] else None
    cluster = read_cluster([str(case)], warn=lambda m: None)
    with in_netns(clean_lab.node.netns):
        nft_diff.apply_json(nft_diff.diff(None, nft_diff.state_of(ruleset_of(cluster, node))))
        via_json = nft_diff.listing()
        nft_text.apply(render(cluster, "nftables", node))
        via_text = nft_diff.listing()
    assert via_json == via_text


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(before=policies(0, 3), after=policies(0, 3))
def test_diff_reaches_the_fresh_state(
    lab: Lab, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    def state(pols: list[dict[str, Any]]) -> nft_diff.State:
        from policyc.load import parse_text
        from policyc.parse import build_cluster

        cluster = build_cluster(parse_text(dump(world(pols)), "<t>"))
        return nft_diff.state_of(ruleset_of(cluster, "node-1"))

    old, new = state(before), state(after)
    with in_netns(lab.node.netns):
        nft_diff.apply_json(nft_diff.diff(None, new))
        fresh = normalized()
        nft_diff.apply_json(nft_diff.diff(None, old))
        nft_diff.apply_json(nft_diff.diff(old, new))
        assert normalized() == fresh
        assert nft_diff.diff(new, new) == []
    lab.flush_firewall()


@pytest.mark.parametrize("case", GOLDEN, ids=[p.name for p in GOLDEN])
def test_kernel_summary_matches_programmed_state(clean_lab: Lab, case: Path) -> None:
    """Drift detection must see no drift right after programming (no false repairs)."""
    cluster = read_cluster([str(case)], warn=lambda m: None)
    state = nft_diff.state_of(ruleset_of(cluster))
    with in_netns(clean_lab.node.netns):
        nft_diff.apply_json(nft_diff.diff(None, state))
        assert nft_diff.kernel_summary() == nft_diff.summary(state)
        nft = __import__("nftables").Nftables()
        assert nft.cmd("flush set bridge policyc spoof4")[0] == 0
        assert nft_diff.kernel_summary() != nft_diff.summary(state)
        nft_diff.apply_json(nft_diff.diff(None, state))
        nft.set_json_output(True)
        nft.set_handle_output(True)
        listed = json.loads(nft.cmd("list chain inet policyc forward")[1])["nftables"]
        handle = next(i["rule"]["handle"] for i in listed if "rule" in i)
        nft.set_json_output(False)
        assert nft.cmd(f"delete rule inet policyc forward handle {handle}")[0] == 0
        assert nft_diff.kernel_summary() != nft_diff.summary(state)


def test_startup_adopts_matching_tables_and_converges_elements(
    clean_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start the agent reads what the kernel holds: tables carrying its
    revision are adopted and only set elements converge; anything else is
    replaced whole, in one transaction either way."""
    from policyc.compiler import Compiler
    from policyc.load import parse_text
    from policyc.parse import build_cluster
    from watcher.dp_nftables import NftDataplane

    def compiler(pols: list[dict[str, Any]], drop: str = "") -> Compiler:
        objs = [o for o in world(pols) if o["metadata"]["name"] != drop or o["kind"] != "Pod"]
        return Compiler("node-1").load(build_cluster(parse_text(dump(objs), "<t>")))

    pols = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "x"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
        }
    ]
    sent: list[list[dict[str, Any]]] = []
    real = nft_diff.apply_json

    def spy(cmds: list[dict[str, Any]]) -> None:
        sent.append(cmds)
        real(cmds)

    monkeypatch.setattr(nft_diff, "apply_json", spy)

    def verbs() -> set[str]:
        return {f"{verb} {next(iter(body))}" for cmd in sent[-1] for verb, body in cmd.items()}

    with in_netns(clean_lab.node.netns):
        NftDataplane().sync(compiler(pols))
        assert "delete table" in verbs()
        # A new agent, one pod fewer: same chains, so it adopts and sends elements only.
        second = NftDataplane()
        assert second.sync(compiler(pols, drop="c")).changed
        assert verbs() == {"delete element"}
        assert not second.drifted()
        # A different policy set: the chains differ, so the tables are replaced.
        third = NftDataplane()
        third.sync(compiler([]))
        assert "delete table" in verbs() and not third.drifted()
