"""iptables + ipset backend: the same lowered chains as ``backends.nftables``,
rendered as an ``ipset restore`` script and ``iptables-restore`` /
``ip6tables-restore`` inputs.

Only matches and actions are translated; the chains, their order and their
verdicts are the lowered ruleset's (docs/iptables.md):

* the forward chains live in ``filter`` and are entered from ``FORWARD``;
* the bridge anti-spoofing chain lives in ``raw`` and is entered from
  ``PREROUTING``, where br_netfilter shows IPv4/IPv6 frames from a bridge
  port with ``-m physdev`` before conntrack, routing or local delivery;
* ``accept`` in a hooked chain becomes ``RETURN``: like an nft base chain's
  accept, it ends policyc's verdict and lets other components' rules run;
* rules for ARP are listed as comments: iptables never sees ARP; the bridge
  chain is rendered for ebtables too (``backends.ebtables``), which drops
  spoofed ARP, other ethertypes and frames from unknown pod ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from backends import ebtables
from backends.ipset import IpSet, ipsets, render_restore, set_name
from policyc.chains import (
    ArpProbe,
    Chain,
    CtEstablished,
    Field,
    Hook,
    IfacePrefix,
    InSet,
    LinkLocalIcmp6,
    Match,
    NeighbourDiscovery,
    Rule,
    Ruleset,
    Verb,
)
from policyc.errors import BackendError
from policyc.ir import PROTO_NAMES, Family, SetDef

FAMILIES = (Family.V4, Family.V6)
CHAIN_PREFIX = "POLICYC-"
MAX_CHAIN = 28
TOOL = {Family.V4: "iptables", Family.V6: "ip6tables"}
# hook -> (table, builtin chain, policyc chain entered from it)
HOOKS = {
    Hook.FORWARD: ("filter", "FORWARD", "POLICYC-FORWARD"),
    Hook.BRIDGE_PREROUTING: ("raw", "PREROUTING", "POLICYC-ANTISPOOF"),
}
TABLE_ORDER = ("raw", "filter")
ND_TYPES = ("135", "136")  # neighbour solicitation, advertisement
LINK_LOCAL_TYPES = ("135", "136", "133", "131", "143")  # + router solicitation, MLD reports
LINK_LOCAL_SOURCES = ("::/128", "fe80::/10")
MULTIPORT_MAX = 15  # a range counts twice
ARP = "arp"

# Section markers of the combined ``compile`` output.
BEGIN, END = "### policyc-begin ", "### policyc-end "
SECTIONS = ("ipset", "iptables", "ip6tables", "ebtables")
FILES = {
    "ipset": "ipset.restore",
    "iptables": "iptables.rules",
    "ip6tables": "ip6tables.rules",
    "ebtables": "ebtables.rules",
}


def chain_name(chain: Chain) -> str:
    if chain.hook is not None:
        return HOOKS[chain.hook][2]
    name = CHAIN_PREFIX + chain.name.upper().replace("_", "-")
    if len(name) > MAX_CHAIN or not re.fullmatch(r"[A-Z0-9-]+", name[len(CHAIN_PREFIX) :]):
        raise BackendError(f"Unsupported chain name for iptables: {chain.name!r}")
    return name


def rule_family(rule: Rule) -> Family | str | None:
    """The one family a rule can match (None: both), or ``"arp"``."""
    fams: set[Family | str] = set()
    for m in rule.matches:
        if isinstance(m, InSet) and m.field is Field.IIF_ARP_SADDR or isinstance(m, ArpProbe):
            fams.add(ARP)
        elif isinstance(m, InSet) and m.family is not None:
            fams.add(m.family)
        elif isinstance(m, NeighbourDiscovery | LinkLocalIcmp6):
            fams.add(Family.V6)
    if ARP in fams:
        return ARP
    if len(fams) > 1:
        raise BackendError(f"rule mixes address families: {rule!r}")
    return fams.pop() if fams else None


@dataclass(frozen=True, slots=True)
class Ctx:
    """What match rendering needs: the family and the IR sets by name."""

    family: Family
    sets: dict[str, SetDef]


def _set_match(ctx: Ctx, m: InSet, dirs: str) -> str:
    s = ctx.sets.get(m.set)
    if s is None:
        raise BackendError(f"rule refers to an unknown set {m.set!r}")
    name = set_name(s.name, ctx.family if s.family is None else None)
    return f"-m set {'! ' if m.negate else ''}--match-set {name} {dirs}"


def _multiport(ctx: Ctx, m: InSet) -> list[str]:
    """A PORTS set (proto, lo, hi) as one ``-p P -m multiport`` variant per
    protocol and chunk of at most 15 ports."""
    if m.negate:
        raise BackendError("Unsupported for iptables: a negated port set")
    by_proto: dict[str, list[str]] = {}
    for e in ctx.sets[m.set].elements:
        assert isinstance(e, tuple)
        proto, lo, hi = e
        by_proto.setdefault(PROTO_NAMES[proto], []).append(str(lo) if lo == hi else f"{lo}:{hi}")
    out = []
    for proto, ports in by_proto.items():
        if "0:65535" in ports:
            out.append(f"-p {proto}")
            continue
        chunks: list[list[str]] = [[]]
        for p in ports:
            if sum(1 + (":" in q) for q in chunks[-1]) + 1 + (":" in p) > MULTIPORT_MAX:
                chunks.append([])
            chunks[-1].append(p)
        for chunk in chunks:
            if len(chunk) == 1:
                out.append(f"-p {proto} --dport {chunk[0]}")
            else:
                out.append(f"-p {proto} -m multiport --dports {','.join(chunk)}")
    return out


def _port_variants(ctx: Ctx, m: InSet) -> list[str]:
    """A set keyed on the bridge port, one variant per member.

    The set match cannot look at the bridge port: the kernel reads the
    ``physdev`` flag of hash:net,iface from the match, and iptables' set match
    has no option for it.  So these sets become ``-m physdev`` rules, one per
    local pod port and address: they grow with the pods of this node only.
    """
    if m.negate:
        raise BackendError("Unsupported for iptables: a negated bridge-port set")
    s = ctx.sets.get(m.set)
    if s is None:
        raise BackendError(f"rule refers to an unknown set {m.set!r}")
    out = []
    for e in s.elements:
        if m.field is Field.IIF:
            out.append(f"-m physdev --physdev-in {e}")
            continue
        assert isinstance(e, tuple)
        iface, ip = e
        if Family.of(ip) is ctx.family:
            host = "/32" if ctx.family is Family.V4 else "/128"
            out.append(f"-s {ip}{host} -m physdev --physdev-in {iface}")
    return out


def match_variants(ctx: Ctx, m: Match) -> list[str]:
    """iptables arguments for a match; several strings mean "any of them"."""
    if isinstance(m, InSet):
        if m.field is Field.PROTO_DPORT:
            return _multiport(ctx, m)
        if m.field in (Field.IIF, Field.IIF_SADDR):
            return _port_variants(ctx, m)
        dirs = {
            Field.SADDR: "src",
            Field.DADDR: "dst",
            Field.DADDR_PROTO_DPORT: "dst,dst",
        }.get(m.field)
        if dirs is None:
            raise BackendError(f"Unsupported match for iptables: {m!r}")
        return [_set_match(ctx, m, dirs)]
    if isinstance(m, CtEstablished):
        return ["-m conntrack --ctstate RELATED,ESTABLISHED"]
    if isinstance(m, NeighbourDiscovery):
        return [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t}" for t in ND_TYPES]
    if isinstance(m, IfacePrefix):
        return [f"-m physdev {'! ' if m.negate else ''}--physdev-in {m.prefix}+"]
    if isinstance(m, LinkLocalIcmp6):
        return [
            f"-s {src} -p ipv6-icmp -m icmp6 --icmpv6-type {t}"
            for src in LINK_LOCAL_SOURCES
            for t in LINK_LOCAL_TYPES
        ]
    raise BackendError(f"Unsupported match for iptables: {m!r}")


def _comment(text: str) -> str:
    return text.replace('"', "'").replace("\\", "/")[:200]


def render_action(chain: Chain, rule: Rule) -> str:
    verb, target = rule.action.verb, rule.action.target
    if verb is Verb.ACCEPT:
        if chain.hook is None:
            raise BackendError(f"Unsupported for iptables: accept in non-hook chain {chain.name}")
        return "-j RETURN"  # end policyc's verdict, let other components' rules run
    if verb in (Verb.JUMP, Verb.GOTO):
        flag = "-j" if verb is Verb.JUMP else "-g"
        return f"{flag} {chain_name(Chain(target, ()))}"
    return {Verb.DROP: "-j DROP", Verb.RETURN: "-j RETURN"}[verb]


def render_rule(ctx: Ctx, chain: Chain, rule: Rule) -> list[str]:
    """One lowered rule -> its iptables rules (the product of match variants)."""
    name = chain_name(chain)
    variants = [""]
    for m in rule.matches:
        variants = [f"{v} {alt}".strip() for v in variants for alt in match_variants(ctx, m)]
    tail = render_action(chain, rule)
    if not variants:  # a per-port set without members for this family
        return [f"# matches nothing (empty set): {chain.name}: {rule.comment}"]
    if rule.comment:
        tail = f'-m comment --comment "{_comment(rule.comment)}" {tail}'
    return [" ".join(p for p in (f"-A {name}", v, tail) if p) for v in variants]


def _targets(chain: Chain, family: Family) -> Iterable[str]:
    for r in chain.rules:
        if r.action.verb in (Verb.JUMP, Verb.GOTO) and rule_family(r) in (None, family):
            yield r.action.target


def reachable(chains: tuple[Chain, ...], family: Family) -> list[Chain]:
    """The chains a family's hooks can reach, in the ruleset's order."""
    by_name = {c.name: c for c in chains}
    seen: set[str] = set()
    todo = [c.name for c in chains if c.hook is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in by_name:
            raise BackendError(f"jump to an unknown chain {name!r}")
        seen.add(name)
        todo.extend(_targets(by_name[name], family))
    return [c for c in chains if c.name in seen]


@dataclass(frozen=True, slots=True)
class TableInput:
    """One table's part of an iptables-restore input."""

    table: str
    chains: tuple[str, ...]
    lines: tuple[str, ...]
    hooks: tuple[tuple[str, str], ...]  # (builtin chain, policyc chain)


