"""Thick mode: the fast client hands requests to the agent's socket server."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.cni.conftest import new_pods
from tests.cni.helpers import PYTHON, ROOT, Net, agent, allocations, cni, links, pod_args


def test_client_imports_nothing_heavy() -> None:
    code = ("import sys, cni.main, cni.agent_client; "
            "heavy = {'pyroute2', 'cni.plugin', 'nftables', 'subprocess', 'cni.config'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    with open(os.path.join(os.path.dirname(PYTHON), "policyc-cni")) as fh:
        assert fh.readline().startswith("#!/")  # interpreter named by absolute path


def test_thick_mode_add_del_and_50_concurrent(net: Net, pods: list[str]) -> None:
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    names = new_pods(pods, 50)
    with agent(net.node, net.socket_path):
        first = cni(net, "ADD", pod=names[0], cid="c0", args=pod_args("ns", "p0"))
        assert first.code == 0, first.raw

        def add(i: int) -> str:
            r = cni(net, "ADD", pod=names[i], cid=f"c{i}", args=pod_args("ns", f"p{i}"))
            assert r.code == 0, r.raw
            return str(r.out["ips"][0]["address"])

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(add, range(1, 50)))
        assert len(set(got)) == 49 and first.out["ips"][0]["address"] not in got
        assert len(allocations(net)) == 50
        dels = [cni(net, "DEL", pod=names[i], cid=f"c{i}", args=pod_args("ns", f"p{i}"))
                for i in range(3)]
        assert all(d.code == 0 for d in dels)
        again = cni(net, "DEL", pod=names[0], cid="c0", args=pod_args("ns", "p0"))
        assert again.code == 0
        assert len(allocations(net)) == 47 and links(names[0]) == ["lo"]
        bad = cni(net, "ADD", b"{oops", pod=names[0], cid="c0")
        assert bad.out["code"] == 6
    print(f"thick ADD first={first.seconds * 1e3:.1f}ms", file=sys.stderr)
