"""ADD / CHECK / DEL in standalone mode, exec'd as a runtime does."""

from __future__ import annotations

import os

from policyc.names import IFACE_PREFIX, pod_iface
from tests.cni.conftest import new_pods
from tests.cni.helpers import (
    Net,
    addrs,
    allocations,
    allow_port,
    cni,
    in_ns,
    links,
    netns_del,
    pod_args,
    udp_reaches,
)


def test_add_check_del_and_connectivity(net: Net, pods: list[str]) -> None:
    a, b = new_pods(pods, 2)
    ra = cni(net, "ADD", pod=a, cid="cid-a", args=pod_args("x", "a"))
    assert ra.code == 0, ra.raw + ra.stderr
    rb = cni(net, "ADD", pod=b, cid="cid-b", args=pod_args("x", "b"))
    assert rb.code == 0, rb.raw
    out = ra.out
    assert out["cniVersion"] == "1.1.0"
    assert [i["name"] for i in out["interfaces"]] == ["pcbr0", "pce4fccf5a38c", "eth0"]
    assert out["interfaces"][2]["sandbox"] == f"/run/netns/{a}"
    assert out["ips"] == [{"address": "10.244.1.2/24", "gateway": "10.244.1.1", "interface": 2}]
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]
    assert addrs(a, "eth0") == ["10.244.1.2/24"]
    assert addrs(net.node, "pcbr0") == ["10.244.1.1/24"]
    assert "default via 10.244.1.1" in in_ns(a, "ip", "route").stdout
    # Fail closed until the policy knows the ports; then pods and gateway are reachable.
    assert not udp_reaches(b, a, "10.244.1.2", timeout=0.3)
    allow_port(net.node, pod_iface("x", "a"), pod_iface("x", "b"))
    assert udp_reaches(b, a, "10.244.1.2")
    assert udp_reaches(a, net.node, "10.244.1.1")

    check = cni(net, "CHECK", net.conf(prevResult=out), pod=a, cid="cid-a", args=pod_args("x", "a"))
    assert check.code == 0, check.raw
    in_ns(a, "ip", "addr", "del", "10.244.1.2/24", "dev", "eth0")
    bad = cni(net, "CHECK", net.conf(prevResult=out), pod=a, cid="cid-a", args=pod_args("x", "a"))
    assert bad.code != 0 and "10.244.1.2/24" in bad.out["msg"]

    for _ in range(2):  # DEL twice is fine
        rd = cni(net, "DEL", pod=a, cid="cid-a", args=pod_args("x", "a"))
        assert rd.code == 0 and rd.raw == "", rd.raw
    assert "eth0" not in links(a) and pod_iface("x", "a") not in links(net.node)
    assert allocations(net) == ["10.244.1.3"]


def test_old_versions_dual_stack_mtu_hairpin(net: Net, pods: list[str]) -> None:
    (a,) = new_pods(pods)
    net.version = "0.4.0"
    net.ipam = {
        "type": "policyc-host-local",
        "dataDir": net.data_dir,
        "ranges": [[{"subnet": "10.244.7.0/24"}], [{"subnet": "2001:db8:244:7::/64"}]],
        "routes": [{"dst": "10.244.0.0/16"}],
    }
    r = cni(
        net, "ADD", net.conf(mtu=1400, hairpinMode=True, isDefaultGateway=False), pod=a, cid="c0"
    )
    assert r.code == 0, r.raw + r.stderr
    assert [(i["version"], i["address"]) for i in r.out["ips"]] == [
        ("4", "10.244.7.2/24"),
        ("6", "2001:db8:244:7::2/64"),
    ]
    assert r.out["routes"] == [{"dst": "10.244.0.0/16"}]
    host = IFACE_PREFIX + __import__("hashlib").sha1(b"c0").hexdigest()[:11]
    assert "mtu 1400" in in_ns(a, "ip", "link", "show", "eth0").stdout
    assert "hairpin on" in in_ns(net.node, "ip", "-d", "link", "show", host).stdout
    assert "10.244.0.0/16 via 10.244.7.1" in in_ns(a, "ip", "route").stdout
    assert "2001:db8:244:7::2/64" in addrs(a, "eth0")
    assert cni(net, "DEL", pod=a, cid="c0").code == 0
    assert allocations(net) == []


def test_failures_leave_nothing_behind(net: Net, pods: list[str]) -> None:
    (a,) = new_pods(pods)
    gone = cni(net, "ADD", pod="/run/netns/pcc-vanished", cid="c1")
    assert gone.out["code"] == 3, gone.raw
    net.subnet = "10.244.8.0/30"  # one usable address: .2 (.1 is the gateway)
    assert cni(net, "ADD", pod=a, cid="c2").code == 0
    (b,) = new_pods(pods)
    full = cni(net, "ADD", pod=b, cid="c3")
    assert full.out["code"] == 11, full.raw
    assert links(b) == ["lo"]
    # A netns that vanishes between IPAM and plumbing: the allocation is rolled back.
    (c,) = new_pods(pods)
    net.subnet = "10.244.9.0/24"
    net.name = "other"
    netns_del(c)
    r = cni(net, "ADD", pod=c, cid="c4")
    assert r.out["code"] == 3 and allocations(net) == []
    assert [x for x in links(net.node) if x.startswith("pc") and x != "pcbr0"] == [
        IFACE_PREFIX + __import__("hashlib").sha1(b"c2").hexdigest()[:11]
    ]
    # DEL of something never added, and with a vanished netns, succeeds.
    assert cni(net, "DEL", pod=c, cid="c4").code == 0
    assert cni(net, "DEL", cid="c5", env={"CNI_NETNS": "\0"}).code == 0
    assert not os.path.exists(f"/run/netns/{c}")


def test_status(net: Net, pods: list[str]) -> None:
    r = cni(net, "STATUS", ifname="")
    assert r.code == 0 and r.raw == "", r.raw
    net.subnet = "10.244.8.0/30"
    (a,) = new_pods(pods)
    assert cni(net, "ADD", pod=a, cid="c1").code == 0
    exhausted = cni(net, "STATUS", ifname="")
    assert exhausted.out["code"] == 50, exhausted.raw


def test_bridge_mac_is_pinned(net: Net, pods: list[str]) -> None:
    """The bridge keeps its MAC as ports come and go (reference plugin behaviour);
    otherwise pods' cached gateway MAC goes stale and routed traffic stalls."""
    a, b = new_pods(pods, 2)
    assert cni(net, "ADD", pod=a, cid="cid-a", args=pod_args("x", "a")).code == 0

    def bridge_mac() -> str:
        return in_ns(net.node, "cat", "/sys/class/net/pcbr0/address").stdout.strip()

    before = bridge_mac()
    assert in_ns(net.node, "cat", "/sys/class/net/pcbr0/addr_assign_type").stdout.strip() == "3"
    in_ns(
        net.node,
        "ip",
        "link",
        "add",
        "pcmacv0",
        "address",
        "00:00:5e:00:53:01",
        "type",
        "veth",
        "peer",
        "name",
        "pcmacv1",
    )
    in_ns(net.node, "ip", "link", "set", "pcmacv0", "master", "pcbr0")
    assert cni(net, "ADD", pod=b, cid="cid-b", args=pod_args("x", "b")).code == 0
    assert bridge_mac() == before
    in_ns(net.node, "ip", "link", "del", "pcmacv0")
