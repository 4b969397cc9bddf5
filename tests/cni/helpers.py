"""Drive policyc-cni as a runtime does, against namespaces the tests create."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from policyc.names import BRIDGE_CHAIN, BRIDGE_FAMILY, TABLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".venv", "bin")
PYTHON = os.path.join(VENV, "python")
CONSOLE_SCRIPT = os.path.join(VENV, "policyc-cni")  # what pip installs


def _install_launcher() -> str:
    """The tests exec what a node installs into /opt/cni/bin (cni.install_shim)."""
    bindir = tempfile.mkdtemp(prefix="policyc-cni-bin-")
    atexit.register(shutil.rmtree, bindir, True)
    out = subprocess.run(
        [PYTHON, "-m", "cni.install_shim", bindir],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


PLUGIN = _install_launcher()
REF_DIR = "/usr/lib/cni"
# The fail-closed chain, as nft names it: "bridge policyc prerouting".
FAILCLOSED_TABLE = f"{BRIDGE_FAMILY} {TABLE}"
FAILCLOSED_CHAIN = f"{FAILCLOSED_TABLE} {BRIDGE_CHAIN}"
PREFIX = f"pcc{os.getpid() % 10000}"
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def require_kernel() -> None:
    """Skip (or fail, with POLICYC_REQUIRE_KERNEL=1) without root and netns."""
    reason = ""
    if os.geteuid() != 0:
        reason = "kernel tests need root"
    elif subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        reason = "no network namespace support"
    if reason:
        if os.environ.get("POLICYC_REQUIRE_KERNEL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def unique(tag: str) -> str:
    return f"{PREFIX}{tag}{next(_counter)}"


def netns_add(*names: str) -> None:
    script = "".join(f"netns add {n}\n" for n in names)
    subprocess.run(["ip", "-batch", "-"], input=script.encode(), check=True)


def netns_del(*names: str) -> None:
    script = "".join(f"netns del {n}\n" for n in names)
    subprocess.run(["ip", "-force", "-batch", "-"], input=script.encode(), capture_output=True)


def in_ns(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check
    )


def ns_socket(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
) -> socket.socket:
    """A socket created inside netns ``ns`` (sockets keep their netns)."""
    out: list[Any] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                out.append(socket.socket(family, kind))
            finally:
                if _libc.setns(own, 0x40000000) != 0:
                    os._exit(99)  # never leave a thread in the wrong netns
        except Exception as exc:  # surfaced below
            out.append(exc)
        finally:
            os.close(own)
            os.close(target)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(out[0], Exception):
        raise out[0]
    sock: socket.socket = out[0]
    return sock


@dataclass
class Net:
    """A node netns (bridge side) plus the config for one network."""

    node: str
    data_dir: str
    name: str = "pcnet"
    subnet: str = "10.244.1.0/24"
    socket_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ipam: dict[str, Any] | None = None
    version: str = "1.1.0"

    def conf(self, **over: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "cniVersion": self.version,
            "name": self.name,
            "type": "policyc-cni",
            "bridge": "pcbr0",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipam": self.ipam
            or {
                "type": "policyc-host-local",
                "subnet": self.subnet,
                "dataDir": self.data_dir,
            },
        }
        doc.update(self.extra)
        doc.update(over)
        return doc


@dataclass
class Reply:
    code: int
    out: dict[str, Any]
    raw: str
    stderr: str
    seconds: float


def cni(
    net: Net,
    command: str,
    conf: dict[str, Any] | str | bytes | None = None,
    pod: str = "",
    cid: str = "",
    ifname: str = "eth0",
    args: str = "",
    env: dict[str, str] | None = None,
    exe: str = PLUGIN,
) -> Reply:
    """Exec the plugin inside the node netns with the CNI env and stdin."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_PATH": f"{VENV}:{REF_DIR}",
        "POLICYC_CNI_SOCKET": net.socket_path or os.path.join(net.data_dir, "no-agent.sock"),
    }
    if cid:
        full["CNI_CONTAINERID"] = cid
    if pod:
        full["CNI_NETNS"] = pod if pod.startswith("/") else f"/run/netns/{pod}"
    if ifname:
        full["CNI_IFNAME"] = ifname
    if args:
        full["CNI_ARGS"] = args
    full.update(env or {})
    full = {k: v for k, v in full.items() if v is not None and v != "\0"}
    if conf is None:
        conf = net.conf()
    stdin = (
        conf
        if isinstance(conf, bytes)
        else (conf.encode() if isinstance(conf, str) else json.dumps(conf).encode())
    )
    start = time.perf_counter()
    proc = subprocess.run(
        ["ip", "netns", "exec", net.node, exe],
        input=stdin,
        env=full,
        capture_output=True,
        timeout=60,
    )
    took = time.perf_counter() - start
    raw = proc.stdout.decode()
    try:
        out = json.loads(raw) if raw.strip() else {}
    except ValueError:
        out = {"unparsed": raw}
    return Reply(proc.returncode, out, raw, proc.stderr.decode(), took)


