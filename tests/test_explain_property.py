"""explain's verdict == the evaluator's == the tracer's, on random clusters.

Random policies (``tests/support/randpol.py``) over the two-node random world
(``tests/support/randworld.py``); every pod pair of one family on ports 79-82
in each protocol, plus pods to and from node and outside addresses.  ``Explainer.case``
raises ``Disagreement`` if the tracer differs, so a pass means all three
agree; each side's ``allowed`` must also agree with the rules it names.
The same holds on worlds where pods share addresses (``test_shared_trace``).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from policyc.evaluate import Evaluator
from policyc.explain import Explainer, PortQuery
from policyc.explain_tiers import TierOutcome
from policyc.load import parse_text
from policyc.model import Protocol
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of
from tests.support.figures import count
from tests.support.randworld import OTHER4, OTHER6, clusters
from tests.support.world import dump
from tests.test_incremental import cluster_of
from tests.test_shared_trace import worlds as shared_worlds
from tests.test_trace_cnp import cnp_worlds

UNDECIDED = (TierOutcome.PASS, TierOutcome.NO_MATCH)
EXAMPLES = int(os.environ.get("POLICYC_EXPLAIN_EXAMPLES", "25"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(world=clusters(), version=st.sampled_from((4, 6)))
def test_explain_equals_evaluator_and_tracer(world: tuple[list[Any], int], version: int) -> None:
    objs, _ = world
    cluster = build_cluster(parse_text(dump(objs), "<random>"), warn=lambda m: None)
    explainer = Explainer(cluster, lambda node: ruleset_of(cluster, node))
    ev = Evaluator(cluster)
    pods = [ip for p in cluster.pods for ip in p.ips if ip.version == version]
    other = [ipaddress.ip_address(t) for t in (OTHER4 if version == 4 else OTHER6)]
    outside = [(p, o) for p in pods[:3] for o in other] + [(o, p) for p in pods[:3] for o in other]
    pairs = list(itertools.product(pods, pods)) + outside
    for (src, dst), proto, port in itertools.product(pairs, Protocol, (79, 80, 81, 82)):
        case = explainer.case(src, dst, PortQuery(port, proto))  # raises on disagreement
        verdict = ev.allowed(src, dst, port, proto)
        assert case.allowed == verdict.allowed, (src, dst, port, proto, verdict)
        for side in (case.egress, case.ingress):
            assert side.allowed == (not side.isolated_by or bool(side.allowed_by))
            assert side.allowed or side.closest
        if not case.exempt and verdict.allowed:
            assert case.egress.allowed_by == verdict.egress_by
            assert case.ingress.allowed_by == verdict.ingress_by
        count("explain_cases")
        count("explain_allowed", case.allowed)
        count("explain_traced", bool(case.hops))


@settings(
    max_examples=max(EXAMPLES // 2, 1),
    deadline=None,
    derandomize=True,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(objs=shared_worlds())
def test_explain_agrees_on_shared_addresses(objs: list[Any]) -> None:
    """Guests sharing the base pods' addresses on either node: least privilege
    in explain's sides, the evaluator and each node's ruleset alike."""
    cluster = cluster_of(objs)
    explainer = Explainer(cluster, lambda node: ruleset_of(cluster, node))
    ev = Evaluator(cluster)
    ips = sorted({ip for p in cluster.pods for ip in p.ips if ip.version == 4}, key=int)
    for (src, dst), (proto, port) in itertools.product(
        itertools.product(ips, ips), ((Protocol.TCP, 80), (Protocol.TCP, 81), (Protocol.UDP, 80))
    ):
        case = explainer.case(src, dst, PortQuery(port, proto))  # raises on disagreement
        assert case.allowed == ev.allowed(src, dst, port, proto).allowed
        count("explain_shared_cases")
        count("explain_shared_claimants", len(case.src.pods) > 1 or len(case.dst.pods) > 1)


@settings(
    max_examples=max(EXAMPLES // 2, 1),
    deadline=None,
    derandomize=True,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(objs=cnp_worlds(), version=st.sampled_from((4, 6)))
def test_explain_names_the_deciding_tier(objs: list[Any], version: int) -> None:
    """Worlds mixing ClusterNetworkPolicy and NetworkPolicy: explain, the
    evaluator and the tracer agree, a side the Admin or Baseline tier
    decided ends with that tier, policy and rule as the evaluator's decision,
    and a side a ClusterNetworkPolicy selects but no tier decided says so."""
    cluster = build_cluster(parse_text(dump(objs), "<random>"), warn=lambda m: None)
    explainer = Explainer(cluster, lambda node: ruleset_of(cluster, node))
    ev = Evaluator(cluster)
    pods = [ip for p in cluster.pods for ip in p.ips if ip.version == version]
    other = [ipaddress.ip_address(t) for t in (OTHER4 if version == 4 else OTHER6)]
    pairs = list(itertools.product(pods, pods)) + [(p, o) for p in pods[:4] for o in other]
    for (src, dst), proto, port in itertools.product(pairs, Protocol, (80, 81)):
        case = explainer.case(src, dst, PortQuery(port, proto))  # raises on disagreement
        verdict = ev.allowed(src, dst, port, proto)
        assert case.allowed == verdict.allowed, (src, dst, port, proto, verdict)
        for side, d in ((case.egress, verdict.egress), (case.ingress, verdict.ingress)):
            # Only the last line may be a verdict or say that no tier decided.
            assert all(t.outcome in UNDECIDED for t in side.tiers[:-1]), side.tiers
            if d is not None and d.tier in ("Admin", "Baseline"):
                assert side.decided is not None
                assert (side.decided.policies, side.decided.rule) == ((d.policy,), d.rule)
                assert side.allowed == d.allowed
                count("explain_tier_sides")
            elif side.tiers and d is not None and d.tier == "Default":
                # A ClusterNetworkPolicy selects the pod, yet none decided.
                assert side.tiers[-1].outcome is TierOutcome.DEFAULT and side.allowed
                count("explain_undecided_tier_sides")
        count("explain_cnp_cases")
