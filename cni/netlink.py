"""All rtnetlink work, on plain synchronous netlink sockets (no ``ip`` subprocesses).

Why not pyroute2 here: its synchronous ``IPRoute`` runs an asyncio event loop
per call, about 0.3 ms of Python per request against ~0.01 ms in the kernel,
and ``import pyroute2`` costs 150-250 ms in standalone mode.  A CNI ADD needs
about ten small, fixed requests, which are encoded here with ``struct`` and
answered by the kernel on the same socket (``Rtnl``).  A request that fails
raises ``NetlinkError`` with the kernel's errno.

Netlink sockets belong to the network namespace they were created in, so a
pod-side socket is made by switching *this thread* into the pod's netns with
setns(2), creating the socket, and switching straight back.  That keeps the
node agent's other threads, and this thread's later work, in the node netns.
Each thread keeps one node-side socket (``node()``) for its lifetime.
"""

from __future__ import annotations

import _socket  # `socket` (a Python wrapper) costs ~5 ms to import in standalone mode
import contextlib
import ctypes
import errno
import ipaddress
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cni.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_UNKNOWN_CONTAINER, CNIError

CLONE_NEWNET = 0x40000000
ALIAS_PREFIX = "policyc-cni"
_libc = ctypes.CDLL(None, use_errno=True)

# <linux/netlink.h>
NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
NLA_F_NESTED = 0x8000
# <linux/rtnetlink.h>
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR, RTM_NEWROUTE, RTM_GETROUTE = 20, 22, 24, 26
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTEXT_FILTER_SKIP_STATS = 1 << 3
# <linux/if_link.h>, <linux/if_addr.h>, <linux/veth.h>
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_IFALIAS = 12, 18, 20
IFLA_NET_NS_FD, IFLA_EXT_MASK = 28, 29
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
IFF_UP = 0x1
AF_BRIDGE = 7

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_ERR = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel refused a request; ``code`` (== ``errno``) says why."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.code = code


def nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size & 3)


def nla_str(kind: int, text: str) -> bytes:
    return nla(kind, text.encode() + b"\0")


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, _U32.pack(value))


