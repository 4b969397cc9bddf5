"""ClusterNetworkPolicy scenarios on ports (named, ranges, SCTP), IPv6 and v1alpha1
objects, written from the API documentation as data (see :mod:`tests.support.cnp_scenarios`
for the world and how the scenarios are run)."""

from __future__ import annotations

from tests.support.cnp_builders import (
    ALL,
    NODE,
    NP_ALLOW_X_IN_Y,
    CnpScenario,
    admin,
    anp,
    banp,
    baseline,
    named,
    netpol,
    no,
    ok,
    p_nets,
    p_nodes,
    p_ns,
    pnamed,
    pnum,
    prange,
    rule,
    s_ns,
    sctp,
    tcp,
    udp,
)

S = CnpScenario

PORTS: list[CnpScenario] = [
    S(
        "named-port",
        "DestinationNamedPort selects a destination port on a pod based on the ContainerPort name.",
        [
            admin(
                "no-80",
                10,
                s_ns(ns="y"),
                ingress=[rule("Deny", p_ns(ns="x"), protocols=(named("serve-80-tcp"),))],
            )
        ],
        [no("x/a", "y/a", "80/tcp"), ok("x/a", "y/a", "81/tcp"), ok("x/a", "y/a", "80/udp")],
    ),
    S(
        "named-port-udp-egress",
        "destinationNamedPort on an egress rule toward pods",
        [
            admin(
                "no-81u",
                10,
                s_ns(ns="x"),
                egress=[rule("Deny", p_ns(ns="y"), protocols=(named("serve-81-udp"),))],
            )
        ],
        [no("x/a", "y/a", "81/udp", egress="Admin"), ok("x/a", "y/a", "81/tcp")],
    ),
    S(
        "port-range-tcp",
        "PortRange defines an inclusive range of ports from the assigned Start value to End value.",
        [
            admin(
                "r", 10, s_ns(ns="x"), egress=[rule("Deny", p_ns(ns="y"), protocols=(tcp(80, 81),))]
            )
        ],
        [
            no("x/a", "y/a", "80/tcp"),
            no("x/a", "y/a", "81/tcp"),
            ok("x/a", "y/a", "80/udp"),
            ok("x/a", "y/a", "79/tcp"),
        ],
    ),
    S(
        "port-number-udp-accept-then-deny",
        "Number defines a network port value.",
        [
            admin(
                "dns-only",
                10,
                s_ns(ns="y"),
                ingress=[
                    rule("Accept", ALL, protocols=(udp(80),)),
                    rule("Deny", ALL),
                ],
            )
        ],
        [ok("x/a", "y/a", "80/udp", ingress="Admin"), no("x/a", "y/a", "80/tcp")],
    ),
    S(
        "udp-range-baseline",
        "range in the Baseline tier",
        [baseline("b", 10, s_ns(ns="z"), ingress=[rule("Deny", ALL, protocols=(udp(80, 81),))])],
        [no("x/a", "z/a", "81/udp", ingress="Baseline"), ok("x/a", "z/a", "81/tcp")],
    ),
    S(
        "sctp-number",
        "SCTP specific protocol matches (rendered, not probed: no SCTP in this kernel).",
        [admin("s", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL, protocols=(sctp(80),))])],
        [no("x/a", "y/a", "80/sctp"), ok("x/a", "y/a", "80/tcp")],
        probed=False,
    ),
    S(
        "sctp-range-accept",
        "SCTP with a destinationPort range",
        [
            admin(
                "s",
                10,
                s_ns(ns="y"),
                ingress=[rule("Accept", ALL, protocols=(sctp(80, 90),)), rule("Deny", ALL)],
            )
        ],
        [ok("x/a", "y/a", "85/sctp"), no("x/a", "y/a", "91/sctp"), no("x/a", "y/a", "80/tcp")],
        probed=False,
    ),
]

