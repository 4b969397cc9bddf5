"""``share_chains`` with the tiers: groups whose Admin rules are the same
rules in another order, or with other actions, keep their own chains; groups
whose tiers hold the same rules in the same order, with their Deny rules
from the same policy (the drop log names it), share one."""

from __future__ import annotations

from policyc.compiler import Compiler
from policyc.ir import Family
from policyc.load import parse_text
from policyc.logprefix import rule_ref
from policyc.lower_log import LogConfig
from policyc.model import Direction
from policyc.parse import build_cluster
from policyc.pipeline import graph_of, ruleset_of
from tests.support.cnp_builders import admin, p_ns, rule, s_ns
from tests.support.world import dump, world


def _groups(objs: list[dict[str, object]]) -> dict[str, str]:
    cluster = build_cluster(parse_text(dump(world(objs)), "<t>"), warn=lambda m: None)
    graph = graph_of(cluster, "node-1")
    pods = {p.key: p for p in cluster.pods}
    c = Compiler("node-1").load(cluster)
    by_name = {g.name: g for g in graph.groups}
    out = {}
    for key in ("x/a", "y/a", "z/a"):
        name = c.group_of(pods[key], Direction.EGRESS, Family.V4)
        assert name is not None
        out[key] = by_name[name].alias or name
    return out


def test_order_and_action_keep_chains_apart() -> None:
    deny, accept = rule("Deny", p_ns(ns="z")), rule("Accept", p_ns(ns="z"))
    objs = [
        admin("x1", 1, s_ns(ns="x"), egress=[deny]),
        admin("x2", 2, s_ns(ns="x"), egress=[accept]),
        admin("y1", 1, s_ns(ns="y"), egress=[accept]),
        admin("y2", 2, s_ns(ns="y"), egress=[deny]),
        admin("z1", 1, s_ns(ns="z"), egress=[deny]),
        admin("z2", 2, s_ns(ns="z"), egress=[accept]),
    ]
    chains = _groups(objs)
    assert chains["x/a"] != chains["y/a"]  # Deny then Accept vs Accept then Deny
    # the same rules in the same order, but x1 and z1 are different Denies:
    # a drop's log line names its policy, so each keeps its chain
    assert chains["x/a"] != chains["z/a"]


def test_same_deny_other_accepts_share() -> None:
    deny, accept = rule("Deny", p_ns(ns="y")), rule("Accept", p_ns(ns="z"))
    objs = [
        admin("d", 1, s_ns(), egress=[deny]),
        admin("x2", 2, s_ns(ns="x"), egress=[accept]),
        admin("z2", 2, s_ns(ns="z"), egress=[accept]),
    ]
    chains = _groups(objs)
    assert chains["x/a"] == chains["z/a"]  # one Deny, Accepts alike: shared
    assert chains["x/a"] != chains["y/a"]


def test_logged_deny_names_its_own_policy() -> None:
    """With ``--log-drops``, each group's Deny logs its own policy's rule."""
    deny = rule("Deny", p_ns(ns="y"))
    objs = [
        admin("x1", 1, s_ns(ns="x"), egress=[deny]),
        admin("z1", 1, s_ns(ns="z"), egress=[deny]),
    ]
    cluster = build_cluster(parse_text(dump(world(objs)), "<t>"), warn=lambda m: None)
    ruleset = ruleset_of(cluster, "node-1", log=LogConfig())
    chains = {c.name: c for c in ruleset.forward}
    c = Compiler("node-1").load(cluster)
    pods = {p.key: p for p in cluster.pods}
    for ns in ("x", "z"):
        name = c.group_of(pods[f"{ns}/a"], Direction.EGRESS, Family.V4)
        assert name is not None
        keys = {p.key for p in cluster.cluster_policies if p.name == f"{ns}1"}
        refs = {r.action.log.prefix for r in chains[name].rules if r.action.log is not None}
        assert refs == {f"pc:drop:E:{rule_ref(k, 0)}" for k in keys}
