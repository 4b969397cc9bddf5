"""Compiler scale benchmark (on demand; prints figures, asserts nothing).

    .venv/bin/python bench/compile_bench.py [--pods 5000] [--policies 500]

Measures: a full compile + lower + nft render; one pod event folded into the
incremental compiler and turned into a diff (what the watcher does per pod);
and the rule count, which must not depend on the number of pods.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.nftables import BACKEND as NFT  # noqa: E402
from backends.nftables.objects import Element  # noqa: E402
from policyc.compiler import Compiler  # noqa: E402
from policyc.lower import lower  # noqa: E402
from policyc.model import (  # noqa: E402
    Cluster,
    ContainerPort,
    Direction,
    Namespace,
    NetworkPolicy,
    Op,
    Peer,
    Pod,
    PolicyRule,
    PortSpec,
    Protocol,
    Requirement,
    Selector,
)
from policyc.passes import optimise  # noqa: E402


def cluster(n_pods: int, n_pols: int, n_ns: int = 50, seed: int = 1) -> Cluster:
    rnd = random.Random(seed)
    nss = {
        f"ns{i}": Namespace(
            f"ns{i}", (("kubernetes.io/metadata.name", f"ns{i}"), ("team", f"t{i % 7}"))
        )
        for i in range(n_ns)
    }
    base = int(ipaddress.IPv4Address("10.244.0.10"))
    pods = tuple(
        Pod(
            f"ns{i % n_ns}",
            f"p{i}",
            (("app", f"a{i % 20}"), ("tier", f"t{i % 3}")),
            f"node-{i % 50}",
            (ipaddress.IPv4Address(base + i),),
            (ContainerPort("http", 8080 + i % 3, Protocol.TCP),),
        )
        for i in range(n_pods)
    )
    pols = []
    for i in range(n_pols):
        sel = Selector((Requirement("app", Op.IN, (f"a{rnd.randrange(20)}",)),))
        peer = Peer(
            pod_selector=Selector((Requirement("tier", Op.IN, (f"t{rnd.randrange(3)}",)),)),
            namespace_selector=Selector((Requirement("team", Op.IN, (f"t{rnd.randrange(7)}",)),)),
        )
        ports = (PortSpec(Protocol.TCP, 80 + i % 10), PortSpec(Protocol.TCP, "http"))
        pols.append(
            NetworkPolicy(
                f"ns{i % n_ns}",
                f"pol{i}",
                sel,
                frozenset({Direction.INGRESS, Direction.EGRESS}),
                (PolicyRule((peer,), ports),),
                (PolicyRule(None, ports[:1]),),
            )
        )
    return Cluster(nss, pods, {}, tuple(pols))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--policies", type=int, default=500)
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()
    c = cluster(args.pods, args.policies)
    t0 = time.perf_counter()
    comp = Compiler("node-1").load(c)
    t1 = time.perf_counter()
    graph = optimise(comp.graph())
    ruleset = lower(graph)
    nft = NFT
    state = nft.render(ruleset)
    text = nft.write(state)
    t2 = time.perf_counter()
    rules = sum(len(ch.rules) for ch in ruleset.forward + ruleset.bridge)
    elems = sum(len(s.elements) for s in ruleset.sets + ruleset.bridge_sets)
    print(f"cluster: {args.pods} pods, {args.policies} policies, 50 nodes (compiling node-1)")
    print(
        f"full compile: {1000 * (t1 - t0):.0f} ms; optimise+lower+render: "
        f"{1000 * (t2 - t1):.0f} ms; script {len(text) // 1024} KiB"
    )
    print(
        f"ruleset: {rules} rules, {len(ruleset.sets) + len(ruleset.bridge_sets)} sets, "
        f"{elems} elements"
    )
    small = lower(optimise(Compiler("node-1").load(cluster(100, args.policies)).graph()))
    print(
        f"rules with 100 pods: {sum(len(ch.rules) for ch in small.forward + small.bridge)} "
        f"(same policies) -> rules do not grow with pods"
    )
    comp.changes()  # the agent's first sync consumes the journal
    programmed = state
    times, cmds = [], []
    rnd = random.Random(2)
    pods = list(c.pods)
    for _ in range(args.events):
        i = rnd.randrange(len(pods))
        pod = pods[i]
        moved = Pod(
            pod.namespace,
            pod.name,
            (("app", f"a{rnd.randrange(20)}"), ("tier", "t1")),
            pod.node_name,
            pod.ips,
            pod.ports,
        )
        pods[i] = moved
        t = time.perf_counter()
        comp.put(moved)
        ch = comp.changes()  # what the watcher's Dataplane does per pod event
        sets = {n: comp.set_def(n, elements=n in ch.reset) for n in sorted(ch.dirty)}
        tx = nft.patch(programmed, ch, sets)
        assert tx is not None
        programmed = tx.after  # as sync does once the transaction commits
        times.append(time.perf_counter() - t)
        cmds.append(sum(len(obj.values) for _verb, obj in tx.ops if isinstance(obj, Element)))
    times.sort()
    print(
        f"pod label change -> diff, {args.events} events: median "
        f"{1000 * statistics.median(times):.2f} ms, "
        f"p95 {1000 * times[int(0.95 * len(times))]:.2f} ms, "
        f"median elements changed {statistics.median(cmds):.0f}"
    )


if __name__ == "__main__":
    main()
