"""iptables backend, without a kernel: golden files, set encodings, names,
rule counts, and the restore inputs ``apply`` builds (snapshot, rollback)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import BACKENDS
from backends.iptables import BACKEND
from backends.iptables.dialect import MAX_CHAIN
from backends.iptables.diff import SetAdd, SetDel, TableWrite, diff
from backends.iptables.ipset import _cidr_entries, set_name
from backends.iptables.restore import BEGIN, END, files, read_ipsets, read_tables, table_input
from backends.iptables.state import EMPTY, HookJump, IptablesState, Rule, Tool
from policyc.chains import Ruleset
from policyc.cli import main
from policyc.load import parse_text
from policyc.parse import build_cluster
from policyc.pipeline import read_cluster, ruleset_of


def render_parts(ruleset: Ruleset) -> dict[str, str]:
    return files(BACKEND.render(ruleset))


def split(text: str) -> dict[str, str]:
    """The sections of ``compile``'s text (a test's reading of it)."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(BEGIN):
            current = line[len(BEGIN) :]
            out[current] = []
        elif line.startswith(END):
            current = None
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


ROOT = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "expected.nft").exists())
BASE = ROOT / "_base" / "cluster.yaml"


def case_args(case: str) -> list[str]:
    args = ROOT / case / "args"
    return args.read_text().split() if args.exists() else []


