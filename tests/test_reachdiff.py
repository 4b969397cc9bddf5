"""``policyc diff``: the reachability delta, its causes and exit codes.
The full text is pinned in ``test_reach_golden.py``."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings

from policyc.cli import main
from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.model import Cluster, Protocol
from policyc.parse import build_cluster
from policyc.pipeline import read_cluster
from policyc.reachdiff import CauseKind, Change, ReachDiff, _policy_changes, port_ranges, reach_diff
from tests.support.figures import count
from tests.support.randworld import clusters
from tests.support.world import dump

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
BASE = str(ROOT / "_base")
SAME_NS = str(ROOT / "allow-from-same-namespace")


def test_port_ranges_cut_where_policies_and_container_ports_do() -> None:
    ranges = port_ranges([read_cluster([SAME_NS])])
    # containerPorts 80 and 81 (TCP and UDP), the policy's 80/TCP; SCTP: nothing named.
    assert ranges[Protocol.TCP] == [(1, 79), (80, 80), (81, 81), (82, 65535)]
    assert ranges[Protocol.SCTP] == [(1, 65535)]


def test_port_ranges_follow_end_port() -> None:
    ranges = port_ranges([read_cluster([str(ROOT / "_diff/change-ports/new")])])
    assert (82, 90) in ranges[Protocol.TCP] and (91, 65535) in ranges[Protocol.TCP]


def test_every_reported_connection_flips_and_no_other_does() -> None:
    """Each range probe of the delta is checked against the evaluators directly."""
    old, new = read_cluster([BASE]), read_cluster([SAME_NS])
    delta = reach_diff(old, new)
    before, after = Evaluator(old), Evaluator(new)
    pods = {p.key: p for p in new.pods}
    flipped = set()
    for c in delta.changes:
        for span in c.ports:
            for port in {span.port, span.end_port}:
                for fam in c.families:
                    s = next(ip for ip in pods[c.src].ips if ip.version == fam)
                    d = next(ip for ip in pods[c.dst].ips if ip.version == fam)
                    was = before.allowed(s, d, port, span.protocol).allowed
                    now = after.allowed(s, d, port, span.protocol).allowed
                    assert (was, now) == (
                        (False, True) if c.change is Change.OPENED else (True, False)
                    )
                    flipped.add((c.src, c.dst, fam, span.protocol, port))
    # 80/TCP from x/c over IPv6 is allowed in both (ingress[0]): not a change.
    assert ("x/c", "x/a", 6, Protocol.TCP, 80) not in flipped
    assert ("x/c", "x/a", 6, Protocol.TCP, 81) in flipped


def test_causes_policy_labels_and_combined() -> None:
    old = read_cluster([str(ROOT / "namespace-selector")])
    relabelled = read_cluster([str(ROOT / "_diff/relabel-namespace/new")])
    (group,) = reach_diff(old, relabelled).groups
    assert group.kind is CauseKind.LABELS
    # The policy removed and the namespaces relabelled: each alone opens z -> x/b.
    both = dataclasses.replace(relabelled, policies=())
    kinds = {g.kind for g in reach_diff(old, both).groups}
    assert CauseKind.REMOVED in kinds


def test_pods_in_one_version_only_are_listed_not_compared() -> None:
    old = read_cluster([SAME_NS])
    fewer = dataclasses.replace(old, pods=tuple(p for p in old.pods if p.key != "z/c"))
    delta = reach_diff(old, fewer)
    assert delta.only_old == ("z/c",) and not delta.changes and delta.pods == 8


def test_exit_codes_follow_diff(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["diff", SAME_NS, SAME_NS]) == 0
    assert main(["diff", BASE, SAME_NS]) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: p}\n"
        "spec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 70}]}]}\n"
    )
    assert main(["diff", BASE, str(bad)]) == 2
    assert main(["diff", BASE, str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", BASE, SAME_NS, "-o", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["opened"] == 0 and doc["closed"] == 8
    (group,) = doc["groups"]
    assert group["cause"] == "x/allow-same-ns" and group["kind"] == "added"


def _brute(old: Cluster, new: Cluster) -> set[tuple[str, str, Protocol, int, int, Change]]:
    """Every pod pair, range probe and family, evaluated directly."""
    ranges = port_ranges((old, new))
    before, after = Evaluator(old), Evaluator(new)
    po = {p.key: p for p in old.pods if p.ips and not p.host_network}
    pn = {p.key: p for p in new.pods if p.ips and not p.host_network}
    keys = sorted(po.keys() & pn.keys())
    out = set()
    for s, d in itertools.product(keys, keys):
        if s == d:
            continue
        for fam in (4, 6):
            pairs = [
                (
                    [a for a in c[s].ips if a.version == fam],
                    [b for b in c[d].ips if b.version == fam],
                )
                for c in (po, pn)
            ]
            if not all(x and y for x, y in pairs):
                continue
            for proto, spans in ranges.items():
                for lo, _ in spans:
                    was, now = (
                        all(ev.allowed(a, b, lo, proto).allowed for a in x for b in y)
                        for ev, (x, y) in ((before, pairs[0]), (after, pairs[1]))
                    )
                    if was != now:
                        out.add((s, d, proto, lo, fam, Change.OPENED if now else Change.CLOSED))
    return out


def _reported(delta: ReachDiff, old: Cluster, new: Cluster) -> set[tuple[Any, ...]]:
    ranges = port_ranges((old, new))
    out = set()
    for c in delta.changes:
        for span in c.ports:
            for lo, hi in ranges[span.protocol]:
                if span.port <= lo and hi <= span.end_port:
                    out |= {(c.src, c.dst, span.protocol, lo, f, c.change) for f in c.families}
    return out


@settings(max_examples=15, deadline=None, derandomize=True, phases=(Phase.generate,))
@given(a=clusters(), b=clusters())
def test_classes_and_pruning_lose_nothing(
    a: tuple[list[Any], int], b: tuple[list[Any], int]
) -> None:
    """reach_diff (one pair per class pair, clean pairs skipped) reports
    exactly what evaluating every pod pair finds, on random relabelled worlds."""
    old, new = (build_cluster(parse_text(dump(x[0]), "<random>"), lambda m: None) for x in (a, b))
    assert _reported(reach_diff(old, new), old, new) == _brute(old, new)
    # One policy removed, the rest alike: most pairs are clean and skipped.
    fewer = dataclasses.replace(old, policies=old.policies[1:])
    delta = reach_diff(old, fewer)
    assert _reported(delta, old, fewer) == _brute(old, fewer)
    assert {g.kind for g in delta.groups} <= {CauseKind.REMOVED}
    count("reachdiff_flips", len(_brute(old, new)) + len(_brute(old, fewer)))


def test_a_change_no_single_policy_makes_is_combined() -> None:
    """Two identical policies removed together: neither removal alone closes
    y -> x/a 80/TCP, so it is put under ``combined``."""
    old = read_cluster([str(ROOT / "multi-policy-union")])
    new = dataclasses.replace(
        old, policies=tuple(p for p in old.policies if p.name == "allow-81-from-z")
    )
    groups = {g.kind: g for g in reach_diff(old, new).groups}
    assert set(groups) == {CauseKind.COMBINED}
    closed = {
        (c.src, c.dst, s.protocol, s.port)
        for c in groups[CauseKind.COMBINED].connections
        if c.change is Change.CLOSED
        for s in c.ports
    }
    assert ("y/a", "x/a", Protocol.TCP, 80) in closed


def test_cluster_network_policies_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An added admin Deny was 'no change in reachability' (exit 0): only
    NetworkPolicies made a pod dirty, cut the port ranges or were causes.
    x -> y on 8443/TCP (a port nothing else names) and z -> x/a by CIDR close."""
    cnp = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
    (tmp_path / "anp.yaml").write_text(
        f"{cnp}metadata: {{name: x-no-y}}\n"
        "spec:\n  tier: Admin\n  priority: 10\n"
        "  subject: {namespaces: {matchLabels: {ns: x}}}\n"
        "  egress:\n  - action: Deny\n    to: [{namespaces: {matchLabels: {ns: y}}}]\n"
        "    protocols: [{tcp: {destinationPort: {number: 8443}}}]\n"
        f"---\n{cnp}metadata: {{name: z-no-xa}}\n"
        "spec:\n  tier: Admin\n  priority: 20\n"
        "  subject: {namespaces: {matchLabels: {ns: z}}}\n"
        "  egress:\n  - action: Deny\n    to: [{networks: [10.244.1.10/32]}]\n"
    )
    (tmp_path / "cluster.yaml").write_text((Path(BASE) / "cluster.yaml").read_text())
    old, new = read_cluster([BASE]), read_cluster([str(tmp_path)])
    delta = reach_diff(old, new)
    assert _reported(delta, old, new) == _brute(old, new)
    assert {(g.cause, g.kind) for g in delta.groups} == {
        ("ClusterNetworkPolicy x-no-y", CauseKind.ADDED),
        ("ClusterNetworkPolicy z-no-xa", CauseKind.ADDED),
    }
    closed = {
        (c.src, c.dst, s.protocol, s.port, s.end_port, c.families)
        for c in delta.changes
        for s in c.ports
    }
    assert ("x/a", "y/b", Protocol.TCP, 8443, 8443, (4, 6)) in closed
    assert ("z/a", "x/a", Protocol.UDP, 1, 65535, (4,)) in closed
    assert all(c.change is Change.CLOSED for c in delta.changes)
    assert main(["diff", BASE, str(tmp_path)]) == 1
    assert "ClusterNetworkPolicy x-no-y (added):" in capsys.readouterr().out


