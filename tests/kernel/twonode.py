"""Two nodes in network namespaces, each with a bridge, a ``policyc watch``
agent on a shared directory source and pods made with ``policyc-cni``.

Layout (every namespace under a per-run prefix, deleted by name on close)::

    <prefix>n1  br0 10.244.1.1/24 2001:db8:244:1::1/64   ul0 192.0.2.1/24 2001:db8:244:ff::1/64
    <prefix>n2  br0 10.244.2.1/24 2001:db8:244:2::1/64   ul0 192.0.2.2/24 2001:db8:244:ff::2/64
                (ul0 of n1 and ul0 of n2 are the two ends of one veth: the underlay)
    <prefix>p<k>  a pod: eth0 made by ``policyc-cni ADD`` run inside its node namespace

The source folder holds the whole cluster, one object per file (Nodes
node-1/node-2 with their pod CIDRs and InternalIPs, Namespaces, Pods with
``nodeName``, NetworkPolicies).  A pod is created as a runtime and kubelet
would: its object first (labels, nodeName, no IPs), then CNI ADD through the
node agent's socket, then the object again with ``status.podIPs`` from the
CNI result.  Each agent programs its own node; host-gw routes (rtnetlink
proto 201) carry pod traffic between the nodes.

Expected reachability comes from the reference evaluator over the same
objects; probes are real packets (``probes.run_probes``), served by one
``servers.py`` process for every pod.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.names import pod_iface
from policyc.parse import build_cluster

from .agent_proc import AgentProc
from .kernelcheck import (
    IPV6_NODE_SYSCTLS,
    NODE_SYSCTLS,
    POD_SYSCTLS,
    ip_batch,
    new_prefix,
    register_netns,
    remove_netns,
)
from .nsutil import in_netns, write_sysctls
from .pods import MatrixKey, Pod, format_matrix, matrix_diff
from .probes import ProbeRequest, SourcePorts, run_probes
from .serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv" / "bin"
CNI_PLUGIN = str(VENV / "policyc-cni")
CNI_PATH = f"{VENV}:/usr/lib/cni"
NETWORK = "pcnet"
PORTS: tuple[tuple[str, int], ...] = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))
METRICS_PORT = 9790
Obj = dict[str, Any]
Cell = tuple[int, MatrixKey]  # (family, (src, dst, proto, port))


@dataclass
class Node:
    name: str  # node-1
    index: int  # 1
    netns: str
    dir: Path  # per-node scratch: CNI socket, IPAM data
    agent: NodeAgent | None = None

    @property
    def subnet4(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def subnet6(self) -> str:
        return f"2001:db8:244:{self.index}::/64"

    @property
    def gw4(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def gw6(self) -> str:
        return f"2001:db8:244:{self.index}::1"

    @property
    def underlay4(self) -> str:
        return f"192.0.2.{self.index}"

    @property
    def underlay6(self) -> str:
        return f"2001:db8:244:ff::{self.index}"

    @property
    def socket(self) -> str:
        return str(self.dir / "cni.sock")

    @property
    def ipam_dir(self) -> Path:
        return self.dir / "ipam"

    def cni_conf(self) -> Obj:
        return {
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": "policyc-cni",
            "bridge": "br0",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "policyc-host-local",
                "ranges": [[{"subnet": self.subnet4}], [{"subnet": self.subnet6}]],
                "dataDir": str(self.ipam_dir),
            },
        }


@dataclass
class PodRec:
    pod: Pod
    node: Node
    labels: dict[str, str]
    cid: str
    add_seconds: float = 0.0
    ips: tuple[str, ...] = field(default_factory=tuple)
    served: bool = False


class NodeAgent(AgentProc):
    """AgentProc whose HTTP requests are made from a socket inside the node netns
    (no interpreter start per request)."""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with in_netns(self.netns):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with sock:
                sock.settimeout(2)
                sock.connect(("127.0.0.1", self.port))
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return 0, ""
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            code = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 0, ""
        return code, body.decode(errors="replace")

    def start(self, wait_ready: bool = True) -> NodeAgent:
        super().start(wait_ready)
        return self

    def wait_metric(self, name: str, above: float, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            value = self.metric(name)
            if value > above or time.monotonic() > deadline:
                return value
            time.sleep(0.02)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class TwoNode:
    """The two-node cluster; use as a context manager (``close`` is idempotent)."""

    def __init__(
        self,
        nodes: int = 2,
        agent_args: Sequence[str] = (),
        agent_env: dict[str, str] | None = None,
    ) -> None:
        self.prefix = new_prefix()
        self.tmp = Path(tempfile.mkdtemp(prefix="policyc-twonode-"))
        self.src = self.tmp / "state"
        self.src.mkdir()
        self.nodes = [
            Node(f"node-{i}", i, f"{self.prefix}n{i}", self.tmp / f"node-{i}")
            for i in range(1, nodes + 1)
        ]
        for n in self.nodes:
            n.dir.mkdir()
        self.agent_args = tuple(agent_args)
        self.agent_env = dict(agent_env or {})
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.pods: dict[str, PodRec] = {}
        self.servers = ServerProcess()
        self.ports = SourcePorts()
        self._netns: list[str] = []
        self._counter = 0
        self._lock = threading.Lock()
        self._srv_lock = threading.Lock()
        self._closed = False
        self._agents: list[NodeAgent] = []
        self.api: Any = None  # a tests.fakeapi.FakeAPIServer mirroring the folder, if set

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> TwoNode:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        atexit.register(self.close)
        self.servers.spawn()
        self._add_netns([n.netns for n in self.nodes])
        for n in self.nodes:
            write_sysctls(n.netns, {**NODE_SYSCTLS, **IPV6_NODE_SYSCTLS})
            ip_batch(
                [
                    "link set lo up",
                    # An explicit MAC, as the reference bridge plugin sets: otherwise the
                    # bridge takes the lowest port MAC and changes as pods come and go,
                    # and the pods' cached gateway MAC breaks routed (cross-node) traffic.
                    f"link add br0 address 02:00:00:00:00:{n.index:02x} type bridge "
                    "mcast_snooping 0",
                    f"addr add {n.gw4}/24 dev br0",
                    f"addr add {n.gw6}/64 dev br0 nodad",
                    "link set br0 up",
                ],
                netns=n.netns,
            )
        if len(self.nodes) == 2:
            a, b = self.nodes
            ip_batch([f"link add ul0 type veth peer name ul0 netns {b.netns}"], netns=a.netns)
            for n in self.nodes:
                ip_batch(
                    [
                        f"addr add {n.underlay4}/24 dev ul0",
                        f"addr add {n.underlay6}/64 dev ul0 nodad",
                        "link set ul0 up",
                    ],
                    netns=n.netns,
                )
        self.write_base()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.kill_agents()
            self.servers.stop()
        finally:
            remove_netns(self._netns)
            self._netns.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
            atexit.unregister(self.close)

    def _add_netns(self, names: list[str]) -> None:
        try:
            ip_batch([f"netns add {n}" for n in names])
        finally:
            created = [n for n in names if os.path.exists(f"/run/netns/{n}")]
            with self._lock:
                self._netns.extend(created)
            register_netns(created)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    # -- agents ------------------------------------------------------------
    def agent(
        self,
        node: Node,
        *extra: str,
        env: dict[str, str] | None = None,
        port: int = METRICS_PORT,
        cmd: tuple[str, ...] | None = None,
    ) -> NodeAgent:
        """A (not yet started) agent for ``node``; killed on close."""
        a = NodeAgent(
            node.netns,
            node.name,
            self.src,
            port,
            *self.agent_args,
            *extra,
            cni_socket=node.socket,
            env={**self.agent_env, **(env or {})},
            **({"cmd": cmd} if cmd else {}),
        )
        a.log = node.dir / f"agent-{len(self._agents)}.log"
        self._agents.append(a)
        node.agent = a
        return a

    def kill_agents(self) -> None:
        """SIGKILL every agent this cluster started that still runs."""
        for a in self._agents:
            try:
                a.kill9()
            except Exception:
                pass

    def start_agents(self, *extra: str) -> None:
        agents = [self.agent(n, *extra).start(wait_ready=False) for n in self.nodes]
        for a in agents:
            a.wait_ready()

    # -- cluster objects -----------------------------------------------------
    def _file(self, kind: str, ns: str, name: str) -> Path:
        return self.src / f"{kind.lower()}-{ns or '_'}-{name}.yaml"

    def put(self, obj: Obj) -> float:
        """Write one object (atomically); returns the time of the rename."""
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        with self._lock:
            self.objects[key] = copy.deepcopy(obj)
        if self.api is not None:
            self.api.upsert(copy.deepcopy(obj))
        path = self._file(*key)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(yaml.safe_dump(obj, sort_keys=True))
        t = time.monotonic()
        os.replace(tmp, path)
        return t

    def put_raw(self, kind: str, ns: str, name: str, text: str) -> float:
        """Write arbitrary text where an object's file lives (the model is unchanged)."""
        path = self._file(kind, ns, name)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        t = time.monotonic()
        os.replace(tmp, path)
        return t

    def remove(self, kind: str, ns: str, name: str) -> float:
        with self._lock:
            self.objects.pop((kind, ns, name), None)
        if self.api is not None and self.api.get(kind, ns or None, name) is not None:
            self.api.delete(kind, ns or None, name)
        t = time.monotonic()
        self._file(kind, ns, name).unlink(missing_ok=True)
        return t

    def write_base(self, namespaces: Iterable[str] = ("x", "y", "z")) -> None:
        for n in self.nodes:
            addresses = [{"type": "InternalIP", "address": a} for a in (n.underlay4, n.underlay6)]
            addresses.append({"type": "Hostname", "address": n.name})
            self.put(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": n.name},
                    "spec": {"podCIDR": n.subnet4, "podCIDRs": [n.subnet4, n.subnet6]},
                    "status": {"addresses": addresses},
                }
            )
        for ns in namespaces:
            self.put(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"ns": ns}},
                }
            )

    def put_policy(self, policy: Obj) -> float:
        return self.put(policy)

    def remove_policy(self, ns: str, name: str) -> float:
        return self.remove("NetworkPolicy", ns, name)

    # -- pods ----------------------------------------------------------------
    @staticmethod
    def pod_obj(
        ns: str, name: str, node: str, labels: dict[str, str], ips: Sequence[str] = ()
    ) -> Obj:
        ports = [
            {"name": f"serve-{p}-{proto}", "containerPort": p, "protocol": proto.upper()}
            for p in (80, 81)
            for proto in ("tcp", "udp")
        ]
        status: Obj = {"phase": "Running" if ips else "Pending"}
        if ips:
            status["podIP"] = ips[0]
            status["podIPs"] = [{"ip": i} for i in ips]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "agnhost", "ports": ports}],
            },
            "status": status,
        }

    def cni(
        self, node: Node, command: str, cid: str, ns: str, name: str, netns: str = ""
    ) -> tuple[int, Obj, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": CNI_PATH,
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name}",
            "POLICYC_CNI_SOCKET": node.socket,
        }
        if netns:
            env["CNI_NETNS"] = f"/run/netns/{netns}"
        proc = subprocess.run(
            ["ip", "netns", "exec", node.netns, CNI_PLUGIN],
            input=json.dumps(node.cni_conf()).encode(),
            env=env,
            capture_output=True,
            timeout=60,
        )
        out = proc.stdout.decode()
        try:
            doc = json.loads(out) if out.strip() else {}
        except ValueError:
            doc = {"unparsed": out}
        return proc.returncode, doc, proc.stderr.decode()

    def new_pod_netns(self) -> str:
        with self._lock:
            netns = f"{self.prefix}p{self._counter}"
            self._counter += 1
        self._add_netns([netns])
        write_sysctls(netns, POD_SYSCTLS)
        return netns

    def add_pod(
        self,
        node: Node,
        ns: str,
        name: str,
        labels: dict[str, str] | None = None,
        *,
        wait_known: bool = False,
        report: bool = True,
        serve: bool = True,
        netns: str = "",
    ) -> PodRec:
        """Object (no IPs) -> CNI ADD -> object with status.podIPs -> servers.

        ``wait_known``: before ADD, wait until the node's agent has seen the
        object (so ADD programs the pod before it returns).
        """
        labels = {"pod": name} if labels is None else labels
        before = 0.0
        if wait_known and node.agent is not None:
            before = node.agent.metric('policyc_events_total{kind="Pod",type="ADDED"}')
        self.put(self.pod_obj(ns, name, node.name, labels))
        if wait_known and node.agent is not None:
            got = node.agent.wait_metric(
                'policyc_events_total{kind="Pod",type="ADDED"}', before, timeout=5
            )
            assert got > before, "the agent did not see the pod object"
        netns = netns or self.new_pod_netns()
        cid = f"c-{ns}-{name}-{netns}"
        t0 = time.monotonic()
        code, out, err = self.cni(node, "ADD", cid, ns, name, netns)
        took = time.monotonic() - t0
        if code != 0:
            raise AssertionError(f"CNI ADD {ns}/{name} failed ({code}): {out} {err}")
        ips = tuple(ip["address"].split("/")[0] for ip in out["ips"])
        ip4 = next(i for i in ips if ":" not in i)
        ip6 = next((i for i in ips if ":" in i), None)
        rec = PodRec(
            Pod(ns, name, netns, ip4, ip6, pod_iface(ns, name)), node, labels, cid, took, ips
        )
        with self._lock:
            self.pods[rec.pod.key] = rec
        if report:
            self.report_ips(rec)
        if serve:
            with self._srv_lock:
                self.servers.add([(rec.pod.key, netns, [p for _, p in PORTS[:2]])])
        rec.served = serve
        return rec

    def report_ips(self, rec: PodRec) -> float:
        return self.put(
            self.pod_obj(rec.pod.namespace, rec.pod.name, rec.node.name, rec.labels, rec.ips)
        )

    def relabel(self, key: str, labels: dict[str, str]) -> float:
        rec = self.pods[key]
        rec.labels = dict(labels)
        return self.report_ips(rec)

    def del_pod(self, key: str) -> float:
        """CNI DEL, delete the pod netns, then remove the object (as kubelet does)."""
        with self._lock:
            rec = self.pods.pop(key)
        if rec.served:
            with self._srv_lock:
                self.servers.delete(key)
        code, out, err = self.cni(
            rec.node, "DEL", rec.cid, rec.pod.namespace, rec.pod.name, rec.pod.netns
        )
        if code != 0:
            raise AssertionError(f"CNI DEL {key} failed ({code}): {out} {err}")
        remove_netns([rec.pod.netns])
        with self._lock:
            self._netns.remove(rec.pod.netns)
        return self.remove("Pod", rec.pod.namespace, rec.pod.name)

    def live(self) -> list[Pod]:
        return [r.pod for r in self.pods.values()]

    # -- truth -------------------------------------------------------------
    def evaluator(self, objects: Iterable[Obj] | None = None) -> Evaluator:
        with self._lock:
            objs = list(self.objects.values()) if objects is None else list(objects)
        text = yaml.safe_dump_all(objs, sort_keys=True)
        return Evaluator(build_cluster(parse_text(text, "<twonode>"), warn=lambda m: None))

    def cells(
        self,
        pods: Sequence[Pod] | None = None,
        families: Sequence[int] = (4, 6),
        ports: Sequence[tuple[str, int]] = PORTS,
    ) -> list[Cell]:
        chosen = self.live() if pods is None else list(pods)
        return [
            (f, (s, d, proto, port))
            for f in families
            for s in chosen
            for d in chosen
            if s is not d
            for proto, port in ports
        ]

    def expected(
        self, cells: Sequence[Cell], objects: Iterable[Obj] | None = None
    ) -> dict[Cell, bool]:
        ev = self.evaluator(objects)
        return {
            c: ev.allowed(c[1][0].addr(c[0]), c[1][1].addr(c[0]), c[1][3], c[1][2]).allowed
            for c in cells
        }

    def probe(self, cells: Sequence[Cell], timeout: float = 0.25) -> dict[Cell, bool]:
        reqs = [
            (c, ProbeRequest(c[1][0].netns, c[1][1].addr(c[0]), c[1][2], c[1][3]))  # type: ignore[arg-type]
            for c in cells
        ]
        return {k: r.ok for k, r in run_probes(reqs, self.ports, timeout).items()}

    @staticmethod
    def diff(expected: dict[Cell, bool], actual: dict[Cell, bool]) -> list[str]:
        out = []
        for fam in sorted({c[0] for c in expected}):
            e = {c[1]: v for c, v in expected.items() if c[0] == fam}
            a = {c[1]: v for c, v in actual.items() if c[0] == fam}
            out += [f"v{fam} {line}" for line in matrix_diff(e, a)]
        return out

    def check(
        self, cells: Sequence[Cell] | None = None, timeout: float = 0.4, tries: int = 1
    ) -> list[str]:
        """Probe once (or up to ``tries`` times until equal): mismatches vs the evaluator."""
        cells = self.cells() if cells is None else cells
        exp = self.expected(cells)
        wrong: list[str] = []
        for _ in range(tries):
            wrong = self.diff(exp, self.probe(cells, timeout))
            if not wrong:
                break
        return wrong

    def wait_enforced(
        self,
        t0: float,
        cells: Sequence[Cell] | None = None,
        limit: float = 3.0,
        timeout: float = 0.25,
        step: float = 0.05,
    ) -> tuple[float, list[str]]:
        """Seconds from ``t0`` to the start of the first probe round that matches
        the evaluator (rounds start every ``step`` s and overlap); ``inf`` and
        the last mismatches if none matched by ``t0 + limit``."""
        cells = self.cells() if cells is None else cells
        exp = self.expected(cells)
        rounds: list[tuple[float, Future[dict[Cell, bool]]]] = []
        last: list[str] = []
        with ThreadPoolExecutor(max_workers=int(timeout / step) + 2) as pool:
            nxt = time.monotonic()
            i = 0
            found: float | None = None
            while found is None:
                now = time.monotonic()
                if (
                    now < t0 + limit
                    and now >= nxt
                    and len([f for _, f in rounds[i:] if not f.done()]) < int(timeout / step) + 1
                ):
                    rounds.append((now, pool.submit(self.probe, cells, timeout)))
                    nxt = now + step
                # consume finished rounds in start order
                while i < len(rounds) and rounds[i][1].done():
                    start, fut = rounds[i]
                    i += 1
                    last = self.diff(exp, fut.result())
                    if not last:
                        found = start - t0
                        break
                if found is None and i == len(rounds) and now >= t0 + limit:
                    break
                time.sleep(0.005)
            for _, f in rounds:
                f.cancel()
        if found is None:
            return float("inf"), last
        return found, []

    # -- kernel state ------------------------------------------------------
    def node_exec(
        self, node: Node, *argv: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert node.netns in self._netns
        return subprocess.run(
            ["ip", "netns", "exec", node.netns, *argv],
            capture_output=True,
            text=True,
            check=check,
            input=input,
            timeout=60,
        )

    def nft_json(self, node: Node, family: str) -> list[Obj]:
        r = self.node_exec(node, "nft", "-j", "list", "table", family, "policyc", check=False)
        if r.returncode != 0:
            return []
        items: list[Obj] = json.loads(r.stdout)["nftables"]
        return items

    def tables(self, node: Node) -> set[str]:
        r = self.node_exec(node, "nft", "list", "tables")
        return {line.strip() for line in r.stdout.splitlines() if line.strip()}

    def pc_links(self, node: Node) -> set[str]:
        out = self.node_exec(node, "ip", "-o", "link", "show").stdout
        names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
        return {n for n in names if n.startswith("pc")}

    def routes201(self, node: Node) -> set[str]:
        out = set()
        for fam in ("-4", "-6"):
            r = self.node_exec(node, "ip", fam, "route", "show", "proto", "201")
            out |= {" ".join(line.split()) for line in r.stdout.splitlines() if line.strip()}
        return out

    def wanted_routes(self, node: Node) -> set[str]:
        out = set()
        for other in self.nodes:
            if other is node:
                continue
            out.add(f"{other.subnet4} via {other.underlay4} dev ul0")
            out.add(f"{other.subnet6} via {other.underlay6} dev ul0 metric 1024 pref medium")
        return out

    def allocations(self, node: Node) -> set[str]:
        d = node.ipam_dir / NETWORK
        if not d.is_dir():
            return set()
        return {f.name for f in d.iterdir() if f.name != "lock" and not f.name.startswith("last_")}

    def dump_state(self) -> str:
        """Diagnostics for a failed assertion: agents' logs and rulesets."""
        parts = []
        for n in self.nodes:
            try:
                d = table_diff(
                    kernel_tables(self, n), reference_tables(self, n, self.objects.values())
                )
                parts.append(f"== {n.name} kernel vs policyc compile ==\n" + "\n".join(d))
            except Exception as exc:
                parts.append(f"== {n.name}: no reference: {exc}")
            for cmd in (
                ("ip", "-6", "route"),
                ("ip", "-6", "neigh"),
                ("ip", "route"),
                ("ip", "neigh"),
            ):
                out = self.node_exec(n, *cmd, check=False).stdout
                parts.append(f"== {n.name} {' '.join(cmd)} ==\n{out}")
            rs = self.node_exec(n, "nft", "list", "ruleset", check=False).stdout
            parts.append(f"== {n.name} ruleset ==\n{rs[-4000:]}")
            if n.agent is not None:
                parts.append(f"== {n.name} agent log ==\n{n.agent.logs()[-3000:]}")
        return "\n".join(parts)


def set_addresses(items: list[Obj]) -> set[str]:
    """Every single address (not a prefix or range) in any set element of a table."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if v.startswith(("10.244.", "2001:db8:244:")):
                out.add(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            if "prefix" in v or "range" in v:
                return
            for x in v.values():
                walk(x)

    for item in items:
        if "set" in item:
            walk(item["set"].get("elem", []))
    return out


def set_strings(items: list[Obj], prefix: str) -> set[str]:
    """Every string element starting with ``prefix`` (e.g. interface names)."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str) and v.startswith(prefix):
            out.add(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    for item in items:
        if "set" in item:
            walk(item["set"].get("elem", []))
    return out


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if s else float("nan")


FIGURES_FILE = Path(__file__).with_name(".watch-figures.json")


def record_figures(section: str, figures: dict[str, Any]) -> None:
    """Merge ``figures`` under ``section`` into tests/kernel/.watch-figures.json."""
    try:
        doc = json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        doc = {}
    doc[section] = figures
    FIGURES_FILE.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


__all__ = [
    "Cell",
    "Node",
    "NodeAgent",
    "PORTS",
    "PodRec",
    "TwoNode",
    "format_matrix",
    "median",
    "record_figures",
    "set_addresses",
    "set_strings",
]


# -- reference rulesets ------------------------------------------------------
def _normal(items: list[Obj]) -> list[Obj]:
    out = []
    for item in items:
        if "metainfo" in item:
            continue
        ((what, body),) = item.items()
        body = {k: v for k, v in body.items() if k != "handle"}
        if body.get("chain", body.get("name")) == "policyc_rev":
            continue  # the agent's revision marker; `policyc compile` has none
        if what == "set" and "elem" in body:
            body["elem"] = sorted(body["elem"], key=lambda e: json.dumps(e, sort_keys=True))
        out.append({what: body})
    # Listing order follows creation order: compare sets and chains by name, rules
    # in their chain's order (the sort is stable).
    rank = {"table": 0, "set": 1, "chain": 2, "rule": 3}

    def key(item: Obj) -> tuple[int, str, str]:
        ((what, body),) = item.items()
        return rank.get(what, 9), body.get("family", ""), body.get("chain", body.get("name", ""))

    return sorted(out, key=key)


def kernel_tables(cluster: TwoNode, node: Node, netns: str | None = None) -> list[Obj]:
    """policyc's two tables as the kernel lists them, handles dropped, elements sorted."""
    out: list[Obj] = []
    for fam in ("inet", "bridge"):
        r = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns or node.netns,
                "nft",
                "-j",
                "list",
                "table",
                fam,
                "policyc",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        out += (
            _normal(json.loads(r.stdout)["nftables"]) if r.returncode == 0 else [{"missing": fam}]
        )
    return out


def reference_tables(cluster: TwoNode, node: Node, objects: Iterable[Obj]) -> list[Obj]:
    """What ``policyc compile --node`` makes of ``objects``, loaded into a scratch
    namespace and listed back: comparable with ``kernel_tables``."""
    ref = cluster.prefix + "ref"
    if ref not in cluster._netns:
        cluster._add_netns([ref])
    fd, path = tempfile.mkstemp(prefix="policyc-ref-", suffix=".yaml", dir=cluster.tmp)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump_all(list(objects), sort_keys=True))
    from .world import POLICYC

    comp = subprocess.run(
        [POLICYC, "compile", "--node", node.name, path], capture_output=True, text=True, timeout=60
    )
    os.unlink(path)
    if comp.returncode != 0:
        raise AssertionError(f"policyc compile failed: {comp.stderr}")
    load = subprocess.run(
        ["ip", "netns", "exec", ref, "nft", "-f", "-"],
        input="flush ruleset\n" + comp.stdout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if load.returncode != 0:
        raise AssertionError(f"nft -f failed: {load.stderr}")
    return kernel_tables(cluster, node, netns=ref)


def table_diff(have: list[Obj], want: list[Obj]) -> list[str]:
    h = [json.dumps(x, sort_keys=True) for x in have]
    w = [json.dumps(x, sort_keys=True) for x in want]
    if h == w:
        return []
    import difflib

    return list(difflib.unified_diff(w, h, "reference", "kernel", lineterm="", n=0))[:40]
