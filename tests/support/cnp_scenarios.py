"""ClusterNetworkPolicy scenarios written from the API documentation, as data.

The world is the e2e world of :mod:`tests.support.scenarios` (namespaces x, y, z
labelled ns=<name>; pods a, b, c labelled pod=<name> serving TCP/UDP 80 and 81, named
serve-<port>-<proto>; all on node-1, whose address is 192.0.2.10 and whose bridge
gateway is 10.244.1.1).  Each scenario quotes the line of
``apis/v1alpha2/clusternetworkpolicy_types.go`` (bundle v0.2.0) or of issue 10's
"Semantics" it checks, and lists probes with their verdict and deciding tier.

A kernel runner builds ``world(s.policies + s.extra, s.relabel)`` and probes with
``tests/kernel/world.py``; here the evaluator is checked against the probes.
"""

from __future__ import annotations

from tests.support.cnp_builders import (
    ALL,
    DENY_ALL_IN_Y,
    GATEWAY,
    HOST_POD,
    NODE,
    NP_ALLOW_X_IN_Y,
    NP_DENY_IN_Y,
    NP_DENY_OUT_X,
    OUTSIDE,
    WORKER,
    CnpScenario,
    admin,
    baseline,
    netpol,
    no,
    ok,
    p_nets,
    p_nodes,
    p_ns,
    p_pods,
    rule,
    s_ns,
    s_pods,
    sel,
)
from tests.support.cnp_scenarios_ports import IPV6, PORTS, V1ALPHA1

S = CnpScenario