def test_policy_changes_one_variant_per_changed_policy_of_each_kind(tmp_path: Path) -> None:
    """NetworkPolicies then ClusterNetworkPolicies, each in key order, and
    each variant is the old cluster with only that one policy changed."""
    cnp = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
    (tmp_path / "anp.yaml").write_text(
        f"{cnp}metadata: {{name: x-no-y}}\n"
        "spec:\n  tier: Admin\n  priority: 10\n"
        "  subject: {namespaces: {matchLabels: {ns: x}}}\n"
        "  egress:\n  - action: Deny\n    to: [{namespaces: {matchLabels: {ns: y}}}]\n"
    )
    (tmp_path / "cluster.yaml").write_text((Path(BASE) / "cluster.yaml").read_text())
    with_cnp = read_cluster([str(tmp_path)])
    old = read_cluster([str(ROOT / "multi-policy-union")])
    first, second, third = old.policies
    new = dataclasses.replace(
        old,
        policies=(second, dataclasses.replace(third, ingress=())),
        cluster_policies=with_cnp.cluster_policies,
    )
    got = _policy_changes(old, new)
    assert [(key, kind) for key, kind, _ in got] == [
        (first.key, CauseKind.REMOVED),
        (third.key, CauseKind.CHANGED),
        ("ClusterNetworkPolicy x-no-y", CauseKind.ADDED),
    ]
    assert got[0][2] == dataclasses.replace(old, policies=(second, third))
    assert got[1][2].policies == (first, second, new.policies[1])
    assert got[2][2] == dataclasses.replace(old, cluster_policies=with_cnp.cluster_policies)
