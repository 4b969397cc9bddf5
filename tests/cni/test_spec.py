"""VERSION, version negotiation, result shapes and error codes (no kernel needed)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cni import plugin, spec
from tests.cni.helpers import PLUGIN


def run(env: dict[str, str], stdin: bytes) -> tuple[int, dict]:
    full = {"PATH": "/usr/bin:/bin", "POLICYC_CNI_SOCKET": "/nonexistent/pc.sock", **env}
    proc = subprocess.run([PLUGIN], input=stdin, env=full, capture_output=True, timeout=30)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


CONF = {
    "cniVersion": "1.0.0",
    "name": "n",
    "type": "policyc-cni",
    "ipam": {"type": "policyc-host-local", "subnet": "10.244.9.0/24", "dataDir": "/nonexistent"},
}
ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/none",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/usr/lib/cni",
}


def test_version_command_lists_supported_versions() -> None:
    code, out = run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.4.0"}')
    assert code == 0
    assert out == {"cniVersion": "0.4.0", "supportedVersions": list(spec.SUPPORTED)}
    assert {"0.4.0", "1.0.0", "1.1.0"} <= set(out["supportedVersions"])


@pytest.mark.parametrize(
    ("env", "stdin", "code"),
    [
        pytest.param({"CNI_COMMAND": ""}, json.dumps(CONF).encode(), 4, id="no-CNI_COMMAND"),
        pytest.param({"CNI_COMMAND": "FROB"}, b"{}", 4, id="unknown-command"),
        pytest.param({"CNI_NETNS": ""}, json.dumps(CONF).encode(), 4, id="no-netns"),
        pytest.param({"CNI_IFNAME": ""}, json.dumps(CONF).encode(), 4, id="no-ifname"),
        pytest.param({"CNI_CONTAINERID": "a/b"}, json.dumps(CONF).encode(), 4, id="bad-id"),
        pytest.param({"CNI_ARGS": "novalue"}, json.dumps(CONF).encode(), 4, id="bad-args"),
        pytest.param({}, b"{not json", 6, id="malformed-json"),
        pytest.param({}, b"[1, 2]", 6, id="json-not-object"),
        pytest.param({}, json.dumps({**CONF, "cniVersion": "9.9.9"}).encode(), 1, id="version"),
        pytest.param({}, json.dumps({**CONF, "name": "bad name"}).encode(), 7, id="bad-name"),
        pytest.param({}, json.dumps({**CONF, "mtu": 10}).encode(), 7, id="bad-mtu"),
        pytest.param({}, json.dumps({**CONF, "ipam": {}}).encode(), 7, id="no-ipam"),
        pytest.param({}, json.dumps({**CONF, "bridge": "x" * 16}).encode(), 7, id="bad-bridge"),
        pytest.param(
            {"CNI_COMMAND": "CHECK"},
            json.dumps({**CONF, "cniVersion": "0.3.1"}).encode(),
            1,
            id="check-needs-0.4.0",
        ),
        pytest.param(
            {"CNI_COMMAND": "STATUS"}, json.dumps(CONF).encode(), 1, id="status-needs-1.1.0"
        ),
        pytest.param({"CNI_COMMAND": "GC"}, json.dumps(CONF).encode(), 1, id="gc-needs-1.1.0"),
    ],
)
def test_bad_input_gets_spec_error(env: dict[str, str], stdin: bytes, code: int) -> None:
    full = {**ENV, **env}
    got_code, out = run({k: v for k, v in full.items() if v}, stdin)
    assert got_code != 0
    assert out["code"] == code, out
    assert out["msg"]
    assert out["cniVersion"] in spec.SUPPORTED


@pytest.mark.parametrize(
    "ipam",
    [
        {"type": "policyc-host-local", "subnet": "10.244.300.0/24"},
        {"type": "policyc-host-local", "subnet": "10.244.1.0/24", "gateway": "10.9.9.9"},
        {
            "type": "policyc-host-local",
            "subnet": "10.244.1.0/24",
            "rangeStart": "10.244.1.200",
            "rangeEnd": "10.244.1.100",
        },
        {"type": "policyc-host-local", "subnet": "10.244.1.0/31"},
        {
            "type": "policyc-host-local",
            "ranges": [[{"subnet": "2001:db8:244::/64"}, {"subnet": "10.244.1.0/24"}]],
        },
        {"type": "policyc-host-local"},
    ],
)
def test_bad_cidrs_are_invalid_config(ipam: dict, tmp_path: os.PathLike[str]) -> None:
    conf = {**CONF, "ipam": {**ipam, "dataDir": str(tmp_path)}}
    out = plugin.execute({**ENV}, json.dumps(conf).encode())
    assert out.code == 1
    assert json.loads(out.stdout)["code"] == 7
    assert os.listdir(tmp_path) == []  # nothing allocated


RESULT = {
    "interfaces": [
        {"name": "br", "mac": "aa:aa:aa:aa:aa:aa", "mtu": 1400},
        {"name": "eth0", "mac": "bb:bb:bb:bb:bb:bb", "sandbox": "/run/netns/x"},
    ],
    "ips": [
        {"address": "10.244.0.2/24", "gateway": "10.244.0.1", "interface": 1},
        {"address": "2001:db8:244::2/64", "interface": 1},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.0.1", "priority": 5}],
    "dns": {"nameservers": ["10.96.0.10"]},
}


def test_render_result_per_version() -> None:
    old = spec.render_result(RESULT, "0.4.0")
    assert [ip["version"] for ip in old["ips"]] == ["4", "6"]
    assert "mtu" not in old["interfaces"][0] and old["routes"] == [
        {"dst": "0.0.0.0/0", "gw": "10.244.0.1"}
    ]
    v1 = spec.render_result(RESULT, "1.0.0")
    assert all("version" not in ip for ip in v1["ips"])
    v11 = spec.render_result(RESULT, "1.1.0")
    assert v11["interfaces"][0]["mtu"] == 1400 and v11["routes"][0]["priority"] == 5
    assert spec.normalize_result(old)["ips"] == v1["ips"]


def test_version_negotiation_rejects_unknown_prev_result_version() -> None:
    with pytest.raises(spec.CNIError) as err:
        spec.normalize_result({"cniVersion": "7.0.0", "ips": []})
    assert err.value.code == 1
