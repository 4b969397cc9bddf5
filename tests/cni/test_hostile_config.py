"""Issue 13 section 4: hostile configurations and environments get the CNI
spec's error codes, not a traceback behind 999, and nothing is created.

SPEC "Error": 4 "Invalid necessary environment variables, like CNI_COMMAND,
CNI_CONTAINERID, etc.", 6 "Failed to decode content", 7 "Invalid network
config".  None of these requests gets as far as the kernel: every one fails
in validation (the netns is a path that does not exist)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cni import plugin
from tests.cni.helpers import PLUGIN

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/policyc-none",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/usr/lib/cni",
}
NESTED = b"[" * 100_000 + b"]" * 100_000


def conf(data_dir: Path, **over: Any) -> dict[str, Any]:
    ipam = {"type": "policyc-host-local", "subnet": "10.244.9.0/24", "dataDir": str(data_dir)}
    doc: dict[str, Any] = {"cniVersion": "1.1.0", "name": "n", "type": "policyc-cni"}
    doc["ipam"] = {**ipam, **over.pop("ipam", {})}
    return {**doc, **over}


def run(env: dict[str, str], stdin: bytes, cwd: Path) -> tuple[int, dict[str, Any], str]:
    full = {"PATH": "/usr/bin:/bin", "POLICYC_CNI_SOCKET": "/nonexistent/pc.sock", **env}
    proc = subprocess.run([PLUGIN], input=stdin, env=full, capture_output=True, timeout=60, cwd=cwd)
    text = proc.stdout.decode() + proc.stderr.decode()
    assert "Traceback" not in text, text
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, text


def _prev(result: Any) -> dict[str, Any]:
    return {"prevResult": {"cniVersion": "1.1.0", **result}}


CONFIG_CASES = [
    pytest.param({"ipam": {"ranges": 5}}, 7, id="ipam.ranges-int"),
    pytest.param({"ipam": {"routes": "x"}}, 7, id="ipam.routes-string"),
    pytest.param({"ipam": {"routes": [{"dst": 5}]}}, 7, id="route-dst-int"),
    pytest.param({"ipam": {"routes": [{"dst": "0.0.0.0/0", "gw": 5}]}}, 7, id="route-gw-int"),
    pytest.param({"ipam": {"dataDir": 5}}, 7, id="dataDir-int"),
    pytest.param({"ipam": {"dataDir": ["/tmp"]}}, 7, id="dataDir-list"),
    pytest.param({"ipam": {"dataDir": "rel/dir"}}, 7, id="dataDir-relative"),
    pytest.param({"ipam": {"subnet": "::/120"}}, 7, id="subnet-ipv6-loopback"),
    pytest.param({"ipam": {"subnet": "ff02::/64"}}, 7, id="subnet-ipv6-multicast"),
    pytest.param({"ipam": {"subnet": "127.0.0.0/8"}}, 7, id="subnet-loopback"),
    pytest.param({"ipam": {"subnet": "224.0.0.0/24"}}, 7, id="subnet-multicast"),
    pytest.param({"ipam": {"subnet": "0.0.0.0/0"}}, 7, id="subnet-everything"),
    pytest.param({"ipam": {"dns": [1]}}, 7, id="ipam.dns-list"),
    pytest.param(_prev({"dns": [1]}), 7, id="prevResult.dns-list"),
    pytest.param(_prev({"routes": "x"}), 7, id="prevResult.routes-string"),
    pytest.param(_prev({"ips": "x"}), 7, id="prevResult.ips-string"),
    pytest.param(_prev({"interfaces": 5}), 7, id="prevResult.interfaces-int"),
    pytest.param(_prev({"ips": [{"address": 5}]}), 7, id="prevResult-address-int"),
    pytest.param(_prev({"ips": [{"address": "bogus"}]}), 7, id="prevResult-address-bad"),
    pytest.param(_prev({"routes": [{"dst": 5}]}), 7, id="prevResult-route-dst-int"),
    pytest.param(_prev({"ips": [{"address": "10.244.9.5"}]}), 7, id="prevResult-address-no-prefix"),
    pytest.param(
        _prev({"ips": [{"address": "10.244.9.5/24", "interface": 99}]}),
        7,
        id="prevResult-interface-out-of-range",
    ),
    pytest.param(
        _prev(
            {
                "interfaces": [{"name": "eth0"}],
                "ips": [{"address": "10.244.9.5/24", "interface": -1}],
            }
        ),
        7,
        id="prevResult-interface-negative",
    ),
    pytest.param({"bridge": "абвгдежз"}, 7, id="bridge-8-cyrillic-16-bytes"),
    pytest.param({"bridge": "br 0"}, 7, id="bridge-space"),
    pytest.param({"name": "n" * 65}, 7, id="network-name-long"),
    pytest.param({"failClosed": "no"}, 7, id="failClosed-not-bool"),
]


@pytest.mark.parametrize(("over", "code"), CONFIG_CASES)
def test_hostile_config_gets_its_code(over: dict[str, Any], code: int, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    got, out, _ = run(ENV, json.dumps(conf(data, **over)).encode(), tmp_path)
    assert (got, out.get("code")) == (1, code), out
    assert os.listdir(data) == [] and sorted(os.listdir(tmp_path)) == ["data"]


ENV_CASES = [
    pytest.param({"CNI_CONTAINERID": "c" * 10_000}, id="containerid-10000"),
    pytest.param({"CNI_CONTAINERID": "c1\n"}, id="containerid-trailing-newline"),
    pytest.param({"CNI_CONTAINERID": "-c1"}, id="containerid-leading-hyphen"),
    pytest.param({"CNI_IFNAME": "é" * 8}, id="ifname-16-bytes"),
    pytest.param({"CNI_IFNAME": "eth 0"}, id="ifname-space"),
    pytest.param({"CNI_IFNAME": "eth\x1b0"}, id="ifname-escape"),
    pytest.param({"CNI_IFNAME": ".."}, id="ifname-dotdot"),
    pytest.param({"CNI_IFNAME": "a:b"}, id="ifname-colon"),
]


@pytest.mark.parametrize("env", ENV_CASES)
def test_hostile_env_is_code_4(env: dict[str, str], tmp_path: Path) -> None:
    got, out, text = run({**ENV, **env}, json.dumps(conf(tmp_path)).encode(), tmp_path)
    assert (got, out.get("code")) == (1, 4), out
    assert len(text) < 2000  # the 10,000-char ID is not echoed whole
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_deep_nesting_is_code_6(command: str, tmp_path: Path) -> None:
    got, out, _ = run({**ENV, "CNI_COMMAND": command}, NESTED, tmp_path)
    assert (got, out.get("code")) == (1, 6), out


def test_version_survives_deep_nesting(tmp_path: Path) -> None:
    got, out, _ = run({"CNI_COMMAND": "VERSION"}, NESTED, tmp_path)
    assert got == 0 and "1.1.0" in out["supportedVersions"]


def test_eight_megabyte_config_is_a_size_error(tmp_path: Path) -> None:
    doc = conf(tmp_path, padding="x" * (8 << 20))
    got, out, _ = run(ENV, json.dumps(doc).encode(), tmp_path)
    assert (got, out.get("code")) == (1, 7) and "limit" in out["msg"], out


def test_in_process_path_agrees(tmp_path: Path) -> None:
    """The agent runs ``plugin.execute``: same codes without the launcher."""
    bad = conf(tmp_path, ipam={"ranges": 5})
    assert json.loads(plugin.execute(dict(ENV), json.dumps(bad).encode()).stdout)["code"] == 7
    assert json.loads(plugin.execute(dict(ENV), NESTED).stdout)["code"] == 6
