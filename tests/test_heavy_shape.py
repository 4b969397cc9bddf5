"""Heavy but valid inputs (issue 13 §2) at a CI-friendly size: the shape of
what both backends emit, never its speed.

Full size (100,000) and the kernel's load times are in
``bench/heavy_bench.py``.  Here: ipBlocks are merged into the fewest
intervals (one nft element per merged interval, at most the CIDR
decomposition's count of ipset entries), peers and identical port lists
share one set, and no emitted line passes its bound (``nft -f`` is
quadratic in the words on one line; ``ipset restore`` reads 1,023 bytes).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from backends import BACKENDS
from backends.iptables.restore import MAX_LINE
from backends.iptables.state import IpSet, IptablesState
from backends.nftables.objects import Range, Set, State
from policyc.pipeline import read_cluster, ruleset_of
from tests.support import heavy_inputs as heavy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
N = 10_000
NFT_LINE_MAX = 256  # bytes: a set comment (200) and its indentation, or one element


def emit(tmp_path: Path, body: str) -> tuple[State, str, IptablesState, dict[str, str]]:
    """(nft state, nft script, iptables state, iptables files) for the base
    cluster plus ``body``."""
    (tmp_path / "cluster.yaml").write_bytes((FIXTURES / "_base" / "cluster.yaml").read_bytes())
    (tmp_path / "case.yaml").write_text(body, encoding="utf-8")
    cluster = read_cluster([str(tmp_path / "cluster.yaml"), str(tmp_path / "case.yaml")])
    ruleset = ruleset_of(cluster)
    nft, ipt = BACKENDS["nftables"], BACKENDS["iptables"]
    nft_state, ipt_state = nft.render(ruleset), ipt.render(ruleset)
    return nft_state, nft.write(nft_state), ipt_state, ipt.files(ipt_state)


def nft_sets(state: State, prefix: str) -> list[Set]:
    return [s for t in state.tables for n, s in t.sets.items() if n.startswith(prefix)]


def ipsets(state: IptablesState, prefix: str) -> list[IpSet]:
    return [s for s in state.sets if s.name.startswith("policyc-" + prefix)]


def assert_lines_bounded(script: str, files: dict[str, str]) -> None:
    longest = max(len(line.encode()) for line in script.splitlines())
    assert longest <= NFT_LINE_MAX, longest
    for name, body in files.items():
        longest = max((len(line.encode()) for line in body.splitlines()), default=0)
        assert longest <= MAX_LINE, (name, longest)


def test_disjoint_ipblocks_one_element_each(tmp_path: Path) -> None:
    nft_state, script, ipt_state, files = emit(tmp_path, heavy.ip_blocks(N))
    (v4,) = [s for s in nft_sets(nft_state, "net_") if s.name.endswith("4")]
    assert len(v4.elements) == N  # a /30, or a /31 where its except cut it
    (ipset,) = ipsets(ipt_state, "net_")
    assert len(ipset.elements) == N
    assert not any(e.endswith("nomatch") for e in ipset.elements)
    assert_lines_bounded(script, files)


def test_adjacent_ipblocks_merge_into_one_interval(tmp_path: Path) -> None:
    nft_state, script, ipt_state, files = emit(tmp_path, heavy.adjacent_blocks(N))
    first = ipaddress.IPv4Address(heavy.v4(0))
    last = ipaddress.IPv4Address(heavy.v4(16 * N - 1))
    (v4,) = [s for s in nft_sets(nft_state, "net_") if s.name.endswith("4")]
    assert list(v4.elements) == [Range(str(first), str(last))]
    (ipset,) = ipsets(ipt_state, "net_")
    # Fewest hash:net entries: never more than the plain CIDR decomposition.
    assert len(ipset.elements) <= len(list(ipaddress.summarize_address_range(first, last)))
    assert_lines_bounded(script, files)


def test_named_ports_resolve_one_element_per_port(tmp_path: Path) -> None:
    nft_state, script, ipt_state, files = emit(tmp_path, heavy.named_ports(N))
    sizes = sorted(len(s.elements) for s in nft_sets(nft_state, "named_"))
    assert sizes == [0, N]  # the pod has an IPv4 address only
    assert sorted(len(s.elements) for s in ipsets(ipt_state, "named_")) == [0, N]
    assert_lines_bounded(script, files)


@pytest.mark.parametrize("make", [heavy.pod_peers, heavy.mixed_peers])
def test_many_peers_share_one_set_per_family(tmp_path: Path, make: object) -> None:
    assert callable(make)
    nft_state, script, ipt_state, files = emit(tmp_path, make(N))
    names = {s.name for s in nft_sets(nft_state, "peer_")}
    # ingress and, for mixed peers, egress: the same peer list, one set
    assert len(names) == 2, names
    assert_lines_bounded(script, files)


SHARED = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: a}}}]
    ports: [{port: 80}, {port: 443}, {port: serve-81-tcp}, {port: serve-80-tcp}]
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: serve-80-tcp}, {port: 443}, {port: serve-81-tcp}, {port: 80}, {port: 80}]
"""


def test_identical_port_lists_share_sets(tmp_path: Path) -> None:
    """Two rules naming the same ports in another order (and repeated) use
    one port set and one named-port set per family."""
    nft_state, _, _, _ = emit(tmp_path, SHARED)
    assert len(nft_sets(nft_state, "port_")) == 1
    assert len(nft_sets(nft_state, "named_")) == 2
