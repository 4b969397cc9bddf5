"""``policyc explain``: both directions, isolating policies, the admitting
rule or the closest misses, the trace, and loud failure when the tracer and
the evaluator disagree.  The full text is pinned in ``test_reach_golden.py``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from policyc.cli import main
from policyc.cli import reach as cli_reach
from policyc.explain import Disagreement, Explainer, PortQuery, parse_port
from policyc.model import Cluster, Protocol
from policyc.pipeline import read_cluster, ruleset_of

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
SAME_NS = str(ROOT / "allow-from-same-namespace")
DENY_ALL = str(ROOT / "default-deny-all")


def explainer(case: str) -> Explainer:
    cluster = read_cluster([case])
    return Explainer(cluster, lambda node: ruleset_of(cluster, node))


def test_both_directions_denied_are_both_reported() -> None:
    (case,) = explainer(DENY_ALL).explain("z/a", "z/b", "80", family=4).cases
    assert not case.egress.allowed and not case.ingress.allowed
    assert case.egress.isolated_by == case.ingress.isolated_by == ("z/default-deny-all",)
    assert [m.rule for m in case.ingress.closest] == ["z/default-deny-all ingress"]
    assert case.hops and not case.hops[0].allowed


def test_no_policies_neither_pod_is_isolated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "x/a", "y/b", "80", str(ROOT / "_base")]) == 0
    out = capsys.readouterr().out
    assert out.count("neither pod is isolated") == 2  # IPv4 and IPv6


def test_all_addresses_of_a_pod_by_default_and_family_picks_one() -> None:
    ex = explainer(SAME_NS)
    assert [c.src.ip.version for c in ex.explain("x/b", "x/a", "80").cases] == [4, 6]
    assert [c.src.ip.version for c in ex.explain("x/b", "x/a", "80", family=6).cases] == [6]


def test_the_admitting_rule_and_closest_misses_are_named() -> None:
    ex = explainer(SAME_NS)
    ok = ex.explain("y/b", "x/a", "serve-81-udp", family=4)
    assert ok.port == PortQuery(81, Protocol.UDP, "serve-81-udp")
    assert ok.cases[0].ingress.allowed_by == ("x/allow-same-ns ingress[1]",)
    (denied,) = ex.explain("z/b", "x/a", "81", family=4).cases
    reasons = {m.rule: m.reasons for m in denied.ingress.closest}
    assert reasons["x/allow-same-ns ingress[1]"] == (
        "peer[0] ipBlock 10.244.0.0/16: 10.244.1.17 is in except 10.244.1.16/30",
    )
    assert (
        "port 81/TCP is not among ports 80/TCP, serve-81-udp/UDP"
        in (reasons["x/allow-same-ns ingress[0]"])
    )


@pytest.mark.parametrize(
    ("port", "parsed"),
    [("80", (80, None)), ("53/udp", (53, Protocol.UDP)), ("http/TCP", ("http", Protocol.TCP))],
)
def test_parse_port(port: str, parsed: tuple[object, object]) -> None:
    assert parse_port(port) == parsed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x/b", "x/a", "80/icmp"], "ICMP has no ports"),
        (["x/b", "x/a", "icmp"], "ICMP has no ports"),
        (["x/b", "x/a", "80/tcp/x"], "want PORT[/PROTOCOL] with PROTOCOL one of TCP, UDP, SCTP"),
        (["x/b", "x/a", "99999"], "want PORT[/PROTOCOL] with PORT 1-65535"),
        (["x/b", "x/a", "api-port"], "not a containerPort name of x/a (it has serve-80-tcp"),
        (["x/b", "x/a", "serve-80-tcp/sctp"], "not a containerPort name of x/a"),
        (["nope/a", "x/a", "80"], "no pod 'nope/a' in the input"),
        (["a", "x/a", "80"], "'a': want ns/name or an IP"),
        (["10.244.1.11", "x/a", "80", "--family", "6"], "10.244.1.11 has no IPv6 address"),
        (["10.244.1.11", "2001:db8:244:1::10", "80"], "share no IP family"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", *args[:3], SAME_NS, *args[3:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("policyc: error: ") and message in err and "Traceback" not in err


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "z/a", "z/b", "80", DENY_ALL, "-o", "json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["allowed"] is False and len(doc["cases"]) == 2
    case = doc["cases"][0]
    assert case["egress"]["isolatedBy"] == ["z/default-deny-all"]
    assert case["trace"][0]["verdict"] == "drop" and case["trace"][0]["steps"]


def _allow_everything(cluster: Cluster, node: str | None = None, opt: bool = True):  # type: ignore[no-untyped-def]
    return ruleset_of(dataclasses.replace(cluster, policies=()), node, opt)


def test_tracer_disagreement_is_loud(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ruleset that does not enforce the policies: explain refuses to answer."""
    cluster = read_cluster([DENY_ALL])
    wrong = Explainer(cluster, lambda node: _allow_everything(cluster, node))
    with pytest.raises(Disagreement, match="tracer and evaluator disagree"):
        wrong.explain("z/a", "z/b", "80")
    monkeypatch.setattr(cli_reach, "ruleset_of", _allow_everything)
    assert main(["explain", "z/a", "z/b", "80", DENY_ALL]) == 1
    assert "tracer and evaluator disagree: evaluator denies" in capsys.readouterr().err