def family_tables(ruleset: Ruleset, family: Family, ctx: Ctx) -> list[TableInput]:
    groups = {"filter": ruleset.forward, "raw": ruleset.bridge}
    out = []
    for table in TABLE_ORDER:
        chains = reachable(groups[table], family)
        if not chains:
            continue
        lines: list[str] = []
        hooks = []
        for c in chains:
            if c.hook is not None:
                hooks.append((HOOKS[c.hook][1], chain_name(c)))
            for r in c.rules:
                fam = rule_family(r)
                if fam == ARP:
                    lines.append(f"# not for iptables (ARP): {c.name}: {r.comment}")
                elif fam in (None, family):
                    lines.extend(render_rule(ctx, c, r))
        out.append(
            TableInput(table, tuple(chain_name(c) for c in chains), tuple(lines), tuple(hooks))
        )
    return out


def render_tables(tables: list[TableInput]) -> list[str]:
    lines = []
    for t in tables:
        lines.append(f"*{t.table}")
        lines.extend(f":{c} - [0:0]" for c in t.chains)
        lines.extend(t.lines)
        lines.extend(
            f"# hook (apply inserts it unless -C finds it): -I {b} 1 -j {c}" for b, c in t.hooks
        )
        lines.append("COMMIT")
    return lines


def used_sets(tables: list[TableInput]) -> set[str]:
    return {m for t in tables for line in t.lines for m in re.findall(r"--match-set (\S+)", line)}


