"""Drop logging of ClusterNetworkPolicy Deny rules (issue 12): the log rule
before each tier Deny names the rule, and the agent maps it back."""

from __future__ import annotations

from policyc.chains import Verb
from policyc.compiler import Compiler
from policyc.evaluate import Evaluator
from policyc.logprefix import MAX_PREFIX, parse_prefix, parse_rule_ref, rule_ref
from policyc.lower_log import LogConfig
from policyc.pipeline import ruleset_of
from tests.support.cnp_builders import admin, baseline, p_ns, rule, s_ns
from tests.test_droplog import NODE, ULOGD_LINE, by_ip, cluster_of, local
from watcher.droplog import Attributor, build_view
from watcher.metrics import Metrics
from watcher.nflog import parse_line

DENY_Y = admin("no-y", 5, s_ns(ns="x"), ingress=[rule("Deny", p_ns(ns="y"), name="block-y")])
DENY_KEY = "ClusterNetworkPolicy no-y"
BASE_KEY = "ClusterNetworkPolicy base"
BASE = baseline("base", 5, s_ns(ns="x"), ingress=[rule("Deny", p_ns(ns="z"))])


def test_rule_ref_round_trips_and_fits() -> None:
    ref = rule_ref("ClusterNetworkPolicy " + "n" * 253, 99)
    assert parse_rule_ref(ref) is not None and parse_rule_ref("in4_abc") is None
    assert len(f"pc:drop:I:{ref}") < MAX_PREFIX


def test_each_tier_deny_is_logged_with_its_own_matches() -> None:
    rs = ruleset_of(cluster_of(DENY_Y, BASE), NODE, log=LogConfig(7))
    pairs = [
        (c.rules[i], c.rules[i + 1])
        for c in rs.forward
        for i in range(len(c.rules) - 1)
        if c.rules[i].action.verb is Verb.LOG and c.rules[i].matches
    ]
    refs = {rule_ref("ClusterNetworkPolicy no-y", 0), rule_ref("ClusterNetworkPolicy base", 0)}
    seen = set()
    for log, drop in pairs:
        assert drop.action.verb is Verb.DROP and drop.matches == log.matches
        prefix = parse_prefix(log.action.target)
        assert prefix is not None
        seen.add(prefix.chain)
    assert seen == refs
    plain = ruleset_of(cluster_of(DENY_Y, BASE), NODE)
    assert not any(r.action.verb is Verb.LOG for c in plain.forward for r in c.rules)


def test_attributor_names_the_tier_policy_and_rule() -> None:
    c = Compiler(NODE).load(cluster_of(DENY_Y, BASE))
    m = Metrics()
    att = Attributor([m.count_drop])
    att.view = build_view(c, by_ip(c), local(c))
    line = ULOGD_LINE.replace("pc:drop:I:ingress4", "pc:drop:I:" + rule_ref(DENY_KEY, 0))
    pkt = parse_line(line)
    assert pkt is not None
    rec = att.record(pkt)
    assert rec is not None and rec.pod == "x/a" and rec.policies == (DENY_KEY,)
    js = rec.to_json()
    assert (js["tier"], js["policy"], js["rule"]) == ("Admin", DENY_KEY, "block-y")
    att(parse_line(line.replace("49838", "49839")))  # type: ignore[arg-type]
    text = m.render().decode()
    assert 'namespace="",policy="ClusterNetworkPolicy no-y"' in text
    base = ULOGD_LINE.replace("pc:drop:I:ingress4", "pc:drop:I:" + rule_ref(BASE_KEY, 0))
    base = base.replace("49838", "49840")  # another attempt, not a retransmission
    rec = att.record(parse_line(base))  # type: ignore[arg-type]
    assert rec is not None and rec.rule is not None
    assert (rec.rule.tier, rec.rule.rule) == ("Baseline", "ingress[0]")


def _audit(obj: dict[str, object]) -> dict[str, object]:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    meta["annotations"] = {"policyc.io/mode": "audit"}
    return obj


def test_audit_cnp_logs_would_drop_and_drops_nothing() -> None:
    audit_y = _audit(
        admin(
            "audit-y",
            5,
            s_ns(ns="x"),
            ingress=[rule("Accept", p_ns(ns="z")), rule("Deny", p_ns(ns="y"), name="block-y")],
        )
    )
    cluster = cluster_of(audit_y)
    (pol,) = cluster.cluster_policies
    assert pol.audit
    rs = ruleset_of(cluster, NODE, log=LogConfig(7))
    verbs = [r.action.verb for c in rs.forward for r in c.rules if r.comment.startswith("log")]
    assert Verb.LOG in verbs
    tier_rules = [r for c in rs.forward for r in c.rules if "audit-y" in r.comment]
    assert tier_rules == []  # no Accept, no drop: only the audit log line
    prefixes = [
        parse_prefix(r.action.target)
        for c in rs.forward
        for r in c.rules
        if r.action.verb is Verb.LOG and r.matches
    ]
    assert {(p.tag.value, p.chain) for p in prefixes if p is not None} == {
        ("audit", rule_ref("ClusterNetworkPolicy audit-y", 1))
    }
    logging = [c for c in rs.forward if any(r.action.verb is Verb.LOG for r in c.rules)]
    assert logging and not any(r.action.verb is Verb.DROP for c in logging for r in c.rules)
    y_a, x_a = "10.244.1.13", "10.244.1.10"
    assert Evaluator(cluster).allowed(y_a, x_a, 80, "TCP").allowed
    assert not Evaluator(cluster, audited=True).allowed(y_a, x_a, 80, "TCP").allowed
