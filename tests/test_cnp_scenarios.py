"""The ClusterNetworkPolicy scenarios (tests/support/cnp_scenarios.py), written from the
API documentation, checked against the reference evaluator: every probe's verdict and,
where the scenario names it, the deciding tier and policy of each direction."""

from __future__ import annotations

import ipaddress

import pytest

from policyc.evaluate import Evaluator, Verdict
from policyc.evaluate_tiers import Decision
from policyc.load import parse_text
from policyc.model import Cluster
from policyc.parse import build_cluster
from tests.support.cnp_builders import CnpScenario, Probe
from tests.support.cnp_scenarios import CNP_SCENARIOS
from tests.support.figures import count
from tests.support.world import dump, world


def cluster_of(s: CnpScenario) -> Cluster:
    return build_cluster(parse_text(dump(world(s.policies + s.extra, s.relabel)), "<world>"))


def address(cluster: Cluster, ref: str, family: int) -> str:
    """``ns/name`` -> the pod's address of ``family``; an address as it is."""
    if "/" not in ref:
        return ref
    ns, name = ref.split("/")
    (pod,) = [p for p in cluster.pods if p.namespace == ns and p.name == name]
    return str(next(ip for ip in pod.ips if ip.version == family))


def _check_by(want: str | None, got: Decision | None, what: str) -> list[str]:
    if want is None:
        return []
    tier, _, policy = want.partition(":")
    if got is None:
        return [f"{what}: want {want}, nothing decided"]
    if str(got.tier) != tier or (policy and got.policy != policy):
        return [f"{what}: want {want}, got {got.tier}:{got.policy} {got.rule}"]
    return []


def check(ev: Evaluator, cluster: Cluster, s: CnpScenario, p: Probe) -> list[str]:
    src, dst = address(cluster, p.src, s.family), address(cluster, p.dst, s.family)
    v: Verdict = ev.allowed(src, dst, p.port, p.proto)
    errs = [] if v.allowed == p.allowed else [f"{p}: got {v.allowed} ({v.reason})"]
    errs += _check_by(p.egress, v.egress, f"{p} egress")
    return errs + _check_by(p.ingress, v.ingress, f"{p} ingress")


def test_enough_scenarios_of_every_kind() -> None:
    names = [s.name for s in CNP_SCENARIOS]
    assert len(names) == len(set(names)) and len(names) >= 40
    assert sum(s.family == 6 for s in CNP_SCENARIOS) >= 5
    v1alpha1 = [s for s in CNP_SCENARIOS if any("v1alpha1" in o["apiVersion"] for o in s.policies)]
    assert len(v1alpha1) >= 6
    assert sum(len(s.probes) for s in CNP_SCENARIOS) >= 100


@pytest.mark.parametrize("s", CNP_SCENARIOS, ids=[s.name for s in CNP_SCENARIOS])
def test_scenario(s: CnpScenario) -> None:
    cluster = cluster_of(s)
    assert cluster.cluster_policies or not any(o["kind"] != "NetworkPolicy" for o in s.policies), (
        "the scenario's policies did not load"
    )
    ev = Evaluator(cluster)
    errs = [e for p in s.probes for e in check(ev, cluster, s, p)]
    count("cnp_scenarios")
    count("cnp_probes", len(s.probes))
    assert errs == [], "\n".join(errs)


def test_family_of_every_address_matches() -> None:
    for s in CNP_SCENARIOS:
        cluster = cluster_of(s)
        for p in s.probes:
            for ref in (p.src, p.dst):
                ip = ipaddress.ip_address(address(cluster, ref, s.family))
                assert ip.version == s.family or "/" not in ref, (s.name, ref)
