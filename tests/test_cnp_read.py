"""ClusterNetworkPolicy and the v1alpha1 kinds through every input form (YAML, JSON,
``kind: List``), the Kind/Key machinery, and the conversion of v1alpha1 objects."""

from __future__ import annotations

import ipaddress
import json

import pytest

from grammar.policylang import parse_policies
from policyc.errors import InputErrors
from policyc.kinds import Key, Kind
from policyc.load import parse_text
from policyc.model import Action, ClusterNetworkPolicy, Origin, Protocol, ProtocolPort, Tier
from policyc.parse import build_cluster
from tests.support.cnp_builders import (
    admin,
    anp,
    banp,
    baseline,
    named,
    p_nets,
    p_nodes,
    p_ns,
    p_pods,
    pnamed,
    pnum,
    prange,
    rule,
    s_ns,
    s_pods,
    sctp,
    sel,
    tcp,
    udp,
)
from tests.support.world import dump

CNP = admin(
    "a",
    3,
    s_ns(ns="x"),
    egress=[
        rule("Deny", p_nets("10.0.0.0/8", "2001:db8::/32"), protocols=(tcp(80, 90), sctp(5))),
        rule("Pass", p_nodes(role="infra"), name="nodes"),
    ],
)
ANP = anp(
    "a", 3, s_ns(), ingress=[rule("Allow", p_ns(), protocols=(pnum(53, "UDP"), pnamed("dns")))]
)
BANP = banp(s_ns(), egress=[rule("Allow", p_ns(), protocols=(prange(1, 1024),))])


def read(text: str) -> list[ClusterNetworkPolicy]:
    return list(build_cluster(parse_text(text, "<t>")).cluster_policies)


def test_yaml_json_and_list_carry_them() -> None:
    objs = [CNP, ANP, BANP]
    from_yaml = read(dump(objs))
    from_json = read(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    assert from_yaml == from_json and len(from_yaml) == 3
    assert [p.key for p in from_yaml] == [
        "AdminNetworkPolicy a",
        "ClusterNetworkPolicy a",
        "BaselineAdminNetworkPolicy default",
    ]


def test_v1alpha2_model() -> None:
    (p,) = read(dump([CNP]))
    assert p.tier is Tier.ADMIN and p.priority == 3 and p.origin is Origin.CNP
    deny, pass_ = p.egress
    assert deny.action is Action.DENY and deny.peers[0].networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert deny.protocols == (ProtocolPort(Protocol.TCP, 80, 90), ProtocolPort(Protocol.SCTP, 5, 5))
    assert pass_.action is Action.PASS and pass_.protocols is None and pass_.name == "nodes"
    assert str(pass_.peers[0].nodes) == "role in (infra)"


def test_v1alpha1_conversion() -> None:
    a, b = read(dump([ANP, BANP]))
    assert a.tier is Tier.ADMIN and a.ingress[0].action is Action.ACCEPT  # Allow -> Accept
    assert a.ingress[0].protocols == (
        ProtocolPort(Protocol.UDP, 53, 53),
        ProtocolPort(None, named="dns"),
    )
    assert b.tier is Tier.BASELINE and b.priority == 1000 and b.origin is Origin.BANP
    assert b.egress[0].protocols == (ProtocolPort(Protocol.TCP, 1, 1024),)


def test_kinds_and_keys_are_cluster_scoped() -> None:
    p = read(dump([baseline("b", 1, s_ns(), ingress=[rule("Accept", p_ns())])]))[0]
    assert Key.of(p) == Key(Kind.CLUSTER_NETWORK_POLICY, "", "b") and Key.of(p).id == "b"
    assert not Kind.CLUSTER_NETWORK_POLICY.namespaced and Kind.ADMIN_NETWORK_POLICY.cluster_policy
    with_ns = dict(CNP, metadata={"name": "a", "namespace": "ignored"})
    assert Key.of_api(Kind.CLUSTER_NETWORK_POLICY, with_ns) == Key(
        Kind.CLUSTER_NETWORK_POLICY, "", "a"
    )


def test_same_name_in_two_kinds_is_fine_twice_in_one_is_not() -> None:
    assert len(read(dump([CNP, ANP]))) == 2
    with pytest.raises(InputErrors, match="ClusterNetworkPolicy a: duplicate object"):
        read(dump([CNP, CNP]))


def test_named_port_is_kept_for_pod_peers() -> None:
    p = admin("n", 1, s_ns(), egress=[rule("Accept", p_ns(), protocols=(named("serve-80-tcp"),))])
    (got,) = read(dump([p]))
    assert got.egress[0].protocols == (ProtocolPort(None, named="serve-80-tcp"),)


POL = """\
admin policy no-kube priority 10 {
  subject ns(team=apps)
  egress {
    deny "api" to cidr 192.0.2.0/24 ports tcp/443, udp/53-54
    pass to ns(), nodes(role=infra)
    accept to pods(app=web) ports serve-80-tcp
  }
}
baseline policy base priority 3 {
  subject ns(team=apps) pods(app=db)
  ingress { deny from ns() }
}
"""


def test_policy_language_carries_them() -> None:
    want = [
        admin(
            "no-kube",
            10,
            s_ns(team="apps"),
            egress=[
                rule("Deny", p_nets("192.0.2.0/24"), protocols=(tcp(443), udp(53, 54)), name="api"),
                rule("Pass", p_ns(), p_nodes(role="infra")),
                rule("Accept", p_pods(sel(), sel(app="web")), protocols=(named("serve-80-tcp"),)),
            ],
        ),
        baseline(
            "base", 3, s_pods(sel(team="apps"), sel(app="db")), ingress=[rule("Deny", p_ns())]
        ),
    ]
    assert build_cluster(parse_policies(POL, "t.pol")) == build_cluster(parse_text(dump(want), "w"))


def test_policy_language_errors_have_locations() -> None:
    bad = "admin policy n priority 1 {\n  subject ns()\n  egress {\n"
    bad += "    deny to nodes() ports http\n  }\n}\n"
    with pytest.raises(InputErrors) as exc:
        build_cluster(parse_policies(bad, "t.pol"))
    (line,) = exc.value.lines()
    assert line.startswith("t.pol:4:5: ClusterNetworkPolicy n: spec.egress[0]: Invalid value: ")
