"""GC, including after ADDs killed midway."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

from tests.cni.conftest import new_pods
from tests.cni.helpers import PLUGIN, Net, allocations, cni, links, pod_args


def _pc_ports(net: Net) -> list[str]:
    return [x for x in links(net.node) if x.startswith("pc") and x != "pcbr0"]


def test_gc_keeps_valid_and_cleans_killed_adds(net: Net, pods: list[str]) -> None:
    keep, *victims = new_pods(pods, 9)
    assert cni(net, "ADD", pod=keep, cid="keep", args=pod_args("x", "keep")).code == 0
    rng = random.Random(7)
    for i, pod in enumerate(victims):
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": f"v{i}",
            "CNI_NETNS": f"/run/netns/{pod}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/usr/lib/cni",
            "POLICYC_CNI_SOCKET": os.path.join(net.data_dir, "none.sock"),
        }
        proc = subprocess.Popen(
            ["ip", "netns", "exec", net.node, PLUGIN],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        proc.stdin.write(__import__("json").dumps(net.conf()).encode())
        proc.stdin.close()
        # Somewhere inside a standalone ADD: ~15 ms to start, ~60-140 ms in all.
        time.sleep(rng.uniform(0.02, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    gc = cni(net, "GC", net.conf(**{"cni.dev/valid-attachments": valid}), ifname="")
    assert gc.code == 0, gc.raw
    assert allocations(net) == ["10.244.1.2"]
    assert _pc_ports(net) == ["pc" + __import__("hashlib").sha1(b"x/keep").hexdigest()[:11]]
    for pod in victims:  # the pod ends went with their host ends
        assert links(pod) == ["lo"]
    assert cni(net, "GC", net.conf(**{"cni.dev/valid-attachments": []}), ifname="").code == 0
    assert allocations(net) == [] and _pc_ports(net) == []
