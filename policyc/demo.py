"""``policyc demo``: a playground on the real kernel, without a cluster.

``policyc demo`` builds a node network namespace and four pods (network
namespaces) wired by the real ``policyc-cni`` plugin, writes their manifests
and a starting ``policies.pol`` into ``DIR/manifests``, runs the agent
(``policyc watch --source dir:DIR/manifests``) inside the node namespace,
and prints the reachability matrix on port 80/tcp: every cell is a real TCP
probe over IPv4 and IPv6, checked against the evaluator (what ``policyc
explain`` says).  Edit ``DIR/manifests/policies.pol`` (or add YAML) and the
matrix is printed again; Ctrl-C stops the agent.  ``--once`` prints one
matrix and stops (exit 1 if a probe and the evaluator disagree).

``policyc demo down`` stops the agent, deletes every ``pcdemo-*`` network
namespace and DIR (only if the demo made it); it is idempotent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from policyc import demo_net as net
from policyc.demo_files import MARKER, manifests_signature, render_matrix, write_manifests
from policyc.demo_net import NODE, DemoPod
from policyc.errors import InputError, InputErrors, PolicycError
from policyc.evaluate import Evaluator
from policyc.load import Reader
from policyc.pipeline import read_cluster

AGENT_PORT = 9743
PODS = (
    DemoPod("shop", "web", (("app", "web"),)),
    DemoPod("shop", "db", (("app", "db"),)),
    DemoPod("shop", "client", (("app", "client"),)),
    DemoPod("other", "client", (("app", "client"),)),
)


def run(args: argparse.Namespace, readers: Mapping[str, Reader]) -> int:
    """``policyc demo [up|down]``: args has action, dir, once, port, backend;
    ``readers`` reads the manifests (``.pol`` too) for the evaluator."""
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: want 1-65535")
    if os.geteuid() != 0:
        raise PolicycError("demo needs root (CAP_NET_ADMIN) to create network namespaces")
    if args.action == "down":
        down(args.dir)
        return 0
    return up(args, readers)


def down(state: str) -> None:
    """Stop the agent (by its recorded pid), delete the namespaces, remove DIR."""
    _stop_recorded_agent(state)
    net.netns_del([p.netns for p in PODS] + [NODE] + net.existing())
    if os.path.isfile(os.path.join(state, MARKER)):
        shutil.rmtree(state, ignore_errors=True)
    elif os.path.exists(state):
        print(f"policyc: demo: {state} was not made by the demo, left alone", file=sys.stderr)
    print("policyc: demo: down", file=sys.stderr)


def _stop_recorded_agent(state: str) -> None:
    try:
        with open(os.path.join(state, "agent.pid")) as fh:
            pid = int(fh.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except (OSError, ValueError):
        return  # not recorded, or already gone
    if b"watch" not in argv or NODE.encode() not in argv:
        return  # the pid was reused by another process: not ours
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def up(args: argparse.Namespace, readers: Mapping[str, Reader]) -> int:
    started = time.monotonic()
    _claim(args.dir)
    down_quietly(args.dir)
    manifests = os.path.join(args.dir, "manifests")
    try:
        ips = _build(args.dir)
        write_manifests(manifests, PODS, ips, args.port)
        listeners = [net.listen(pod, args.port) for pod in PODS]
    except BaseException:
        down_quietly(args.dir)  # a half-built demo is not left behind
        raise
    agent = _start_agent(args.dir, manifests, args.backend)
    _stop_on_signals()
    try:
        _wait_ready(agent, args.dir)
        _settle()
        ok = _show(manifests, ips, args.port, listeners, readers)
        print(f"policyc: demo: up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        if args.once:
            return 0 if ok else 1
        _follow(agent, args.dir, manifests, ips, args.port, listeners, readers)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(agent)
        for s in listeners:
            s.close()
        print(
            f"policyc: demo: agent stopped; `policyc demo down --dir {args.dir}` removes the rest",
            file=sys.stderr,
        )


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    """SIGTERM (kill) and SIGHUP (the terminal closed) stop the demo as Ctrl-C
    does: the agent runs in its own session, and Python's default for these
    signals left it running, orphaned, until `demo down`."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def _claim(state: str) -> None:
    """Make DIR the demo's (its marker file), refusing a DIR with other files
    in it: `demo down` removes the whole DIR."""
    if (
        os.path.isdir(state)
        and os.listdir(state)
        and not os.path.isfile(os.path.join(state, MARKER))
    ):
        raise InputError(f"--dir {state}: not empty and not made by the demo; pick another")
    os.makedirs(os.path.join(state, "ipam"), exist_ok=True)
    open(os.path.join(state, MARKER), "w").close()


