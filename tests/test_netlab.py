"""Tests of the kernel harness itself (tests/kernel), without any policyc firewall."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.kernel import kernelcheck
from tests.kernel.fixtures import clean_lab, kernel_required, lab  # noqa: F401
from tests.kernel.netlab import (
    Lab,
    Pod,
    build_standard,
    format_matrix,
    matrix_diff,
    requires_kernel,
)

STANDARD = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


# -- no kernel needed -------------------------------------------------------


def test_require_kernel_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernelcheck, "kernel_problem", lambda: "no netns here")
    monkeypatch.delenv(kernelcheck.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no netns here"):
        kernelcheck.require_kernel()
    monkeypatch.setenv(kernelcheck.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no netns here"):
        kernelcheck.require_kernel()


def test_address_guard() -> None:
    assert kernelcheck.check_addr("10.244.3.4") == "10.244.3.4"
    assert kernelcheck.check_addr("192.0.2.7") == "192.0.2.7"
    assert kernelcheck.check_addr("2001:db8:244:1::10") == "2001:db8:244:1::10"
    for bad in ("8.8.8.8", "10.245.0.1", "127.0.0.1", "2001:db8:245::1", "::1"):
        with pytest.raises(ValueError):
            kernelcheck.check_addr(bad)


def test_root_namespace_guard() -> None:
    for cmd in ("link add x type bridge", "netns add other", "addr add 10.244.1.1/24 dev lo"):
        with pytest.raises(ValueError, match="root namespace"):
            kernelcheck.ip_batch([cmd])


# -- kernel -------------------------------------------------------------------


@requires_kernel
def test_standard_layout(lab: Lab) -> None:  # noqa: F811
    assert sorted(lab.pods) == sorted(STANDARD)
    xa, zc = lab.pod("x/a"), lab.pod("z/c")
    assert (xa.ip4, xa.ip6) == ("10.244.1.10", "2001:db8:244:1::10")
    assert (zc.ip4, zc.ip6) == ("10.244.1.18", "2001:db8:244:1::18")
    assert xa.iface == "pce4fccf5a38c"  # docs/contract.md example
    links = lab.node_exec(["ip", "-o", "link", "show", "master", "br0"]).stdout
    assert all(p.iface in links for p in lab.pods.values())
    for key in (
        "net.ipv4.ip_forward",
        "net.ipv6.conf.all.forwarding",
        "net.bridge.bridge-nf-call-iptables",
        "net.bridge.bridge-nf-call-ip6tables",
    ):
        assert lab.node_exec(["sysctl", "-n", key]).stdout.strip() == "1"


@requires_kernel
@pytest.mark.parametrize("family", [4, 6])
def test_full_matrix(lab: Lab, family: int) -> None:  # noqa: F811
    t0 = time.monotonic()
    result = lab.matrix(family=family)
    elapsed = time.monotonic() - t0
    print(f"\n9x9x3 matrix IPv{family}, all allowed: {elapsed * 1000:.1f} ms")
    assert len(result) == 243
    assert all(result.values()), format_matrix(result)


@requires_kernel
def test_unserved_port_is_refused_not_reached(lab: Lab) -> None:  # noqa: F811
    xa, yb = lab.pod("x/a"), lab.pod("y/b")
    cases = [(xa, yb.ip4, "tcp", 82), (xa, yb.ip4, "udp", 82), (xa, yb.ip4, "tcp", 80)]
    res = lab.probe_detailed(cases)
    assert [res[c].ok for c in cases] == [False, False, True]
    assert res[cases[0]].status == "refused"
    assert res[cases[1]].status == "refused"


@requires_kernel
def test_node_reaches_pods(lab: Lab) -> None:  # noqa: F811
    cases = [(lab.node, p.addr(fam), "tcp", 80) for p in lab.pods.values() for fam in (4, 6)]
    assert all(lab.probe(cases).values())


@requires_kernel
@pytest.mark.parametrize(
    "fake,dst", [("10.244.1.200", "x/b"), ("2001:db8:244:1::200", "x/b"), ("10.244.1.13", "z/c")]
)
def test_spoofed_udp_arrives_without_antispoof(lab: Lab, fake: str, dst: str) -> None:  # noqa: F811
    family = 6 if ":" in fake else 4
    src, target = lab.pod("x/a"), lab.pod(dst)
    payload = f"spoof {fake}".encode()
    with lab.udp_sink(target, 9999, family=family) as sink:
        lab.send_spoofed_udp(src, fake, target.addr(family), 9999, payload)
        got = sink.collect(timeout=1.0, expect=payload)
    assert (fake, 40000, payload) in got


NFT_DROP = """
table {family} policyc_netlab_test {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        {match} daddr {addr} drop
    }}
}}
"""


@requires_kernel
@pytest.mark.parametrize("family", [4, 6])
def test_nft_forward_drop_sees_bridged_traffic(clean_lab: Lab, family: int) -> None:  # noqa: F811
    xb = clean_lab.pod("x/b")
    match = "ip" if family == 4 else "ip6"
    clean_lab.nft(NFT_DROP.format(family="inet", match=match, addr=xb.addr(family)))
    t0 = time.monotonic()
    result = clean_lab.matrix_detailed(family=family)
    elapsed = time.monotonic() - t0
    print(f"\n9x9x3 matrix IPv{family} with drops: {elapsed * 1000:.1f} ms")
    # replies to x/b are dropped too, so x/b is cut off both ways (except from itself)
    expected = {k: k[0] == k[1] or xb not in k[:2] for k in result}
    actual = {k: r.ok for k, r in result.items()}
    assert matrix_diff(expected, actual) == [], format_matrix(actual)
    assert {r.status for k, r in result.items() if not r.ok} == {"timeout"}
    # 48 of the probes time out (0.6 s each): run one after another they would
    # take about 29 s.  A generous bound proves they overlap on a loaded machine.
    assert elapsed < 10, "probes must run in parallel"
    clean_lab.flush_firewall()
    assert all(clean_lab.matrix(family=family).values())


@requires_kernel
def test_pods_added_later_are_served_and_removable(lab: Lab) -> None:  # noqa: F811
    xa = lab.pod("x/a")
    for _ in range(2):  # the same pod (and interface name) twice
        extra = lab.add_pod("w", "late", "10.244.1.50", "2001:db8:244:1::50")
        cases = [
            (xa, extra.ip4, "tcp", 81),
            (xa, extra.addr(6), "udp", 80),
            (extra, xa.ip4, "udp", 81),
            (extra, xa.addr(6), "tcp", 80),
        ]
        assert all(lab.probe(cases).values())
        lab.remove_pod(extra)
        assert extra.netns not in _netns_names()
        assert extra.iface not in lab.node_exec(["ip", "-o", "link"]).stdout


@requires_kernel
def test_cleanup_leaves_no_namespaces(kernel_required: None) -> None:  # noqa: F811
    class Boom(Exception):
        pass

    prefix = ""
    t0 = time.monotonic()
    with pytest.raises(Boom):
        with Lab() as own:
            prefix = own.prefix
            pods = build_standard(own)
            t1 = time.monotonic()
            assert all(own.matrix(list(pods.values())[:3], ports=[("tcp", 80)]).values())
            assert len([n for n in _netns_names() if n.startswith(prefix)]) == 10
            t2 = time.monotonic()
            raise Boom
    t3 = time.monotonic()
    print(f"\nlab build {1000 * (t1 - t0):.1f} ms, teardown {1000 * (t3 - t2):.1f} ms")
    assert prefix and not [n for n in _netns_names() if n.startswith(prefix)]
    assert not [n for n in kernelcheck.live_netns() if n.startswith(prefix)]


def test_pod_record() -> None:
    pod = Pod("x", "a", "pct1-1-p0", "10.244.1.10", None, "pce4fccf5a38c")
    assert pod.key == str(pod) == "x/a"
    with pytest.raises(ValueError):
        pod.addr(6)
