"""host-gw routes: a route the kernel refuses does not stop the others.

`policyc watch` with a Node whose InternalIP this node cannot reach used to
end the agent thread with pyroute2's NetlinkError (ENETUNREACH), and the
process exited.  Now that route is logged and skipped; the rest are made.
No kernel here: the rtnetlink socket is a fake.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from policyc.model import Node
from watcher.routes import RTPROT_POLICYC, RouteSync


class FakeIPRoute:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.made: list[tuple[str, str, str]] = []

    def get_routes(self, family: int, proto: int) -> list[Any]:
        return []

    def route(self, verb: str, dst: str, gateway: str, proto: int) -> None:
        assert proto == RTPROT_POLICYC
        if gateway in self.refuse:
            raise NetlinkError(101, "Network is unreachable")
        self.made.append((verb, dst, gateway))


def node(name: str, gw: str, cidr: str) -> Node:
    return Node(name, (ipaddress.ip_address(gw),), (ipaddress.ip_network(cidr),))


def test_unreachable_gateway_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    sync = RouteSync.__new__(RouteSync)  # no rtnetlink socket: the fake below
    sync.me = "node-1"
    fake = FakeIPRoute(refuse={"192.0.2.11"})
    sync.ipr = fake  # type: ignore[assignment]
    nodes = {
        "node-1": node("node-1", "192.0.2.10", "10.244.1.0/24"),
        "node-2": node("node-2", "192.0.2.11", "10.244.2.0/24"),
        "node-3": node("node-3", "192.0.2.12", "10.244.3.0/24"),
    }
    assert sync.sync(nodes) == 1
    assert fake.made == [("replace", "10.244.3.0/24", "192.0.2.12")]
    assert "10.244.2.0/24 via 192.0.2.11 failed" in caplog.text