def render_parts(ruleset: Ruleset) -> dict[str, str]:
    """The three inputs, by section name."""
    sets = {s.name: s for s in (*ruleset.sets, *ruleset.bridge_sets)}
    tables = {f: family_tables(ruleset, f, Ctx(f, sets)) for f in FAMILIES}
    used = used_sets(tables[Family.V4]) | used_sets(tables[Family.V6])
    all_sets: list[IpSet] = []
    for s in sorted(sets.values(), key=lambda s: s.name):
        all_sets.extend(ipsets(s, FAMILIES))
    missing = used - {s.name for s in all_sets}
    if missing:
        raise BackendError(f"rules refer to sets that are not rendered: {sorted(missing)}")
    chosen = [s for s in all_sets if s.name in used]
    return {
        "ipset": "\n".join(render_restore(chosen)) + "\n",
        "iptables": "\n".join(render_tables(tables[Family.V4])) + "\n",
        "ip6tables": "\n".join(render_tables(tables[Family.V6])) + "\n",
        "ebtables": "\n".join(ebtables.render(ruleset.bridge, sets)) + "\n",
    }


def render(ruleset: Ruleset) -> str:
    parts = render_parts(ruleset)
    lines = [
        "# generated by policyc (iptables backend); `policyc apply --backend iptables` runs:",
        "#   1. ipset restore                       < the ipset part",
        "#   2. iptables-restore -w --noflush       < the iptables part",
        "#   3. ip6tables-restore -w --noflush      < the ip6tables part",
        "#   4. ebtables-nft-restore --noflush      < the ebtables part (ARP, non-IP frames)",
        "# It changes only POLICYC-* chains and policyc-* sets, plus one jump per hook.",
    ]
    for section in SECTIONS:
        lines.append(f"{BEGIN}{section}")
        lines.extend(parts[section].splitlines())
        lines.append(f"{END}{section}")
    return "\n".join(lines) + "\n"


def split(text: str) -> dict[str, str]:
    """The sections of ``render``'s output, each a complete input of its tool."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith(BEGIN):
            current = line[len(BEGIN) :].strip()
            out[current] = []
        elif line.startswith(END):
            current = None
        elif current is not None:
            out[current].append(line)
    if set(out) != set(SECTIONS):
        raise BackendError(f"not an iptables-backend ruleset: sections {sorted(out)}")
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


def write_dir(text: str, directory: str) -> list[str]:
    """``compile -o DIR``: one file per tool; returns the paths written."""
    import os

    os.makedirs(directory, exist_ok=True)
    paths = []
    for section, body in split(text).items():
        path = os.path.join(directory, FILES[section])
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(body)
        paths.append(path)
    return paths


def apply(text: str, check: bool = False) -> None:
    """Program this network namespace; see ``backends.iptables_apply``."""
    from backends.iptables_apply import Applier

    Applier.from_env().apply(split(text), check=check)
