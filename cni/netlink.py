"""All rtnetlink work, on pyroute2 (no ``ip`` subprocesses).

pyroute2 0.9's ``IPRoute`` is a synchronous face on an asyncio core: every call
runs the object's event loop until the kernel has answered, and every answer is
decoded into pyroute2 message objects.  That costs ~0.2 ms of Python per request
(~0.3 ms when the answer is a link, whose ~50 attributes are all instantiated),
~0.3 ms to create an ``IPRoute``, and 100-250 ms to ``import pyroute2``.  So:

* pyroute2 is imported lazily, by the first function that talks to the kernel:
  the thick client and STATUS/VERSION never pay for it; standalone ADD/DEL/
  CHECK/GC do ("slower but correct"); the node agent pays once, at start.
* each thread keeps one long-lived node-side ``IPRoute`` (``node()``), with no
  multicast groups (nothing unsolicited arrives on it);
* a pod-side ``IPRoute`` is made per request by switching *this thread* into the
  pod netns with setns(2), creating it (its netlink socket is made in
  ``__init__`` and keeps that netns for life), and switching straight back; it
  runs on the node ``IPRoute``'s event loop.  (``IPRoute(netns=...)`` forks a
  child to make the socket: ~5.5 ms.)  The node agent's other threads, and this
  thread's later work, stay in the node netns.
* requests that belong together go to the kernel in one write (``batch``): the
  messages are pyroute2 message objects (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``),
  encoded, sequenced, sent and answered by pyroute2 (``NetlinkRequest``); the
  kernel handles them in order, and each gets its own errno.
* the bridge's index and (pinned) MAC are cached per netns (``ensure_bridge``),
  refreshed once when an operation on it fails; an ADD's node side is one batch
  (``add_port``) and its pod side another (``configure_pod``, ACKs only: the pod
  MAC is chosen by us, so nothing is read back);
* lookups are ``RTM_GETLINK`` by name without ``NLM_F_ACK``: pyroute2's
  ``link("get")`` asks for an ACK after the answer, which arrives once the request
  is finished and piles up in the socket's queue 0 (a leak on a long-lived
  ``IPRoute``); ``node()`` drops any such strays anyway.

The one non-rtnetlink request, the fail-closed check's ``NFT_MSG_GETTABLE``
(``cni.failclosed``), stays on a plain nfnetlink socket (``node(NETLINK_NETFILTER)``,
``Nfnl``): pyroute2 has no cheap single-table lookup, and importing its nftables
support costs more than the whole check.
"""

from __future__ import annotations

import _socket  # `socket` (a Python wrapper) costs ~5 ms to import in standalone mode
import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import os
import stat
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from cni.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_UNKNOWN_CONTAINER, CNIError

if TYPE_CHECKING:
    from pyroute2 import IPRoute as Rtnl  # the handle every function here takes

CLONE_NEWNET = 0x40000000
ALIAS_PREFIX = "policyc-cni"
_libc = ctypes.CDLL(None, use_errno=True)

NETLINK_ROUTE: Final = 0
NETLINK_NETFILTER: Final = 12
# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x100, 0x200, 0x400, 0x300
NLA_F_NESTED = 0x8000
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_F_NODAD = 0x02
IFF_UP = 0x1
AF_BRIDGE = 7
_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_SET = NLM_F_REQUEST | NLM_F_ACK


class NetlinkError(OSError):
    """The kernel refused a request; ``code`` (== ``errno``) says why."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.code = code


# 8<--- pyroute2, imported on first use ------------------------------------------

_pr: dict[str, Any] = {}


def _pyroute2() -> dict[str, Any]:
    """The pyroute2 names this module uses (imported on first call)."""
    if not _pr:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError as PyrouteError
        from pyroute2.netlink.nlsocket import NetlinkRequest
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        _pr.update(
            IPRoute=IPRoute,
            PyrouteError=PyrouteError,
            NetlinkRequest=NetlinkRequest,
            ifinfmsg=ifinfmsg,
            ifaddrmsg=ifaddrmsg,
            rtmsg=rtmsg,
        )
    return _pr


def preload() -> None:
    """Import pyroute2 now (the node agent, at start)."""
    _pyroute2()


def __getattr__(name: str) -> Any:
    if name == "Rtnl":  # ``netlink.Rtnl`` at run time, without importing pyroute2 eagerly
        return _pyroute2()["IPRoute"]
    raise AttributeError(name)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """pyroute2's NetlinkError (a plain Exception) as ours (an OSError with ``code``)."""
    try:
        yield
    except _pyroute2()["PyrouteError"] as exc:
        raise NetlinkError(exc.code) from exc