def pod_args(ns: str, pod: str) -> str:
    return f"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={pod}"


def links(ns: str) -> list[str]:
    out = in_ns(ns, "ip", "-o", "link", "show").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def addrs(ns: str, dev: str) -> list[str]:
    out = in_ns(ns, "ip", "-o", "addr", "show", "dev", dev, check=False).stdout
    return [line.split()[3] for line in out.splitlines() if " inet" in line and "fe80" not in line]


def allocations(net: Net) -> list[str]:
    d = os.path.join(net.data_dir, net.name)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_"))


@contextlib.contextmanager
def agent(node: str, socket_path: str, hook: str = "") -> Iterator[subprocess.Popen[bytes]]:
    """Run the agent's socket server inside the node netns, as the watcher would."""
    cmd = ["ip", "netns", "exec", node, PYTHON, "-m", "cni.agent_server", "--socket", socket_path]
    if hook:
        cmd += ["--on-add", hook]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"agent did not start: {err!r}")
            time.sleep(0.02)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def allow_port(node: str, *ifaces: str) -> None:
    """Stand-in for the compiler: mark pod ports as known (accepted)."""
    script = "".join(f'insert rule {FAILCLOSED_CHAIN} iifname "{i}" accept\n' for i in ifaces)
    subprocess.run(
        ["ip", "netns", "exec", node, "nft", "-f", "-"], input=script.encode(), check=True
    )


def udp_reaches(
    src_ns: str, dst_ns: str, dst_ip: str, port: int = 7000, timeout: float = 2.0
) -> bool:
    family = socket.AF_INET6 if ":" in dst_ip else socket.AF_INET
    rx = ns_socket(dst_ns, family)
    tx = ns_socket(src_ns, family)
    try:
        rx.bind((dst_ip, port))
        rx.settimeout(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tx.sendto(b"hello", (dst_ip, port))
            try:
                if rx.recv(64) == b"hello":
                    return True
            except TimeoutError:
                continue
        return False
    finally:
        rx.close()
        tx.close()


def masq_rules(node: str) -> list[str]:
    """Comments of the masquerade rules ``cni.masq`` keeps in the node netns."""
    out = []
    for fam in ("ip", "ip6"):
        text = in_ns(node, "nft", "list", "table", fam, "policyc_cni_nat", check=False).stdout
        out += [line.strip() for line in text.splitlines() if "masquerade" in line]
    return out


def leftovers(net: Net, *pods: str) -> list[str]:
    """What a failed ADD, or an ADD then DEL, must not leave behind: host veths,
    IPAM files, masquerade rules, and interfaces in the pods."""
    found = [f"link {n}" for n in links(net.node) if n not in ("lo", "pcbr0")]
    found += [f"ip {a}" for a in allocations(net)]
    found += [f"masq {r}" for r in masq_rules(net.node)]
    for pod in pods:
        found += [f"{pod}: link {n}" for n in links(pod) if n != "lo"]
    return found