def compile_iptables(case: str, capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["compile", "--backend", "iptables", *case_args(case), str(ROOT / case)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


# -- golden files ---------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_golden_iptables(
    case: str, capsys: pytest.CaptureFixture[str], update_golden: bool
) -> None:
    out = compile_iptables(case, capsys)
    expected = ROOT / case / "expected.iptables"
    if update_golden or not expected.exists():
        expected.write_text(out)
    assert out == expected.read_text()


@pytest.mark.parametrize("case", CASES)
def test_every_lowered_rule_is_rendered(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The semantics do not fork: every lowered rule appears (by its comment)
    in the iptables or ip6tables input, ARP rules as comments."""
    text = compile_iptables(case, capsys)
    args = case_args(case)
    node = args[args.index("--node") + 1] if "--node" in args else None
    ruleset = ruleset_of(read_cluster([str(ROOT / case)]), node)
    lowered = {
        r.comment.replace('"', "'")[:200]
        for c in (*ruleset.forward, *ruleset.bridge)
        for r in c.rules
    }
    parts = split(text)
    rendered = set()
    for section in ("iptables", "ip6tables"):
        rendered |= set(re.findall(r'--comment "([^"]*)"', parts[section]))
        rendered |= set(re.findall(r"^# [^:]*: \S+: (.*)$", parts[section], re.M))
    assert lowered <= rendered, lowered - rendered
    assert "-j ACCEPT" not in text  # accept ends policyc's verdict only: RETURN


def test_at_least_one_case() -> None:
    assert "allow-from-same-namespace" in CASES


# -- structure ------------------------------------------------------------


def cluster_text(extra_pods: int) -> str:
    """The base cluster plus ``extra_pods`` pods on another node."""
    docs = [d for d in yaml.safe_load_all(BASE.read_text()) if d]
    for i in range(extra_pods):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"extra{i}", "namespace": "y", "labels": {"pod": "b"}},
                "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "i"}]},
                "status": {
                    "phase": "Running",
                    "podIP": f"10.244.2.{i + 10}",
                    "podIPs": [{"ip": f"10.244.2.{i + 10}"}, {"ip": f"2001:db8:244:2::{i + 10:x}"}],
                },
            }
        )
    policy = (ROOT / "allow-from-same-namespace" / "policy.yaml").read_text()
    return yaml.safe_dump_all(docs) + "\n---\n" + policy + "\n---\n" + POLICY_Y


POLICY_Y = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y-b, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 80}, {port: 8000, endPort: 8100}, {port: 53, protocol: UDP}]
"""


def ruleset_for(extra_pods: int) -> Ruleset:
    cluster = build_cluster(parse_text(cluster_text(extra_pods), "<test>"))
    return ruleset_of(cluster, "node-1")


def test_rule_count_does_not_grow_with_cluster_pods() -> None:
    """Pods elsewhere in the cluster change set members, never rules."""
    small, big = render_parts(ruleset_for(1)), render_parts(ruleset_for(40))
    for section in ("iptables", "ip6tables"):
        assert small[section] == big[section]
    assert big["ipset"].count("\nadd ") > small["ipset"].count("\nadd ") + 70


def test_names_fit_the_kernel_limits() -> None:
    parts = render_parts(ruleset_for(3))
    for section in ("iptables", "ip6tables"):
        for chain in re.findall(r"^:(\S+)", parts[section], re.M):
            assert chain.startswith("POLICYC-") and len(chain) <= MAX_CHAIN
    for s in BACKEND.render(ruleset_for(3)).sets:
        assert s.name.startswith("policyc-") and len(s.name) <= 31
    assert len(set_name("x" * 60)) == 31 and set_name("x" * 60) == set_name("x" * 60)


def test_ports_become_multiport_and_named_ports_hash_ip_port() -> None:
    parts = render_parts(ruleset_for(0))
    assert "-p tcp -m multiport --dports 80,8000:8100" in parts["iptables"]
    assert "-p udp --dport 53" in parts["iptables"]
    assert "hash:ip,port family inet " in parts["ipset"]
    assert re.search(r"^add \S+ 10\.244\.1\.10,udp:81$", parts["ipset"], re.M)
    assert "hash:ip,port family inet6 " in parts["ipset"]


def test_ipblock_except_is_a_nomatch_entry() -> None:
    parts = render_parts(ruleset_for(0))
    lines = parts["ipset"].splitlines()
    assert any(line.endswith(" 10.244.0.0/16") for line in lines)
    assert any(line.endswith(" 10.244.1.16/30 nomatch") for line in lines)


def test_antispoof_and_node_rules_mirror_nftables() -> None:
    parts = render_parts(ruleset_for(0))
    v4, v6 = parts["iptables"], parts["ip6tables"]
    assert "-m physdev ! --physdev-in pc+" in v4 and "-m physdev ! --physdev-in pc+" in v6
    assert "-s 10.244.1.10/32 -m physdev --physdev-in pce4fccf5a38c" in v4
    assert "-s 2001:db8:244:1::10/128 -m physdev --physdev-in pce4fccf5a38c" in v6
    assert "--match-set policyc-node4 src" in v4 and "--match-set policyc-node4 dst" in v4
    assert "--match-set policyc-node6 src" in v6
    assert "icmpv6-type 135" in v6 and "icmpv6" not in v4
    assert "# not for iptables (ARP)" in v4
    for text in (v4, v6):
        assert text.count("-j POLICYC-FROM-PODS") == 1
        assert "# hook (apply keeps this jump first): -I FORWARD 1 -j POLICYC-FORWARD" in text
        assert "-I PREROUTING 1 -j POLICYC-ANTISPOOF" in text


def test_compile_sections_and_files() -> None:
    state = BACKEND.render(ruleset_for(0))
    parts = split(BACKEND.write(state))
    assert list(parts) == ["ipset", "iptables", "ip6tables", "ebtables"]
    assert parts["iptables"].startswith("*raw\n") and "COMMIT" in parts["ip6tables"]
    written = BACKEND.files(state)
    assert sorted(written) == [
        "ebtables.rules",
        "ip6tables.rules",
        "ipset.restore",
        "iptables.rules",
    ]
    assert written["iptables.rules"] == parts["iptables"]


def test_deterministic() -> None:
    b = BACKENDS["iptables"]
    assert b.write(b.render(ruleset_for(5))) == b.write(b.render(ruleset_for(5)))


# -- hash:net encoding of address ranges ---------------------------------


def lpm(entries: list[tuple[int, int, bool]], addr: int, bits: int) -> bool:
    """hash:net's answer: the longest matching prefix decides; nomatch says no."""
    best = -1
    verdict = False
    for net, plen, nomatch in entries:
        if plen > best and addr >> (bits - plen) == net >> (bits - plen):
            best, verdict = plen, not nomatch
    return verdict


ranges_strategy = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 40)), min_size=0, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(raw=ranges_strategy)
def test_cidr_entries_encode_exactly_the_ranges(raw: list[tuple[int, int]]) -> None:
    bits = 8
    merged: list[tuple[int, int]] = []
    for lo, width in sorted(raw):
        hi = min(lo + width, 255)
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    entries = _cidr_entries(tuple(merged), bits)
    assert all(plen >= 1 for _, plen, _ in entries)
    for addr in range(256):
        inside = any(lo <= addr <= hi for lo, hi in merged)
        assert lpm(entries, addr, bits) == inside, (merged, entries, addr)
    positive = sum(
        len(
            list(
                ipaddress.summarize_address_range(
                    ipaddress.IPv4Address(lo << 24), ipaddress.IPv4Address((hi << 24) | 0xFFFFFF)
                )
            )
        )
        for lo, hi in merged
    )
    assert len(entries) <= max(positive, 2)


