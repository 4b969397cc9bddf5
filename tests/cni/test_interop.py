"""Delegated IPAM (reference host-local, static), chaining with portmap and bandwidth."""

from __future__ import annotations

import json
import os
import subprocess

from tests.cni.conftest import new_pods
from tests.cni.helpers import REF_DIR, Net, addrs, cni, in_ns, links, pod_args


def test_delegated_host_local_and_static(net: Net, pods: list[str]) -> None:
    a, b = new_pods(pods, 2)
    net.version = "1.0.0"  # the reference plugins stop at 1.0.0
    net.ipam = {"type": "host-local", "subnet": "10.244.11.0/24", "dataDir": net.data_dir}
    r = cni(net, "ADD", pod=a, cid="ca", args=pod_args("x", "a"))
    assert r.code == 0, r.raw + r.stderr
    assert r.out["ips"][0]["address"] == "10.244.11.2/24"
    assert open(os.path.join(net.data_dir, "pcnet", "10.244.11.2"), "rb").read() == b"ca\r\neth0"
    check = cni(net, "CHECK", net.conf(prevResult=r.out), pod=a, cid="ca", args=pod_args("x", "a"))
    assert check.code == 0, check.raw
    assert cni(net, "DEL", pod=a, cid="ca", args=pod_args("x", "a")).code == 0
    assert not os.path.exists(os.path.join(net.data_dir, "pcnet", "10.244.11.2"))

    net.ipam = {
        "type": "static",
        "addresses": [{"address": "10.244.12.7/24", "gateway": "10.244.12.1"}],
    }
    s = cni(net, "ADD", pod=b, cid="cb", args="IgnoreUnknown=1")
    assert s.code == 0, s.raw + s.stderr
    assert addrs(b, "eth0") == ["10.244.12.7/24"]
    gc = cni(net, "GC", net.conf(**{"cni.dev/valid-attachments": []}), ifname="")
    assert gc.out["code"] == 1  # a 1.0.0 config: GC is a 1.1.0 verb
    assert cni(net, "DEL", pod=b, cid="cb", args="IgnoreUnknown=1").code == 0
    missing = cni(net, "ADD", net.conf(ipam={"type": "no-such-ipam"}), pod=b, cid="cc")
    assert missing.out["code"] == 7 and links(b) == ["lo"]


def ref_plugin(net: Net, name: str, command: str, conf: dict, pod: str, cid: str) -> dict:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": f"/run/netns/{pod}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REF_DIR,
        "PATH": os.environ["PATH"],
        "CNI_ARGS": "IgnoreUnknown=1",
    }
    proc = subprocess.run(
        ["ip", "netns", "exec", net.node, os.path.join(REF_DIR, name)],
        input=json.dumps(conf).encode(),
        env=env,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_first_in_a_conflist_with_portmap_and_bandwidth(net: Net, pods: list[str]) -> None:
    (a,) = new_pods(pods)
    net.version = "1.0.0"
    common = {"cniVersion": "1.0.0", "name": net.name}
    portmap = {
        **common,
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "runtimeConfig": {
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
        },
    }
    bandwidth = {
        **common,
        "type": "bandwidth",
        "ingressRate": 1000000,
        "ingressBurst": 100000,
        "egressRate": 1000000,
        "egressBurst": 100000,
    }
    r = cni(net, "ADD", pod=a, cid="chain")
    assert r.code == 0, r.raw
    prev = ref_plugin(net, "portmap", "ADD", {**portmap, "prevResult": r.out}, a, "chain")
    prev = ref_plugin(net, "bandwidth", "ADD", {**bandwidth, "prevResult": prev}, a, "chain")
    assert prev["ips"] == r.out["ips"]
    assert "8080" in in_ns(net.node, "iptables-save", "-t", "nat").stdout
    host = r.out["interfaces"][1]["name"]
    assert "tbf" in in_ns(net.node, "tc", "qdisc", "show", "dev", host).stdout
    check = cni(net, "CHECK", net.conf(prevResult=prev), pod=a, cid="chain")
    assert check.code == 0, check.raw
    ref_plugin(net, "bandwidth", "DEL", {**bandwidth, "prevResult": prev}, a, "chain")
    ref_plugin(net, "portmap", "DEL", {**portmap, "prevResult": prev}, a, "chain")
    assert cni(net, "DEL", net.conf(prevResult=prev), pod=a, cid="chain").code == 0
    assert links(a) == ["lo"] and host not in links(net.node)
