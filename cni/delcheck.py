"""DEL (idempotent) and CHECK."""

from __future__ import annotations

import ipaddress
from typing import Any

from cni import ipam_delegate, ipam_hostlocal, masq, netlink
from cni.common import Outcome, builtin_ipam, host_ifname, ipam_del
from cni.config import Env, NetConf
from cni.spec import (
    ERR_INTERNAL,
    ERR_INVALID_CONFIG,
    ERR_UNKNOWN_CONTAINER,
    CNIError,
    normalize_result,
)


def cmd_del(env: Env, conf: NetConf) -> Outcome:
    """SPEC: "Plugins should generally complete a DEL action without error
    even if some resources are missing"."""
    ipam_del(env, conf)
    gone = False
    if env.netns:
        try:
            with netlink.pod_socket(env.netns) as pod:
                # Deleting the pod end takes the host end with it.
                gone = netlink.delete_link(pod, env.ifname)
        except CNIError as exc:
            if exc.code != ERR_UNKNOWN_CONTAINER:
                raise
    if not gone:
        node = netlink.node()
        host = netlink.find_link(node, host_ifname(env))
        mine = netlink.alias(conf.name, env.container_id, env.ifname)
        if host is not None and host.alias in (mine, None):
            netlink.delete_link(node, host.name)
    if conf.ip_masq:
        masq.teardown(conf.name, env.container_id, env.ifname)
    return Outcome(0, "")


def _fail(msg: str) -> CNIError:
    return CNIError(ERR_INTERNAL, f"CHECK: {msg}")


def cmd_check(env: Env, conf: NetConf) -> Outcome:
    """CHECK: the interfaces, addresses and routes of prevResult still exist."""
    if conf.prev_result is None:
        raise CNIError(ERR_INVALID_CONFIG, "CHECK requires prevResult")
    prev = normalize_result(conf.prev_result)
    _check_ipam(env, conf, prev)
    ifaces: list[dict[str, Any]] = prev.get("interfaces", [])
    pod_idx = next(
        (i for i, f in enumerate(ifaces) if f.get("name") == env.ifname and f.get("sandbox")),
        None,
    )
    if pod_idx is None:
        raise _fail(f"prevResult has no sandbox interface {env.ifname}")
    bridge, host = netlink.find_links(netlink.node(), [conf.bridge, host_ifname(env)])
    if bridge is None or bridge.kind != "bridge":
        raise _fail(f"bridge {conf.bridge} is missing")
    if host is None or host.master != bridge.index:
        raise _fail(f"host veth {host_ifname(env)} is missing or not on {conf.bridge}")
    with netlink.pod_socket(env.netns) as pod:
        link = netlink.find_link(pod, env.ifname)
        if link is None:
            raise _fail(f"{env.ifname} is missing in {env.netns}")
        want_mac = ifaces[pod_idx].get("mac")
        if want_mac and want_mac.lower() != link.mac.lower():
            raise _fail(f"{env.ifname} has MAC {link.mac}, expected {want_mac}")
        have = netlink.addresses(pod, link.index)
        for ip in prev.get("ips", []):
            if ip.get("interface", pod_idx) == pod_idx and ip["address"] not in have:
                raise _fail(f"address {ip['address']} is missing on {env.ifname}")
        _check_routes(prev, netlink.routes(pod, link.index))
    return Outcome(0, "")


def _check_routes(prev: dict[str, Any], have: list[tuple[str, str | None]]) -> None:
    for route in prev.get("routes", []):
        dst = str(ipaddress.ip_network(route["dst"], strict=False))
        gw = route.get("gw")
        if not any(d == dst and (gw is None or g == gw) for d, g in have):
            raise _fail(f"route {dst} via {gw or '-'} is missing")


def _check_ipam(env: Env, conf: NetConf, prev: dict[str, Any]) -> None:
    if not builtin_ipam(conf):
        ipam_delegate.check(env, conf.raw, conf.ipam["type"])
        return
    owned = set(ipam_hostlocal.owned(conf.ipam, conf.name, env.container_id, env.ifname))
    for ip in prev.get("ips", []):
        addr = str(ipaddress.ip_interface(ip["address"]).ip)
        if addr not in owned:
            raise _fail(f"{addr} is not allocated to {env.container_id}/{env.ifname}")
