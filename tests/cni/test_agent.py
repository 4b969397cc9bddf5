"""Thick mode: the fast client hands requests to the agent's socket server."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.cni.conftest import new_pods
from tests.cni.helpers import (
    PYTHON,
    ROOT,
    Net,
    Reply,
    agent,
    allocations,
    cni,
    in_ns,
    links,
    pod_args,
)


def test_client_imports_nothing_heavy() -> None:
    code = (
        "import sys, cni.main, cni.agent_client; "
        "heavy = {'pyroute2', 'cni.plugin', 'nftables', 'subprocess', 'cni.config'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
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
        dels = [
            cni(net, "DEL", pod=names[i], cid=f"c{i}", args=pod_args("ns", f"p{i}"))
            for i in range(3)
        ]
        assert all(d.code == 0 for d in dels)
        again = cni(net, "DEL", pod=names[0], cid="c0", args=pod_args("ns", "p0"))
        assert again.code == 0
        assert len(allocations(net)) == 47 and links(names[0]) == ["lo"]
        bad = cni(net, "ADD", b"{oops", pod=names[0], cid="c0")
        assert bad.out["code"] == 6
    print(f"thick ADD first={first.seconds * 1e3:.1f}ms", file=sys.stderr)


def test_thick_bridge_cache_survives_bridge_replacement(net: Net, pods: list[str]) -> None:
    """The agent caches the bridge (index, pinned MAC).  A bridge deleted behind its
    back, or replaced by one someone else made (MAC not pinned), is noticed on the
    next ADD: the cache is refreshed, the ADD succeeds, the reported MACs are real
    and the replacement's MAC gets pinned."""
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    a, b, c, d = new_pods(pods, 4)

    def sysfs(dev: str, attr: str) -> str:
        return in_ns(net.node, "cat", f"/sys/class/net/{dev}/{attr}").stdout.strip()

    def check(r: Reply, pod: str) -> None:
        assert r.code == 0, r.raw
        br, host, eth0 = r.out["interfaces"]
        assert br["mac"] == sysfs("pcbr0", "address")
        assert host["mac"] == sysfs(host["name"], "address")
        assert sysfs(host["name"], "master/ifindex") == sysfs("pcbr0", "ifindex")
        got = in_ns(pod, "cat", "/sys/class/net/eth0/address").stdout.strip()
        assert eth0["mac"] == got and eth0["sandbox"] == f"/run/netns/{pod}"
        assert sysfs("pcbr0", "addr_assign_type") == "3"  # pinned
        assert "UP" in in_ns(pod, "ip", "link", "show", "eth0").stdout

    with agent(net.node, net.socket_path):
        check(cni(net, "ADD", pod=a, cid="ca", args=pod_args("ns", "a")), a)
        in_ns(net.node, "ip", "link", "del", "pcbr0")  # pod a's port is left detached
        check(cni(net, "ADD", pod=b, cid="cb", args=pod_args("ns", "b")), b)
        in_ns(net.node, "ip", "link", "del", "pcbr0")
        in_ns(net.node, "ip", "link", "add", "pcbr0", "type", "bridge")  # MAC not pinned
        in_ns(net.node, "ip", "link", "set", "pcbr0", "down")
        check(cni(net, "ADD", pod=c, cid="cc", args=pod_args("ns", "c")), c)
        assert "state UP" in in_ns(net.node, "ip", "link", "show", "pcbr0").stdout
        in_ns(net.node, "ip", "link", "set", "pcbr0", "down")  # brought up on every ADD
        check(cni(net, "ADD", pod=d, cid="cd", args=pod_args("ns", "d")), d)
        assert "UP" in in_ns(net.node, "ip", "link", "show", "pcbr0").stdout.split(">")[0]
        for pod, cid, name in ((a, "ca", "a"), (b, "cb", "b"), (c, "cc", "c"), (d, "cd", "d")):
            assert cni(net, "DEL", pod=pod, cid=cid, args=pod_args("ns", name)).code == 0
