"""Drop logging of ClusterNetworkPolicy Deny rules (issue 12): the log rule
before each tier Deny names the rule, and the agent maps it back."""

from __future__ import annotations

from ipaddress import ip_address

from policyc.chains import Verb
from policyc.compiler import Compiler
from policyc.evaluate import Evaluator
from policyc.logprefix import MAX_PREFIX, parse_prefix, parse_rule_ref, rule_ref
from policyc.lower_log import LogConfig
from policyc.model import Cluster, Protocol
from policyc.names import pod_iface
from policyc.pipeline import ruleset_of
from policyc.trace import Packet, trace
from tests.support.cnp_builders import admin, baseline, p_ns, p_pods, rule, s_ns, sel
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


def _logs(cluster: Cluster, src: str, dst: str) -> tuple[str, list[str]]:
    """The verdict of ``src -> dst:80/TCP`` through the logged ruleset and
    the log prefixes on its way."""
    rs = ruleset_of(cluster, NODE, log=LogConfig(7))
    pods = {str(ip): p for p in cluster.pods for ip in p.ips}
    iif = pod_iface(pods[src].namespace, pods[src].name)
    t = trace(rs, Packet(ip_address(src), ip_address(dst), Protocol.TCP, 80, iif))
    logs = {(c.name, i): r for c in rs.forward for i, r in enumerate(c.rules)}
    return t.verdict.value, [
        logs[(s.chain, s.index)].action.target for s in t.steps if s.verb is Verb.LOG
    ]


Y_A, Z_A, X_A = "10.244.1.13", "10.244.1.16", "10.244.1.10"


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
    assert not any(
        r.action.verb is Verb.DROP and "audit" in r.comment for c in rs.forward for r in c.rules
    )
    prefixes = [
        parse_prefix(r.action.target)
        for c in rs.forward
        for r in c.rules
        if r.action.verb is Verb.LOG and r.matches
    ]
    assert {(p.tag.value, p.chain) for p in prefixes if p is not None} == {
        ("audit", rule_ref("ClusterNetworkPolicy audit-y", 1))
    }
    audit_ref = "pc:audit:I:" + rule_ref("ClusterNetworkPolicy audit-y", 1)
    assert _logs(cluster, Y_A, X_A) == ("accept", [audit_ref])
    assert _logs(cluster, Z_A, X_A) == ("accept", [])
    assert Evaluator(cluster).allowed(Y_A, X_A, 80, "TCP").allowed
    assert not Evaluator(cluster, audited=True).allowed(Y_A, X_A, 80, "TCP").allowed


def test_audit_accept_above_deny_shadows_it_and_one_deny_logs_once() -> None:
    """As if enforced: the audit policy's first matching rule ends it, so an
    Accept or Pass above its Deny logs nothing, and of two matching Denies
    only the first logs (one line per attempt)."""
    audit = _audit(
        admin(
            "audit-x",
            5,
            s_ns(ns="x"),
            ingress=[
                rule("Pass", p_pods(sel(ns="y"), sel(pod="a"))),
                rule("Accept", p_pods(sel(ns="z"), sel(pod="a"))),
                rule("Deny", p_ns(ns="y"), name="first"),
                rule("Deny", p_ns(), name="second"),
            ],
        )
    )
    cluster = cluster_of(audit, DENY_Y)
    first = "pc:audit:I:" + rule_ref("ClusterNetworkPolicy audit-x", 2)
    second = "pc:audit:I:" + rule_ref("ClusterNetworkPolicy audit-x", 3)
    enforced = "pc:drop:I:" + rule_ref(DENY_KEY, 0)
    assert _logs(cluster, Y_A, X_A) == ("drop", [enforced])  # Pass above: no audit line
    assert _logs(cluster, "10.244.1.14", X_A) == ("drop", [first, enforced])  # y/b
    assert _logs(cluster, Z_A, X_A) == ("accept", [])  # Accept above the Denies
    assert _logs(cluster, "10.244.1.17", X_A) == ("accept", [second])  # z/b: the second only
    audited = Evaluator(cluster, audited=True)
    assert audited.allowed(Z_A, X_A, 80, "TCP").allowed
    assert not audited.allowed("10.244.1.17", X_A, 80, "TCP").allowed


def test_v1alpha1_audit_mode_is_read() -> None:
    anp: dict[str, object] = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "a", "annotations": {"policyc.io/mode": "audit"}},
        "spec": {"priority": 3, "subject": {"namespaces": {}}, "ingress": []},
    }
    banp: dict[str, object] = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default", "annotations": {"policyc.io/mode": "audit"}},
        "spec": {"subject": {"namespaces": {}}, "ingress": []},
    }
    assert all(p.audit for p in cluster_of(anp, banp).cluster_policies)
    assert not any(p.audit for p in cluster_of(_plain(anp), _plain(banp)).cluster_policies)


def _plain(obj: dict[str, object]) -> dict[str, object]:
    return {**obj, "metadata": {"name": obj["metadata"]["name"]}}  # type: ignore[index]
