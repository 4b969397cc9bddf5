"""Built-in IPAM with the reference host-local's semantics and on-disk format.

Store (plugins/ipam/host-local/backend/disk): ``<dataDir>/<network name>/``
holds one file per allocated IP, named by the IP and containing
``<containerID>\\r\\n<ifname>``; ``last_reserved_ip.<rangeset index>`` holds the
last IP handed out in each range set; ``lock`` is flock()ed around every
change.  The two implementations can therefore take over each other's
allocations.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cni.config import parse_ip, parse_network
from cni.spec import ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_TRY_AGAIN_LATER, CNIError

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LINE_BREAK = "\r\n"
LAST_RESERVED = "last_reserved_ip."

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


# Never a pod's address or a bridge gateway: "this network" and the limited
# broadcast, loopback (RFC 1122 3.2.1.3), multicast (RFC 5771, RFC 4291 2.7),
# and IPv6's unspecified and loopback addresses (RFC 4291 2.5.2, 2.5.3).  The
# kernel refuses some (EADDRNOTAVAIL, a traceback behind 999) and accepts
# others (127.0.0.1 on the bridge).
_NOT_UNICAST: tuple[IPNet, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32", "::/127", "ff00::/8")
)


@dataclass(frozen=True, slots=True)
class Range:
    subnet: IPNet
    start: int
    end: int
    gateway: IPAddr

    def contains(self, addr: IPAddr) -> bool:
        return addr.version == self.subnet.version and self.start <= int(addr) <= self.end


def _range(doc: object) -> Range:
    if not isinstance(doc, dict) or "subnet" not in doc:
        raise CNIError(ERR_INVALID_CONFIG, "each ipam range needs a subnet")
    subnet = parse_network(doc["subnet"], "subnet")
    for special in _NOT_UNICAST:
        if subnet.version == special.version and subnet.overlaps(special):
            raise CNIError(ERR_INVALID_CONFIG, f"network {subnet} overlaps {special}")
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        raise CNIError(ERR_INVALID_CONFIG, f"network {subnet} too small to allocate from")
    first = int(subnet.network_address) + 1
    # host-local lastIP(): the last address of the subnet, minus broadcast for IPv4.
    last = int(subnet.broadcast_address) - (1 if subnet.version == 4 else 0)
    start, end = first, last
    if doc.get("rangeStart"):
        start = int(_inside(parse_ip(doc["rangeStart"], "rangeStart"), subnet, "rangeStart"))
    if doc.get("rangeEnd"):
        end = int(_inside(parse_ip(doc["rangeEnd"], "rangeEnd"), subnet, "rangeEnd"))
    if start > end:
        raise CNIError(ERR_INVALID_CONFIG, f"rangeStart is after rangeEnd in {subnet}")
    gateway: IPAddr = subnet.network_address + 1
    if doc.get("gateway"):
        gateway = _inside(parse_ip(doc["gateway"], "gateway"), subnet, "gateway")
    return Range(subnet, start, end, gateway)


def _inside(addr: IPAddr, subnet: IPNet, what: str) -> IPAddr:
    if addr.version != subnet.version or addr not in subnet:
        raise CNIError(ERR_INVALID_CONFIG, f"{what} {addr} is not in {subnet}")
    return addr


def parse_rangesets(ipam: dict[str, Any]) -> list[list[Range]]:
    """host-local: legacy top-level ``subnet`` becomes the first range set."""
    sets: list[list[Range]] = []
    if ipam.get("subnet"):
        sets.append([_range(ipam)])
    ranges = ipam.get("ranges") or []
    if not isinstance(ranges, list):
        raise CNIError(ERR_INVALID_CONFIG, "ipam.ranges must be a list of range sets")
    for rs in ranges:
        if not isinstance(rs, list) or not rs:
            raise CNIError(ERR_INVALID_CONFIG, "ipam.ranges entries must be non-empty lists")
        sets.append([_range(r) for r in rs])
    if not sets:
        raise CNIError(ERR_INVALID_CONFIG, "ipam needs subnet or ranges")
    for rs in sets:
        if len({r.subnet.version for r in rs}) != 1:
            raise CNIError(ERR_INVALID_CONFIG, "a range set mixes IPv4 and IPv6")
        spans = sorted((r.start, r.end) for r in rs)
        if any(a[1] >= b[0] for a, b in zip(spans, spans[1:], strict=False)):
            raise CNIError(ERR_INVALID_CONFIG, "ranges in a range set overlap")
    return sets


class Store:
    """The reference disk backend, byte for byte."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = os.path.join(data_dir, network)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        lock = os.path.join(self.dir, "lock")
        try:
            try:
                fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # first use of this network
                os.makedirs(self.dir, mode=0o755, exist_ok=True)
                fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise CNIError(5, f"cannot open IPAM store {self.dir}", str(exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def entries(self) -> Iterator[tuple[str, str, str]]:
        """(file name, containerID, ifname) of each allocation file; the name is
        not parsed here (most callers compare the owner first: it is cheaper)."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for entry in names:
            if entry == "lock" or entry.startswith(LAST_RESERVED):
                continue
            try:
                fd = os.open(os.path.join(self.dir, entry), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            finally:
                os.close(fd)
            cid, _, ifname = data.decode(errors="replace").strip().partition(LINE_BREAK)
            yield entry, cid.strip(), ifname.strip()

    def allocations(self) -> Iterator[tuple[IPAddr, str, str]]:
        for entry, cid, ifname in self.entries():
            addr = _address(entry)
            if addr is not None:
                yield addr, cid, ifname

    def reserve(self, addr: IPAddr, cid: str, ifname: str, rangeset: int) -> bool:
        path = os.path.join(self.dir, str(addr))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_EXCL | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, (cid.strip() + LINE_BREAK + ifname).encode())
        finally:
            os.close(fd)
        # Overwrite, then cut to length, rather than O_TRUNC: ext4 (auto_da_alloc)
        # starts writeback on close() of a file truncated to zero, which costs
        # up to several ms here.  The lock is held, so nobody sees the middle.
        data = str(addr).encode()
        last = os.path.join(self.dir, f"{LAST_RESERVED}{rangeset}")
        fd = os.open(last, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        return True

    def last_reserved(self, rangeset: int) -> IPAddr | None:
        try:
            fd = os.open(
                os.path.join(self.dir, f"{LAST_RESERVED}{rangeset}"), os.O_RDONLY | os.O_CLOEXEC
            )
        except OSError:
            return None
        try:
            return _address(os.read(fd, 256).decode(errors="replace").strip())
        except OSError:
            return None
        finally:
            os.close(fd)

    def release(self, addr: IPAddr | str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, str(addr)))


def _address(text: str) -> IPAddr | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _candidates(ranges: list[Range], last: IPAddr | None) -> Iterator[tuple[IPAddr, Range]]:
    """host-local RangeIter: resume after the last reserved IP, wrap once, skip gateways."""
    idx, cur = 0, None
    for i, r in enumerate(ranges):
        if last is not None and r.contains(last):
            idx, cur = i, int(last)
    order = [(idx + k) % len(ranges) for k in range(len(ranges))]
    seq: list[tuple[int, int, int]] = []  # (range index, first, last) to walk, in order
    if cur is None:
        seq = [(i, ranges[i].start, ranges[i].end) for i in order]
    else:
        seq = [(idx, cur + 1, ranges[idx].end)]
        seq += [(i, ranges[i].start, ranges[i].end) for i in order[1:]]
        seq.append((idx, ranges[idx].start, cur))
    for i, lo, hi in seq:
        r = ranges[i]
        cls = type(r.subnet.network_address)
        for value in range(lo, hi + 1):
            addr = cls(value)
            if addr != r.gateway:
                yield addr, r


def data_dir(ipam: dict[str, Any]) -> str:
    """host-local ``dataDir`` (string, optional): a path, else the default."""
    value = ipam.get("dataDir")
    if value is None or value == "":
        return DEFAULT_DATA_DIR
    if not isinstance(value, str) or "\0" in value:
        raise CNIError(ERR_INVALID_CONFIG, f"ipam.dataDir must be a path string, not {value!r}")
    if not os.path.isabs(value):
        # A relative path lands in whatever directory the runtime runs us from.
        raise CNIError(ERR_INVALID_CONFIG, f"ipam.dataDir must be an absolute path, not {value!r}")
    return value


def validate(
    ipam: dict[str, Any],
) -> tuple[list[list[Range]], list[dict[str, Any]], dict[str, Any] | None]:
    """The whole ``ipam`` section, checked (code 7) before anything is reserved:
    (range sets, routes, dns)."""
    sets = parse_rangesets(ipam)
    routes = _routes(ipam)
    dns = ipam.get("dns")
    if dns is not None and not isinstance(dns, dict):
        raise CNIError(ERR_INVALID_CONFIG, "ipam.dns must be an object")
    data_dir(ipam)
    return sets, routes, dns


def allocate(ipam: dict[str, Any], network: str, cid: str, ifname: str) -> dict[str, Any]:
    """ADD: one address per range set, as host-local's allocator does."""
    sets, routes, dns = validate(ipam)
    store = Store(data_dir(ipam), network)
    ips: list[dict[str, Any]] = []
    with store.locked():
        owned = [
            a
            for e, c, i in store.entries()
            if (c, i) == (cid, ifname) and (a := _address(e)) is not None
        ]
        try:
            for n, ranges in enumerate(sets):
                ips.append(_allocate_one(store, n, ranges, owned, cid, ifname))
        except BaseException:
            for ip in ips:
                store.release(ipaddress.ip_interface(ip["address"]).ip)
            raise
    result: dict[str, Any] = {"ips": ips, "routes": routes}
    if dns is not None:
        result["dns"] = dns
    return result


def _allocate_one(
    store: Store, n: int, ranges: list[Range], owned: list[IPAddr], cid: str, ifname: str
) -> dict[str, Any]:
    for addr in owned:
        if any(r.contains(addr) for r in ranges):
            raise CNIError(
                ERR_INTERNAL,
                f"{addr} has been allocated to {cid}, duplicate allocation is not allowed",
            )
    for addr, r in _candidates(ranges, store.last_reserved(n)):
        if store.reserve(addr, cid, ifname, n):
            return {"address": f"{addr}/{r.subnet.prefixlen}", "gateway": str(r.gateway)}
    # Exhaustion clears up when a pod is deleted: SPEC code 11, "try again later".
    spans = ", ".join(f"{r.subnet}" for r in ranges)
    raise CNIError(ERR_TRY_AGAIN_LATER, f"no IP addresses available in range set: {spans}")


def _routes(ipam: dict[str, Any]) -> list[dict[str, Any]]:
    routes = []
    given = ipam.get("routes") or []
    if not isinstance(given, list):
        raise CNIError(ERR_INVALID_CONFIG, "ipam.routes must be a list")
    for route in given:
        if not isinstance(route, dict) or "dst" not in route:
            raise CNIError(ERR_INVALID_CONFIG, "ipam.routes entries need dst")
        item = {"dst": str(parse_network(route["dst"], "route dst"))}
        if route.get("gw") is not None:
            item["gw"] = str(parse_ip(route["gw"], "route gw"))
        routes.append(item)
    return routes


def release(ipam: dict[str, Any], network: str, cid: str, ifname: str) -> None:
    """DEL: drop this attachment's files; legacy files hold only the container ID."""
    store = Store(data_dir(ipam), network)
    if not os.path.isdir(store.dir):
        return
    with store.locked():
        for entry, c, i in list(store.entries()):
            if c == cid and i in (ifname, "") and _address(entry) is not None:
                store.release(entry)


def owned(ipam: dict[str, Any], network: str, cid: str, ifname: str) -> list[str]:
    store = Store(data_dir(ipam), network)
    return [str(a) for a, c, i in store.allocations() if c == cid and i in (ifname, "")]


def gc(ipam: dict[str, Any], network: str, valid: set[tuple[str, str]]) -> list[str]:
    """GC: release every allocation whose attachment is not in the valid list."""
    store = Store(data_dir(ipam), network)
    if not os.path.isdir(store.dir):
        return []
    valid_ids = {c for c, _ in valid}
    freed = []
    with store.locked():
        for addr, c, i in list(store.allocations()):
            keep = (c, i) in valid if i else c in valid_ids
            if not keep:
                store.release(addr)
                freed.append(str(addr))
    return freed


def status(ipam: dict[str, Any], network: str) -> None:
    """STATUS: the store is writable and every range set has a free address."""
    sets = parse_rangesets(ipam)
    store = Store(data_dir(ipam), network)
    with store.locked():
        used = {a for a, _, _ in store.allocations()}
        for n, ranges in enumerate(sets):
            size = sum(r.end - r.start + 1 - r.contains(r.gateway) for r in ranges)
            taken = sum(1 for a in used if any(r.contains(a) for r in ranges))
            if taken >= size:
                raise CNIError(50, f"range set {n} is exhausted")
    if not os.access(store.dir, os.W_OK):
        raise CNIError(50, f"IPAM store {store.dir} is not writable")