def _msg(kind: str, msg_type: int, nlm_flags: int, attrs: list[Any], **fields: int) -> Any:
    msg = _pyroute2()[kind]()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = nlm_flags
    return msg


def link_msg(msg_type: int, nlm_flags: int, attrs: list[Any], **fields: int) -> Any:
    """A pyroute2 ``ifinfmsg`` (fields: family, index, flags, change)."""
    fields.setdefault("index", 0)
    fields.setdefault("flags", 0)
    fields.setdefault("change", 0)
    return _msg("ifinfmsg", msg_type, nlm_flags, attrs, **fields)


def get_link_msg(name: str) -> Any:
    """RTM_GETLINK by name, no ACK (the answer is the reply), no statistics."""
    return link_msg(
        RTM_GETLINK,
        NLM_F_REQUEST,
        [("IFLA_IFNAME", name), ("IFLA_EXT_MASK", RTEXT_FILTER_SKIP_STATS)],
    )


def batch(ipr: Rtnl, msgs: list[Any]) -> list[tuple[int, list[Any]]]:
    """Send pyroute2 messages in one write; the kernel handles them in order.
    Returns (errno or 0, decoded answers) per message, in order."""
    pr = _pyroute2()
    core = ipr.asyncore

    async def run() -> list[tuple[int, list[Any]]]:
        reqs = [pr["NetlinkRequest"](core, msg) for msg in msgs]
        data = b""
        for req in reqs:
            await req.prepare()
            data += req.msg.data
        core.send(data)
        out: list[tuple[int, list[Any]]] = []
        for req in reqs:  # each response() frees its sequence number when done
            try:
                out.append((0, [answer async for answer in req.response()]))
            except pr["PyrouteError"] as exc:
                out.append((exc.code, []))
        return out

    result: list[tuple[int, list[Any]]] = core.event_loop.run_until_complete(run())
    return result


def request(ipr: Rtnl, msg: Any) -> list[Any]:
    """One request; raises ``NetlinkError`` if the kernel refuses it."""
    code, answers = batch(ipr, [msg])[0]
    if code:
        raise NetlinkError(code)
    return answers


# 8<--- nfnetlink, for the fail-closed check only ----------------------------------

_NLHDR = struct.Struct("=IHHII")
_ERR = struct.Struct("=i")
_NLA = struct.Struct("=HH")


def nla_str(kind: int, text: str) -> bytes:
    """One string attribute (used by ``cni.failclosed``'s nfnetlink request)."""
    payload = text.encode() + b"\0"
    size = 4 + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size & 3)


class Nfnl:
    """A plain synchronous nfnetlink socket: one request, its answers or errno."""

    def __init__(self, protocol: int = NETLINK_NETFILTER) -> None:
        self.sock = _socket.socket(
            _socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol
        )
        try:
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> list[bytes]:
        self.seq = self.seq + 1 if self.seq < 1 << 30 else 1
        seq = self.seq
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(_NLHDR.pack(16 + len(body), msg_type, flags, seq, 0) + body)
        replies: list[bytes] = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                size, kind, _, got, _ = _NLHDR.unpack_from(data, offset)
                if size < 16:
                    break
                if got == seq:  # else a stale answer: skip it
                    if kind in (NLMSG_ERROR, NLMSG_DONE):
                        code = -_ERR.unpack_from(data, offset + 16)[0] if size >= 20 else 0
                        if code:
                            raise NetlinkError(code)
                        return replies
                    replies.append(data[offset + 16 : offset + size])
                offset += (size + 3) & ~3


# 8<--- sockets: one per thread in the node netns, one per request in a pod --------

_local = threading.local()


