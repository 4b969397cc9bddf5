"""Validation primitives, as apimachinery's validation package defines them.

Each function returns a list of messages (empty when valid), like the Go
``IsDNS1123Label`` family, so that callers attach the field path.
"""

from __future__ import annotations

import ipaddress
import re

from policyc.model import IPAddress, IPNetwork

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PORT_NAME_CHARSET = re.compile(r"[-a-z0-9]+")
_PREFIX_LEN = re.compile(r"[0-9]+")


def dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
            "or '-', and must start and end with an alphanumeric character"
        )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return errs


def qualified_name(value: str) -> list[str]:
    """A label key: ``[prefix/]name`` (IsQualifiedName)."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        errs = dns1123_subdomain(prefix)
        if errs:
            return ["prefix part " + e for e in errs]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    errs = []
    if len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return errs


def port_number(value: int) -> list[str]:
    if not 1 <= value <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME, with apimachinery's messages."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARSET.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def parse_cidr(value: str) -> tuple[IPNetwork | None, str]:
    """Parse a CIDR the way Go's ParseCIDR does: host bits may be set.

    Unlike Python's ip_network, Go takes neither a netmask ("10.0.0.0/255.0.0.0")
    nor an IPv6 zone ("fe80::%eth0/64") after the address.
    """
    bad = f"must be a valid CIDR, e.g. 10.0.0.0/16 (got {value!r})"
    addr, slash, prefix = value.partition("/")
    if not slash or "%" in addr or not _PREFIX_LEN.fullmatch(prefix):
        return None, bad
    try:
        return ipaddress.ip_network(value, strict=False), ""
    except ValueError:
        return None, bad


def parse_ip(value: str) -> tuple[IPAddress | None, str]:
    """Parse an IP address the way Go's ParseIP does: no IPv6 zone."""
    bad = f"must be a valid IP address (got {value!r})"
    if "%" in value:
        return None, bad
    try:
        return ipaddress.ip_address(value), ""
    except ValueError:
        return None, bad
