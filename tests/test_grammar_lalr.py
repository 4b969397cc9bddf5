"""The policy language under the LALR(1) parser: the cases its one-token
lookahead had to be taught (an except list beside other peers, a port that is
a number, a range or a name)."""

from __future__ import annotations

import pytest

from grammar.policylang import parse_policies
from policyc.errors import InputError
from policyc.parse import build_cluster


def _ingress(body: str) -> list[dict[str, object]]:
    (raw,) = parse_policies(f"policy p in x {{\n  ingress {{ {body} }}\n}}\n", "t.pol")
    rules: list[dict[str, object]] = raw.data["spec"]["ingress"]
    return rules


def test_an_except_list_continues_until_the_next_peer() -> None:
    (rule,) = _ingress(
        "allow from cidr 10.244.0.0/16 except 10.244.1.0/24, 10.244.2.0/24, pods(a=b), "
        "cidr 10.244.3.0/24"
    )
    assert rule["from"] == [
        {"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.1.0/24", "10.244.2.0/24"]}},
        {"podSelector": {"matchLabels": {"a": "b"}}},
        {"ipBlock": {"cidr": "10.244.3.0/24"}},
    ]


@pytest.mark.parametrize("peers", ["cidr 10.244.0.0/16, 10.244.1.0/24", "pods(), 10.244.1.0/24"])
def test_a_bare_cidr_outside_an_except_list_is_an_error(peers: str) -> None:
    with pytest.raises(
        InputError, match=r"t.pol:2:\d+: NetworkPolicy x/p: .* starts with `cidr`"
    ) as exc:
        _ingress(f"allow from {peers}")
    assert exc.value.context.endswith("^")


@pytest.mark.parametrize(
    "ports,want",
    [
        ("tcp/80", {"protocol": "TCP", "port": 80}),
        ("udp/80-90", {"protocol": "UDP", "port": 80, "endPort": 90}),
        ("SCTP/http", {"protocol": "SCTP", "port": "http"}),
        ("tcp-alt", {"port": "tcp-alt"}),  # a name that starts like a protocol
        ("tcp/udp-dns", {"protocol": "TCP", "port": "udp-dns"}),
        ("80", {"port": 80}),
        ("8080-http", {"port": "8080-http"}),
        ("udp", {"protocol": "UDP"}),
    ],
)
def test_ports(ports: str, want: dict[str, object]) -> None:
    (rule,) = _ingress(f"allow ports {ports}")
    assert rule["ports"] == [want]


def test_keywords_stay_names_where_a_name_is_expected() -> None:
    (raw,) = parse_policies("policy allow in ports {\n  ingress {}\n}\n", "t.pol")
    (policy,) = build_cluster([raw]).policies
    assert policy.key == "ports/allow"