IPV6: list[CnpScenario] = [
    S(
        "ipv6-admin-deny",
        "Admin Deny over IPv6",
        [admin("no-z", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="z"))])],
        [no("z/a", "y/a", ingress="Admin"), ok("x/a", "y/a")],
        family=6,
    ),
    S(
        "ipv6-networks",
        'Each item in Networks should be ... IPv4 or IPv6, for example "10.0.0.0/8" or "fd00::/8".',
        [
            admin(
                "no-ya6", 10, s_ns(ns="x"), egress=[rule("Deny", p_nets("2001:db8:244:1::13/128"))]
            )
        ],
        [no("x/a", "y/a", egress="Admin"), ok("x/a", "y/b")],
        family=6,
    ),
    S(
        "ipv4-networks-do-not-match-ipv6",
        "0.0.0.0/0 denies all IPv4 pod-to-pod traffic (IPv6 untouched).",
        [admin("no-v4", 10, s_ns(ns="x"), egress=[rule("Deny", p_nets("0.0.0.0/0"))])],
        [ok("x/a", "y/a", egress="Default")],
        family=6,
    ),
    S(
        "ipv6-baseline-pass",
        "Baseline Pass over IPv6",
        [
            baseline("pass-x", 1, s_ns(ns="y"), ingress=[rule("Pass", p_ns(ns="x"))]),
            baseline("deny", 2, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [ok("x/a", "y/a", ingress="Default"), no("z/a", "y/a", ingress="Baseline")],
        family=6,
    ),
    S(
        "ipv6-named-port-np-over-baseline",
        "IPv6: NetworkPolicy over the Baseline tier, with a named port",
        [
            baseline("deny-y", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
            netpol("y", "x-80", ingress=[{"ports": [{"port": "serve-80-tcp"}]}]),
        ],
        [ok("x/a", "y/a", "80/tcp", ingress="NetworkPolicy"), no("x/a", "y/a", "81/tcp")],
        family=6,
    ),
]

V1ALPHA1: list[CnpScenario] = [
    S(
        "anp-allow-is-accept",
        "v1alpha1 Allow becomes Accept (issue 10 Deliver 2).",
        [
            anp("allow-x", 5, s_ns(ns="y"), ingress=[rule("Allow", p_ns(ns="x"))]),
            anp("deny-all", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [
            ok("x/a", "y/a", ingress="Admin:AdminNetworkPolicy allow-x"),
            no("z/a", "y/a", ingress="Admin:AdminNetworkPolicy deny-all"),
        ],
    ),
    S(
        "anp-pass-to-np",
        "ANP Pass: the NetworkPolicy tier decides next.",
        [
            anp("pass", 5, s_ns(ns="y"), ingress=[rule("Pass", ALL)]),
            anp("deny", 6, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
            NP_ALLOW_X_IN_Y,
        ],
        [ok("x/a", "y/a", ingress="NetworkPolicy"), no("z/a", "y/a", ingress="NetworkPolicy")],
    ),
    S(
        "banp-is-baseline",
        "the BANP default becomes the Baseline tier",
        [banp(s_ns(ns="y"), ingress=[rule("Deny", ALL)]), NP_ALLOW_X_IN_Y],
        [
            ok("x/a", "y/b", ingress="NetworkPolicy"),
            no("z/a", "y/b", ingress="NetworkPolicy"),
            ok("x/a", "y/a", "81/udp", ingress="NetworkPolicy"),
        ],
    ),
    S(
        "banp-deny-without-np",
        "BaselineAdminNetworkPolicy Deny applies where no NetworkPolicy isolates",
        [banp(s_ns(ns="z"), ingress=[rule("Deny", p_ns(ns="x"))])],
        [no("x/a", "z/a", ingress="Baseline:BaselineAdminNetworkPolicy default"), ok("y/a", "z/a")],
    ),
    S(
        "anp-ports-named-and-range",
        "ports becomes protocols: namedPort and portRange",
        [
            anp(
                "ports",
                5,
                s_ns(ns="y"),
                ingress=[
                    rule("Deny", ALL, protocols=(pnamed("serve-80-tcp"), prange(81, 82, "UDP")))
                ],
            )
        ],
        [
            no("x/a", "y/a", "80/tcp"),
            no("x/a", "y/a", "81/udp"),
            ok("x/a", "y/a", "81/tcp"),
            ok("x/a", "y/a", "80/udp"),
        ],
    ),
    S(
        "anp-port-number-and-nodes",
        "ANP egress to nodes with a portNumber",
        [
            anp(
                "no-node-80",
                5,
                s_ns(ns="x"),
                egress=[rule("Deny", p_nodes(), protocols=(pnum(80),))],
            )
        ],
        [no("x/a", NODE, "80/tcp", egress="Admin"), ok("x/a", NODE, "81/tcp", egress="Exempt")],
    ),
    S(
        "cnp-baseline-before-banp",
        "A converted BANP has priority 1000: a Baseline CNP of lower priority comes first.",
        [
            banp(s_ns(ns="y"), ingress=[rule("Allow", p_ns(ns="x"))]),
            baseline("deny-x", 999, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
        ],
        [no("x/a", "y/a", ingress="Baseline:ClusterNetworkPolicy deny-x")],
    ),
    S(
        "anp-and-cnp-same-priority",
        "Equal priorities across kinds: by name, then by kind.",
        [
            anp("same", 7, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
            admin("same", 7, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))]),
        ],
        [no("x/a", "y/a", ingress="Admin:AdminNetworkPolicy same")],
    ),
]