def attrs(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each attribute from ``offset`` on."""
    end = len(data)
    while offset + 4 <= end:
        size, kind = _NLA.unpack_from(data, offset)
        if size < 4:
            return
        yield kind & 0x3FFF, data[offset + 4:offset + size]
        offset += (size + 3) & ~3


def _cstr(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


_SKIP_STATS = nla_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)


class Rtnl:
    """A synchronous netlink socket: one request (or a batch) and its answers."""

    def __init__(self, protocol: int = NETLINK_ROUTE) -> None:
        self.sock = _socket.socket(
            _socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol)
        try:
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self, msgs: list[tuple[int, int, bytes]]) -> list[tuple[int, list[bytes]]]:
        """Send every (type, flags, body) in one write; the kernel handles them in
        order.  Returns (errno or 0, reply payloads) per message, in order."""
        out: list[bytes] = []
        if self.seq > 1 << 30:
            self.seq = 0  # sequence numbers are 32 bits; stale answers are < first anyway
        first = self.seq + 1
        for msg_type, flags, body in msgs:
            self.seq += 1
            flags |= NLM_F_REQUEST | (0 if flags & NLM_F_DUMP == NLM_F_DUMP else NLM_F_ACK)
            out.append(_HDR.pack(16 + len(body), msg_type, flags, self.seq, 0) + body)
        self.sock.send(b"".join(out))
        results: list[tuple[int, list[bytes]]] = [(0, []) for _ in msgs]
        done = [False] * len(msgs)
        pending = len(msgs)
        while pending:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                size, msg_type, _, seq, _ = _HDR.unpack_from(data, offset)
                if size < 16:
                    break
                i = seq - first
                if 0 <= i < len(msgs) and not done[i]:  # else a stale answer: skip it
                    if msg_type in (NLMSG_ERROR, NLMSG_DONE):
                        code = _ERR.unpack_from(data, offset + 16)[0] if size >= 20 else 0
                        results[i] = (-code, results[i][1])
                        done[i] = True
                        pending -= 1
                    else:
                        results[i][1].append(data[offset + 16:offset + size])
                offset += (size + 3) & ~3
        return results

    def request(self, msg_type: int, flags: int, body: bytes) -> list[bytes]:
        """One request; raises ``NetlinkError`` if the kernel refuses it."""
        code, replies = self.batch([(msg_type, flags, body)])[0]
        if code:
            raise NetlinkError(code)
        return replies


_local = threading.local()


def node(protocol: int = NETLINK_ROUTE) -> Rtnl:
    """This thread's persistent netlink socket in its own (the node) netns."""
    socks: dict[int, Rtnl] | None = getattr(_local, "socks", None)
    if socks is None:
        socks = _local.socks = {}
    sock = socks.get(protocol)
    if sock is None:
        sock = socks[protocol] = Rtnl(protocol)
    return sock


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


def _own_netns() -> int:
    fd: int | None = getattr(_local, "own", None)
    if fd is None:
        fd = _local.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return fd


@contextlib.contextmanager
def pod_socket(path: str) -> Iterator[Rtnl]:
    """An rtnetlink socket that lives in the pod netns at ``path``."""
    target = open_netns(path)
    try:
        own = _own_netns()
        try:
            _setns(target)
        except OSError as exc:
            raise CNIError(ERR_UNKNOWN_CONTAINER, f"{path!r} is not a netns", str(exc)) from exc
        try:
            sock = Rtnl()
        finally:
            _setns(own)  # if this failed the thread would be lost: let it raise
    finally:
        os.close(target)
    try:
        yield sock
    finally:
        sock.close()


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


def parse_link(payload: bytes) -> Link:
    """An RTM_NEWLINK payload (ifinfomsg + attributes)."""
    _, _, index, flags, _ = _IFINFO.unpack_from(payload)
    name, mac, kind = "", "", ""
    master = mtu = 0
    link_alias: str | None = None
    for kind_, data in attrs(payload, _IFINFO.size):
        if kind_ == IFLA_IFNAME:
            name = _cstr(data)
        elif kind_ == IFLA_ADDRESS:
            mac = data.hex(":")
        elif kind_ == IFLA_MTU:
            mtu = _U32.unpack_from(data)[0]
        elif kind_ == IFLA_MASTER:
            master = _U32.unpack_from(data)[0]
        elif kind_ == IFLA_IFALIAS:
            link_alias = _cstr(data) or None
        elif kind_ == IFLA_LINKINFO:
            for sub, value in attrs(data, 0):
                if sub == IFLA_INFO_KIND:
                    kind = _cstr(value)
    return Link(index, name, mac, kind, master, bool(flags & IFF_UP), link_alias, mtu)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def find_link(ipr: Rtnl, name: str) -> Link | None:
    """RTM_GETLINK by name: a kernel lookup, not a dump filtered in Python."""
    try:
        replies = ipr.request(RTM_GETLINK, 0, _ifinfo() + nla_str(IFLA_IFNAME, name) + _SKIP_STATS)
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return parse_link(replies[0]) if replies else None


def find_links(ipr: Rtnl, names: list[str]) -> list[Link | None]:
    """Several lookups by name in one round trip."""
    msgs = [(RTM_GETLINK, 0, _ifinfo() + nla_str(IFLA_IFNAME, n) + _SKIP_STATS) for n in names]
    out: list[Link | None] = []
    for code, replies in ipr.batch(msgs):
        if code and code not in (errno.ENODEV, errno.ENOENT):
            raise NetlinkError(code)
        out.append(parse_link(replies[0]) if replies and not code else None)
    return out


def links(ipr: Rtnl) -> list[Link]:
    return [parse_link(m) for m in ipr.request(RTM_GETLINK, NLM_F_DUMP, _ifinfo() + _SKIP_STATS)]


def _linkinfo(kind: str, data: bytes = b"") -> bytes:
    info = nla_str(IFLA_INFO_KIND, kind)
    if data:
        info += nla(IFLA_INFO_DATA, data)
    return nla(IFLA_LINKINFO, info)


def ensure_bridge(ipr: Rtnl, name: str, mtu: int) -> Link:
    """Reference bridge: create the bridge if missing, and bring it up."""
    link = find_link(ipr, name)
    if link is None:
        body = _ifinfo(flags=IFF_UP, change=IFF_UP) + nla_str(IFLA_IFNAME, name)
        if mtu:
            body += nla_u32(IFLA_MTU, mtu)
        try:
            ipr.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + _linkinfo("bridge"))
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # a concurrent ADD created it first
                raise
        link = find_link(ipr, name)
    if link is None or link.kind != "bridge":
        raise CNIError(ERR_INVALID_CONFIG, f"{name!r} already exists but is not a bridge")
    if not link.up:
        ipr.request(RTM_SETLINK, 0, _ifinfo(link.index, IFF_UP, IFF_UP))
    return link


