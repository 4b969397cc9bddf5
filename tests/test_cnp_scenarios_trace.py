"""The 53 ClusterNetworkPolicy scenarios through the compiled rulesets, with no
kernel: every probe's verdict as the tracer walks node-1's ruleset, optimised
and ``--no-opt``, equals the scenario's expectation (the evaluator's, checked by
``tests/test_cnp_scenarios.py``); and both backends render every scenario.
The kernel runner (issue 10's 40+ kernel scenarios) applies the same data."""

from __future__ import annotations

import ipaddress

import pytest

from backends import BACKENDS
from policyc.model import Protocol
from policyc.names import pod_iface
from policyc.pipeline import ruleset_of
from policyc.trace import Packet, trace
from tests.support.cnp_builders import CnpScenario
from tests.support.cnp_scenarios import CNP_SCENARIOS
from tests.support.figures import count
from tests.test_cnp_scenarios import address, cluster_of


@pytest.mark.parametrize("s", CNP_SCENARIOS, ids=[s.name for s in CNP_SCENARIOS])
def test_scenario_traced(s: CnpScenario) -> None:
    cluster = cluster_of(s)
    pods = {p.key: p for p in cluster.pods}
    errs = []
    for opt in (True, False):
        ruleset = ruleset_of(cluster, "node-1", opt)
        for name in ("nftables", "iptables"):
            BACKENDS[name].render(ruleset)
        for p in s.probes:
            src = ipaddress.ip_address(address(cluster, p.src, s.family))
            dst = ipaddress.ip_address(address(cluster, p.dst, s.family))
            if src == dst:
                continue  # loopback never leaves the pod
            pod = pods.get(p.src)
            iif = pod_iface(pod.namespace, pod.name) if pod and pod.node_name == "node-1" else None
            nodes = {q.node_name for q in (pods.get(p.src), pods.get(p.dst)) if q is not None}
            if nodes - {"node-1"}:
                continue  # crosses another node's ruleset: the kernel runner's job
            got = trace(ruleset, Packet(src, dst, Protocol(p.proto.upper()), p.port, iif)).allowed
            if got != p.allowed:
                errs.append(f"{'opt' if opt else 'no-opt'} {p}: traced {got}")
            count("cnp_scenario_traces")
    assert errs == [], "\n".join(errs)
