"""Built-in IPAM: host-local semantics, on-disk format, locking, interop."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from cni import ipam_hostlocal as hl
from cni.spec import CNIError
from tests.cni.helpers import REF_DIR


def ipam(tmp: Path, **kw: object) -> dict:
    return {"type": "policyc-host-local", "dataDir": str(tmp), **kw}


def addr(result: dict, n: int = 0) -> str:
    return str(result["ips"][n]["address"])


def test_sequential_allocation_skips_gateway_and_resumes(tmp_path: Path) -> None:
    conf = ipam(tmp_path, subnet="10.244.2.0/29")
    got = [addr(hl.allocate(conf, "n", f"c{i}", "eth0")) for i in range(5)]
    assert got == [f"10.244.2.{i}/29" for i in range(2, 7)]  # .1 is the gateway, .7 broadcast
    with pytest.raises(CNIError) as err:
        hl.allocate(conf, "n", "c9", "eth0")
    assert err.value.code == 11  # exhausted: try again later
    hl.release(conf, "n", "c1", "eth0")
    assert addr(hl.allocate(conf, "n", "c10", "eth0")) == "10.244.2.3/29"


def test_on_disk_format_is_host_locals(tmp_path: Path) -> None:
    conf = ipam(
        tmp_path,
        ranges=[
            [
                {
                    "subnet": "10.244.3.0/24",
                    "rangeStart": "10.244.3.10",
                    "rangeEnd": "10.244.3.20",
                    "gateway": "10.244.3.254",
                }
            ],
            [{"subnet": "2001:db8:244:3::/64"}],
        ],
    )
    res = hl.allocate(conf, "n", "cid", "eth0")
    assert addr(res) == "10.244.3.10/24" and res["ips"][0]["gateway"] == "10.244.3.254"
    assert addr(res, 1) == "2001:db8:244:3::2/64"
    d = tmp_path / "n"
    assert (d / "10.244.3.10").read_bytes() == b"cid\r\neth0"
    assert (d / "2001:db8:244:3::2").read_bytes() == b"cid\r\neth0"
    assert (d / "last_reserved_ip.0").read_text() == "10.244.3.10"
    assert (d / "last_reserved_ip.1").read_text() == "2001:db8:244:3::2"
    assert (d / "lock").exists()


def test_duplicate_add_is_refused_and_gc_frees_invalid(tmp_path: Path) -> None:
    conf = ipam(tmp_path, subnet="10.244.4.0/24")
    hl.allocate(conf, "n", "a", "eth0")
    hl.allocate(conf, "n", "b", "eth0")
    with pytest.raises(CNIError):
        hl.allocate(conf, "n", "a", "eth0")
    assert hl.gc(conf, "n", {("a", "eth0")}) == ["10.244.4.3"]
    assert hl.owned(conf, "n", "a", "eth0") == ["10.244.4.2"]


def _grab(args: tuple[str, int]) -> str:
    data, i = args
    return addr(hl.allocate(ipam(Path(data), subnet="10.244.5.0/24"), "n", f"c{i}", "eth0"))


def test_concurrent_processes_get_unique_ips(tmp_path: Path) -> None:
    with ProcessPoolExecutor(8) as pool:
        got = list(pool.map(_grab, [(str(tmp_path), i) for i in range(50)]))
    assert len(set(got)) == 50


def ref(command: str, conf: dict, cid: str, data: Path, plugin: str = "host-local") -> dict:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REF_DIR,
        "PATH": "/usr/bin:/bin",
    }
    full = {"cniVersion": "1.0.0", "name": "n", "type": "bridge", "ipam": conf}
    proc = subprocess.run(
        [os.path.join(REF_DIR, plugin)],
        input=json.dumps(full).encode(),
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_takes_over_reference_host_local_and_back(tmp_path: Path) -> None:
    ref_conf = {"type": "host-local", "subnet": "10.244.6.0/24", "dataDir": str(tmp_path)}
    ours = ipam(tmp_path, subnet="10.244.6.0/24")
    a = ref("ADD", ref_conf, "ref-a", tmp_path)
    assert a["ips"][0]["address"] == "10.244.6.2/24"
    # We continue after the reference's last reservation...
    assert addr(hl.allocate(ours, "n", "ours-b", "eth0")) == "10.244.6.3/24"
    # ...the reference continues after ours...
    assert ref("ADD", ref_conf, "ref-c", tmp_path)["ips"][0]["address"] == "10.244.6.4/24"
    # ...each releases the other's allocations.
    hl.release(ours, "n", "ref-a", "eth0")
    ref("DEL", ref_conf, "ours-b", tmp_path)
    assert sorted(f for f in os.listdir(tmp_path / "n") if f[0].isdigit()) == ["10.244.6.4"]