TIERS: list[CnpScenario] = [
    S(
        "admin-deny-ingress",
        "Deny: Drops the selected traffic.",
        [DENY_ALL_IN_Y],
        [
            no("x/a", "y/b", ingress="Admin:ClusterNetworkPolicy deny-all-y"),
            ok("y/a", "x/b", ingress="Default"),
            no("y/a", "y/b", "81/udp", ingress="Admin"),
        ],
    ),
    S(
        "admin-accept-over-np-deny",
        "Admin tier ... cannot be overridden in the other tiers (Accept).",
        [NP_DENY_IN_Y, admin("x-in", 10, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))])],
        [ok("x/a", "y/a", ingress="Admin"), no("z/a", "y/a", ingress="NetworkPolicy")],
    ),
    S(
        "admin-deny-over-np-allow",
        "No further ClusterNetworkPolicy or NetworkPolicy rules will be processed.",
        [
            netpol("y", "allow-all", ingress=[{}]),
            admin("deny-z", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="z"))]),
        ],
        [no("z/a", "y/b", ingress="Admin"), ok("x/a", "y/b", ingress="NetworkPolicy")],
    ),
    S(
        "admin-pass-to-networkpolicy",
        "Pass: Skips all further ClusterNetworkPolicy rules in the current tier.",
        [
            admin("pass-x", 5, s_ns(ns="y"), ingress=[rule("Pass", p_ns(ns="x"))]),
            admin("deny-all", 20, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
            netpol(
                "y",
                "x-80",
                ingress=[{"from": [{"namespaceSelector": sel(ns="x")}], "ports": [{"port": 80}]}],
            ),
        ],
        [
            ok("x/a", "y/a", ingress="NetworkPolicy"),
            no("x/a", "y/a", "81/tcp", ingress="NetworkPolicy"),
            no("z/a", "y/a", ingress="Admin:ClusterNetworkPolicy deny-all"),
        ],
    ),
    S(
        "admin-pass-without-np-allows",
        "If a given connection wasn't allowed or denied by any of the tiers ... all pods can "
        "communicate",
        [
            admin("pass-x", 1, s_ns(ns="y"), ingress=[rule("Pass", p_ns(ns="x"))]),
            admin("deny-all", 2, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [ok("x/a", "y/a", ingress="Default"), no("z/a", "y/a", ingress="Admin")],
    ),
    S(
        "admin-pass-then-baseline-deny",
        "For example, if an Admin tier CNP uses Pass action, NetworkPolicy evaluation will "
        "happen next (then Baseline).",
        [
            admin("pass-x", 1, s_ns(ns="y"), ingress=[rule("Pass", p_ns(ns="x"))]),
            baseline("deny-y", 1, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [no("x/a", "y/a", ingress="Baseline"), ok("x/a", "z/a", ingress="Default")],
    ),
    S(
        "admin-priority-order",
        "Policies with lower priority values have higher precedence",
        [
            admin("a-deny", 20, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
            admin("b-accept", 10, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))]),
        ],
        [ok("x/a", "y/a", ingress="Admin:ClusterNetworkPolicy b-accept"), no("z/a", "y/a")],
    ),
    S(
        "admin-priority-deny-first",
        "are checked before policies with higher priority values in the same tier",
        [
            admin("accept-all", 10, s_ns(ns="y"), ingress=[rule("Accept", ALL)]),
            admin("deny-x", 5, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
        ],
        [no("x/a", "y/a", ingress="Admin:ClusterNetworkPolicy deny-x"), ok("z/a", "y/a")],
    ),
    S(
        "admin-equal-priority-name-tiebreak",
        "Equal priorities are undefined upstream; policyc orders them by name.",
        [
            admin("beta", 10, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))]),
            admin("alpha", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
        ],
        [no("x/a", "y/a", ingress="Admin:ClusterNetworkPolicy alpha")],
    ),
    S(
        "admin-equal-priority-name-tiebreak-accept",
        "Equal priorities are undefined upstream; policyc orders them by name.",
        [
            admin("alpha", 10, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))]),
            admin("beta", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
        ],
        [ok("x/a", "y/a", ingress="Admin:ClusterNetworkPolicy alpha")],
    ),
    S(
        "admin-rule-order",
        "a rule that appears at the top of the ingress rules would take the highest precedence",
        [
            admin(
                "ordered",
                10,
                s_ns(ns="y"),
                ingress=[
                    rule("Accept", p_pods(sel(ns="x"), sel(pod="a")), name="a-first"),
                    rule("Deny", p_ns(ns="x"), name="rest-of-x"),
                ],
            )
        ],
        [
            ok("x/a", "y/b", ingress="Admin:ClusterNetworkPolicy ordered"),
            no("x/b", "y/b", ingress="Admin"),
            ok("z/b", "y/b", ingress="Default"),
        ],
    ),
    S(
        "baseline-deny-default",
        "Baseline tier ... If Baseline tier has made a final decision (Accept or Deny) ... no "
        "further evaluation is done.",
        [baseline("deny-y", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL)])],
        [no("x/a", "y/a", ingress="Baseline"), ok("x/a", "z/a", ingress="Default")],
    ),
    S(
        "np-over-baseline",
        "Baseline tier is a cluster-wide policy that can be overridden by the v1.NetworkPolicy.",
        [baseline("deny-y", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL)]), NP_ALLOW_X_IN_Y],
        [ok("x/a", "y/a", ingress="NetworkPolicy"), no("z/a", "y/a", ingress="NetworkPolicy")],
    ),
    S(
        "np-isolation-hides-baseline-accept",
        "v1.NetworkPolicy always makes a final decision for selected pods.",
        [NP_DENY_IN_Y, baseline("accept-y", 10, s_ns(ns="y"), ingress=[rule("Accept", ALL)])],
        [no("x/a", "y/a", ingress="NetworkPolicy")],
    ),
    S(
        "baseline-pass-no-verdict",
        "Pass in the Baseline tier: no Baseline verdict (issue 10 Semantics 3).",
        [
            baseline("pass-x", 1, s_ns(ns="y"), ingress=[rule("Pass", p_ns(ns="x"))]),
            baseline("deny-all", 2, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [ok("x/a", "y/a", ingress="Default"), no("z/a", "y/a", ingress="Baseline")],
    ),
    S(
        "baseline-priority-order",
        "Priority ... precedence of the policy within its tier (Baseline).",
        [
            baseline("deny-all", 2, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
            baseline("accept-x", 1, s_ns(ns="y"), ingress=[rule("Accept", p_ns(ns="x"))]),
        ],
        [ok("x/a", "y/a", ingress="Baseline"), no("z/a", "y/a", ingress="Baseline")],
    ),
    S(
        "admin-over-np-over-baseline",
        "Policy tiers are evaluated in the following order: Admin, NetworkPolicy, Baseline",
        [
            admin("deny-z", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="z"))]),
            netpol("y", "b-only", sel(pod="b"), ingress=[{"from": [{"namespaceSelector": {}}]}]),
            baseline("deny-y", 10, s_ns(ns="y"), ingress=[rule("Deny", ALL)]),
        ],
        [
            no("z/a", "y/b", ingress="Admin"),
            ok("x/a", "y/b", ingress="NetworkPolicy"),
            no("x/a", "y/a", ingress="Baseline"),
        ],
    ),
    S(
        "both-directions-must-allow",
        "A connection passes only if both directions allow it (issue 10 Semantics).",
        [
            admin("x-out", 10, s_ns(ns="x"), egress=[rule("Accept", ALL)]),
            baseline("deny-y", 10, s_ns(ns="y"), ingress=[rule("Deny", p_ns(ns="x"))]),
        ],
        [no("x/a", "y/a", egress="Admin", ingress="Baseline"), ok("x/a", "z/a", egress="Admin")],
    ),
    S(
        "subject-pods",
        "Pods is used to select pods via namespace AND pod selectors.",
        [admin("x-a", 10, s_pods(sel(ns="x"), sel(pod="a")), ingress=[rule("Deny", ALL)])],
        [no("y/a", "x/a", ingress="Admin"), ok("y/a", "x/b", ingress="Default")],
    ),
    S(
        "peer-pods",
        "Pods defines a way to select a set of pods in a set of namespaces.",
        [
            admin(
                "no-yb", 10, s_ns(ns="x"), ingress=[rule("Deny", p_pods(sel(ns="y"), sel(pod="b")))]
            )
        ],
        [no("y/b", "x/a", ingress="Admin"), ok("y/a", "x/a"), ok("z/b", "x/a")],
    ),
    S(
        "egress-admin-deny-pods",
        "Egress is the list of Egress rules to be applied to the selected pods.",
        [admin("x-out", 10, s_ns(ns="x"), egress=[rule("Deny", p_ns(ns="z"))])],
        [no("x/a", "z/c", egress="Admin"), ok("x/a", "y/c", egress="Default"), ok("z/c", "x/a")],
    ),
]

