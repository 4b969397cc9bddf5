"""ADD: bridge, veth, addresses and routes, with the port fail-closed."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from typing import Any

from cni import failclosed, masq, netlink
from cni.common import Added, Outcome, host_ifname, ipam_add, ipam_del, ipam_validate
from cni.config import Env, NetConf
from cni.spec import ERR_INTERNAL, CNIError, normalize_result, render_result


def _gateways(conf: NetConf, ips: list[dict[str, Any]]) -> list[str]:
    """Bridge addresses for isGateway, as "gw/prefix".

    Reference bridge: with isGateway and no gateway from IPAM, the gateway is
    the first address of the subnet.
    """
    out = []
    for ip in ips:
        iface = ipaddress.ip_interface(ip["address"])
        if not ip.get("gateway"):
            ip["gateway"] = str(iface.network.network_address + 1)
        out.append(f"{ip['gateway']}/{iface.network.prefixlen}")
    return out


def _default_routes(ips: list[dict[str, Any]], routes: list[dict[str, Any]]) -> None:
    """isDefaultGateway: "sets up the default route in the container via the bridge IP"."""
    have = {ipaddress.ip_network(r["dst"], strict=False) for r in routes}
    for ip in ips:
        gw = ipaddress.ip_address(ip["gateway"])
        default = ipaddress.ip_network("0.0.0.0/0" if gw.version == 4 else "::/0")
        if default not in have:
            routes.append({"dst": str(default), "gw": str(gw)})
            have.add(default)


def _result(
    conf: NetConf,
    env: Env,
    links: list[netlink.Link],
    ipam: dict[str, Any],
    prev: dict[str, Any],
) -> dict[str, Any]:
    bridge, host, pod = links
    ifaces: list[dict[str, Any]] = [
        {"name": bridge.name, "mac": bridge.mac},
        {"name": host.name, "mac": host.mac},
        {"name": env.ifname, "mac": pod.mac, "sandbox": env.netns},
    ]
    if conf.mtu:
        for item in ifaces:
            item["mtu"] = conf.mtu
    # SPEC: plugins "MUST handle prevResult by either passing it through,
    # modifying it, or suppressing it": we pass it through and append ours.
    base = len(prev.get("interfaces", []))
    ips = [dict(ip, interface=base + 2) for ip in ipam["ips"]]
    dns = dict(conf.dns) or dict(ipam.get("dns") or {}) or dict(prev.get("dns") or {})
    return {
        "interfaces": list(prev.get("interfaces", [])) + ifaces,
        "ips": list(prev.get("ips", [])) + ips,
        "routes": list(prev.get("routes", [])) + list(ipam.get("routes", [])),
        "dns": dns,
    }


def cmd_add(env: Env, conf: NetConf) -> Outcome:
    """ADD.  Everything from the request was checked by ``cni.config`` before
    this runs; from the IPAM allocation on, any failure undoes all of it."""
    prev = normalize_result(conf.prev_result) if conf.prev_result is not None else {}
    ipam_validate(conf)
    os.close(netlink.open_netns(env.netns))  # SPEC code 3 before anything is allocated
    host_name = host_ifname(env)
    ipam = ipam_add(env, conf)
    try:
        links = _plumb(env, conf, netlink.node(), host_name, ipam)
        if conf.ip_masq:
            masq.setup(conf.name, env.container_id, env.ifname, ipam["ips"])
        result = render_result(_result(conf, env, links, ipam, prev), conf.version)
        added = Added(
            namespace=env.arg("K8S_POD_NAMESPACE"),
            pod=env.arg("K8S_POD_NAME"),
            container_id=env.container_id,
            iface=host_name,
            ips=tuple(str(ipaddress.ip_interface(ip["address"]).ip) for ip in ipam["ips"]),
        )
        return Outcome(0, json.dumps(result), added)
    except BaseException:
        _rollback(env, conf, host_name)
        raise


def _plumb(
    env: Env, conf: NetConf, node: netlink.Rtnl, host_name: str, ipam: dict[str, Any]
) -> list[netlink.Link]:
    ips: list[dict[str, Any]] = ipam["ips"]
    routes: list[dict[str, Any]] = ipam.setdefault("routes", [])
    gateways: list[str] = []
    if conf.is_gateway:
        gateways = _gateways(conf, ips)  # added to the bridge by add_port(), in its round trip
        netlink.enable_forwarding({ipaddress.ip_interface(ip["address"]).version for ip in ips})
        if conf.is_default_gateway:
            _default_routes(ips, routes)
    # Pods are born under policy: the fail-closed table must exist before the port
    # joins the bridge (add_port creates it as a port), so no frame crosses before
    # the port is programmed.
    # "failClosed": false (docs/cni.md) is the plain bridge, for nodes without the agent.
    try:
        if conf.fail_closed:
            failclosed.ensure()
    except failclosed.FailClosedError as exc:
        raise CNIError(ERR_INTERNAL, "refusing to attach a pod port", str(exc)) from exc
    pod_mac = netlink.random_mac()  # chosen here: no need to read the pod interface back
    fd = netlink.open_netns(env.netns)
    try:
        tag = netlink.alias(conf.name, env.container_id, env.ifname)
        bridge, host = netlink.add_port(
            node,
            conf.bridge,
            host_name,
            env.ifname,
            fd,
            conf.mtu,
            tag,
            conf.hairpin,
            gateways,
            pod_mac,
        )
    finally:
        os.close(fd)
    try:
        with netlink.pod_socket(env.netns) as pod:
            netlink.configure_pod(pod, env.ifname, ips, routes, host.peer)
    except BaseException:
        netlink.delete_link(node, host_name)
        raise
    pod_link = netlink.Link(
        index=host.peer,
        name=env.ifname,
        mac=pod_mac,
        kind="veth",
        master=0,
        up=True,
        alias=None,
        mtu=conf.mtu,
    )
    return [bridge, host, pod_link]


def _rollback(env: Env, conf: NetConf, host_name: str) -> None:
    """A failed ADD leaves no interface, address, allocation or rule behind.

    The host port goes if it is ours (our alias) or untagged (created, then
    failed before the tag); deleting it takes the pod end with it."""
    with contextlib.suppress(Exception):
        ipam_del(env, conf)
    with contextlib.suppress(Exception):
        node = netlink.node()
        host = netlink.find_link(node, host_name)
        mine = netlink.alias(conf.name, env.container_id, env.ifname)
        if host is not None and host.alias in (mine, None, ""):
            netlink.delete_link(node, host_name)
    if conf.ip_masq:
        with contextlib.suppress(Exception):
            masq.teardown(conf.name, env.container_id, env.ifname)
