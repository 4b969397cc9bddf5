"""Parse the CNI_* environment and the network configuration on stdin."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cni.result_check import check_result
from cni.spec import (
    ERR_DECODE,
    ERR_INVALID_CONFIG,
    ERR_INVALID_ENV,
    LATEST,
    CNIError,
    check_version,
)

# SPEC CNI_CONTAINERID: "It must not be empty. Must start with an alphanumeric
# character, optionally followed by any combination of one or more alphanumeric
# characters, underscore (), dot (.) or hyphen (-)."  ``\Z``, not ``$``: "$"
# also matches before a trailing newline.
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
# Not in the spec: runtimes use 64 hex digits; the ID goes into the host port's
# alias (IFALIASZ 256 bytes) and the masquerade rule's comment, so it is bounded.
MAX_CONTAINER_ID = 128
MAX_NET_NAME = 64
# A network configuration is a few hundred bytes; anything this large is not one.
MAX_CONFIG = 4 << 20
# SPEC: network name "Must start with a alphanumeric character, optionally
# followed by any combination of one or more alphanumeric characters,
# underscore, dot or hyphen".
_NET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
# Linux dev_valid_name(): at most IFNAMSIZ - 1 = 15 *bytes*, not "." or "..",
# no "/", ":" or whitespace.
IFNAMSIZ = 16

_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": ("CNI_PATH",),
    "STATUS": ("CNI_PATH",),
}


@dataclass(frozen=True, slots=True)
class Env:
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)

    def arg(self, key: str) -> str:
        return dict(self.args).get(key, "")


@dataclass(frozen=True, slots=True)
class NetConf:
    version: str
    name: str
    ptype: str
    bridge: str
    is_gateway: bool
    is_default_gateway: bool
    ip_masq: bool
    mtu: int
    hairpin: bool
    fail_closed: bool
    ipam: dict[str, Any]
    dns: dict[str, Any]
    prev_result: dict[str, Any] | None
    valid_attachments: tuple[tuple[str, str], ...]
    raw: dict[str, Any]


def parse_env(environ: dict[str, str]) -> Env:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CNIError(ERR_INVALID_ENV, "CNI_COMMAND is not set")
    if command not in ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"):
        raise CNIError(ERR_INVALID_ENV, f"unknown CNI_COMMAND {command!r}")
    for key, value in environ.items():
        if key.startswith("CNI_") and not _env_safe(value):
            raise CNIError(ERR_INVALID_ENV, f"{key} holds a NUL or an unencodable character")
    missing = [k for k in _REQUIRED.get(command, ()) if not environ.get(k)]
    if missing:
        raise CNIError(ERR_INVALID_ENV, f"required env variables missing: {', '.join(missing)}")
    cid = environ.get("CNI_CONTAINERID", "")
    if cid and (len(cid) > MAX_CONTAINER_ID or not _CONTAINER_ID.match(cid)):
        raise CNIError(ERR_INVALID_ENV, f"invalid CNI_CONTAINERID {_clip(cid)}")
    ifname = environ.get("CNI_IFNAME", "")
    if ifname:
        check_ifname(ifname)
    return Env(
        command=command,
        container_id=cid,
        netns=environ.get("CNI_NETNS", ""),
        ifname=ifname,
        args=parse_args(environ.get("CNI_ARGS", "")),
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
        raw={k: v for k, v in environ.items() if k.startswith("CNI_")},
    )


def _env_safe(value: str) -> bool:
    """What an environment variable can hold (the agent's JSON can say more)."""
    if "\0" in value:
        return False
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _clip(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def valid_ifname(name: str) -> bool:
    """Linux ``dev_valid_name()``, as libcni's ValidateInterfaceName applies it."""
    try:
        size = len(name.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate, from JSON's "\ud800"
        return False
    if not 0 < size < IFNAMSIZ or name in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() or not c.isprintable() for c in name)


def check_ifname(ifname: str) -> None:
    """SPEC CNI_IFNAME: "Name of the interface to create inside the container;
    if the plugin is unable to use this interface name it must return an
    error." - code 4, "Invalid necessary environment variables"."""
    if not valid_ifname(ifname):
        raise CNIError(ERR_INVALID_ENV, f"invalid CNI_IFNAME {_clip(ifname)}")


def parse_args(text: str) -> tuple[tuple[str, str], ...]:
    """CNI_ARGS: "FOO=BAR;ABC=123"."""
    pairs = []
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise CNIError(ERR_INVALID_ENV, f"invalid CNI_ARGS pair {item!r}")
        pairs.append((key, value))
    return tuple(pairs)


def decode(stdin: bytes) -> dict[str, Any]:
    """SPEC code 6: "Failed to decode content"; code 7 for an oversized config."""
    if len(stdin) > MAX_CONFIG:
        msg = f"network configuration is {len(stdin)} bytes; the limit is {MAX_CONFIG}"
        raise CNIError(ERR_INVALID_CONFIG, msg)
    try:
        doc = json.loads(stdin)
    except RecursionError as exc:
        raise CNIError(ERR_DECODE, "network configuration is nested too deeply") from exc
    except ValueError as exc:
        raise CNIError(ERR_DECODE, "failed to decode network configuration", str(exc)) from exc
    if not isinstance(doc, dict):
        raise CNIError(ERR_DECODE, "network configuration must be a JSON object")
    return doc


def _bool(doc: dict[str, Any], key: str, default: bool = False) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise CNIError(ERR_INVALID_CONFIG, f"{key} must be a boolean")
    return value


def parse_netconf(doc: dict[str, Any], command: str) -> NetConf:
    version = check_version(doc.get("cniVersion"), command)
    name = doc.get("name")
    if not isinstance(name, str) or len(name) > MAX_NET_NAME or not _NET_NAME.match(name):
        raise CNIError(ERR_INVALID_CONFIG, f"invalid network name {_clip(str(name))}")
    bridge = doc.get("bridge", "cni0")
    if not isinstance(bridge, str) or not bridge:
        raise CNIError(ERR_INVALID_CONFIG, "bridge must be a non-empty string")
    check_name(bridge, "bridge")
    mtu = doc.get("mtu", 0)
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not (mtu == 0 or 68 <= mtu <= 65535):
        raise CNIError(ERR_INVALID_CONFIG, f"invalid mtu {mtu!r}")
    ipam = doc.get("ipam")
    if not isinstance(ipam, dict) or not isinstance(ipam.get("type"), str) or not ipam["type"]:
        raise CNIError(ERR_INVALID_CONFIG, "ipam.type is required")
    dns = doc.get("dns") or {}
    if not isinstance(dns, dict):
        raise CNIError(ERR_INVALID_CONFIG, "dns must be an object")
    prev = doc.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise CNIError(ERR_DECODE, "prevResult must be an object")
    if prev is not None:
        check_result(prev, ERR_INVALID_CONFIG, "prevResult")
    # Reference bridge: "isDefaultGateway ... also sets isGateway".
    default_gw = _bool(doc, "isDefaultGateway")
    return NetConf(
        version=version,
        name=name,
        ptype=str(doc.get("type", "")),
        bridge=bridge,
        is_gateway=_bool(doc, "isGateway") or default_gw,
        is_default_gateway=default_gw,
        ip_masq=_bool(doc, "ipMasq"),
        mtu=mtu,
        hairpin=_bool(doc, "hairpinMode"),
        fail_closed=_bool(doc, "failClosed", default=True),
        ipam=ipam,
        dns=dns,
        prev_result=prev,
        valid_attachments=_attachments(doc),
        raw=doc,
    )


def check_name(name: str, what: str) -> None:
    """An interface name from the configuration: code 7 if Linux would refuse it."""
    if not valid_ifname(name):
        raise CNIError(ERR_INVALID_CONFIG, f"invalid {what} name {_clip(name)}")


def _attachments(doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """GC: "cni.dev/valid-attachments" lists {"containerID", "ifname"} objects."""
    items = doc.get("cni.dev/valid-attachments", [])
    if not isinstance(items, list):
        raise CNIError(ERR_INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise CNIError(ERR_INVALID_CONFIG, "cni.dev/valid-attachments entries are objects")
        out.append((str(item.get("containerID", "")), str(item.get("ifname", ""))))
    return tuple(out)


def error_version(stdin: bytes) -> str:
    """The cniVersion to stamp on an error: the config's, when readable."""
    if len(stdin) > MAX_CONFIG:
        return LATEST
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, RecursionError):
        return LATEST
    return version if isinstance(version, str) and version else LATEST


def parse_network(text: object, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR *string*: ``ip_network(5)`` would be 0.0.0.5/32."""
    if not isinstance(text, str):
        raise CNIError(ERR_INVALID_CONFIG, f"{what} must be a string, not {text!r}")
    try:
        return ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError) as exc:
        raise CNIError(ERR_INVALID_CONFIG, f"invalid {what} {text!r}") from exc


def parse_ip(text: object, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(text, str):
        raise CNIError(ERR_INVALID_CONFIG, f"{what} must be a string, not {text!r}")
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise CNIError(ERR_INVALID_CONFIG, f"invalid {what} {text!r}") from exc
