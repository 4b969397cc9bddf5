"""Issue 13 section 4 against a real node netns: hostile input gets the spec's
code and leaves nothing behind (veths, IPAM files, masquerade rules)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cni.conftest import new_pods
from tests.cni.helpers import (
    FAILCLOSED_TABLE,
    Net,
    agent,
    cni,
    in_ns,
    leftovers,
    links,
    masq_rules,
)


def _not_netns(tmp_path: Path, kind: str) -> str:
    path = tmp_path / kind
    if kind == "file":
        path.write_text("x")
    elif kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opening it without O_NONBLOCK would wait for a writer
    else:
        return kind
    return str(path)


@pytest.mark.parametrize("kind", ["file", "dir", "fifo", "/dev/null", "/proc/self/ns/uts"])
def test_netns_that_is_not_one_is_code_3(net: Net, tmp_path: Path, kind: str) -> None:
    """SPEC code 3: "Container unknown or does not exist"."""
    r = cni(net, "ADD", pod=_not_netns(tmp_path, kind), cid="c1")
    assert (r.code, r.out.get("code")) == (1, 3), r.raw + r.stderr
    assert "Traceback" not in r.stderr
    assert leftovers(net) == []


def test_failure_after_allocation_rolls_everything_back(net: Net, pods: list[str]) -> None:
    (pod,) = new_pods(pods)
    in_ns(net.node, "ip", "link", "add", "pcbr0", "type", "veth", "peer", "name", "xbr0")
    r = cni(net, "ADD", net.conf(ipMasq=True), pod=pod, cid="c1")
    assert r.out.get("code") == 7, r.raw + r.stderr
    in_ns(net.node, "ip", "link", "del", "pcbr0")
    assert leftovers(net, pod) == []


GARBAGE_PREV = [{"ips": "x"}, {"interfaces": 5}, {"routes": "x"}, {"dns": [1]}]


@pytest.mark.parametrize("prev", GARBAGE_PREV, ids=str)
def test_garbage_prev_result_leaves_nothing(
    net: Net, pods: list[str], prev: dict[str, Any]
) -> None:
    (pod,) = new_pods(pods)
    r = cni(net, "ADD", net.conf(prevResult=prev), pod=pod, cid="c1")
    assert r.out.get("code") == 7, r.raw + r.stderr
    assert leftovers(net, pod) == []


def test_garbage_prev_result_leaves_nothing_thick(net: Net, pods: list[str]) -> None:
    (pod,) = new_pods(pods)
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    with agent(net.node, net.socket_path):
        for prev in GARBAGE_PREV:
            r = cni(net, "ADD", net.conf(prevResult=prev), pod=pod, cid="c1")
            assert r.out.get("code") == 7, r.raw + r.stderr
            assert leftovers(net, pod) == []


def test_ifname_with_quote_semicolon_hash_under_ipmasq(net: Net, pods: list[str]) -> None:
    """A name Linux accepts; it never reaches the nft comment unescaped."""
    (pod,) = new_pods(pods)
    ifname = 'e"t;#0'
    add = cni(net, "ADD", net.conf(ipMasq=True), pod=pod, cid="c1", ifname=ifname)
    assert add.code == 0, add.raw + add.stderr
    assert links(pod) == ["lo", ifname]
    (rule,) = masq_rules(net.node)
    assert 'comment "pcnet:#' in rule
    gone = cni(net, "DEL", net.conf(ipMasq=True), pod=pod, cid="c1", ifname=ifname)
    assert gone.code == 0, gone.raw
    assert leftovers(net, pod) == []


def _fake_ipam(tmp_path: Path, reply: dict[str, Any]) -> str:
    (tmp_path / "reply.json").write_text(json.dumps(reply))
    exe = tmp_path / "fake-ipam"
    exe.write_text(f"#!/bin/sh\ncat >/dev/null\ncat {tmp_path / 'reply.json'}\n")
    exe.chmod(0o755)
    return str(tmp_path)


@pytest.mark.parametrize(
    "reply",
    [
        {"ips": "x"},
        {"ips": [{"address": "bogus"}]},
        {"ips": [{"address": 5}]},
        {"ips": [{"address": "10.244.1.5/24"}], "routes": [{"dst": 5}]},
    ],
    ids=str,
)
def test_delegated_ipam_garbage_is_code_6(
    net: Net, pods: list[str], tmp_path: Path, reply: dict[str, Any]
) -> None:
    """SPEC code 6, "Failed to decode content": the delegate's reply."""
    (pod,) = new_pods(pods)
    net.ipam = {"type": "fake-ipam"}
    path = _fake_ipam(tmp_path, {"cniVersion": "1.1.0", **reply})
    r = cni(net, "ADD", pod=pod, cid="c1", env={"CNI_PATH": path})
    assert (r.code, r.out.get("code")) == (1, 6), r.raw + r.stderr
    assert "Traceback" not in r.stderr
    assert leftovers(net, pod) == []


def test_del_without_netns_removes_the_host_veth(net: Net, pods: list[str]) -> None:
    """SPEC DEL: CNI_NETNS may be empty; the host end's name is still known."""
    (pod,) = new_pods(pods)
    assert cni(net, "ADD", pod=pod, cid="c1").code == 0
    assert len(links(net.node)) == 3  # lo, pcbr0, the host veth
    r = cni(net, "DEL", cid="c1")
    assert r.code == 0, r.raw + r.stderr
    assert leftovers(net, pod) == []


def test_fail_closed_false_is_the_plain_bridge(net: Net, pods: list[str]) -> None:
    (pod,) = new_pods(pods)
    add = cni(net, "ADD", net.conf(failClosed=False), pod=pod, cid="c1")
    assert add.code == 0, add.raw + add.stderr
    table = in_ns(net.node, "nft", "list", "table", *FAILCLOSED_TABLE.split(), check=False)
    assert table.returncode != 0  # no fail-closed table was installed
    assert cni(net, "DEL", net.conf(failClosed=False), pod=pod, cid="c1").code == 0
    assert leftovers(net, pod) == []
