"""Issue 13 §1: no input reaches a restore tool as a command.

Every line the iptables backend writes (``compile``'s text, ``-o DIR``
files and the inputs ``apply`` feeds to the tools) is checked against a
whitelist grammar of the renderer's own output, over random API-valid
clusters whose names, label keys and values come from a hostile alphabet
(tool keywords, dashes, dots, slashes, very long strings)."""

from __future__ import annotations

import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.iptables import BACKEND
from backends.iptables.diff import TableWrite, diff
from backends.iptables.restore import MAX_LINE, set_lines, table_input
from policyc.load import parse_text
from policyc.parse import build_cluster
from policyc.pipeline import ruleset_of

SET = r"policyc-[a-z0-9_-]{1,23}"
TMP = r"policyc-t-[0-9a-f]{12}"
IP = r"[0-9a-f.:]+(/\d+)?"
ELEM = rf"{IP}( nomatch)?|{IP},(tcp|udp|sctp):\d+"
NOTE = r"# [ -~]{0,400}"
IPSET = [
    NOTE,
    rf"create ({SET}|{TMP}) hash:(ip|net|ip,port) family inet6? (maxelem \d+ )?-exist",
    rf"create ({SET}|{TMP}) hash:(ip|net|ip,port) family inet6?( maxelem \d+)?",
    rf"(flush|destroy) ({SET}|{TMP})",
    rf"(add|del) ({SET}|{TMP}) ({ELEM})",
    rf"swap {TMP} {SET}",
    rf"rename {SET} policyc-o-[0-9a-f]{{12}}",
]
CHAIN = r"POLICYC-[A-Z0-9-]{1,20}"
TOKEN = r"(!|[A-Za-z0-9:.,/+_-]+)"
COMMENT = r'(-m comment --comment "[ !#-\[\]-~]{0,200}" )?'
TABLES = [
    NOTE,
    r"\*(raw|filter|nat)",
    rf":{CHAIN} (- \[0:0\]|RETURN)",
    rf"-A {CHAIN}( {TOKEN})* {COMMENT}-[jg] (RETURN|DROP|{CHAIN})",
    rf"-A {CHAIN} {COMMENT}-[jg] (RETURN|DROP|{CHAIN})",
    rf"-[ID] (FORWARD|PREROUTING)( 1)? -j {CHAIN}",
    rf"-X {CHAIN}",
    "COMMIT",
]


def allowed(line: str, grammar: list[str]) -> bool:
    return len(line.encode()) <= MAX_LINE and any(re.fullmatch(g, line) for g in grammar)


# Strings an API server accepts that read as commands or options.
WORDS = ["flush", "destroy", "-exist", "add", "swap", "COMMIT", "x", "a-b", "a.b", "a_b", "9"]
label_key = st.builds(
    lambda prefix, name: (prefix + "/" if prefix else "") + name,
    st.sampled_from(["", "example.com", "a" * 60 + ".io"]),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)
    .map(lambda ws: "-".join(ws).strip("-._")[:63].strip("-._"))
    .filter(bool),
)
label_value = st.sampled_from(["", "v", "flush", "a" * 63, "x.y-z_w"])
dns_name = st.lists(
    st.sampled_from(["flush", "add", "x", "swap", "destroy"]), min_size=1, max_size=4
).map("-".join)


def cluster(keys: list[str], values: list[str], names: list[str], excepts: int) -> str:
    pod_labels = dict(zip(keys, values, strict=False)) or {"x": "y"}
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "spec": {"podCIDRs": ["10.244.1.0/24", "2001:db8:244:1::/64"]},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": a} for a in ("192.0.2.10", "0.0.0.0", "::")
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": names[0], "labels": pod_labels},
        },
    ]
    for i, name in enumerate(names):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-{i}", "namespace": names[0], "labels": pod_labels},
                "spec": {
                    "nodeName": "node-1",
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "ports": [{"name": "flush", "containerPort": 80}],
                        }
                    ],
                },
                "status": {
                    "phase": "Running",
                    "podIPs": [{"ip": f"10.244.1.{i + 10}"}, {"ip": f"2001:db8:244:1::{i + 10:x}"}],
                },
            }
        )
    blocks = [f"10.244.{j}.0/24" for j in range(2, 2 + excepts)]
    docs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "-".join(names)[:253].strip("-") or "p", "namespace": names[0]},
            "spec": {
                "podSelector": {
                    "matchExpressions": [{"key": k, "operator": "Exists"} for k in keys]
                },
                "ingress": [
                    {},
                    {
                        "from": [{"podSelector": {"matchLabels": pod_labels}}],
                        "ports": [{"port": "flush"}],
                    },
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": blocks}}]},
                ],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": pod_labels}}]}],
            },
        }
    )
    return yaml.safe_dump_all(docs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(label_key, min_size=0, max_size=17, unique=True),
    values=st.lists(label_value, max_size=17),
    names=st.lists(dns_name, min_size=1, max_size=3),
    excepts=st.integers(0, 130),
)
def test_every_line_fits_the_grammar(
    keys: list[str], values: list[str], names: list[str], excepts: int
) -> None:
    text = cluster(keys, values, names, excepts)
    ruleset = ruleset_of(build_cluster(parse_text(text, "hostile.yaml")), "node-1")
    state = BACKEND.render(ruleset)
    files = BACKEND.files(state)
    for line in files["ipset.restore"].splitlines():
        assert allowed(line, IPSET), line
    for name in ("iptables.rules", "ip6tables.rules", "ebtables.rules"):
        for line in files[name].splitlines():
            assert allowed(line, TABLES), line
    steps = diff(None, state).steps
    for line in table_input(s for s in steps if isinstance(s, TableWrite)).splitlines():
        assert allowed(line, TABLES), line
    for s in steps:
        if not isinstance(s, TableWrite):
            for line in set_lines(s):
                assert allowed(line, IPSET), line
    assert (
        "0.0.0.0" not in files["ipset.restore"]
        and "add policyc-t-21781463605d ::\n" not in files["ipset.restore"]
    )


def test_unspecified_node_address_is_no_node_address() -> None:
    text = cluster(["x"], ["y"], ["a"], 0)
    ruleset = ruleset_of(build_cluster(parse_text(text, "n.yaml")), "node-1")
    node = {s.name: s for s in (*ruleset.sets, *ruleset.bridge_sets)}
    elems = {str(e) for n in ("node4", "node6") if n in node for e in node[n].elements}
    assert "192.0.2.10" in elems and "0.0.0.0" not in elems and "::" not in elems
