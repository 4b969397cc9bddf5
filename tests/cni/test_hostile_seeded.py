"""A seeded hostile-input run over policyc-cni and its agent socket (issue 13).

A new seed each run unless ``POLICYC_SEED`` is set; the seed is printed and
named in every failure.  Oracles: exit code 0 or an error carrying one of the
spec's well-known codes; no "Traceback" on stdout or stderr (plugin and
agent); every call ends within its subprocess bound; after a failed ADD, or an
ADD and its DEL, no veth, IPAM file, masquerade rule or pod interface is left.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
from typing import Any

from tests.cni.conftest import new_pods
from tests.cni.helpers import Net, agent, cni, in_ns, links, masq_rules, pod_args
from tests.cni.test_hostile_agent import ask

SEED = int(os.environ.get("POLICYC_SEED") or random.SystemRandom().randrange(2**32))
CASES = 60  # per mode; ~30 s for both modes on a loaded 2-core machine
RAW_REQUESTS = 20
# SPEC "Error": the well-known codes.
SPEC_CODES = {1, 2, 3, 4, 5, 6, 7, 11, 50, 51}

HOSTILE: list[Any] = [
    5, -1, 1.5, True, None, [], {}, "", "x" * 5000, "a\nb", 'q"u;o#te', "абвгдежз",
    "\x1b[31m", [[[[]]]], {"a": 1}, "10.244.7.0/24", "0.0.0.0/0", "::/0",
    "255.255.255.255/32", "10.244.7.5", "2001:db8::1/64", "eth0", "pcbr0", "\ud800",
]  # fmt: skip
NOT_STRINGS = [v for v in HOSTILE if not isinstance(v, str)]
CONF_PATHS = [
    ("cniVersion",), ("name",), ("bridge",), ("isGateway",), ("isDefaultGateway",),
    ("ipMasq",), ("mtu",), ("hairpinMode",), ("failClosed",), ("dns",), ("prevResult",),
    ("ipam",), ("ipam", "subnet"), ("ipam", "ranges"), ("ipam", "routes"),
    ("ipam", "gateway"), ("ipam", "rangeStart"), ("ipam", "dns"), ("ipam", "dataDir"),
    ("prevResult", "ips"), ("prevResult", "routes"), ("prevResult", "interfaces"),
    ("prevResult", "dns"), ("ipam", "routes", 0, "dst"), ("prevResult", "ips", 0, "address"),
]  # fmt: skip
ENV_KEYS = ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_ARGS", "CNI_NETNS", "CNI_COMMAND"]
ENV_VALUES = [
    "c" * 10_000, "c1\n", "-x", "a/b", "eth 0", "é" * 8, 'e"t;#0', "..", "x" * 16,
    "/dev/null", "/proc/self/ns/uts", "/", "", "K8S_POD_NAME", "ADD", "GC", "\x1b",
]  # fmt: skip


def _base(net: Net, rng: random.Random) -> dict[str, Any]:
    doc = net.conf(ipMasq=rng.random() < 0.5)
    doc["ipam"]["routes"] = [{"dst": "10.96.0.0/12"}]
    doc["prevResult"] = {"cniVersion": "1.1.0", "ips": [{"address": "192.0.2.9/24"}]}
    return doc


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) or (isinstance(node, list) and path[-1] < len(node)):
        node[path[-1]] = value


def mutate(net: Net, rng: random.Random, pod: str, n: int) -> tuple[bytes, dict[str, str], str]:
    """One hostile request: (stdin, env overrides, a description)."""
    doc = _base(net, rng)
    env: dict[str, str] = {}
    what = []
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
        if rng.random() < 0.7:
            path = rng.choice(CONF_PATHS)
            # dataDir: only non-strings, a hostile *path* would write outside the test
            value = rng.choice(NOT_STRINGS if path[-1] == "dataDir" else HOSTILE)
            _set(doc, path, copy.deepcopy(value))
            what.append(f"{'.'.join(map(str, path))}={value!r:.40}")
        else:
            key, value = rng.choice(ENV_KEYS), rng.choice(ENV_VALUES)
            env[key] = value
            what.append(f"{key}={value!r:.40}")
    stdin = json.dumps(doc).encode()
    roll = rng.random()
    if roll < 0.08:
        stdin = stdin[: rng.randrange(len(stdin))]
        what.append("truncated")
    elif roll < 0.12:
        stdin = b"[" * 100_000 + b"]" * 100_000
        what.append("deep")
    env.setdefault("CNI_CONTAINERID", f"c{n}")
    env.setdefault("CNI_NETNS", f"/run/netns/{pod}")
    env.setdefault("CNI_ARGS", pod_args("h", f"p{n}"))
    return stdin, env, "; ".join(what)


def _left(net: Net, pod: str) -> list[str]:
    veths = in_ns(net.node, "ip", "-o", "link", "show", "type", "veth").stdout.splitlines()
    found = [line.split(":")[1].strip() for line in veths]
    for root, _, files in os.walk(net.data_dir):
        if root != net.data_dir:  # <dataDir>/<network>/: one file per allocated IP
            found += [f for f in files if f != "lock" and not f.startswith("last_")]
    found += masq_rules(net.node) + [n for n in links(pod) if n != "lo"]
    return found


def _check(net: Net, reply: Any, tag: str) -> None:
    text = reply.raw + reply.stderr
    assert "Traceback" not in text, f"{tag}: {text[-2000:]}"
    if reply.code != 0:
        assert reply.out.get("code") in SPEC_CODES, f"{tag}: {reply.raw[:500]}"


def _run(net: Net, pod: str, mode: str) -> int:
    rng = random.Random(f"{SEED}:{mode}")
    added = 0
    for n in range(CASES):
        stdin, env, what = mutate(net, rng, pod, n)
        tag = f"seed={SEED} {mode} case {n}: {what}"
        add = cni(net, env.get("CNI_COMMAND", "ADD"), stdin, env=env)
        _check(net, add, tag)
        if add.code == 0 and env.get("CNI_COMMAND", "ADD") == "ADD":
            added += 1
            gone = cni(net, "DEL", stdin, env={**env, "CNI_COMMAND": "DEL"})
            _check(net, gone, tag + " (DEL)")
            assert gone.code == 0, f"{tag}: DEL {gone.raw}"
        assert _left(net, pod) == [], tag
    return added


def test_seeded_hostile_plugin_and_agent(net: Net, pods: list[str]) -> None:
    print(f"policyc-cni hostile run: POLICYC_SEED={SEED}", file=sys.stderr)
    (pod,) = new_pods(pods)
    standalone = _run(net, pod, "standalone")
    net.socket_path = os.path.join(net.data_dir, "cni.sock")
    rng = random.Random(f"{SEED}:raw")
    with agent(net.node, net.socket_path) as proc:
        thick = _run(net, pod, "thick")
        for i in range(RAW_REQUESTS):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            if i % 2:
                env = rng.choice([{}, "x", [1], {"CNI_COMMAND": rng.choice(ENV_VALUES)}])
                if i % 4 == 1:  # what no exec'd environment can hold
                    env = {"CNI_COMMAND": "ADD", "CNI_NETNS": rng.choice(["a\0b", "\ud800"])}
                data = json.dumps({"v": 1, "env": env, "stdin": rng.choice(HOSTILE)}).encode()
            reply = ask(net.socket_path, data)
            assert json.loads(str(reply["stdout"]))["code"] in SPEC_CODES, f"seed={SEED} {data!r}"
        assert cni(net, "STATUS").code == 0, f"seed={SEED}: agent stopped serving"
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, f"seed={SEED}: {err[-2000:]}"
    print(f"hostile run: {standalone} + {thick} ADDs succeeded of {2 * CASES}", file=sys.stderr)
