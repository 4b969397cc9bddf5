"""The kernel world of the ClusterNetworkPolicy tests: the e2e lab plus the node's own
address and a host outside the cluster, so that ``nodes`` and ``networks`` peers are
probed with real packets.

Layout, on top of :class:`tests.kernel.netlab.Lab` (9 pods x, y, z x a, b, c)::

    <prefix>node  br0 10.244.1.1/24 (the bridge gateway), lo 192.0.2.10/32 (node-1's
                  InternalIP, fixtures/_base); the route to the pods takes 192.0.2.10 as
                  source, so the node's own traffic comes from its Node address; the
                  lab's servers listen here too (a host-network pod is the node)
    <prefix>ext   eth0 192.0.2.50/32 ("outside": no pod, no node), reached over ext0

Every cell is ``(source endpoint, destination endpoint, proto, port)``; an endpoint is a
pod, the node (192.0.2.10) or the outside host.  Expected verdicts come from the reference
evaluator; a wrong cell is probed again before it is called wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from backends import BACKENDS
from policyc.errors import NotEnforced
from policyc.evaluate import Evaluator
from policyc.load import parse_text
from policyc.model import Cluster
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of
from tests.support.cnp_builders import NODE, OUTSIDE, admin, p_ns, rule, s_ns
from tests.support.figures import count
from tests.support.world import dump, world

from .kernelcheck import ip_batch
from .netlab import Lab, Pod, build_standard
from .nsutil import in_netns

BACKEND_NAMES = ("nftables", "iptables")
PORTS: tuple[tuple[str, int], ...] = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))
SERVED = (79, 80, 81)  # 79: "not in the range" probes of the port scenarios
RETRIES = 2
Cell = tuple[Pod, Pod, str, int]  # (source endpoint, destination endpoint, proto, port)


@dataclass(frozen=True)
class CnpLab:
    """The lab and the two endpoints that are not pods."""

    lab: Lab
    node: Pod  # the node namespace, as 192.0.2.10
    outside: Pod  # 192.0.2.50
    scratch: str  # an empty namespace where rendered rulesets are checked

    def endpoints(self, family: int) -> list[Pod]:
        pods = list(self.lab.pods.values())
        return pods + [self.node, self.outside] if family == 4 else pods

    def endpoint(self, ref: str) -> Pod | None:
        """``ns/name``, 192.0.2.10 or 192.0.2.50 -> its endpoint; None for another address."""
        if "/" in ref:
            return self.lab.pods[ref]
        return {NODE: self.node, OUTSIDE: self.outside}.get(ref)


def _add_node_address(lab: Lab) -> Pod:
    ip_batch(
        [
            f"addr add {NODE}/32 dev lo",  # no dummy links in this kernel
            f"route replace 10.244.1.0/24 dev br0 proto kernel scope link src {NODE}",
        ],
        netns=lab.node.netns,
    )
    return Pod("", "node-1", lab.node.netns, NODE, None, "lo")


def _add_outside(lab: Lab) -> Pod:
    """A namespace holding 192.0.2.50, routed through the node like a host elsewhere."""
    netns = lab.prefix + "ext"
    lab._add_netns([netns])  # deleted by name with the lab's namespaces
    ip_batch(
        [
            f"link add ext0 type veth peer name eth0 netns {netns}",
            "link set ext0 up",
            f"route add {OUTSIDE}/32 dev ext0",
        ],
        netns=lab.node.netns,
    )
    ip_batch(
        [
            "link set lo up",
            f"addr add {OUTSIDE}/32 dev eth0",
            "link set eth0 up",
            f"route add {NODE}/32 dev eth0",
            f"route add default via {NODE} dev eth0",
        ],
        netns=netns,
    )
    return Pod("", "outside", netns, OUTSIDE, None, "eth0")


@contextmanager
def cnp_lab() -> Iterator[CnpLab]:
    """A lab with node and outside endpoints and servers on :data:`SERVED` everywhere;
    every namespace is deleted by name on exit, even on failure."""
    with Lab(ports=SERVED) as lab:
        build_standard(lab, ipv6=True)
        node, outside = _add_node_address(lab), _add_outside(lab)
        assert lab._servers is not None
        lab._servers.add([(n.netns, n.netns, SERVED) for n in (node, outside)])
        scratch = lab.prefix + "chk"
        lab._add_netns([scratch])
        yield CnpLab(lab, node, outside, scratch)


# -- the dataplane ------------------------------------------------------------------


def cluster_of(objs: Sequence[dict[str, Any]]) -> Cluster:
    return build_cluster(parse_text(dump(objs), "<world>"))


def not_enforced() -> str | None:
    """Why the dataplane cannot lower a ClusterNetworkPolicy yet, or None when it can."""
    probe = admin("probe", 1, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="z"))])
    try:
        ruleset_of(cluster_of(world([probe])), "node-1")
    except NotEnforced as exc:
        return f"NotEnforced: {exc}"
    return None


def reset(lab: Lab) -> None:
    """Remove policyc's rules of every backend from the node (nothing else is there)."""
    with in_netns(lab.node.netns):
        for backend in BACKENDS.values():
            if backend.read_kernel() is not None:
                backend.remove()


