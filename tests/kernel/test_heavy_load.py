"""What the heavy inputs of issue 13 §2 emit, at 10,000, is accepted by the
tools the output is documented for: ``nft -c -f FILE`` (the file reader,
quadratic in the words on one line in nftables 1.0.6), and ``ipset
restore`` plus ``iptables-restore --test`` / ``ip6tables-restore --test``.
Shape only here (``tests/test_heavy_shape.py``); the seconds are in
``bench/heavy_bench.py``.  One scratch netns per case, deleted by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from backends import BACKENDS
from policyc.pipeline import read_cluster, ruleset_of
from tests.hostile.netns import fresh_netns, sh
from tests.support import heavy_inputs as heavy

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a scratch netns)")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
N = 10_000
CASES: dict[str, Callable[[int], str]] = {
    "ip-blocks": heavy.ip_blocks,
    "adjacent-blocks": heavy.adjacent_blocks,
    "named-ports": heavy.named_ports,
    "mixed-peers": heavy.mixed_peers,
}


@pytest.mark.parametrize("case", list(CASES))
def test_heavy_output_loads(tmp_path: Path, case: str) -> None:
    (tmp_path / "cluster.yaml").write_bytes((FIXTURES / "_base" / "cluster.yaml").read_bytes())
    (tmp_path / "case.yaml").write_text(CASES[case](N), encoding="utf-8")
    ruleset = ruleset_of(read_cluster([str(tmp_path / n) for n in ("cluster.yaml", "case.yaml")]))
    nft, ipt = BACKENDS["nftables"], BACKENDS["iptables"]
    (tmp_path / "out.nft").write_text(nft.write(nft.render(ruleset)), encoding="utf-8")
    for name, body in ipt.files(ipt.render(ruleset)).items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    with fresh_netns("heavy") as ns:
        checks = {
            "nft": f"nft -c -f {tmp_path}/out.nft",
            "ipset": f"ipset restore < {tmp_path}/ipset.restore",
            "iptables": f"iptables-restore --test < {tmp_path}/iptables.rules",
            "ip6tables": f"ip6tables-restore --test < {tmp_path}/ip6tables.rules",
        }
        for tool, cmd in checks.items():
            done = sh(ns, cmd)
            assert done.returncode == 0, (tool, done.stderr.decode(errors="replace")[-400:])
        sh(ns, "ipset destroy")
