"""``policyc watch``: run the node agent."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

import yaml

from backends import BACKENDS, remove_others
from policyc.cli.log_args import add_log_group
from policyc.errors import InputError, clipped, printable
from watcher.dataplane import Dataplane

log = logging.getLogger("policyc.watch")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: structured logs that stay greppable."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node",
        required=True,
        metavar="NAME",
        help="this node's name (spec.nodeName); after the first list it must be a Node "
        "or some pod's spec.nodeName, or watch exits 2 without touching the kernel",
    )
    p.add_argument(
        "--backend",
        default="nftables",
        choices=sorted(BACKENDS),
        help="dataplane: nftables (default) or iptables",
    )
    p.add_argument("--source", default="k8s", metavar="SOURCE", help="k8s (default) or dir:PATH")
    p.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig file (default: in-cluster, then ~/.kube)"
    )
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    p.add_argument("--listen", default="127.0.0.1:9743", help="metrics and health endpoint")
    p.add_argument(
        "--cni-socket",
        default="/run/policyc/cni.sock",
        help="unix socket policyc-cni hands ADD/DEL to ('' disables it)",
    )
    p.add_argument(
        "--resync-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="check the kernel for drift this often (default: 30)",
    )
    p.add_argument(
        "--batch-window",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="fold events arriving within this window into one transaction (default: 0.02)",
    )
    p.add_argument("--no-routes", action="store_true", help="do not program host-gw routes")
    p.add_argument("--no-opt", action="store_true", help="skip the optimiser passes")
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="on SIGTERM remove policyc's rules (default: leave them, fail safe)",
    )
    p.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="json lines (default) or text",
    )
    p.add_argument(
        "--log-drops",
        action="store_true",
        help="log dropped new connections (NFLOG, rate-limited per pod) with the "
        "policies that dropped them, as JSON lines on stdout (docs/observability.md)",
    )
    p.add_argument(
        "--pod-condition",
        action="store_true",
        help="set the Pod condition policyc.io/PolicyEnforced once a pod's rules are in "
        "the kernel (k8s source; RBAC pods/status patch)",
    )
    add_log_group(p)


def make_source(spec: str, kubeconfig: str | None, context: str | None = None) -> Any:
    """The event source; InputError (exit 2) for a bad --source or kubeconfig."""
    if spec.startswith("dir:"):
        from watcher.sources.directory import DirectorySource

        if not os.path.isdir(spec[4:]):  # an empty state would drop every pod
            raise InputError(f"--source {printable(spec)}: not a directory")
        return DirectorySource(spec[4:])
    if spec == "k8s":
        from kubernetes.config.config_exception import ConfigException

        from watcher.sources.k8s import KubernetesSource

        try:
            return KubernetesSource.from_config(kubeconfig=kubeconfig, context=context)
        except ConfigException as exc:
            where = f"--kubeconfig {kubeconfig}" if kubeconfig else "kubeconfig"
            raise InputError(f"{where}: {clipped(printable(str(exc)))}") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
            where = kubeconfig or "kubeconfig"
            raise InputError(f"{where}: cannot use it: {clipped(printable(str(exc)))}") from None
    raise InputError(f"--source {printable(spec)!r}: unknown (k8s or dir:PATH)")


def make_dataplane(backend: str, opt: bool, log_group: int | None = None) -> Dataplane:
    """``log_group``: log drops to this NFLOG group (None: no logging).
    Once its first commit is in, the other backends' rules are removed
    (switching backend, as ``policyc apply`` does)."""
    dp = Dataplane(BACKENDS[backend], opt, log_group)

    def switched() -> None:
        for other in remove_others(backend, log.warning):
            log.info("removed the %s ruleset (switched to %s)", other, backend)

    dp.after_first_commit = switched
    return dp


def start_drop_log(agent: Any, metrics: Any, group: int) -> tuple[Any, Any]:
    """The NFLOG reader (ulogd) feeding the attributor: JSON lines on
    stdout, the per-policy counter and the /drops bus.  Returns (reader, bus)."""
    from watcher.droplog import Attributor, DropBus
    from watcher.nflog import UlogdReader

    bus = DropBus()
    lock = threading.Lock()

    def to_stdout(rec: Any) -> None:
        line = json.dumps(rec.to_json(), separators=(",", ":"))
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    agent.attributor = Attributor(
        [to_stdout, metrics.count_drop, bus], on_suppressed=metrics.drop_lines_suppressed.inc
    )
    reader = UlogdReader(group, agent.attributor, on_restart=metrics.reader_restarts.inc)
    reader.start()
    return reader, bus


def run(args: argparse.Namespace) -> int:
    from watcher.agent import Agent, Options
    from watcher.metrics import Metrics, serve

    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    source = make_source(args.source, args.kubeconfig, args.context)  # before the kernel
    from backends.sysctl import ensure_bridge_netfilter, has_net_admin

    if not has_net_admin():
        print("policyc: error: watch needs root (CAP_NET_ADMIN)", file=sys.stderr)
        return 1

    for note in ensure_bridge_netfilter():
        log.info("%s", note)
    metrics = Metrics()
    agent = Agent(
        source,
        make_dataplane(args.backend, not args.no_opt, args.log_group if args.log_drops else None),
        Options(
            node=args.node,
            batch_window=args.batch_window,
            resync_interval=args.resync_interval,
            routes=not args.no_routes,
            require_node=True,
        ),
        metrics,
    )
    if args.pod_condition:
        api = getattr(agent.source, "api_client", None)
        if api is None:
            print("policyc watch: --pod-condition needs --source k8s", file=sys.stderr)
            return 2
        from watcher.podcondition import PodConditions

        agent.conditions = PodConditions(api)
        agent.conditions.start()
    reader, bus = None, None
    if args.log_drops:
        try:
            reader, bus = start_drop_log(agent, metrics, args.log_group)
        except RuntimeError as exc:
            print(f"policyc watch: --log-drops: {exc}", file=sys.stderr)
            return 2
    try:
        http = serve(metrics, args.listen, agent.ready, agent.healthy, agent.enforce.snapshot, bus)
    except (OSError, ValueError) as exc:  # a bad HOST:PORT, or the port is taken
        print(f"policyc watch: --listen {args.listen}: {exc}", file=sys.stderr)
        if reader is not None:  # ulogd and its run directory go with us
            reader.stop()
        return 2 if isinstance(exc, ValueError) else 1
    cni = None
    if args.cni_socket:
        from cni.agent_server import CNIServer

        cni = CNIServer(args.cni_socket, on_add=agent.on_cni_add)
        cni.start()

    def terminate(signum: int, frame: object) -> None:
        agent.stop.set()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    log.info("started node=%s backend=%s source=%s", args.node, args.backend, args.source)
    loop = threading.Thread(target=agent.run, name="agent", daemon=True)
    loop.start()
    while loop.is_alive():
        loop.join(0.2)
    if cni is not None:
        cni.stop()
    if reader is not None:
        reader.stop()
        if agent.attributor is not None:  # lines still waiting for a view: as they are
            agent.attributor.flush(everything=True)
    http.shutdown()
    if agent.refused:  # --node unknown to the cluster: nothing was programmed
        print(f"policyc: error: {agent.refused}", file=sys.stderr)
        return 2
    if agent.exit_code:
        print(f"policyc watch: error: {agent.fatal}", file=sys.stderr)
        return agent.exit_code
    if not agent.stop.is_set():  # the loop ended without SIGTERM: it raised
        log.error("agent loop died (traceback above); rules left in place, exiting 1")
        return 1
    if args.cleanup:
        agent.dp.cleanup()
        if agent.routes is not None:
            agent.routes.cleanup()
        log.info("stopped; rules removed (--cleanup)")
    else:
        log.info("stopped; rules left in place (fail safe)")
    return 0