def _addr_msg(index: int, cidr: str) -> tuple[int, int, bytes]:
    iface = ipaddress.ip_interface(cidr)
    family = _socket.AF_INET if iface.version == 4 else _socket.AF_INET6
    # IPv6 DAD would leave the address unusable for ~1 s after ADD returns.
    flags = IFA_F_NODAD if iface.version == 6 else 0
    packed = iface.ip.packed
    body = (_IFADDR.pack(family, iface.network.prefixlen, flags, 0, index)
            + nla(IFA_LOCAL, packed) + nla(IFA_ADDRESS, packed) + nla_u32(IFA_FLAGS, flags))
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body


def _route_msg(index: int, dst: str, gateway: str | None) -> tuple[int, int, bytes]:
    net = ipaddress.ip_network(dst, strict=False)
    family = _socket.AF_INET if net.version == 4 else _socket.AF_INET6
    scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    body = _RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope,
                       RTN_UNICAST, 0)
    if net.prefixlen:
        body += nla(RTA_DST, net.network_address.packed)
    if gateway:
        body += nla(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
    body += nla_u32(RTA_OIF, index)
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body


def _check(results: list[tuple[int, list[bytes]]], tolerate: int = errno.EEXIST) -> None:
    for code, _ in results:
        if code and code != tolerate:
            raise NetlinkError(code)


def add_addresses(ipr: Rtnl, index: int, cidrs: list[str]) -> None:
    """Add addresses (an existing one is fine), in one round trip."""
    if cidrs:
        _check(ipr.batch([_addr_msg(index, c) for c in cidrs]))


def add_address(ipr: Rtnl, index: int, cidr: str) -> None:
    add_addresses(ipr, index, [cidr])


def enable_forwarding(versions: set[int]) -> None:
    """Reference bridge: isGateway turns on forwarding (per netns sysctl)."""
    paths = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
    for v in versions:
        with contextlib.suppress(OSError), open(paths[v], "r+") as fh:
            if fh.read().strip() != "1":
                fh.seek(0)
                fh.write("1")


def create_veth(ipr: Rtnl, host: str, peer: str, netns_fd: int, mtu: int, tag: str) -> Link:
    """A veth pair whose peer is born inside the pod netns as ``peer``.

    (The peer cannot be created up: veth_open() wants its other end registered.)"""
    mtu_attr = nla_u32(IFLA_MTU, mtu) if mtu else b""
    peer_msg = (_ifinfo() + nla_str(IFLA_IFNAME, peer) + mtu_attr
                + nla_u32(IFLA_NET_NS_FD, netns_fd))
    body = (_ifinfo() + nla_str(IFLA_IFNAME, host) + mtu_attr
            + _linkinfo("veth", nla(VETH_INFO_PEER, peer_msg)))
    try:
        ipr.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
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
    ipr.request(RTM_SETLINK, 0, _ifinfo(link.index) + nla_str(IFLA_IFALIAS, tag))
    return link


def attach(ipr: Rtnl, port: Link, bridge: Link, hairpin: bool) -> None:
    """Join the bridge (hairpin set before the port comes up), then up: one round trip."""
    msgs = [(RTM_SETLINK, 0, _ifinfo(port.index) + nla_u32(IFLA_MASTER, bridge.index))]
    if hairpin:
        protinfo = nla(IFLA_PROTINFO | NLA_F_NESTED, nla(IFLA_BRPORT_MODE, b"\1"))
        msgs.append((RTM_SETLINK, 0, _ifinfo(port.index, family=AF_BRIDGE) + protinfo))
    msgs.append((RTM_SETLINK, 0, _ifinfo(port.index, IFF_UP, IFF_UP)))
    _check(ipr.batch(msgs), tolerate=0)


def configure_pod(pod: Rtnl, ifname: str, ips: list[dict[str, Any]],
                  routes: list[dict[str, Any]]) -> Link:
    """Bring up the pod interface, add its IPs and routes (ipam.ConfigureIface).

    One round trip for all of it: the kernel handles a batch in order, so a
    gateway route comes after the address whose prefix route makes it reachable."""
    link = find_link(pod, ifname)
    if link is None:
        raise CNIError(ERR_INTERNAL, f"{ifname} missing in the pod netns")
    msgs = [(RTM_SETLINK, 0, _ifinfo(link.index, IFF_UP, IFF_UP))]
    gateways: dict[int, str] = {}
    for ip in ips:
        msgs.append(_addr_msg(link.index, ip["address"]))
        if ip.get("gateway"):
            gateways.setdefault(ipaddress.ip_address(ip["gateway"]).version, ip["gateway"])
    for route in routes:
        dst = ipaddress.ip_network(route["dst"], strict=False)
        msgs.append(_route_msg(link.index, str(dst), route.get("gw") or gateways.get(dst.version)))
    results = pod.batch(msgs)
    if results[0][0]:
        raise NetlinkError(results[0][0])
    _check(results[1:])
    return link


def delete_link(ipr: Rtnl, name: str) -> bool:
    """RTM_DELLINK by name; False if there was no such interface."""
    try:
        ipr.request(RTM_DELLINK, 0, _ifinfo() + nla_str(IFLA_IFNAME, name))
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def _ntop(data: bytes) -> str:
    return _socket.inet_ntop(_socket.AF_INET if len(data) == 4 else _socket.AF_INET6, data)


def addresses(ipr: Rtnl, index: int) -> set[str]:
    out = set()
    for msg in ipr.request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(0, 0, 0, 0, 0)):
        _, prefixlen, _, _, ifindex = _IFADDR.unpack_from(msg)
        if ifindex != index:
            continue
        for kind, data in attrs(msg, _IFADDR.size):
            if kind == IFA_ADDRESS:
                out.add(f"{_ntop(data)}/{prefixlen}")
    return out


def routes(ipr: Rtnl, index: int) -> list[tuple[str, str | None]]:
    out = []
    for family in (_socket.AF_INET, _socket.AF_INET6):
        zero = "0.0.0.0" if family == _socket.AF_INET else "::"
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        for msg in ipr.request(RTM_GETROUTE, NLM_F_DUMP, body):
            dst_len = msg[1]
            dst, gateway, oif = zero, None, 0
            for kind, data in attrs(msg, _RTMSG.size):
                if kind == RTA_DST:
                    dst = _ntop(data)
                elif kind == RTA_GATEWAY:
                    gateway = _ntop(data)
                elif kind == RTA_OIF:
                    oif = _U32.unpack_from(data)[0]
            if oif == index:
                out.append((str(ipaddress.ip_network(f"{dst}/{dst_len}", strict=False)), gateway))
    return out
