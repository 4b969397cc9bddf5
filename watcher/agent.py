"""The node agent: sources (validated model objects) -> incremental compile
(``put``/``remove``) -> minimal diff -> one atomic transaction.  Self-healing:
failed applies are retried with backoff while the previous rules stay in
force, and a periodic resync repairs drift.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from policyc.bulk import bulk
from policyc.compiler import Compiler
from policyc.errors import NotEnforced, PolicycError
from policyc.kinds import Key, Kind, Model
from policyc.logprefix import LOG_GROUP
from policyc.model import Direction, Namespace, NetworkPolicy, Pod
from watcher.droplog import Attributor, build_view
from watcher.enforced import EnforceTracker
from watcher.metrics import Metrics
from watcher.podcondition import PodConditions
from watcher.routes import RouteSync
from watcher.sources.base import KINDS, Event, EventType, Source

log = logging.getLogger("policyc.watch")


@dataclass
class Options:
    node: str
    batch_window: float = 0.02  # wait this long for more events after the first
    resync_interval: float = 30.0
    backoff: tuple[float, float] = (0.1, 5.0)
    routes: bool = True
    # Refuse to program the kernel when, after the first complete list, the
    # node is neither a Node nor any pod's spec.nodeName (a typo in --node
    # would otherwise drop every pod interface of the node).
    require_node: bool = False
    log_drops: bool = False  # --log-drops: log group ``log_group`` at each drop
    log_group: int = LOG_GROUP


@dataclass
class CniAdd:
    namespace: str
    name: str
    ips: tuple[str, ...]
    done: threading.Event = field(default_factory=threading.Event)


class Agent:
    def __init__(
        self, source: Source, dataplane: Any, opts: Options, metrics: Metrics | None = None
    ) -> None:
        self.source = source
        self.dp = dataplane
        self.opts = opts
        self.metrics = metrics or Metrics()
        self.compiler = Compiler(opts.node)
        self.queue: queue.Queue[Event | CniAdd] = queue.Queue()
        self.stop = threading.Event()
        self.programmed_once = False
        self.pending = False  # model changed since the last successful sync
        self.retry_at = 0.0
        self.failures = 0
        self.cni_ips: dict[str, tuple[str, ...]] = {}  # pod key -> IPs from CNI ADD
        self.api_pods: dict[str, Pod] = {}
        # Kinds whose first SNAPSHOT this agent has handled, not only received:
        # the first sync waits for all of them, so that start-up programs the
        # kernel once, whole, instead of once per kind listed so far.
        self.listed: set[Kind] = set()
        self.routes: Any = None
        self.last_loop = time.monotonic()
        self.refused = ""  # why the agent stopped without programming (unknown node)
        # Set when the loop stops on its own for a reason the exit code tells
        # (2: a ClusterNetworkPolicy this dataplane cannot enforce yet).
        self.exit_code = 0
        self.fatal = ""
        # Observability (docs/observability.md): the enforced signal, and the
        # view the drop log attributes packets with.
        self.enforce = EnforceTracker()
        self.attributor: Attributor | None = None
        self.conditions: PodConditions | None = None  # --pod-condition
        self.local_pods: dict[str, Pod] = {}
        self.pods_by_ip: dict[str, tuple[str, ...]] = {}

    # -- health --------------------------------------------------------
    def ready(self) -> bool:
        return self.programmed_once and self.source.synced() and not self.pending

    def healthy(self) -> bool:
        return time.monotonic() - self.last_loop < max(10.0, 3 * self.opts.resync_interval)

    # -- inputs --------------------------------------------------------
    def emit(self, event: Event) -> None:
        self.queue.put(event)

    def on_cni_add(
        self, namespace: str, name: str, iface: str, ips: list[str], timeout: float = 5.0
    ) -> None:
        """Called by the CNI socket server before ADD returns: program the pod
        (if its object is known) before the reply goes out."""
        req = CniAdd(namespace, name, tuple(ips))
        self.queue.put(req)
        if not req.done.wait(timeout):
            log.warning("cni add not programmed in time pod=%s/%s iface=%s", namespace, name, iface)

    def _pod(self, pod: Pod) -> Pod:
        """The API may not show a new pod's IPs yet: use the ones CNI assigned."""
        if not pod.ips and pod.key in self.cni_ips:
            ips = tuple(ipaddress.ip_address(i) for i in self.cni_ips[pod.key])
            return dataclasses.replace(pod, ips=ips)
        return pod

    def _put(self, obj: Model) -> None:
        if isinstance(obj, Pod):
            self.api_pods[obj.key] = obj
            obj = self._pod(obj)
            self._track_pod(obj.key, obj)
        elif isinstance(obj, NetworkPolicy):
            self._namespace_pending(obj.namespace)
        elif isinstance(obj, Namespace):
            old = self.compiler.namespaces.get(obj.name)
            if old is not None and old.labels != obj.labels:
                # which ClusterNetworkPolicies select its pods may change
                self._namespace_pending(obj.name)
        elif Key.of(obj).kind.cluster_policy:  # a ClusterNetworkPolicy: every pod may change
            self._namespace_pending(None)
        self.compiler.put(obj)

    def _remove(self, kind: Kind, key: str) -> None:
        if kind == Kind.POD:  # also a plain "Pod"
            self.api_pods.pop(key, None)
            self.cni_ips.pop(key, None)
            self._track_pod(key, None)
        elif kind == Kind.NETWORK_POLICY:
            self._namespace_pending(key.partition("/")[0])
            self.metrics.forget_policy(key)
        elif Kind(kind).cluster_policy:
            self._namespace_pending(None)
            self.metrics.forget_policy(f"{Kind(kind)} {key}")
        self.compiler.remove(kind, key)

    # -- the enforced signal and the drop log's view ---------------------
    def _track_pod(self, key: str, pod: Pod | None) -> None:
        """Index addresses; a new local pod, or one whose addresses or
        labels changed, is pending until the next commit."""
        old = self.compiler.pods.get(key)
        for ip in old.ips if old is not None else ():
            rest = tuple(k for k in self.pods_by_ip.get(str(ip), ()) if k != key)
            if rest:
                self.pods_by_ip[str(ip)] = rest
            else:
                self.pods_by_ip.pop(str(ip), None)
        for ip in pod.ips if pod is not None else ():
            self.pods_by_ip[str(ip)] = (*self.pods_by_ip.get(str(ip), ()), key)
        local = pod is not None and self.compiler.is_local(pod) and not pod.host_network
        if pod is None or not local:
            self.local_pods.pop(key, None)
            self.enforce.forget(key)
            if self.conditions is not None:
                self.conditions.forget(key)
            return
        self.local_pods[key] = pod
        if old is None or old.ips != pod.ips or old.labels != pod.labels:
            self.enforce.pending(key, (str(ip) for ip in pod.ips))

    def _namespace_pending(self, namespace: str | None) -> None:
        """A policy of ``namespace`` (None: a cluster-scoped one), or the
        namespace's labels, changed."""
        for key, pod in self.local_pods.items():
            if namespace is None or pod.namespace == namespace:
                self.enforce.pending(key, (str(ip) for ip in pod.ips))

    def _committed(self) -> None:
        """The transaction is in the kernel: pending pods are enforced now."""
        view = build_view(self.compiler, self.pods_by_ip, self.local_pods.values())
        if self.attributor is not None:
            self.attributor.view = view
        shown = {}
        for iso in {id(i): i for i in view.local.values()}.values():
            audit = sorted({*iso.audit[Direction.INGRESS], *iso.audit[Direction.EGRESS]})
            shown[iso.pod] = {
                Direction.INGRESS.value: iso.enforced[Direction.INGRESS],
                Direction.EGRESS.value: iso.enforced[Direction.EGRESS],
                "audit": tuple(audit),
            }
        for pod, latency in self.enforce.committed(shown):
            self.metrics.enforce.observe(latency)
            if self.conditions is not None:
                self.conditions.enforced(pod, latency)

    def _snapshot(self, ev: Event) -> None:
        """Put every object of the snapshot; remove what it no longer has (but
        not the objects it keeps: they exist and did not validate)."""
        seen = {Key.of(obj).id for obj in ev.objects} | {k.id for k in ev.kept}
        with bulk(len(ev.objects)):  # a list of 150k pods: no GC walks while it is built
            for obj in ev.objects:
                self._put(obj)
        for name in sorted(self.compiler.keys(ev.kind) - seen):
            self._remove(ev.kind, name)

    def handle(self, item: Event | CniAdd) -> None:
        if isinstance(item, CniAdd):
            key = f"{item.namespace}/{item.name}"
            self.cni_ips[key] = item.ips
            if key not in self.api_pods:  # the API event has not come yet
                self.enforce.pending(key, item.ips)
            if key in self.api_pods:
                pod = self._pod(self.api_pods[key])
                self._track_pod(key, pod)
                self.compiler.put(pod)
            self.pending = True
            return
        self.metrics.events.labels(item.kind, item.type.value).inc()
        if item.type is EventType.SNAPSHOT:
            self._snapshot(item)
            self.listed.add(item.kind)
        elif isinstance(item.obj, Key):
            self._remove(item.obj.kind, item.obj.id)
        elif item.obj is not None:
            self._put(item.obj)
        self.pending = True

    # -- the loop ------------------------------------------------------
    def _drain(self, first: Event | CniAdd) -> list[CniAdd]:
        """Fold ``first`` and everything that arrives within the batch window."""
        waiters = []
        deadline = time.monotonic() + self.opts.batch_window
        item: Event | CniAdd | None = first
        with self.metrics.recompile.time():
            while item is not None:
                self.handle(item)
                if isinstance(item, CniAdd):
                    waiters.append(item)
                    deadline = time.monotonic()  # a pod is waiting: no more batching
                left = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                except queue.Empty:
                    item = None
        self.metrics.shared_addresses.set(self.compiler.m.shared)
        return waiters

    def node_known(self) -> bool:
        node = self.opts.node
        if node in self.compiler.nodes:
            return True
        return any(p.node_name == node for p in self.compiler.pods.values())

    def _refuse_unknown_node(self) -> bool:
        """Before the first programming: stop (``refused`` says why) if the
        listed cluster does not know the node.  Later a node that goes away
        only logs: the rules in force stay."""
        if self.programmed_once or not self.opts.require_node or self.node_known():
            return False
        self.refused = (
            f"node {self.opts.node!r} is neither a Node object nor any pod's spec.nodeName "
            f"in the listed cluster ({len(self.compiler.nodes)} nodes); "
            "refusing to program the kernel (check --node)"
        )
        log.error("%s", self.refused)
        self.stop.set()
        return True

    def sync(self) -> bool:
        if not self.source.synced() or len(self.listed) < len(KINDS):
            return False
        if self._refuse_unknown_node():
            return False
        try:
            with self.metrics.apply.time():
                result = self.dp.sync(self.compiler)
            if self.opts.routes:
                self._sync_routes()
        except Exception as exc:  # the agent outlives any one failed sync
            self.failures += 1
            self.metrics.errors.labels("apply").inc()
            lo, hi = self.opts.backoff
            delay = min(hi, lo * 2 ** (self.failures - 1))
            self.retry_at = time.monotonic() + delay
            expected = isinstance(exc, PolicycError | OSError)
            log.error(
                "apply failed, previous rules stay in force; retry in %.2fs: %s",
                delay,
                exc,
                exc_info=not expected,  # a bug: keep its traceback in the agent's log
            )
            return False
        self.failures = 0
        self.pending = False
        self.programmed_once = True
        self._committed()
        if result.changed:
            self.metrics.transactions.inc()
            for what, n in self.dp.size().items():
                self.metrics.ruleset.labels(what).set(n)
            log.info("applied commands=%d", result.commands)
        self.metrics.ready.set(1 if self.ready() else 0)
        return True

    def _sync_routes(self) -> None:
        if self.routes is None:
            self.routes = RouteSync(self.opts.node)
        self.routes.sync(self.compiler.nodes)

    def resync(self) -> None:
        """Periodic self-check: repair drift in the kernel."""
        try:
            drifted = self.dp.drifted()
        except (PolicycError, OSError) as exc:
            log.error("resync could not read the kernel: %s", exc)
            return
        if drifted:
            self.metrics.repairs.inc()
            log.warning("drift detected, reprogramming the whole ruleset")
            self.dp.forget()
            self.pending = True

    def run(self) -> None:
        """The loop; an object the builder refuses as not enforced
        (``NotEnforced``; ClusterNetworkPolicy is enforced now) stops it with
        ``exit_code`` 2, the previous rules in force: never silently ignored."""
        try:
            self._run()
        except NotEnforced as exc:
            self.fatal = str(exc)
            self.exit_code = 2
            log.error("%s; stopping, previous rules stay in force", exc)
            self.stop.set()

    def _run(self) -> None:
        threading.Thread(
            target=self.source.run, args=(self.emit, self.stop), name="source", daemon=True
        ).start()
        next_resync = time.monotonic() + self.opts.resync_interval
        while not self.stop.is_set():
            self.last_loop = now = time.monotonic()
            timeout = min(0.5, max(0.0, next_resync - now))
            if self.pending:
                timeout = min(timeout, max(0.0, self.retry_at - now))
            try:
                first = self.queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            waiters = self._drain(first) if first is not None else []
            if self.pending and time.monotonic() >= self.retry_at:
                self.sync()
            for w in waiters:
                w.done.set()
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + self.opts.resync_interval
                if self.programmed_once:
                    self.resync()
