"""evaluator == trace(optimised) == trace(unoptimised) for random worlds that
mix ClusterNetworkPolicy (Admin and Baseline, v1alpha1 objects included) and
NetworkPolicy (``tests/support/randcnp.py``), on the two-node world of
``tests/test_trace.py``: random packets (pods, node addresses, outside
addresses) and every pod pair of one family on the policies' ports.

A packet to a node's own address takes that node's ``input`` hook
(``policyc.trace``), so an Admin Deny toward the pod's own node is checked
too.  Derandomized, as ``tests/test_trace.py``."""

from __future__ import annotations

import itertools
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from policyc.model import Protocol
from tests.support.figures import count
from tests.support.randcnp import mixed
from tests.support.randworld import EXTRA_PODS, NODE2, Draw, _pod, packets
from tests.support.world import dump, world
from tests.test_trace import check, compiled

EXAMPLES = int(os.environ.get("POLICYC_TRACE_EXAMPLES", "60"))


@st.composite
def cnp_worlds(draw: st.DrawFn) -> list[dict[str, Any]]:
    objs = world(draw(mixed())) + [NODE2]
    return objs + [_pod(ns, name, node, o, ports, "a") for ns, name, node, o, ports in EXTRA_PODS]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(objs=cnp_worlds(), version=st.sampled_from((4, 6)), data=st.data())
def test_evaluator_equals_trace_with_tiers(
    objs: list[dict[str, Any]], version: int, data: st.DataObject
) -> None:
    ev, rulesets = compiled(dump(objs))
    count("trace_cnp_worlds")
    pod_ips = [ip for p in ev.cluster.pods for ip in p.ips]
    for d in data.draw(st.lists(packets(pod_ips), min_size=5, max_size=20), label="packets"):
        check(ev, rulesets, d)
    mine = [ip for ip in pod_ips if ip.version == version]
    for src, dst, proto, port in itertools.product(mine, mine, Protocol, (80, 81)):
        check(ev, rulesets, Draw(src, dst, proto, port, spoof=False))