PASS_THEN_NP = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: pass-z
spec:
  tier: Admin
  priority: 10
  subject:
    namespaces: {matchLabels: {ns: x}}
  ingress:
  - name: to-np
    action: Pass
    from:
    - namespaces: {matchLabels: {ns: z}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: only-y
  namespace: x
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
"""


def test_an_admin_pass_is_named_before_the_networkpolicy_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pass "skip[s] over all lower-priority ClusterNetworkPolicies in this
    tier": NetworkPolicy then decides, and explain says which rule passed."""
    (tmp_path / "p.yaml").write_text(PASS_THEN_NP)
    assert main(["explain", "z/a", "x/a", "80", str(ROOT / "_base"), str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "    ingress of x/a: isolated by x/only-y\n" in out
    assert '      tier Admin: ClusterNetworkPolicy pass-z ingress[0] "to-np": Pass\n' in out
    assert "denied: no rule of these policies admits it" in out


SELECT_NO_MATCH = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: x-no-y}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {ns: x}}}
  egress:
  - {action: Deny, to: [{namespaces: {matchLabels: {ns: y}}}]}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: x-no-y-udp}
spec:
  tier: Admin
  priority: 20
  subject: {namespaces: {matchLabels: {ns: x}}}
  egress:
  - action: Deny
    to: [{namespaces: {matchLabels: {ns: z}}}]
    protocols: [{udp: {destinationPort: {number: 53}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: default}
spec:
  tier: Baseline
  priority: 10
  subject: {namespaces: {matchLabels: {ns: z}}}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {ns: y}}}]}
"""


def test_a_cluster_policy_that_selects_but_does_not_match_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain said "neither pod is isolated: no policy selects either of
    them" although ClusterNetworkPolicies selected both pods: it names them,
    says none of their rules matched, and what decided (here the default).
    A policy without rules of the direction is not named for it."""
    (tmp_path / "p.yaml").write_text(SELECT_NO_MATCH)
    argv = ["explain", "x/a", "z/a", "80", "--family", "4", str(ROOT / "_base"), str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "neither pod is isolated" not in out
    assert (
        "    egress of x/a: not isolated (no NetworkPolicy with policyTypes Egress selects it)\n"
        "      tier Admin: ClusterNetworkPolicy x-no-y, ClusterNetworkPolicy x-no-y-udp select"
        " it; none of their egress rules matched\n"
        "      no tier decided: allowed by default\n"
        "    ingress of z/a: not isolated (no NetworkPolicy with policyTypes Ingress selects it)\n"
        "      tier Baseline: ClusterNetworkPolicy default selects it; none of its ingress rules"
        " matched\n"
        "      no tier decided: allowed by default\n"
    ) in out


def test_a_networkpolicy_verdict_follows_the_cluster_policies_that_did_not_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Isolated by a NetworkPolicy: the Admin policies that selected the pod
    and did not match come first, then the NetworkPolicy decides; Baseline
    is not asked."""
    (tmp_path / "p.yaml").write_text(SELECT_NO_MATCH)
    pol = PASS_THEN_NP.split("---\n")[1]
    (tmp_path / "np.yaml").write_text(pol)
    argv = ["explain", "z/a", "x/a", "80", "--family", "4", str(ROOT / "_base"), str(tmp_path)]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert (
        "    ingress of x/a: isolated by x/only-y\n"
        "      tier Admin: ClusterNetworkPolicy x-no-y selects it; none of its ingress rules"
        " matched\n"
        "      denied: no rule of these policies admits it; closest rules:\n"
    ) in out
    assert "tier Baseline" not in out and "no tier decided" not in out


PASS_THEN_BASELINE = """\
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: pass-z}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {ns: x}}}
  ingress:
  - name: to-np
    action: Pass
    from: [{namespaces: {matchLabels: {ns: z}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: default}
spec:
  tier: Baseline
  priority: 10
  subject: {namespaces: {matchLabels: {ns: x}}}
  ingress:
  - name: no-z
    action: Deny
    from: [{namespaces: {matchLabels: {ns: z}}}]
"""


def test_an_admin_pass_is_named_before_the_baseline_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Admin Pass handed the direction to NetworkPolicy, which isolates
    nothing, and Baseline denied: explain showed only the Baseline line."""
    (tmp_path / "p.yaml").write_text(PASS_THEN_BASELINE)
    argv = ["explain", "z/a", "x/a", "80", "--family", "4", str(ROOT / "_base"), str(tmp_path)]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert (
        "    ingress of x/a: denied by a tier\n"
        '      tier Admin: ClusterNetworkPolicy pass-z ingress[0] "to-np": Pass\n'
        '      tier Baseline: ClusterNetworkPolicy default ingress[0] "no-z": Deny\n'
        "    trace on node-1 "
    ) in out
    assert main([*argv, "-o", "json"]) == 3
    tiers = json.loads(capsys.readouterr().out)["cases"][0]["ingress"]["tiers"]
    assert tiers == [
        'Admin: ClusterNetworkPolicy pass-z ingress[0] "to-np": Pass',
        'Baseline: ClusterNetworkPolicy default ingress[0] "no-z": Deny',
    ]
