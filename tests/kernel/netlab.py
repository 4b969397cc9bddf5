"""A throw-away "node" of network namespaces for kernel tests of policyc.

Layout (all inside namespaces created here; the root namespace is never touched)::

    <prefix>node   br0 10.244.1.1/24, 2001:db8:244:1::1/64, ports pc<hash> (one per pod)
    <prefix>p<n>   eth0 <pod ip>/24, <pod ip6>/64, default routes via br0's addresses

The host side of a pod's veth is ``policyc.names.pod_iface(ns, name)``, the
name the compiler matches on.  One helper process (``servers.py``) serves
TCP and UDP on the lab's ports in every pod.  Probes are real packets, sent in
parallel (``probes.py``); spoofed packets come from ``spoof.py``.

Every netns is created under a per-run prefix and deleted by name on
``close()``, on context-manager exit and, as a last resort, at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import subprocess
from collections.abc import Iterable, Sequence
from types import TracebackType

from policyc.names import pod_iface

from .kernelcheck import (
    IPV6_NODE_SYSCTLS,
    NODE_SYSCTLS,
    POD_SYSCTLS,
    check_addr,
    ip_batch,
    new_prefix,
    register_netns,
    remove_netns,
    require_kernel,
    requires_kernel,
)
from .nsutil import write_sysctls
from .pods import (
    DEFAULT_MATRIX_PORTS,
    GATEWAY4,
    GATEWAY6,
    STANDARD_NAMESPACES,
    STANDARD_PODS,
    Case,
    MatrixKey,
    Pod,
    format_matrix,
    matrix_diff,
    standard_specs,
)
from .probes import DEFAULT_TIMEOUT, ProbeRequest, ProbeResult, Proto, SourcePorts, run_probes
from .serverproc import ServerProcess
from .spoof import UdpSink, send_raw_udp

__all__ = [
    "Case",
    "CommandError",
    "DEFAULT_MATRIX_PORTS",
    "GATEWAY4",
    "GATEWAY6",
    "Lab",
    "MatrixKey",
    "Pod",
    "ProbeResult",
    "STANDARD_NAMESPACES",
    "STANDARD_PODS",
    "UdpSink",
    "build_standard",
    "format_matrix",
    "matrix_diff",
    "require_kernel",
    "requires_kernel",
    "standard_specs",
]


class CommandError(subprocess.CalledProcessError):
    """A failed ``node_exec`` / ``pod_exec``; unlike its base, shows stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {(self.stderr or '').strip()}"


def _split(addr: str, default_len: int) -> tuple[str, int]:
    ip, _, plen = addr.partition("/")
    return check_addr(ip), int(plen) if plen else default_len