def _build(state: str) -> dict[str, list[str]]:
    """The node and pod namespaces, each pod through CNI ADD: pod -> its IPs."""
    net.netns_add(NODE)
    ips: dict[str, list[str]] = {}
    for pod in PODS:
        net.netns_add(pod.netns)
        ips[pod.key] = net.cni_add(pod, os.path.join(state, "ipam"))
    return ips


def down_quietly(state: str) -> None:
    """What a previous run left (agent, namespaces), keeping DIR's manifests."""
    _stop_recorded_agent(state)
    net.netns_del([p.netns for p in PODS] + [NODE] + net.existing())
    shutil.rmtree(os.path.join(state, "ipam"), ignore_errors=True)


def _start_agent(state: str, manifests: str, backend: str) -> subprocess.Popen[bytes]:
    argv = [
        "ip", "netns", "exec", NODE, sys.executable, "-m", "policyc.cli", "watch",
        "--node", NODE, "--source", f"dir:{manifests}", "--backend", backend,
        "--listen", f"127.0.0.1:{AGENT_PORT}", "--cni-socket", "", "--no-routes",
        "--resync-interval", "5", "--log-format", "text",
    ]  # fmt: skip
    log = open(os.path.join(state, "agent.log"), "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    log.close()
    with open(os.path.join(state, "agent.pid"), "w") as fh:
        fh.write(f"{proc.pid}\n")  # `ip netns exec` execs: this is the agent's pid
    return proc


def _wait_ready(agent: subprocess.Popen[bytes], state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise PolicycError(f"the agent exited {agent.returncode}: see {state}/agent.log")
        if net.http_get(NODE, AGENT_PORT, "/readyz")[0] == 200:
            return
        time.sleep(0.2)
    raise PolicycError(f"the agent was not ready after {timeout:.0f} s: see {state}/agent.log")


def _events() -> str:
    """The agent's event and transaction counters (they stop moving when it is idle)."""
    body = net.http_get(NODE, AGENT_PORT, "/metrics")[1]
    return "".join(
        line for line in body.splitlines() if line.startswith(("policyc_events", "policyc_trans"))
    )


def _settle(timeout: float = 15) -> None:
    """Wait until the agent has read and programmed what changed."""
    last, deadline = _events(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _events()
        ready = net.http_get(NODE, AGENT_PORT, "/readyz")[0] == 200
        if now == last and ready:
            return
        last = now


def _follow(
    agent: subprocess.Popen[bytes],
    state: str,
    manifests: str,
    ips: dict[str, list[str]],
    port: int,
    listeners: list[Any],
    readers: Mapping[str, Reader],
) -> None:
    seen = manifests_signature(manifests)
    while True:
        time.sleep(1)
        if agent.poll() is not None:
            raise PolicycError(f"the agent exited {agent.returncode}: see {state}/agent.log")
        now = manifests_signature(manifests)
        if now != seen:
            seen = now
            time.sleep(1)  # the agent's directory source polls
            _settle()
            _show(manifests, ips, port, listeners, readers)


def _stop(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.terminate()
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def _verdicts(
    manifests: str, ips: dict[str, list[str]], port: int, readers: Mapping[str, Reader]
) -> dict[tuple[str, str], bool]:
    """The evaluator's verdict per (src ip, dst ip) for the manifests now."""
    ev = Evaluator(read_cluster([manifests], readers=readers))
    flat = [ip for pod_ips in ips.values() for ip in pod_ips]
    return {
        (s, d): ev.allowed(s, d, port, "TCP").allowed
        for s in flat
        for d in flat
        if (":" in s) == (":" in d)
    }


def _show(
    manifests: str,
    ips: dict[str, list[str]],
    port: int,
    listeners: list[Any],
    readers: Mapping[str, Reader],
) -> bool:
    """Print the matrix; False if a probe and the evaluator disagree."""
    try:
        verdicts = _verdicts(manifests, ips, port, readers)
    except (InputError, InputErrors) as exc:
        if isinstance(exc, InputErrors):
            text = "\n".join(f"policyc: error: {line}" for line in exc.lines())
        else:  # a syntax error: its source line and caret below, indented
            text = f"policyc: error: {exc}" + "".join(
                f"\n    {c}" for c in exc.context.splitlines()
            )
        print(text, file=sys.stderr)
        print(
            "policyc: demo: the manifests have errors: the agent ignores such a file "
            "(its previous objects stay in force)"
        )
        return False
    pairs = [(s, d) for s in PODS for d in PODS if s != d]
    jobs = [(s, d, ip) for s, d in pairs for ip in ips[d.key]]
    with ThreadPoolExecutor(max(1, len(jobs))) as pool:
        got = list(pool.map(lambda j: net.tcp_probe(j[0], j[2], port, 1.5), jobs))
    net.drain(listeners)
    probes = {(s.key, d.key, ip): ok for (s, d, ip), ok in zip(jobs, got, strict=True)}
    text, agree = render_matrix(PODS, ips, port, probes, verdicts)
    print(text, flush=True)
    return agree