def test_cidr_with_excepts_is_cidr_plus_nomatch() -> None:
    lo, hi = int(ipaddress.ip_address("10.244.0.0")), int(ipaddress.ip_address("10.244.255.255"))
    cut_lo, cut_hi = (
        int(ipaddress.ip_address("10.244.1.16")),
        int(ipaddress.ip_address("10.244.1.19")),
    )
    entries = _cidr_entries(((lo, cut_lo - 1), (cut_hi + 1, hi)), 32)
    assert entries == [(lo, 16, False), (cut_lo, 30, True)]
    everything = _cidr_entries(((0, 2**32 - 1),), 32)
    assert everything == [(0, 1, False), (2**31, 1, False)]


# -- apply's restore inputs -------------------------------------------------

SAVED = """# Generated by iptables-save v1.8.9
*raw
:PREROUTING ACCEPT [0:0]
:POLICYC-ANTISPOOF - [0:0]
-A PREROUTING -j POLICYC-ANTISPOOF
-A PREROUTING -s 192.0.2.1/32 -j ACCEPT
-A POLICYC-ANTISPOOF -j DROP
COMMIT
*filter
:FORWARD ACCEPT [0:0]
:KUBE-FOO - [0:0]
:POLICYC-FORWARD - [0:0]
:POLICYC-OLD - [0:0]
-A FORWARD -j POLICYC-FORWARD
-A FORWARD -j KUBE-FOO
-A POLICYC-FORWARD -j POLICYC-OLD
-A KUBE-FOO -j ACCEPT
COMMIT
"""


def test_read_tables_keeps_only_policyc() -> None:
    t = {x.name: x for x in read_tables(Tool.IPTABLES, SAVED)}
    assert [c.name for c in t["raw"].chains] == ["POLICYC-ANTISPOOF"]
    assert t["raw"].chains[0].rules == (Rule((), ("-j", "DROP")),)
    assert t["raw"].hooks == (HookJump("PREROUTING", "POLICYC-ANTISPOOF"),)
    assert [c.name for c in t["filter"].chains] == ["POLICYC-FORWARD", "POLICYC-OLD"]
    assert t["filter"].hooks == (HookJump("FORWARD", "POLICYC-FORWARD"),)


