"""The demo's kernel side: network namespaces, CNI ADD, sockets inside them.

Everything lives in network namespaces named ``pcdemo-*`` that this module
creates and deletes by name; the machine's own namespace is never changed.
Pods get their interfaces from the real ``policyc-cni`` plugin, run as a
container runtime runs it (CNI spec, "Parameters": "CNI_COMMAND: indicates
the desired operation; ADD, DEL, CHECK, GC, or VERSION"; the network
configuration on stdin, the result as JSON on stdout).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from policyc.errors import PolicycError

PREFIX = "pcdemo-"
NODE = f"{PREFIX}node"
SUBNET4, SUBNET6 = "10.244.200.0/24", "2001:db8:200::/64"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class DemoPod:
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.namespace}-{self.name}"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def run(*cmd: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> str:
    """Run a command; PolicycError with its stderr if it fails."""
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise PolicycError(f"{' '.join(cmd[:5])}: {err or f'exit {proc.returncode}'}")
    return proc.stdout.decode(errors="replace")


def existing() -> list[str]:
    """The ``pcdemo-*`` network namespaces that exist now."""
    out = run("ip", "netns", "list")
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(PREFIX))


def netns_add(name: str) -> None:
    if not name.startswith(PREFIX):
        raise PolicycError(f"refusing to create {name!r}: not a {PREFIX}* namespace")
    run("ip", "netns", "add", name)
    run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")


def netns_del(names: list[str]) -> None:
    """Delete namespaces by name; already gone is fine (idempotent)."""
    mine = [n for n in names if n.startswith(PREFIX)]
    if mine:
        script = "".join(f"netns del {n}\n" for n in mine).encode()
        subprocess.run(["ip", "-force", "-batch", "-"], input=script, capture_output=True)


def plugin() -> str:
    """The installed ``policyc-cni`` beside this interpreter, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "policyc-cni")
    found = here if os.access(here, os.X_OK) else shutil.which("policyc-cni")
    if not found:
        raise PolicycError("policyc-cni not found beside python or on PATH")
    return found


def net_conf(data_dir: str) -> dict[str, Any]:
    """A dual-stack bridge network with the built-in host-local IPAM."""
    return {
        "cniVersion": "1.1.0",
        "name": "pcdemo",
        "type": "policyc-cni",
        "bridge": "pcbr0",
        "isGateway": True,
        "isDefaultGateway": True,
        "ipam": {
            "type": "policyc-host-local",
            "ranges": [[{"subnet": SUBNET4}], [{"subnet": SUBNET6}]],
            "dataDir": data_dir,
        },
    }


def cni_add(pod: DemoPod, data_dir: str) -> list[str]:
    """CNI ADD for ``pod`` run inside the node namespace; its IPs (no prefix)."""
    exe = plugin()
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": pod.netns,
        "CNI_NETNS": f"/run/netns/{pod.netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": os.path.dirname(exe),
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={pod.namespace};K8S_POD_NAME={pod.name}",
        # No agent is listening: the plugin does the work itself (standalone).
        "POLICYC_CNI_SOCKET": os.path.join(data_dir, "no-agent.sock"),
    }
    conf = json.dumps(net_conf(data_dir)).encode()
    out = run("ip", "netns", "exec", NODE, exe, stdin=conf, env=env)
    result = json.loads(out)
    return [ip["address"].split("/")[0] for ip in result.get("ips", [])]


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` run on a thread switched into netns ``name``; sockets it makes
    stay in that namespace.  The thread never returns to Python code in the
    wrong namespace: a failed switch back ends the process."""
    out: list[Any] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {name}")
            try:
                out.append(fn())
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    os._exit(99)
        except Exception as exc:  # re-raised on the caller's thread
            out.append(exc)
        finally:
            os.close(own)
            os.close(target)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(out[0], Exception):
        raise out[0]
    result: T = out[0]
    return result


def listen(pod: DemoPod, port: int) -> socket.socket:
    """A TCP listener on [::]:port (IPv4 too) inside the pod; the kernel
    completes handshakes from its backlog, so nothing needs to accept."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(1024)
        s.setblocking(False)
        return s

    return in_netns(pod.netns, make)


def drain(listeners: list[socket.socket]) -> None:
    """Accept and close what the probes left in the backlogs."""
    for s in listeners:
        while True:
            try:
                conn, _ = s.accept()
            except (BlockingIOError, OSError):
                break
            conn.close()


def tcp_probe(src: DemoPod, ip: str, port: int, timeout: float) -> bool:
    """True when a TCP handshake from ``src`` to ip:port completes."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = in_netns(src.netns, lambda: socket.socket(family, socket.SOCK_STREAM))
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def http_get(netns: str, port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path inside ``netns`` (the agent's endpoint);
    (0, "") when nothing answers."""
    try:
        sock = in_netns(netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    except OSError:
        return 0, ""
    sock.settimeout(2)
    try:
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        return 0, ""
    finally:
        sock.close()
    head, _, body = b"".join(chunks).decode(errors="replace").partition("\r\n\r\n")
    parts = head.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body