class Lab:
    """A node namespace with a bridge, pods attached to it, and servers in every pod."""

    def __init__(self, ports: Sequence[int] = (80, 81), servers: bool = True) -> None:
        self.ports = tuple(ports)
        self.prefix = new_prefix()
        self.node = Pod("", "node", self.prefix + "node", GATEWAY4, GATEWAY6, "br0")
        self.pods: dict[str, Pod] = {}
        self._servers = ServerProcess() if servers else None
        self._source_ports = SourcePorts()
        self._sinks: list[tuple[Pod, UdpSink]] = []
        self._pod_counter = 0
        self._netns: list[str] = []
        self._closed = False
        self._started = False

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Create the node namespace, its bridge and sysctls; start the servers."""
        if self._started:
            return
        self._started = True
        atexit.register(self.close)
        if self._servers is not None:
            self._servers.spawn()  # its interpreter starts while we build
        self._add_netns([self.node.netns])
        write_sysctls(self.node.netns, {**NODE_SYSCTLS, **IPV6_NODE_SYSCTLS})
        ip_batch(
            [
                "link set lo up",
                "link add br0 type bridge mcast_snooping 0",
                f"addr add {GATEWAY4}/24 dev br0",
                f"addr add {GATEWAY6}/64 dev br0 nodad",
                "link set br0 up",
            ],
            netns=self.node.netns,
        )

    def close(self) -> None:
        """Stop the servers, close sinks, delete every namespace. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for _, sink in self._sinks:
                sink.close()
            self._sinks.clear()
            if self._servers is not None:
                self._servers.stop()
        finally:
            remove_netns(self._netns)
            self._netns.clear()
            atexit.unregister(self.close)

    def _add_netns(self, names: list[str]) -> None:
        try:
            ip_batch([f"netns add {n}" for n in names])
        finally:
            # record only what exists now: the prefix was unused when chosen
            created = [n for n in names if os.path.exists(f"/run/netns/{n}")]
            self._netns.extend(created)
            register_netns(created)

    # -- pods --------------------------------------------------------------

    def add_pod(self, namespace: str, name: str, ip4: str, ip6: str | None = None) -> Pod:
        return self.add_pods([(namespace, name, ip4, ip6)])[0]

    def add_pods(self, specs: Iterable[tuple[str, str, str, str | None]]) -> list[Pod]:
        """Create several pods with one batch of ``ip`` commands per namespace."""
        if self._closed or not self._started:
            raise RuntimeError("lab is not running")
        pods: list[Pod] = []
        lens: dict[str, tuple[int, int]] = {}
        for namespace, name, ip4, ip6 in specs:
            if f"{namespace}/{name}" in self.pods:
                raise ValueError(f"pod {namespace}/{name} already exists")
            a4, l4 = _split(ip4, 24)
            a6, l6 = _split(ip6, 64) if ip6 else (None, 64)
            netns = f"{self.prefix}p{self._pod_counter}"
            self._pod_counter += 1
            pods.append(Pod(namespace, name, netns, a4, a6, pod_iface(namespace, name)))
            lens[netns] = (l4, l6)
        if not pods:
            return []
        self._add_netns([p.netns for p in pods])
        for p in pods:  # before eth0 exists: it inherits the defaults (no DAD)
            write_sysctls(p.netns, POD_SYSCTLS)
        node_cmds: list[str] = []
        for p in pods:
            node_cmds += [
                f"link add {p.iface} type veth peer name eth0 netns {p.netns}",
                f"link set {p.iface} addrgenmode none",
                f"link set {p.iface} master br0 up",
            ]
        ip_batch(node_cmds, netns=self.node.netns)
        procs = []
        for p in pods:
            l4, l6 = lens[p.netns]
            cmds = ["link set lo up", f"addr add {p.ip4}/{l4} dev eth0", "link set eth0 up"]
            cmds.append(f"route add default via {GATEWAY4}")
            if p.ip6:
                cmds.insert(2, f"addr add {p.ip6}/{l6} dev eth0 nodad")
                cmds.append(f"route add default via {GATEWAY6}")
            procs.append(ip_batch(cmds, netns=p.netns, wait=False))
        for proc in procs:
            proc.wait_checked()
        for p in pods:
            self.pods[p.key] = p
        if self._servers is not None:
            self._servers.add([(p.netns, p.netns, self.ports) for p in pods])
        return pods

    def remove_pod(self, pod: Pod) -> None:
        """Delete a pod: its servers, sinks, veth (synchronously) and namespace."""
        if self.pods.pop(pod.key, None) is None:
            raise KeyError(pod.key)
        if self._servers is not None:
            self._servers.delete(pod.netns)
        for entry in [e for e in self._sinks if e[0] == pod]:
            entry[1].close()
            self._sinks.remove(entry)
        ip_batch([f"link del {pod.iface}"], netns=self.node.netns)
        remove_netns([pod.netns])
        self._netns.remove(pod.netns)
        self._forget_neighbours(pod)

    def _forget_neighbours(self, gone: Pod) -> None:
        """Drop neighbour entries for a removed pod's addresses everywhere.

        Otherwise a pod re-created with the same IP (and a new MAC) is
        unreachable from pods that cached the old MAC until their entry goes
        stale and is re-probed (5+ s): TCP probes would time out.
        """
        cmds = [f"neigh flush to {a}" for a in (gone.ip4, gone.ip6) if a]
        batches = [
            ip_batch(cmds, netns=ns, wait=False, force=True)
            for ns in [self.node.netns] + [p.netns for p in self.pods.values()]
        ]
        for b in batches:
            b.wait_checked()

    def pod(self, key: str) -> Pod:
        """A pod by ``"namespace/name"``."""
        return self.pods[key]

    # -- commands ----------------------------------------------------------

    def exec_in(
        self, netns: str, argv: Sequence[str], input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if netns not in self._netns:
            raise ValueError(f"{netns!r} is not a namespace of this lab")
        proc = subprocess.run(
            ["ip", "netns", "exec", netns, *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def node_exec(
        self, argv: Sequence[str], input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node namespace."""
        return self.exec_in(self.node.netns, argv, input=input, check=check)

    def pod_exec(
        self, pod: Pod, argv: Sequence[str], input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.exec_in(pod.netns, argv, input=input, check=check)

    def nft(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``nft -f -`` in the node namespace."""
        return self.node_exec(["nft", "-f", "-"], input=script, check=check)

    def flush_firewall(self) -> None:
        """Remove every nft table (iptables-nft rules included) and ipset in the node."""
        self.node_exec(["nft", "flush", "ruleset"])
        self.node_exec(["ipset", "destroy"], check=False)

    # -- probes ------------------------------------------------------------

    def probe_detailed(
        self, cases: Iterable[Case], timeout: float = DEFAULT_TIMEOUT
    ) -> dict[Case, ProbeResult]:
        reqs = []
        for case in cases:
            src, dst, proto, port = case
            if src.netns not in self._netns:
                raise ValueError(f"{src} is not a pod of this lab")
            if proto not in ("tcp", "udp"):
                raise ValueError(f"bad protocol {proto!r}")
            kind: Proto = "tcp" if proto == "tcp" else "udp"
            reqs.append((case, ProbeRequest(src.netns, check_addr(dst), kind, int(port))))
        return run_probes(reqs, self._source_ports, timeout)

    def probe(self, cases: Iterable[Case], timeout: float = DEFAULT_TIMEOUT) -> dict[Case, bool]:
        """Connectivity per ``(src pod, dst address, "tcp"|"udp", port)``, all in parallel.

        True only for a completed TCP handshake or a UDP echo; see
        ``probe_detailed`` for refused / timeout / error.
        """
        return {c: r.ok for c, r in self.probe_detailed(cases, timeout).items()}

    def matrix_detailed(
        self,
        pods: Iterable[Pod] | None = None,
        ports: Sequence[tuple[str, int]] = DEFAULT_MATRIX_PORTS,
        family: int = 4,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[MatrixKey, ProbeResult]:
        chosen = list(self.pods.values()) if pods is None else list(pods)
        cases = {
            (s, d, proto, port): (s, d.addr(family), proto, port)
            for s in chosen
            for d in chosen
            for proto, port in ports
        }
        res = self.probe_detailed(cases.values(), timeout)
        return {k: res[c] for k, c in cases.items()}

    def matrix(
        self,
        pods: Iterable[Pod] | None = None,
        ports: Sequence[tuple[str, int]] = DEFAULT_MATRIX_PORTS,
        family: int = 4,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[MatrixKey, bool]:
        """Every ordered pair of ``pods`` (default: all) x ``ports``, in parallel.

        ``src == dst`` is included: the pod dials its own address, which never
        leaves the pod namespace (it goes over the pod's ``lo``), so no node
        firewall can affect it; it is always True while the servers run.
        """
        res = self.matrix_detailed(pods, ports, family, timeout)
        return {k: r.ok for k, r in res.items()}

    # -- spoofing ----------------------------------------------------------

    def send_spoofed_udp(
        self,
        src_pod: Pod,
        fake_src_ip: str,
        dst_ip: str,
        dport: int,
        payload: bytes = b"spoofed",
        sport: int = 40000,
    ) -> None:
        """Send one UDP datagram from ``src_pod``'s eth0 with a forged source address."""
        send_raw_udp(
            src_pod.netns, check_addr(fake_src_ip), check_addr(dst_ip), sport, dport, payload
        )

    def udp_sink(self, dst_pod: Pod, port: int, family: int = 4) -> UdpSink:
        """A recording UDP socket in ``dst_pod`` (closed with the lab or the pod)."""
        if port in self.ports:
            raise ValueError(f"port {port} is served by the lab's servers")
        sink = UdpSink(dst_pod.netns, port, family)
        self._sinks.append((dst_pod, sink))
        return sink


def build_standard(lab: Lab, ipv6: bool = True) -> dict[str, Pod]:
    """Add the 9 pods of the upstream netpol e2e model (x, y, z x a, b, c); by key.

    x/a is 10.244.1.10 (and 2001:db8:244:1::10), x/b .11, ... z/c .18.
    """
    return {p.key: p for p in lab.add_pods(standard_specs(ipv6))}