def test_diff_back_to_a_snapshot_removes_new_chains_and_hooks() -> None:
    before = IptablesState((), tuple(read_tables(Tool.IPTABLES, SAVED)))
    now = BACKEND.render(ruleset_for(0))
    text = table_input(
        s for s in diff(now, before).steps if isinstance(s, TableWrite) and s.tool is Tool.IPTABLES
    )
    assert "-A POLICYC-FORWARD -j POLICYC-OLD" in text
    assert ":POLICYC-FROM-PODS - [0:0]" in text and "-X POLICYC-FROM-PODS" in text
    assert "KUBE" not in text and "192.0.2.1" not in text
    assert "-X POLICYC-OLD" not in text and "-D FORWARD -j POLICYC-FORWARD" not in text


def test_reader_decodes_save_spelling() -> None:
    saved = (
        "*filter\n:POLICYC-X - [0:0]\n"
        '-A POLICYC-X -p tcp -m tcp --dport 80 -m comment --comment "pod\\\'s own" -j RETURN\n'
        "-A POLICYC-X -m comment --comment plain -j DROP\nCOMMIT\n"
    )
    (t,) = read_tables(Tool.IPTABLES, saved)
    assert [r.key() for r in t.chains[0].rules] == [
        Rule(
            ("-p", "tcp", "--dport", "80", "-m", "comment", "--comment", "pod's own"),
            ("-j", "RETURN"),
        ).key(),
        Rule(("-m", "comment", "--comment", "plain"), ("-j", "DROP")).key(),
    ]
    sets = read_ipsets(
        "create policyc-n hash:net family inet hashsize 1024 maxelem 65536 initval 0x1\n"
        "add policyc-n 10.244.1.16 nomatch\nadd policyc-n 10.244.0.0/16\n"
        "create policyc-t-1 hash:ip family inet\ncreate other hash:ip family inet\n"
    )
    assert [(s.name, s.maxelem, sorted(s.elements)) for s in sets] == [
        ("policyc-n", None, ["10.244.0.0/16", "10.244.1.16/32 nomatch"])
    ]


def test_round_trip_of_every_rendered_rule() -> None:
    """Writer then reader gives the rendered state back (the kernel test
    proves the same through the real tools)."""
    state = BACKEND.render(ruleset_for(2))
    parts = files(state)
    tables = [t for tool in Tool for t in read_tables(tool, parts[tool.value])]
    hookless = tuple(dataclasses.replace(t, hooks=()) for t in state.tables)
    # compile's text gives hooks as notes (apply inserts them)
    assert IptablesState(state.sets, tuple(tables)) == IptablesState(state.sets, hookless)
    assert diff(state, state).steps == ()
    assert diff(None, state).steps == diff(EMPTY, state).steps


def test_set_only_change_is_member_steps() -> None:
    state = BACKEND.render(ruleset_for(2))
    s = next(x for x in state.sets if x.elements and x.type == "hash:ip")
    smaller = IptablesState(
        tuple(
            type(x)(x.name, x.type, x.family, x.maxelem, x.elements[1:]) if x is s else x
            for x in state.sets
        ),
        state.tables,
    )
    steps = diff(state, smaller).steps
    assert steps == (SetDel(s.name, (s.elements[0],)),)
    assert diff(smaller, state).steps == (SetAdd(s.name, (s.elements[0],)),)


