"""All rtnetlink work, through pyroute2 (no ``ip`` subprocesses).

Netlink sockets belong to the network namespace they were created in, so a
pod-side socket is made by switching *this thread* into the pod's netns with
setns(2), creating the socket, and switching straight back.  That keeps the
node agent's other threads, and this thread's later work, in the node netns.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_UNKNOWN_CONTAINER, CNIError

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
ALIAS_PREFIX = "policyc-cni"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_netns(path: str) -> int:
    """Open a netns path; a vanished one is SPEC code 3 (container unknown)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CNIError(ERR_UNKNOWN_CONTAINER, f"failed to open netns {path!r}", str(exc)) from exc
    return fd


@contextlib.contextmanager
def pod_iproute(path: str) -> Iterator[IPRoute]:
    """An IPRoute whose socket lives in the pod netns at ``path``."""
    target = open_netns(path)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as exc:
            raise CNIError(ERR_UNKNOWN_CONTAINER, f"{path!r} is not a netns", str(exc)) from exc
        try:
            ipr = IPRoute()
        finally:
            _setns(own)  # if this failed the thread would be lost: let it raise
    finally:
        os.close(own)
        os.close(target)
    try:
        yield ipr
    finally:
        ipr.close()


def alias(network: str, cid: str, ifname: str) -> str:
    return f"{ALIAS_PREFIX}:{network}:{cid}:{ifname}"


def parse_alias(text: str | None) -> tuple[str, str, str] | None:
    if not text or not text.startswith(ALIAS_PREFIX + ":"):
        return None
    parts = text.split(":")
    return (parts[1], parts[2], parts[3]) if len(parts) == 4 else None


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    mac: str
    kind: str
    master: int
    up: bool
    alias: str | None
    mtu: int


def _link(msg: Any) -> Link:
    return Link(
        index=msg["index"],
        name=msg.get("ifname"),
        mac=msg.get("address") or "",
        kind=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "",
        master=msg.get("master") or 0,
        up=bool(msg["flags"] & 1),
        alias=msg.get("ifalias"),
        mtu=msg.get("mtu") or 0,
    )


def find_link(ipr: IPRoute, name: str) -> Link | None:
    try:
        # RTM_GETLINK by name: a kernel lookup, not a dump filtered in Python.
        msgs = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return _link(msgs[0]) if msgs else None


def links(ipr: IPRoute) -> list[Link]:
    return [_link(m) for m in ipr.get_links()]


def ensure_bridge(ipr: IPRoute, name: str, mtu: int) -> Link:
    """Reference bridge: create the bridge if missing, and bring it up."""
    link = find_link(ipr, name)
    if link is None:
        kwargs: dict[str, Any] = {"ifname": name, "kind": "bridge"}
        if mtu:
            kwargs["mtu"] = mtu
        try:
            ipr.link("add", **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # a concurrent ADD created it first
                raise
        link = find_link(ipr, name)
    if link is None or link.kind != "bridge":
        raise CNIError(ERR_INVALID_CONFIG, f"{name!r} already exists but is not a bridge")
    if not link.up:
        ipr.link("set", index=link.index, state="up")
    return link


def add_address(ipr: IPRoute, index: int, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    # IPv6 DAD would leave the address unusable for ~1 s after ADD returns.
    flags = IFA_F_NODAD if iface.version == 6 else 0
    try:
        ipr.addr(
            "add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
            flags=flags,
        )
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def enable_forwarding(versions: set[int]) -> None:
    """Reference bridge: isGateway turns on forwarding (per netns sysctl)."""
    paths = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
    for v in versions:
        with contextlib.suppress(OSError), open(paths[v], "r+") as fh:
            if fh.read().strip() != "1":
                fh.seek(0)
                fh.write("1")


def create_veth(ipr: IPRoute, host: str, peer: str, netns_fd: int, mtu: int, tag: str) -> Link:
    """A veth pair whose peer is born inside the pod netns as ``peer``."""
    peer_args: dict[str, Any] = {"ifname": peer, "net_ns_fd": netns_fd}
    kwargs: dict[str, Any] = {"ifname": host, "kind": "veth", "peer": peer_args}
    if mtu:
        kwargs["mtu"] = peer_args["mtu"] = mtu
    try:
        ipr.link("add", **kwargs)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise CNIError(
                ERR_INTERNAL, f"interface {host} or {peer} (in the pod netns) already exists"
            ) from exc
        raise
    link = find_link(ipr, host)
    if link is None:
        raise CNIError(ERR_INTERNAL, f"veth {host} vanished after creation")
    # The alias ties the port to its attachment, for GC; the kernel ignores it on create.
    ipr.link("set", index=link.index, ifalias=tag)
    return link


def attach(ipr: IPRoute, port: Link, bridge: Link, hairpin: bool) -> None:
    ipr.link("set", index=port.index, master=bridge.index)
    if hairpin:
        ipr.brport("set", index=port.index, mode=1)
    ipr.link("set", index=port.index, state="up")


def configure_pod(pod: IPRoute, ifname: str, ips: list[dict[str, Any]],
                  routes: list[dict[str, Any]]) -> Link:
    """Bring up the pod interface, add its IPs and routes (ipam.ConfigureIface)."""
    link = find_link(pod, ifname)
    if link is None:
        raise CNIError(ERR_INTERNAL, f"{ifname} missing in the pod netns")
    pod.link("set", index=link.index, state="up")
    gateways: dict[int, str] = {}
    for ip in ips:
        add_address(pod, link.index, ip["address"])
        if ip.get("gateway"):
            gateways.setdefault(ipaddress.ip_address(ip["gateway"]).version, ip["gateway"])
    for route in routes:
        dst = ipaddress.ip_network(route["dst"], strict=False)
        gw = route.get("gw") or gateways.get(dst.version)
        kwargs: dict[str, Any] = {"dst": str(dst), "oif": link.index}
        if gw:
            kwargs["gateway"] = gw
        try:
            pod.route("add", **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
    return link


def delete_link(ipr: IPRoute, name: str) -> bool:
    link = find_link(ipr, name)
    if link is None:
        return False
    try:
        ipr.link("del", index=link.index)
    except NetlinkError as exc:
        if exc.code not in (errno.ENODEV, errno.ENOENT):
            raise
    return True


def addresses(ipr: IPRoute, index: int) -> set[str]:
    out = set()
    for msg in ipr.get_addr(index=index):
        out.add(f"{msg.get('address')}/{msg['prefixlen']}")
    return out


def routes(ipr: IPRoute, index: int) -> list[tuple[str, str | None]]:
    out = []
    for family in (2, 10):
        for msg in ipr.get_routes(family=family, oif=index):
            dst = msg.get("dst")
            net = f"{dst}/{msg['dst_len']}" if dst else ("0.0.0.0/0" if family == 2 else "::/0")
            out.append((str(ipaddress.ip_network(net, strict=False)), msg.get("gateway")))
    return out
