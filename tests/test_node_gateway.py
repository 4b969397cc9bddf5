"""A Node whose pod CIDR has no room for a bridge gateway still compiles.

The compiler adds each node's bridge gateway (the pod CIDR's network address
+ 1, as the CNI plugin assigns it) to the node set.  For 255.255.255.255/32
or the IPv6 all-ones /128 that address does not exist (AddressValueError
before the fix): such a CIDR has no gateway.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyc.cli import main

NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: node-1
spec:
{spec}
status:
  addresses:
  - type: InternalIP
    address: 192.0.2.10
"""


@pytest.mark.parametrize(
    "spec",
    [
        "  podCIDRs: [255.255.255.255/32]",
        '  podCIDRs: ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]',
        "  podCIDR: 255.255.255.255/32",
        '  podCIDRs: [10.244.1.0/24, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]',
    ],
)
def test_all_ones_pod_cidr_compiles(
    spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(NODE.format(spec=spec), encoding="utf-8")
    assert main(["compile", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "192.0.2.10" in out
    if "10.244.1.0/24" in spec:
        assert "10.244.1.1" in out  # a CIDR with room keeps its gateway