def test_compile_output_dir_writes_three_files(tmp_path: Path) -> None:
    from policyc.cli import main

    out = tmp_path / "out"
    out.mkdir()
    case = Path(__file__).resolve().parent.parent / "fixtures" / "ipblock-except"
    assert main(["compile", "--backend", "iptables", "--output-dir", str(out), str(case)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"ip6tables.rules", "iptables.rules", "ipset.restore", "ebtables.rules"}
    assert "*filter" in (out / "iptables.rules").read_text()


def test_ebtables_section_drops_arp_spoofing_and_other_frames() -> None:
    """ARP and non-IP frames (invisible to iptables) go through ebtables: own
    ARP and probes per known port, IP per known port, everything else dropped."""
    eb = render_parts(ruleset_for(0))["ebtables"]
    lines = eb.splitlines()
    assert lines[:2] == ["*nat", ":POLICYC-ANTISPOOF RETURN"] and lines[-1] == "COMMIT"
    rules = [ln for ln in lines if ln.startswith("-A POLICYC-")]
    assert rules[0] == "-A POLICYC-ANTISPOOF -i ! pc+ -j RETURN"
    assert rules[-1] == "-A POLICYC-ANTISPOOF -j DROP"
    assert (
        "-A POLICYC-ANTISPOOF -p ARP -i pce4fccf5a38c --arp-ip-src 10.244.1.10 -j RETURN" in rules
    )
    assert "-A POLICYC-ANTISPOOF -p ARP -i pce4fccf5a38c --arp-ip-src 0.0.0.0 -j RETURN" in rules
    assert "-A POLICYC-ANTISPOOF -p IPv4 -i pce4fccf5a38c -j RETURN" in rules
    assert "-A POLICYC-ANTISPOOF -p IPv6 -i pce4fccf5a38c -j RETURN" in rules
    assert len(rules) == len(set(rules))
    assert not [r for r in rules if "pc+" not in r and "-i " not in r and "DROP" not in r]
    (hook,) = BACKEND.render(ruleset_for(0)).tables[-1].hooks
    assert hook == HookJump("PREROUTING", "POLICYC-ANTISPOOF")


def test_patch_is_member_steps_and_declines_rule_variant_sets() -> None:
    from backends.iptables.diff import patch
    from policyc.compiler import sort_key
    from policyc.ir import Changes, Family, SetKind

    ruleset = ruleset_for(2)
    state = BACKEND.render(ruleset)
    ir = {s.name: s for s in (*ruleset.sets, *ruleset.bridge_sets)}
    addr = next(
        s
        for s in ir.values()
        if s.kind is SetKind.ADDR
        and s.family
        and "policyc-" + s.name in {x.name for x in state.sets}
    )
    new = ipaddress.ip_address("10.244.1.99" if addr.family is Family.V4 else "2001:db8::99")
    changes = Changes(dirty=frozenset({addr.name}), added={addr.name: frozenset({new})})
    tx = patch(state, changes, {addr.name: dataclasses.replace(addr, elements=())})
    assert tx is not None and tx.steps == (SetAdd("policyc-" + addr.name, (str(new),)),)
    assert tx.after.tables == state.tables
    # A local pod's port: the anti-spoofing chain alone, re-rendered.
    iface = next(s for s in ir.values() if s.kind is SetKind.IFACE_ADDR and s.family is Family.V4)
    port = ("pc0123456789a", ipaddress.ip_address("10.244.1.99"))
    changes = Changes(dirty=frozenset({iface.name}), added={iface.name: frozenset({port})})
    tx = patch(state, changes, {iface.name: dataclasses.replace(iface, elements=())})
    assert tx is not None
    writes = [w for w in tx.steps if isinstance(w, TableWrite)]
    assert {(w.tool, w.table) for w in writes} == {(Tool.IPTABLES, "raw"), (Tool.EBTABLES, "nat")}
    assert all([c.name for c in w.chains] == ["POLICYC-ANTISPOOF"] for w in writes)
    grown = dataclasses.replace(
        iface, elements=tuple(sorted((*iface.elements, port), key=sort_key))
    )
    bridge = tuple(grown if s.name == iface.name else s for s in ruleset.bridge_sets)
    assert tx.after == BACKEND.render(dataclasses.replace(ruleset, bridge_sets=bridge))
    # ... unless the state was read from the kernel (nothing to re-render from).
    assert patch(dataclasses.replace(state, bridge=None), changes, {iface.name: iface}) is None
    ports = next((s for s in ir.values() if s.kind is SetKind.PORTS), None)
    if ports is not None:  # policy-driven rule variants: render and diff
        changes = Changes(dirty=frozenset({ports.name}))
        assert patch(state, changes, {ports.name: ports}) is None
