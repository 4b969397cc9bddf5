"""host-gw routes to the other nodes' pod CIDRs, via their InternalIP.

Routes carry their own protocol number, so policyc removes only routes it
made; everything else in the routing table is left alone.
"""

from __future__ import annotations

import ipaddress
import logging

from policyc.model import Node

log = logging.getLogger("policyc.watch.routes")
RTPROT_POLICYC = 201  # our routes' "proto" (rtnetlink), like bird=12 or kernel=2


def wanted(nodes: dict[str, Node], me: str) -> dict[str, str]:
    """dst pod CIDR -> gateway, for every other node with an InternalIP of the CIDR's family."""
    out: dict[str, str] = {}
    for node in nodes.values():
        if node.name == me:
            continue
        for cidr in node.pod_cidrs:
            gw = next((a for a in node.addresses if a.version == cidr.version), None)
            if gw is not None:
                out[str(cidr)] = str(gw)
    return out


class RouteSync:
    def __init__(self, me: str) -> None:
        self.me = me
        from pyroute2 import IPRoute

        self.ipr = IPRoute()

    def current(self) -> dict[str, str]:
        out = {}
        for family in (2, 10):  # AF_INET, AF_INET6
            for r in self.ipr.get_routes(family=family, proto=RTPROT_POLICYC):
                dst = r.get_attr("RTA_DST")
                gw = r.get_attr("RTA_GATEWAY")
                if dst is not None and gw is not None:
                    out[f"{dst}/{r['dst_len']}"] = gw
        return {str(ipaddress.ip_network(k)): v for k, v in out.items()}

    def sync(self, nodes: dict[str, Node]) -> int:
        """Make the proto-201 routes equal ``wanted(nodes)``; returns how many
        changed.  A route the kernel refuses (a gateway it cannot reach:
        ENETUNREACH) is logged and skipped, and tried again at the next sync:
        one bad Node must not stop the agent or the other nodes' routes."""
        want, have = wanted(nodes, self.me), self.current()
        changes = 0
        for dst in sorted(have.keys() - want.keys()):
            changes += self._route("del", dst, have[dst])
        for dst, gw in sorted(want.items()):
            if have.get(dst) != gw:
                changes += self._route("replace", dst, gw)
        if changes:
            log.info("routes synced changes=%d routes=%d", changes, len(want))
        return changes

    def _route(self, verb: str, dst: str, gw: str) -> int:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            self.ipr.route(verb, dst=dst, gateway=gw, proto=RTPROT_POLICYC)
        except NetlinkError as exc:
            log.error("route %s %s via %s failed: %s", verb, dst, gw, exc)
            return 0
        return 1

    def cleanup(self) -> None:
        self.sync({})
        self.ipr.close()