PEERS: list[CnpScenario] = [
    S(
        "networks-match-pod-addresses",
        "cluster-internal traffic will be checked against the rule as well",
        [admin("no-ya", 10, s_ns(ns="x"), egress=[rule("Deny", p_nets("10.244.1.13/32"))])],
        [no("x/a", "y/a", egress="Admin"), ok("x/a", "y/b", egress="Default")],
    ),
    S(
        "networks-everything-denies-pods",
        "if you Accept or Deny traffic to 0.0.0.0/0, that will allow or deny all IPv4 "
        "pod-to-pod traffic as well",
        [admin("no-v4", 10, s_ns(ns="x"), egress=[rule("Deny", p_nets("0.0.0.0/0"))])],
        [no("x/a", "y/a", egress="Admin"), no("x/a", OUTSIDE, egress="Admin")],
    ),
    S(
        "networks-pass-pods-first",
        "If you don't want that, add a rule that Passes all pod traffic before the Networks rule.",
        [
            admin(
                "outside-only",
                10,
                s_ns(ns="x"),
                egress=[rule("Pass", ALL), rule("Deny", p_nets("0.0.0.0/0"))],
            )
        ],
        [ok("x/a", "y/a", egress="Default"), no("x/a", OUTSIDE, egress="Admin")],
    ),
    S(
        "nodes-deny-own-node",
        "Nodes ... selects the nodeIPs; NetworkPolicy's node exemption does not bind "
        "ClusterNetworkPolicy.",
        [admin("no-nodes", 10, s_ns(ns="x"), egress=[rule("Deny", p_nodes())])],
        [no("x/a", NODE, egress="Admin"), ok("y/a", NODE, egress="Exempt")],
    ),
    S(
        "nodes-selector-on-node-labels",
        "a set of nodes in the cluster (based on the node's labels)",
        [
            admin("no-infra", 10, s_ns(ns="x"), egress=[rule("Deny", p_nodes(role="infra"))]),
            admin("no-worker", 20, s_ns(ns="y"), egress=[rule("Deny", p_nodes(role="worker"))]),
        ],
        [ok("x/a", NODE), no("y/a", NODE, egress="Admin:ClusterNetworkPolicy no-worker")],
        relabel=WORKER,
    ),
    S(
        "nodes-not-the-gateway",
        "It selects the nodeIPs ... present in the node.Status.Addresses field of the node.",
        [admin("no-nodes", 10, s_ns(ns="x"), egress=[rule("Deny", p_nodes())])],
        [ok("x/a", GATEWAY, egress="Exempt")],
        probed=False,
    ),
    S(
        "np-node-exemption-without-cnp-tiers",
        "traffic to and from the node where a Pod is running is always allowed (NetworkPolicy)",
        [NP_DENY_OUT_X],
        [ok("x/a", NODE, egress="Exempt"), no("x/a", "y/a", egress="NetworkPolicy")],
    ),
    S(
        "baseline-deny-node-despite-np-exemption",
        "The exemption binds NetworkPolicy only: the Baseline tier still decides node traffic.",
        [NP_DENY_OUT_X, baseline("no-nodes", 10, s_ns(ns="x"), egress=[rule("Deny", p_nodes())])],
        [no("x/a", NODE, egress="Baseline"), no("x/a", "y/a", egress="NetworkPolicy")],
    ),
    S(
        "node-is-not-a-namespaces-peer",
        "Namespaces defines a way to select all pods within a set of Namespaces.",
        [DENY_ALL_IN_Y],
        [ok(NODE, "y/a", ingress="Exempt"), no("x/a", "y/a")],
    ),
    S(
        "host-network-pod-not-a-peer",
        "Note that host-networked pods are not included in this type of peer.",
        [admin("y-out", 10, s_ns(ns="y"), egress=[rule("Deny", p_ns(ns="x"))])],
        [ok("y/a", NODE, egress="Exempt"), no("y/a", "x/a", egress="Admin")],
        extra=[HOST_POD],
    ),
    S(
        "host-network-pod-not-a-subject",
        "Note that host-networked pods are not included in subject selection.",
        [admin("x-in", 10, s_ns(ns="x"), ingress=[rule("Deny", ALL)])],
        [ok("y/a", NODE), no("y/a", "x/b", ingress="Admin")],
        extra=[HOST_POD],
    ),
    S(
        "host-network-pod-reached-by-nodes",
        "nodes and networks peers reach host-network pods (issue 10 Semantics).",
        [admin("no-nodes", 10, s_ns(ns="y"), egress=[rule("Deny", p_nodes())])],
        [no("y/a", NODE, egress="Admin"), ok("x/a", NODE)],
        extra=[HOST_POD],
    ),
]

CNP_SCENARIOS: list[CnpScenario] = TIERS + PEERS + PORTS + IPV6 + V1ALPHA1
