"""CNI spec versions, well-known error codes and result rendering.

Import-light on purpose: ``cni.main`` uses it on the fast path.
"""

from __future__ import annotations

import json
from typing import Any

LATEST = "1.1.0"
# "prevResult" appeared in 0.4.0; 0.3.x results have the same shape without it.
SUPPORTED = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

# SPEC "Well-known Error Codes".
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN_LATER = 11
ERR_NOT_AVAILABLE = 50
ERR_LIMITED_CONNECTIVITY = 51
ERR_INTERNAL = 999  # untyped failure, as libcni reports it

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")


class CNIError(Exception):
    """A failure that is reported to the runtime as the spec's error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str = LATEST) -> str:
        body: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return json.dumps(body)


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError as exc:
        raise CNIError(ERR_INCOMPATIBLE_VERSION, f"invalid cniVersion {version!r}") from exc


def at_least(version: str, floor: str) -> bool:
    return version_tuple(version) >= version_tuple(floor)


def check_version(version: object, command: str) -> str:
    """Reject config versions this plugin (or the command) does not speak.

    SPEC: "If the cniVersion in the network configuration is not supported by
    the plugin, the plugin should return an error code 1".
    """
    if not isinstance(version, str) or not version:
        raise CNIError(ERR_INVALID_CONFIG, "cniVersion must be a non-empty string")
    if version not in SUPPORTED:
        raise CNIError(
            ERR_INCOMPATIBLE_VERSION,
            f"incompatible CNI versions; config is {version!r}, plugin supports {list(SUPPORTED)}",
        )
    floor = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}.get(command)
    if floor and not at_least(version, floor):
        msg = f"config version {version} does not allow {command}"
        raise CNIError(ERR_INCOMPATIBLE_VERSION, msg)
    return version


def version_reply(stdin: bytes) -> str:
    """VERSION: report the supported versions (stdin carries only cniVersion)."""
    asked = LATEST
    try:
        doc = json.loads(stdin or b"{}")
        if isinstance(doc, dict) and doc.get("cniVersion") in SUPPORTED:
            asked = doc["cniVersion"]
    except (ValueError, RecursionError):  # SPEC: VERSION answers whatever stdin holds
        pass
    return json.dumps({"cniVersion": asked, "supportedVersions": list(SUPPORTED)})


def render_result(result: dict[str, Any], version: str) -> dict[str, Any]:
    """Shape a (1.1.0-style) result for the config's version.

    0.3.x/0.4.0 IPs carry "version": "4"|"6"; 1.0.0 dropped it.  Fields added
    in 1.1.0 (interface "mtu", route "mtu"/"advmss"/"priority"/"table"/"scope")
    are removed for older versions.
    """
    out: dict[str, Any] = {"cniVersion": version}
    old = not at_least(version, "1.0.0")
    pre11 = not at_least(version, "1.1.0")
    ifaces = []
    for iface in result.get("interfaces", []):
        item = dict(iface)
        if pre11:
            for key in ("mtu", "socketPath", "pciID"):
                item.pop(key, None)
        ifaces.append(item)
    if ifaces:
        out["interfaces"] = ifaces
    ips = []
    for ip in result.get("ips", []):
        item = {k: v for k, v in ip.items() if k != "version"}
        if old:
            item = {"version": "6" if ":" in item["address"] else "4", **item}
        ips.append(item)
    if ips:
        out["ips"] = ips
    routes = []
    for route in result.get("routes", []):
        item = dict(route)
        if pre11:
            item = {k: v for k, v in item.items() if k in ("dst", "gw")}
        routes.append(item)
    if routes:
        out["routes"] = routes
    out["dns"] = dict(result.get("dns") or {})
    return out


def normalize_result(result: object) -> dict[str, Any]:
    """Read a result of any supported version (a prevResult or an IPAM reply)."""
    if not isinstance(result, dict):
        raise CNIError(ERR_DECODE, "result must be a JSON object")
    version = result.get("cniVersion", LATEST)
    if isinstance(version, str) and version not in SUPPORTED:
        raise CNIError(ERR_INCOMPATIBLE_VERSION, f"cannot convert result of version {version}")
    out = {k: result[k] for k in ("interfaces", "ips", "routes", "dns") if k in result}
    out["ips"] = [{k: v for k, v in ip.items() if k != "version"} for ip in out.get("ips", [])]
    return out