def apply(lab: Lab, backend: str, cluster: Cluster, opt: bool = True) -> None:
    """What ``policyc apply --backend B --node node-1`` does, in this process: render,
    then diff against what the node holds and commit, inside the node namespace."""
    be = BACKENDS[backend]
    state = be.render(ruleset_of(cluster, "node-1", opt))
    with in_netns(lab.node.netns):
        be.apply(be.diff(be.read_kernel(), state))


def render_check(world_: CnpLab, backend: str, cluster: Cluster) -> None:
    """Render the ruleset and have the kernel's tools check it without committing, in
    the scratch namespace: ``nft -c -f`` or ``ipset restore`` (the sets the rules
    name) then ``iptables-restore --test``."""
    be = BACKENDS[backend]
    files = be.files(be.render(ruleset_of(cluster, "node-1")))
    run = world_.lab.exec_in
    if backend == "nftables":
        run(world_.scratch, ["nft", "-c", "-f", "-"], input=files["policyc.nft"])
        return
    variant = os.environ.get("POLICYC_IPTABLES_VARIANT", "nft")
    try:
        if text := files.get("ipset.restore"):
            run(world_.scratch, ["ipset", "restore"], input=text)
        for name, tool in (("iptables.rules", "iptables"), ("ip6tables.rules", "ip6tables")):
            if text := files.get(name):
                run(world_.scratch, [f"{tool}-{variant}-restore", "-w", "--test"], input=text)
    finally:
        run(world_.scratch, ["ipset", "destroy"], check=False)


# -- cells ---------------------------------------------------------------------------


def all_cells(world_: CnpLab, family: int, ports: Sequence[tuple[str, int]] = PORTS) -> list[Cell]:
    """Every ordered pair of distinct endpoints of which one is a pod, x ports."""
    ends = world_.endpoints(family)
    pods = set(world_.lab.pods.values())
    return [
        (s, d, proto, port)
        for s in ends
        for d in ends
        if s != d and (s in pods or d in pods)
        for proto, port in ports
    ]


def expected(cluster: Cluster, cells: Sequence[Cell], family: int) -> dict[Cell, bool]:
    ev = Evaluator(cluster)
    return {c: ev.allowed(c[0].addr(family), c[1].addr(family), c[3], c[2]).allowed for c in cells}


def probe(lab: Lab, cells: Sequence[Cell], family: int) -> dict[Cell, bool]:
    res = lab.probe((c[0], c[1].addr(family), c[2], c[3]) for c in cells)
    return {c: res[(c[0], c[1].addr(family), c[2], c[3])] for c in cells}


def end_name(end: Pod) -> str:
    return end.key if end.namespace else end.name  # node-1, outside


def wrong_cells(lab: Lab, want: dict[Cell, bool], family: int, backend: str) -> list[str]:
    """Probe every cell; probe a disagreeing cell :data:`RETRIES` more times before
    calling it wrong.  Returns one line per wrong cell; counts the probes sent
    (``cnp_probes_<backend>``, retries included)."""
    got = probe(lab, list(want), family)
    count(f"cnp_probes_{backend}", len(want))
    for _ in range(RETRIES):
        bad = [c for c in want if got[c] != want[c]]
        if not bad:
            break
        count(f"cnp_probes_{backend}", len(bad))
        count(f"cnp_retried_cells_{backend}", len(bad))
        got.update(probe(lab, bad, family))
    return sorted(
        f"{end_name(s)} ({s.addr(family)}) -> {end_name(d)} ({d.addr(family)}) {port}/{proto}: "
        f"evaluator {'allows' if want[(s, d, proto, port)] else 'denies'}, kernel "
        f"{'allowed' if got[(s, d, proto, port)] else 'dropped'}"
        for s, d, proto, port in want
        if got[(s, d, proto, port)] != want[(s, d, proto, port)]
    )
