"""Golden before/after pairs per optimiser pass, sqlglot style.

``fixtures/passes/<pass>/<case>/`` holds the input (``*.yaml``), compiled for
``node-1``, and the rule graph as ``graph_text`` prints it: ``before.txt`` is
what the pipeline hands that pass (the passes before it in ``PASSES`` applied),
``after.txt`` is what the pass returns.  ``pytest --update-golden`` rewrites
both.  Each case also shows with the tracer that the pass kept the accepted
packets: every address of the world to every other, on every protocol, on the
ports the fixtures use, before and after, and against the evaluator.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest

from policyc.compiler import compile_cluster
from policyc.evaluate import Evaluator
from policyc.graph_text import graph_text
from policyc.ir import RuleGraph
from policyc.lower import lower
from policyc.model import Cluster, IPAddress, Protocol
from policyc.passes import PASSES
from policyc.pipeline import read_cluster
from policyc.trace import Packet, trace

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "passes"
NODE = "node-1"
PORTS = (79, 80, 81, 82, 83, 443)
OUTSIDE = (
    "192.0.2.99",
    "192.0.2.200",
    "192.0.2.201",
    "198.51.100.1",
    "2001:db8:99::1",
    "2001:db8:98::1",
    "2001:db8:98::100",
)


def pass_input(name: str, graph: RuleGraph) -> RuleGraph:
    """The graph as the pipeline hands it to pass ``name``."""
    for p in PASSES:
        if p.__name__ == name:
            return graph
        graph = p(graph)
    raise KeyError(f"no pass {name!r} in PASSES")


def addresses(cluster: Cluster) -> list[IPAddress]:
    out = {ip for pod in cluster.pods for ip in pod.ips}
    for node in cluster.nodes.values():
        out.update(node.addresses)
        out.update(c.network_address + 1 for c in node.pod_cidrs)
    out.update(ipaddress.ip_address(a) for a in OUTSIDE)
    return sorted(out, key=lambda a: (a.version, int(a)))


def check_accepted(cluster: Cluster, before: RuleGraph, after: RuleGraph) -> int:
    """Same verdict before and after the pass, and the evaluator's; returns
    how many packets were compared."""
    ev, old, new = Evaluator(cluster), lower(before), lower(after)
    addrs, n = addresses(cluster), 0
    for src, dst, proto, port in itertools.product(addrs, addrs, Protocol, PORTS):
        if src.version != dst.version or src == dst:
            continue
        pkt = Packet(src, dst, proto, port)
        verdict = trace(old, pkt).verdict
        assert trace(new, pkt).verdict is verdict, pkt
        assert ev.allowed(src, dst, port, proto).allowed == (verdict == "accept"), pkt
        n += 1
    return n


def check_pass(name: str, update: bool) -> None:
    cases = sorted(p for p in (ROOT / name).iterdir() if p.is_dir())
    assert cases, f"no golden case for pass {name}"
    fn = next(p for p in PASSES if p.__name__ == name)
    for case in cases:
        cluster = read_cluster(str(p) for p in sorted(case.glob("*.yaml")))
        before = pass_input(name, compile_cluster(cluster, NODE))
        after = fn(before)
        for graph, file in ((before, case / "before.txt"), (after, case / "after.txt")):
            if update or not file.exists():
                file.write_text(graph_text(graph))
            assert graph_text(graph) == file.read_text(), f"{file} differs"
        assert before != after, f"{case.name}: the pass changes nothing; not a useful pair"
        assert check_accepted(cluster, before, after) > 0


def test_every_pass_has_a_golden_pair() -> None:
    assert sorted(p.name for p in ROOT.iterdir()) == sorted(p.__name__ for p in PASSES)


def test_subsume_rules(update_golden: bool) -> None:
    check_pass("subsume_rules", update_golden)


def test_dedupe_rules(update_golden: bool) -> None:
    check_pass("dedupe_rules", update_golden)


def test_drop_unused_sets(update_golden: bool) -> None:
    check_pass("drop_unused_sets", update_golden)


def test_hash_cons_sets(update_golden: bool) -> None:
    check_pass("hash_cons_sets", update_golden)


def test_merge_port_intervals(update_golden: bool) -> None:
    check_pass("merge_port_intervals", update_golden)


def test_aggregate_cidrs(update_golden: bool) -> None:
    check_pass("aggregate_cidrs", update_golden)


@pytest.mark.parametrize("case", ["allow-from-same-namespace", "named-ports"])
def test_graph_text_is_deterministic(case: str) -> None:
    fixtures = ROOT.parent / case
    files = sorted(str(p) for p in fixtures.glob("*.yaml"))
    texts = {graph_text(compile_cluster(read_cluster(order))) for order in (files, files[::-1])}
    assert len(texts) == 1


def test_share_chains(update_golden: bool) -> None:
    check_pass("share_chains", update_golden)


def test_concat_lookups(update_golden: bool) -> None:
    check_pass("concat_lookups", update_golden)
