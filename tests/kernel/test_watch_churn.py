"""Pod churn under two running agents: 210 pod add and delete events, every
one through ``policyc-cni`` (ADD/DEL via the node agent's socket, four at a
time, as a runtime does), spread over both nodes and three namespaces while
policies apply and one of them changes half-way.

At the end: 0 wrong cells (IPv4 and IPv6, every ordered pair of live pods,
TCP/UDP 80/81) against the evaluator, and nothing leaked: each node's
tables equal what ``policyc compile`` makes of the final state (so the set
elements are exactly the live pods'), the bridge's ``pc*`` ports, the IPAM
store and the proto-201 routes are exactly the live ones.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from tests.support.figures import STATS
from tests.support.scenarios import labels, nss, pods, pol, port

from .kernelcheck import require_kernel
from .twonode import (
    TwoNode,
    kernel_tables,
    record_figures,
    reference_tables,
    set_addresses,
    set_strings,
    table_diff,
)

ADDS, DELETES, PARALLEL = 110, 100, 4

POLICIES = [
    pol("x", "default-deny", types=["Ingress"]),
    pol(
        "x",
        "clients",
        {},
        ingress=[{"from": [{**nss(), **pods(role="client")}], "ports": [port(80, "TCP")]}],
    ),
    pol("y", "egress-x", labels(role="client"), types=["Egress"], egress=[{"to": [nss(ns="x")]}]),
]
CHANGED = pol(
    "x",
    "clients",
    {},
    ingress=[
        {"from": [{**nss(), **pods(role="client")}], "ports": [port(80, "TCP"), port(81, "UDP")]}
    ],
)


def test_churn_210_pod_events_no_wrong_cells_no_leaks() -> None:
    require_kernel()
    rnd = random.Random(int(os.environ.get("POLICYC_CHURN_SEED", "20240611")))
    started = time.monotonic()
    with TwoNode() as c:
        c.start_agents()
        n1, n2 = c.nodes
        for p in POLICIES:
            c.put_policy(p)
        for node, ns, name, role in (
            (n1, "x", "a", "server"),
            (n1, "y", "a", "client"),
            (n2, "x", "b", "server"),
            (n2, "z", "b", "client"),
        ):
            c.add_pod(node, ns, name, {"pod": name, "role": role})

        adds = dels = 0
        live: list[str] = []
        deleting: set[str] = set()
        inflight: dict[Future[Any], tuple[str, str]] = {}
        errors: list[BaseException] = []
        t_churn = time.monotonic()
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            while adds < ADDS or dels < DELETES or inflight:
                while len(inflight) < PARALLEL and (adds < ADDS or dels < DELETES):
                    candidates = [k for k in live if k not in deleting]
                    left_a, left_d = ADDS - adds, DELETES - dels
                    if left_d and candidates and rnd.random() < left_d / (left_a + left_d):
                        key = rnd.choice(candidates)
                        deleting.add(key)
                        inflight[pool.submit(c.del_pod, key)] = ("del", key)
                        dels += 1
                    elif left_a:
                        i = adds
                        ns = rnd.choice("xyz")
                        role = rnd.choice(("client", "server"))
                        node = rnd.choice(c.nodes)
                        fut = pool.submit(
                            c.add_pod, node, ns, f"c{i}", {"pod": f"c{i}", "role": role}
                        )
                        inflight[fut] = ("add", f"{ns}/c{i}")
                        adds += 1
                        if adds == ADDS // 2:
                            c.put_policy(CHANGED)
                    else:
                        break  # only deletes left and none possible yet
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    what, key = inflight.pop(fut)
                    if fut.exception() is not None:
                        errors.append(fut.exception())  # type: ignore[arg-type]
                    elif what == "add":
                        live.append(key)
                    else:
                        live.remove(key)
                        deleting.discard(key)
                if errors:
                    break
        churn_s = time.monotonic() - t_churn
        assert not errors, f"{len(errors)} CNI errors, first: {errors[0]}"
        assert adds + dels >= 200

        # converged: every cell right (first matching round within 3 s of the last event)
        t_last = time.monotonic()
        cells = c.cells()
        took, wrong = c.wait_enforced(t_last, cells, limit=3.0, timeout=0.4)
        assert not wrong, f"{len(wrong)} wrong cells:\n" + "\n".join(wrong[:40]) + c.dump_state()

        # no leaks
        for node in c.nodes:
            mine = [r for r in c.pods.values() if r.node is node]
            d = table_diff(kernel_tables(c, node), reference_tables(c, node, c.objects.values()))
            assert not d, f"{node.name}: tables differ from the final state:\n" + "\n".join(d)
            inet, bridge = c.nft_json(node, "inet"), c.nft_json(node, "bridge")
            all_ips = {ip for r in c.pods.values() for ip in r.ips}
            node_ips = {node.gw4, node.gw6, node.underlay4, node.underlay6}
            stale = set_addresses(inet + bridge) - all_ips - node_ips
            assert not stale, f"{node.name}: stale set elements {sorted(stale)}"
            assert set_addresses(bridge) == {ip for r in mine for ip in r.ips}
            assert set_strings(bridge, "pc") == {r.pod.iface for r in mine}
            assert c.pc_links(node) == {r.pod.iface for r in mine}, "stale pod ports"
            assert c.allocations(node) == {ip for r in mine for ip in r.ips}, "IPAM leak"
            assert c.routes201(node) == c.wanted_routes(node), "routes"
            assert node.agent is not None
            assert node.agent.metric('policyc_errors_total{stage="apply"}') == 0
        leftover = {n for n in os.listdir("/run/netns") if n.startswith(c.prefix + "p")}
        assert leftover == {r.pod.netns for r in c.pods.values()}

        events = sum(a.metric('policyc_events_total{kind="Pod"') for a in (n1.agent, n2.agent) if a)
    STATS["watch_churn_events"] = adds + dels
    STATS["watch_churn_wrong_cells"] = len(wrong)
    STATS["watch_churn_cells"] = len(cells)
    figures = {
        "pod_events": adds + dels,
        "adds": adds,
        "deletes": dels,
        "live_pods_at_end": len(live) + 4,
        "cells_checked": len(cells),
        "wrong_cells": len(wrong),
        "churn_seconds": round(churn_s, 2),
        "converged_ms_after_last_event": round(took * 1000, 1),
        "agent_pod_events_seen": int(events),
        "test_seconds": round(time.monotonic() - started, 2),
    }
    record_figures("churn", figures)
    print("\nchurn:", figures)