@overload
def node(protocol: Literal[0] = ...) -> Rtnl: ...
@overload
def node(protocol: Literal[12]) -> Nfnl: ...
def node(protocol: int = NETLINK_ROUTE) -> Any:
    """This thread's persistent socket in its own (the node) netns: a pyroute2
    ``IPRoute`` for rtnetlink, an ``Nfnl`` for ``NETLINK_NETFILTER``."""
    if protocol == NETLINK_NETFILTER:
        nfnl: Nfnl | None = getattr(_local, "nfnl", None)
        if nfnl is None:
            nfnl = _local.nfnl = Nfnl()
        return nfnl
    ipr = getattr(_local, "ipr", None)
    if ipr is None:
        ipr = _local.ipr = _pyroute2()["IPRoute"](groups=0)
    else:
        root = ipr.asyncore.msg_queue.root  # answers nobody waits for: drop them
        while not root.empty():
            root.get_nowait()
            root.task_done()
    return ipr


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# <linux/nsfs.h>: NS_GET_NSTYPE = _IO(0xb7, 0x3) answers CLONE_NEW* for an nsfs
# file and fails (ENOTTY) for anything else.
NS_GET_NSTYPE = 0xB703


def open_netns(path: str) -> int:
    """Open a network namespace file, never blocking.

    SPEC code 3, "Container unknown or does not exist": a vanished path, or
    one that is not a network namespace (a directory, a device, a FIFO, another
    kind of namespace).  The open is O_NONBLOCK so a FIFO cannot hold us, and
    anything but a regular file (nsfs files are) is refused before opening."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError(errno.EINVAL, "not a namespace file")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise CNIError(ERR_UNKNOWN_CONTAINER, f"failed to open netns {path!r}", str(exc)) from exc
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as exc:
        os.close(fd)
        raise CNIError(ERR_UNKNOWN_CONTAINER, f"{path!r} is not a namespace", str(exc)) from exc
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise CNIError(ERR_UNKNOWN_CONTAINER, f"{path!r} is not a network namespace")
    return fd


def _own_netns() -> int:
    fd: int | None = getattr(_local, "own", None)
    if fd is None:
        fd = _local.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return fd


@contextlib.contextmanager
def pod_socket(path: str) -> Iterator[Rtnl]:
    """A pyroute2 ``IPRoute`` whose socket lives in the pod netns at ``path``.

    Use it from this thread only: pyroute2 makes a new socket (in the thread's
    own netns) for an ``IPRoute`` used from another thread."""
    loop = node().asyncore.event_loop  # share this thread's loop: ~0.1 ms less
    target = open_netns(path)
    try:
        own = _own_netns()
        try:
            _setns(target)
        except OSError as exc:
            raise CNIError(ERR_UNKNOWN_CONTAINER, f"{path!r} is not a netns", str(exc)) from exc
        try:
            ipr = _pyroute2()["IPRoute"](groups=0, use_event_loop=loop)
        finally:
            _setns(own)  # if this failed the thread would be lost: let it raise
    finally:
        os.close(target)
    try:
        yield ipr
    finally:
        ipr.close()


# 8<--- links, addresses, routes ----------------------------------------------------


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
    peer: int = 0  # a veth's other end (IFLA_LINK): its index in the other end's netns


_LINK_ATTRS = frozenset(
    (
        "IFLA_IFNAME",
        "IFLA_ADDRESS",
        "IFLA_LINKINFO",
        "IFLA_MASTER",
        "IFLA_IFALIAS",
        "IFLA_MTU",
        "IFLA_LINK",
    )
)


def _link_attrs(msg: Any) -> dict[str, Any]:
    """The attributes we read, in one pass (``msg.get`` scans the list each time,
    and pyroute2 decodes an attribute only when it is read)."""
    return {slot.name: slot.value for slot in msg["attrs"] if slot.name in _LINK_ATTRS}


def parse_link(msg: Any) -> Link:
    """A pyroute2 ``ifinfmsg`` (an RTM_NEWLINK answer)."""
    got = _link_attrs(msg)
    info = got.get("IFLA_LINKINFO")
    return Link(
        index=msg["index"],
        name=got.get("IFLA_IFNAME") or "",
        mac=got.get("IFLA_ADDRESS") or "",
        kind=(info.get("IFLA_INFO_KIND") if info is not None else None) or "",
        master=got.get("IFLA_MASTER") or 0,
        up=bool(msg["flags"] & IFF_UP),
        alias=got.get("IFLA_IFALIAS") or None,
        mtu=got.get("IFLA_MTU") or 0,
        peer=got.get("IFLA_LINK") or 0,
    )


def _missing(code: int) -> bool:
    return code in (errno.ENODEV, errno.ENOENT)


def find_link(ipr: Rtnl, name: str) -> Link | None:
    """RTM_GETLINK by name: a kernel lookup, not a dump filtered in Python."""
    return find_links(ipr, [name])[0]


def find_links(ipr: Rtnl, names: list[str]) -> list[Link | None]:
    """Several lookups by name in one round trip."""
    out: list[Link | None] = []
    for code, answers in batch(ipr, [get_link_msg(n) for n in names]):
        if code and not _missing(code):
            raise NetlinkError(code)
        out.append(parse_link(answers[0]) if answers and not code else None)
    return out


def links(ipr: Rtnl) -> list[Link]:
    """Every link (a dump: GC only)."""
    with _errors():
        return [parse_link(m) for m in ipr.link("dump")]


# Bridges this process has resolved, by (netns of the socket, name): a pinned MAC
# never changes, so the index and MAC are reused until an operation fails.
_bridges: dict[tuple[int, str], Link] = {}
SO_NETNS_COOKIE = 71  # <asm-generic/socket.h>, Linux 5.14


def _netns_key(ipr: Rtnl, name: str) -> tuple[int, str]:
    """The netns the socket lives in (not this thread's: see ``pod_socket``)."""
    try:
        cookie = ipr.asyncore.socket.getsockopt(_socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        return int.from_bytes(cookie, "little"), name
    except OSError:  # an older kernel: the thread's netns (right for ``node()``)
        return -os.stat("/proc/thread-self/ns/net").st_ino, name


def forget_bridge(ipr: Rtnl, name: str) -> None:
    _bridges.pop(_netns_key(ipr, name), None)


def ensure_bridge(ipr: Rtnl, name: str, mtu: int, cached: bool = True) -> tuple[Link, bool]:
    """Reference bridge: create the bridge if missing, and bring it up.

    Returns (bridge, True if it came from this process's cache).  A bridge we meet
    for the first time gets its MAC pinned (set to itself, as the reference plugin
    does at creation): else it takes the lowest MAC among its ports, which changes
    as pods come and go, and pods' cached gateway MAC goes stale (routed traffic
    then fails until their neighbour entry ages).  A pinned MAC is stable, so the
    bridge's index and MAC are cached; ``add_port`` brings it up on every ADD and
    refreshes the cache (once) if an operation on it fails."""
    key = _netns_key(ipr, name)
    if cached and (hit := _bridges.get(key)) is not None:
        return hit, True
    link = find_link(ipr, name)
    if link is None:
        spec: dict[str, Any] = {"ifname": name, "kind": "bridge", "state": "up"}
        if mtu:
            spec["mtu"] = mtu
        try:
            with _errors():
                ipr.link("add", **spec)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # a concurrent ADD created it first
                raise
        link = find_link(ipr, name)
    if link is None or link.kind != "bridge":
        raise CNIError(ERR_INVALID_CONFIG, f"{name!r} already exists but is not a bridge")
    msgs = [link_msg(RTM_NEWLINK, _SET, [], index=link.index, flags=IFF_UP, change=IFF_UP)]
    if link.mac:
        msgs.append(link_msg(RTM_NEWLINK, _SET, [("IFLA_ADDRESS", link.mac)], index=link.index))
    _check(batch(ipr, msgs), tolerate=0)
    _bridges[key] = link
    return link, False


def random_mac() -> str:
    """A random unicast, locally administered MAC (what the kernel gives a veth)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return raw.hex(":")


def _addr_msg(index: int, cidr: str) -> Any:
    iface = ipaddress.ip_interface(cidr)
    family = _socket.AF_INET if iface.version == 4 else _socket.AF_INET6
    # IPv6 DAD would leave the address unusable for ~1 s after ADD returns.
    flags = IFA_F_NODAD if iface.version == 6 else 0
    ip = str(iface.ip)
    return _msg(
        "ifaddrmsg",
        RTM_NEWADDR,
        _CREATE,
        [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip), ("IFA_FLAGS", flags)],
        family=family,
        prefixlen=iface.network.prefixlen,
        flags=flags,
        index=index,
    )


def _route_msg(index: int, dst: str, gateway: str | None) -> Any:
    net = ipaddress.ip_network(dst, strict=False)
    attrs: list[Any] = []
    if net.prefixlen:
        attrs.append(("RTA_DST", str(net.network_address)))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    attrs.append(("RTA_OIF", index))
    return _msg(
        "rtmsg",
        RTM_NEWROUTE,
        _CREATE,
        attrs,
        family=_socket.AF_INET if net.version == 4 else _socket.AF_INET6,
        dst_len=net.prefixlen,
        table=RT_TABLE_MAIN,
        proto=RTPROT_STATIC,
        scope=RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK,
        type=RTN_UNICAST,
    )


def _check(results: list[tuple[int, list[Any]]], tolerate: int = errno.EEXIST) -> None:
    for code, _ in results:
        if code and code != tolerate:
            raise NetlinkError(code)


def add_addresses(ipr: Rtnl, index: int, cidrs: list[str]) -> None:
    """Add addresses (an existing one is fine), in one round trip."""
    if cidrs:
        _check(batch(ipr, [_addr_msg(index, c) for c in cidrs]))


def add_address(ipr: Rtnl, index: int, cidr: str) -> None:
    add_addresses(ipr, index, [cidr])


def enable_forwarding(versions: set[int]) -> None:
    """Reference bridge: isGateway turns on forwarding (per netns sysctl)."""
    paths = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
    for v in versions:
        with contextlib.suppress(OSError):
            fd = os.open(paths[v], os.O_RDWR | os.O_CLOEXEC)  # no text-mode file object
            try:
                if os.read(fd, 8).strip() != b"1":
                    os.pwrite(fd, b"1", 0)
            finally:
                os.close(fd)


def add_port(
    ipr: Rtnl,
    bridge_name: str,
    host: str,
    peer: str,
    netns_fd: int,
    mtu: int,
    tag: str,
    hairpin: bool,
    bridge_addrs: list[str],
    peer_mac: str,
) -> tuple[Link, Link]:
    """The node side of an ADD in one round trip; returns (bridge, host end).

    The caller must have made sure the fail-closed table exists: the host end joins
    the bridge as it is created.  In order: bring the bridge up, add
    ``bridge_addrs`` (isGateway; an existing one is fine), create the veth (its peer
    born inside the pod netns as ``peer`` with MAC ``peer_mac``; the host end born
    with the bridge as master, and up unless hairpin must be set first), set the
    host end's alias (the kernel ignores one on create; it ties the port to its
    attachment, for GC), hairpin then up, and read the host end (its ``IFLA_LINK``
    is the peer's index in the pod netns).  The peer cannot be created up
    (veth_open() wants its other end registered).  If the cached bridge turns out
    stale, the cache is refreshed and the whole batch retried once."""
    bridge, cached = ensure_bridge(ipr, bridge_name, mtu)
    try:
        return bridge, _add_port(
            ipr, bridge, host, peer, netns_fd, mtu, tag, hairpin, bridge_addrs, peer_mac
        )
    except NetlinkError:
        forget_bridge(ipr, bridge_name)
        if not cached:
            raise
    bridge, _ = ensure_bridge(ipr, bridge_name, mtu, cached=False)
    return bridge, _add_port(
        ipr, bridge, host, peer, netns_fd, mtu, tag, hairpin, bridge_addrs, peer_mac
    )


def _add_port(
    ipr: Rtnl,
    bridge: Link,
    host: str,
    peer: str,
    netns_fd: int,
    mtu: int,
    tag: str,
    hairpin: bool,
    bridge_addrs: list[str],
    peer_mac: str,
) -> Link:
    mtu_attr = [("IFLA_MTU", mtu)] if mtu else []
    peer_attrs = [
        ("IFLA_IFNAME", peer),
        *mtu_attr,
        ("IFLA_ADDRESS", peer_mac),
        ("IFLA_NET_NS_FD", netns_fd),
    ]
    info = {
        "attrs": [
            ("IFLA_INFO_KIND", "veth"),
            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]}),
        ]
    }
    up = 0 if hairpin else IFF_UP
    msgs = [link_msg(RTM_NEWLINK, _SET, [], index=bridge.index, flags=IFF_UP, change=IFF_UP)]
    msgs += [_addr_msg(bridge.index, cidr) for cidr in bridge_addrs]
    made = len(msgs)
    msgs.append(
        link_msg(
            RTM_NEWLINK,
            _CREATE,
            [
                ("IFLA_IFNAME", host),
                *mtu_attr,
                ("IFLA_MASTER", bridge.index),
                ("IFLA_LINKINFO", info),
            ],
            flags=up,
            change=up,
        )
    )
    msgs.append(link_msg(RTM_NEWLINK, _SET, [("IFLA_IFNAME", host), ("IFLA_IFALIAS", tag)]))
    msgs.append(get_link_msg(host))
    results = batch(ipr, msgs)
    code = results[made][0]
    if code == errno.EEXIST:
        raise CNIError(
            ERR_INTERNAL, f"interface {host} or {peer} (in the pod netns) already exists"
        )
    try:
        _check(results[:made])  # the bridge (a stale cached one fails here)
        _check(results[made:-1], tolerate=0)
        code, answers = results[-1]
        if code or not answers:
            raise CNIError(ERR_INTERNAL, f"veth {host} vanished after creation")
        link = parse_link(answers[0])
        if hairpin:  # the bridge's setlink finds a port by index only: a 2nd round trip
            # IFLA_PROTINFO must be flagged nested, else it is a legacy port state
            mode = ("IFLA_PROTINFO", {"attrs": [("IFLA_BRPORT_MODE", 1)]}, NLA_F_NESTED)
            _check(
                batch(
                    ipr,
                    [
                        link_msg(RTM_SETLINK, _SET, [mode], index=link.index, family=AF_BRIDGE),
                        link_msg(
                            RTM_NEWLINK, _SET, [], index=link.index, flags=IFF_UP, change=IFF_UP
                        ),
                    ],
                ),
                tolerate=0,
            )
    except BaseException:
        if not results[made][0]:  # created, but not all set: leave nothing behind
            delete_link(ipr, host)
        raise
    return link


def configure_pod(
    pod: Rtnl, ifname: str, ips: list[dict[str, Any]], routes: list[dict[str, Any]], index: int
) -> None:
    """Bring up the pod interface ``index`` (``add_port``'s peer), add its IPs and
    routes (ipam.ConfigureIface): one round trip, acknowledgements only.  The kernel
    handles a batch in order, so a gateway route comes after the address whose
    prefix route makes it reachable."""
    msgs = [link_msg(RTM_NEWLINK, _SET, [], index=index, flags=IFF_UP, change=IFF_UP)]
    gateways: dict[int, str] = {}
    for ip in ips:
        msgs.append(_addr_msg(index, ip["address"]))
        if ip.get("gateway"):
            gateways.setdefault(ipaddress.ip_address(ip["gateway"]).version, ip["gateway"])
    for route in routes:
        dst = ipaddress.ip_network(route["dst"], strict=False)
        msgs.append(_route_msg(index, str(dst), route.get("gw") or gateways.get(dst.version)))
    results = batch(pod, msgs)
    if results[0][0]:
        if _missing(results[0][0]):
            raise CNIError(ERR_INTERNAL, f"{ifname} missing in the pod netns")
        raise NetlinkError(results[0][0])
    _check(results[1:])


def delete_link(ipr: Rtnl, name: str) -> bool:
    """RTM_DELLINK by name; False if there was no such interface."""
    try:
        with _errors():
            ipr.link("del", ifname=name)
    except NetlinkError as exc:
        if _missing(exc.code):
            return False
        raise
    return True


def addresses(ipr: Rtnl, index: int) -> set[str]:
    """ "addr/prefixlen" of every address on ``index`` (CHECK)."""
    with _errors():
        return {f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in ipr.addr("dump", index=index)}


def routes(ipr: Rtnl, index: int) -> list[tuple[str, str | None]]:
    """(destination network, gateway or None) of every route out of ``index`` (CHECK)."""
    out = []
    with _errors():
        dump = list(ipr.route("dump", oif=index))
    for msg in dump:
        zero = "0.0.0.0" if msg["family"] == _socket.AF_INET else "::"
        dst = f"{msg.get('RTA_DST') or zero}/{msg['dst_len']}"
        out.append((str(ipaddress.ip_network(dst, strict=False)), msg.get("RTA_GATEWAY")))
    return out
