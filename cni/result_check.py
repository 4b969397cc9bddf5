"""Check the shape of a CNI result before anything is built from it.

A result reaches us as ``prevResult`` in the network configuration (SPEC
"Chained Plugins": "prevResult: the result of the previous plugin in the
chain") or as a delegated IPAM plugin's reply.  SPEC "Success": ``ips`` is a
list of objects with "address (string): an IP address in CIDR notation" and
"gateway (string): the default gateway for this subnet, if one exists";
``routes`` is a list of objects with "dst" in CIDR notation and an optional
"gw"; ``interfaces`` a list of objects with a "name"; ``dns`` an object.
Anything else is refused with ``code`` (7 for a configuration, 6 for a reply
we cannot decode), so that nothing is half-built from garbage.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cni.spec import CNIError


def _fail(code: int, where: str, msg: str) -> CNIError:
    return CNIError(code, f"{where}: {msg}")


def _list_of_dicts(result: dict[str, Any], key: str, code: int, where: str) -> list[Any]:
    items = result.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _fail(code, where, f"{key} must be a list of objects")
    return items


def _cidr(value: object, code: int, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(code, where, f"{value!r} is not a string in CIDR notation")
    if "/" not in value:  # ip_interface() reads a bare address as a /32 or /128
        raise _fail(code, where, f"{value!r} is not in CIDR notation")
    try:
        ipaddress.ip_interface(value)
    except ValueError as exc:
        raise _fail(code, where, f"{value!r} is not in CIDR notation") from exc


def _ip(value: object, code: int, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(code, where, f"{value!r} is not an IP address string")
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise _fail(code, where, f"{value!r} is not an IP address") from exc


def _index(index: object, count: int, code: int, where: str) -> None:
    """SPEC "interface (uint): the index into the interfaces list for a CNI
    Plugin Result indicating which interface this IP configuration should be
    applied to": absent, or a uint below ``count``."""
    if index is None:
        return
    if not isinstance(index, int) or isinstance(index, bool):
        raise _fail(code, where, "ips interface must be an index")
    if not 0 <= index < count:
        raise _fail(code, where, f"ips interface {index} is not an index into interfaces")


def check_result(result: object, code: int, where: str) -> dict[str, Any]:
    """Return ``result`` if it has the spec's shape, else raise CNIError(code).

    ``where`` names the source in the message ("prevResult", "IPAM plugin x").
    """
    if not isinstance(result, dict):
        raise _fail(code, where, "must be a JSON object")
    interfaces = _list_of_dicts(result, "interfaces", code, where)
    for iface in interfaces:
        if not isinstance(iface.get("name"), str):
            raise _fail(code, where, "each interface needs a string name")
    for ip in _list_of_dicts(result, "ips", code, where):
        _cidr(ip.get("address"), code, f"{where}: ips address")
        if ip.get("gateway") is not None:
            _ip(ip["gateway"], code, f"{where}: ips gateway")
        _index(ip.get("interface"), len(interfaces), code, where)
    for route in _list_of_dicts(result, "routes", code, where):
        _cidr(route.get("dst"), code, f"{where}: routes dst")
        if route.get("gw") is not None:
            _ip(route["gw"], code, f"{where}: routes gw")
    if not isinstance(result.get("dns", {}), dict):
        raise _fail(code, where, "dns must be an object")
    return result
