"""The nftables backend on the kernel: what ``apply`` programs, ``read_kernel``
reads back exactly (every element, every rule body); a diff applied on top of
an old state leaves exactly the new one; an agent that restarts adopts
matching tables and converges only elements.  ``apply`` commits ``nft -f``
text; the libnftables JSON of ``compile --json`` must program the same.

(That the nft text and the JSON say the same is a unit test now that one
printer writes both: tests/test_nft_backend.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from backends import BACKENDS
from backends.nftables import kernel, printer
from backends.nftables.objects import State, Transaction
from policyc.pipeline import read_cluster, ruleset_of
from tests.support.randpol import policies
from tests.support.world import ROOT, dump, world

from .netlab import Lab
from .nsutil import in_netns

GOLDEN = sorted(p.parent for p in (ROOT / "fixtures").glob("*/expected.nft"))
NFT = BACKENDS["nftables"]


def _state(case: Path) -> State:
    state: State = NFT.render(ruleset_of(read_cluster([str(case)], warn=lambda m: None)))
    return state


@pytest.mark.parametrize("case", GOLDEN, ids=[p.name for p in GOLDEN])
def test_read_kernel_after_apply_is_tx_after(clean_lab: Lab, case: Path) -> None:
    """Element-exact and rule-body-exact: no false drift right after apply."""
    with in_netns(clean_lab.node.netns):
        tx = NFT.diff(None, _state(case))
        NFT.apply(tx)
        assert NFT.read_kernel() == tx.after
        # and through the text path (policyc compile | nft -f) too
        kernel.check(NFT.write(tx.after))
        # ``policyc compile --json`` (libnftables JSON) programs the same table
        assert isinstance(tx, Transaction)
        kernel.run(printer.commands(tx))
        assert NFT.read_kernel() == tx.after


def _rules(chain: str) -> list[dict[str, Any]]:
    nft = __import__("nftables").Nftables()
    nft.set_json_output(True)
    nft.set_handle_output(True)
    listed = json.loads(nft.cmd(f"list chain inet policyc {chain}")[1])["nftables"]
    return [i["rule"] for i in listed if "rule" in i]


def test_drift_is_seen_in_elements_rules_and_rule_bodies(clean_lab: Lab) -> None:
    state = _state(GOLDEN[0])
    with in_netns(clean_lab.node.netns):
        nft = __import__("nftables").Nftables()  # its socket is the netns's
        tx = NFT.diff(None, state)
        NFT.apply(tx)
        assert nft.cmd("flush set bridge policyc spoof4")[0] == 0
        assert NFT.read_kernel() != tx.after
        NFT.apply(NFT.diff(None, state))
        rule = next(r for r in _rules("forward") if r.get("comment"))
        # Same comment, another body: only comparing bodies sees it.
        edit = (
            f"replace rule inet policyc forward handle {rule['handle']} "
            f'ip saddr 192.0.2.1 accept comment "{rule["comment"]}"'
        )
        assert nft.cmd(edit)[0] == 0, edit
        assert NFT.read_kernel() != tx.after
        NFT.apply(NFT.diff(None, state))
        assert NFT.read_kernel() == tx.after
        assert (
            nft.cmd(f"delete rule inet policyc forward handle {_rules('forward')[0]['handle']}")[0]
            == 0
        )
        assert NFT.read_kernel() != tx.after


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
    def state(pols: list[dict[str, Any]]) -> State:
        from policyc.load import parse_text
        from policyc.parse import build_cluster

        cluster = build_cluster(parse_text(dump(world(pols)), "<t>"))
        out: State = NFT.render(ruleset_of(cluster, "node-1"))
        return out

    old, new = state(before), state(after)
    with in_netns(lab.node.netns):
        NFT.apply(NFT.diff(None, old))
        tx = NFT.diff(old, new)
        NFT.apply(tx)
        assert NFT.read_kernel() == tx.after == new
        assert len(NFT.diff(new, new)) == 0
    lab.flush_firewall()


def test_startup_adopts_matching_tables_and_converges_elements(
    clean_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start the agent reads what the kernel holds: tables carrying its
    revision are adopted and only set elements converge; anything else is
    replaced whole, in one transaction either way."""
    from policyc.compiler import Compiler
    from policyc.load import parse_text
    from policyc.parse import build_cluster
    from watcher.dataplane import Dataplane

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
    sent: list[str] = []
    real = kernel.run_text

    def spy(script: str) -> None:
        sent.append(script)
        real(script)

    monkeypatch.setattr(kernel, "run_text", spy)

    def verbs() -> set[str]:
        # One command a line; an element list continues on indented lines.
        return {" ".join(ln.split()[:2]) for ln in sent[-1].splitlines() if ln[:1].isalpha()}

    with in_netns(clean_lab.node.netns):
        Dataplane(NFT).sync(compiler(pols))
        assert "delete table" in verbs()
        # A new agent, one pod fewer: same chains, so it adopts and sends elements only.
        second = Dataplane(NFT)
        assert second.sync(compiler(pols, drop="c")).changed
        assert verbs() == {"delete element"}
        assert not second.drifted()
        # A different policy set: the chains differ, so they are converged.
        third = Dataplane(NFT)
        third.sync(compiler([]))
        assert not third.drifted()
