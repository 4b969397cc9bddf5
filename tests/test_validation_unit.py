"""Table-driven tests of policyc.validate against apimachinery's rules.

Each table lists values the API server accepts and values it rejects (with a
fragment of the message where the message matters).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from policyc import validate as v

Check = Callable[[str], list[str]]


def ok(check: Check, value: str) -> None:
    assert check(value) == [], f"{value!r} should be valid"


def bad(check: Check, value: str, fragment: str) -> None:
    errs = check(value)
    assert errs, f"{value!r} should be invalid"
    assert any(fragment in e for e in errs), errs


# --- DNS-1123 label (namespace names) ---------------------------------------

LABEL_OK = ["a", "0", "abc", "a-b", "a--b", "1a", "a1", "123", "x" * 63]
LABEL_BAD = [
    ("", "RFC 1123 label"),
    ("A", "RFC 1123 label"),
    ("a_b", "RFC 1123 label"),
    ("a.b", "RFC 1123 label"),
    ("-a", "RFC 1123 label"),
    ("a-", "RFC 1123 label"),
    ("x" * 64, "no more than 63 characters"),
    ("abc\n", "RFC 1123 label"),
    (" abc", "RFC 1123 label"),
]


@pytest.mark.parametrize("value", LABEL_OK)
def test_dns1123_label_ok(value: str) -> None:
    ok(v.dns1123_label, value)


@pytest.mark.parametrize(("value", "fragment"), LABEL_BAD)
def test_dns1123_label_bad(value: str, fragment: str) -> None:
    bad(v.dns1123_label, value, fragment)


# --- DNS-1123 subdomain (pod, node, policy names) ---------------------------

SUBDOMAIN_OK = ["a", "a.b", "a-b.c-d", "node-1.example.com", "0.0", "x" * 253, "a." * 126 + "b"]
SUBDOMAIN_BAD = [
    ("", "RFC 1123 subdomain"),
    ("A.b", "RFC 1123 subdomain"),
    ("a..b", "RFC 1123 subdomain"),
    (".a", "RFC 1123 subdomain"),
    ("a.", "RFC 1123 subdomain"),
    ("a_b", "RFC 1123 subdomain"),
    ("a.-b", "RFC 1123 subdomain"),
    ("x" * 254, "no more than 253 characters"),
    ("web\n", "RFC 1123 subdomain"),
]


@pytest.mark.parametrize("value", SUBDOMAIN_OK)
def test_dns1123_subdomain_ok(value: str) -> None:
    ok(v.dns1123_subdomain, value)


@pytest.mark.parametrize(("value", "fragment"), SUBDOMAIN_BAD)
def test_dns1123_subdomain_bad(value: str, fragment: str) -> None:
    bad(v.dns1123_subdomain, value, fragment)


# --- label keys (IsQualifiedName) -------------------------------------------

KEY_OK = [
    "app",
    "App",
    "a",
    "9",
    "a.b_c-d",
    "app.kubernetes.io/name",
    "kubernetes.io/metadata.name",
    "example.com/My_Name",
    "x" * 63,
    "p" * 253 + "/" + "n" * 63,
]
KEY_BAD = [
    ("", "name part must be non-empty"),
    ("/app", "prefix part must be non-empty"),
    ("example.com/", "name part must be non-empty"),
    ("a/b/c", "a qualified name must consist of"),
    ("-app", "name part must consist of"),
    ("app-", "name part must consist of"),
    ("_app", "name part must consist of"),
    ("a b", "name part must consist of"),
    ("x" * 64, "name part must be no more than 63 characters"),
    ("Example.com/app", "prefix part a lowercase RFC 1123 subdomain"),
    ("example_com/app", "prefix part a lowercase RFC 1123 subdomain"),
    ("p" * 254 + "/app", "prefix part must be no more than 253 characters"),
    ("app\n", "name part must consist of"),
]


@pytest.mark.parametrize("value", KEY_OK)
def test_label_key_ok(value: str) -> None:
    ok(v.qualified_name, value)


@pytest.mark.parametrize(("value", "fragment"), KEY_BAD)
def test_label_key_bad(value: str, fragment: str) -> None:
    bad(v.qualified_name, value, fragment)


# --- label values -----------------------------------------------------------

VALUE_OK = ["", "a", "A", "1", "web", "A-b_c.d", "v1.2.3", "x" * 63]
VALUE_BAD = [
    ("-a", "a valid label must be an empty string or consist of"),
    ("a-", "a valid label must be an empty string or consist of"),
    (".a", "a valid label must be an empty string or consist of"),
    ("a b", "a valid label must be an empty string or consist of"),
    ("a/b", "a valid label must be an empty string or consist of"),
    ("x" * 64, "must be no more than 63 characters"),
    ("web\n", "a valid label must be an empty string or consist of"),
    ("é", "a valid label must be an empty string or consist of"),
]


@pytest.mark.parametrize("value", VALUE_OK)
def test_label_value_ok(value: str) -> None:
    ok(v.label_value, value)


@pytest.mark.parametrize(("value", "fragment"), VALUE_BAD)
def test_label_value_bad(value: str, fragment: str) -> None:
    bad(v.label_value, value, fragment)


# --- port numbers and names -------------------------------------------------


@pytest.mark.parametrize("value", [1, 53, 8080, 65535])
def test_port_number_ok(value: int) -> None:
    assert v.port_number(value) == []


@pytest.mark.parametrize("value", [0, -1, 65536, 1 << 31])
def test_port_number_bad(value: int) -> None:
    assert v.port_number(value) == ["must be between 1 and 65535, inclusive"]


PORT_NAME_OK = ["http", "h2", "a", "web-tls", "dns-tcp", "x1", "9p", "a" * 15]
CHARSET = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
LETTER = "must contain at least one letter (a-z)"
PORT_NAME_BAD = [
    ("", [CHARSET, LETTER]),
    ("80", [LETTER]),
    ("8-0", [LETTER]),
    ("HTTP", [CHARSET, LETTER]),
    ("http_alt", [CHARSET]),
    ("web--tls", ["must not contain consecutive hyphens"]),
    ("-http", ["must not begin or end with a hyphen"]),
    ("http-", ["must not begin or end with a hyphen"]),
    ("a" * 16, ["must be no more than 15 characters"]),
    ("http\n", [CHARSET]),
]


@pytest.mark.parametrize("value", PORT_NAME_OK)
def test_port_name_ok(value: str) -> None:
    ok(v.port_name, value)


@pytest.mark.parametrize(("value", "messages"), PORT_NAME_BAD)
def test_port_name_bad(value: str, messages: list[str]) -> None:
    # Exactly apimachinery's IsValidPortName messages, in its order.
    assert v.port_name(value) == messages


# --- CIDRs (Go's ParseCIDR: host bits may be set) ---------------------------

CIDR_OK = [
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    ("192.0.2.10/32", "192.0.2.10/32"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("::/0", "::/0"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("2001:db8::1/64", "2001:db8::/64"),
    ("2001:DB8::/48", "2001:db8::/48"),
    ("::ffff:10.0.0.0/104", "::ffff:a00:0/104"),
]
CIDR_BAD = [
    "",
    "10.0.0.0",
    "10.0.0.0/",
    "/8",
    "10.0.0.0/33",
    "::/129",
    "10.0.0/8",
    "10.0.0.256/8",
    "10.0.0.0/255.0.0.0",
    "10.0.0.0/0.255.255.255",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/8/9",
    "fe80::%eth0/64",
    " 10.0.0.0/8",
    "10.0.0.0/8\n",
    "10.0.0.0/ 8",
    "abc/8",
]


@pytest.mark.parametrize(("value", "network"), CIDR_OK)
def test_parse_cidr_ok(value: str, network: str) -> None:
    net, msg = v.parse_cidr(value)
    assert msg == ""
    assert net == ipaddress.ip_network(network)


@pytest.mark.parametrize("value", CIDR_BAD)
def test_parse_cidr_bad(value: str) -> None:
    net, msg = v.parse_cidr(value)
    assert net is None
    assert msg == f"must be a valid CIDR, e.g. 10.0.0.0/16 (got {value!r})"


# --- IP addresses (Go's ParseIP) --------------------------------------------

IP_OK = ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "2001:db8::1", "::ffff:10.0.0.1"]
IP_BAD = ["", "10.0.0.256", "10.0.0", "10.0.0.1/32", "fe80::1%eth0", "10.0.0.1\n", "node-1"]


@pytest.mark.parametrize("value", IP_OK)
def test_parse_ip_ok(value: str) -> None:
    ip, msg = v.parse_ip(value)
    assert msg == ""
    assert ip == ipaddress.ip_address(value)


@pytest.mark.parametrize("value", IP_BAD)
def test_parse_ip_bad(value: str) -> None:
    ip, msg = v.parse_ip(value)
    assert ip is None
    assert msg == f"must be a valid IP address (got {value!r})"
