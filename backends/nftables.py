"""nftables backend: the lowered ruleset as one ``nft -f`` script.

The script replaces policyc's own tables (``inet policyc`` and ``bridge
policyc``) in a single transaction and leaves every other table alone:
``table X`` (create if missing) + ``delete table X`` + ``table X {...}``.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

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
)
from policyc.errors import BackendError
from policyc.ir import PROTO_NAMES, Family, SetDef, SetKind
from policyc.names import TABLE

ADDR_TYPE = {Family.V4: "ipv4_addr", Family.V6: "ipv6_addr"}
HOOKS = {
    Hook.FORWARD: "type filter hook forward priority filter; policy accept;",
    Hook.BRIDGE_PREROUTING: "type filter hook prerouting priority -300; policy accept;",
}
ND = "nd-neighbor-solicit, nd-neighbor-advert"
LINK_LOCAL_ICMP6 = (
    "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
    "mld-listener-report, mld2-listener-report"
)


def _addr_key(family: Family | None) -> str:
    return "ip" if family is Family.V4 else "ip6"


def set_type(s: SetDef) -> tuple[str, bool]:
    """(nft type, interval flag) of a set."""
    addr = ADDR_TYPE[s.family] if s.family else ""
    return {
        SetKind.ADDR: (addr, False),
        SetKind.CIDR: (addr, True),
        SetKind.PORTS: ("inet_proto . inet_service", True),
        SetKind.NAMED: (f"{addr} . inet_proto . inet_service", False),
        SetKind.IFACE_ADDR: (f"ifname . {addr}", False),
        SetKind.IFACE: ("ifname", False),
    }[s.kind]


def _range(lo: object, hi: object) -> str:
    assert isinstance(lo, ipaddress.IPv4Address | ipaddress.IPv6Address)
    assert isinstance(hi, ipaddress.IPv4Address | ipaddress.IPv6Address)
    if lo == hi:
        return str(lo)
    nets = list(ipaddress.summarize_address_range(lo, hi))  # type: ignore[arg-type]
    return str(nets[0]) if len(nets) == 1 else f"{lo}-{hi}"


def element(s: SetDef, e: object) -> str:
    if s.kind is SetKind.ADDR:
        return str(e)
    if s.kind is SetKind.IFACE:
        return f'"{e}"'
    assert isinstance(e, tuple)
    if s.kind is SetKind.CIDR:
        return _range(*e)
    if s.kind is SetKind.PORTS:
        proto, lo, hi = e
        return f"{PROTO_NAMES[proto]} . {lo}" + (f"-{hi}" if hi != lo else "")
    if s.kind is SetKind.NAMED:
        ip, proto, port = e
        return f"{ip} . {PROTO_NAMES[proto]} . {port}"
    iface, ip = e
    return f'"{iface}" . {ip}'


def render_set(s: SetDef) -> list[str]:
    typ, interval = set_type(s)
    # A '#' line, not a set comment: libnftables' JSON parser (1.0.6) drops
    # set comments, and the watcher's JSON path must program the same table.
    lines = [f"\t# {s.comment}"] if s.comment else []
    lines += [f"\tset {s.name} {{", f"\t\ttype {typ}"]
    if interval:
        lines.append("\t\tflags interval")
    if s.elements:
        elems = [element(s, e) for e in s.elements]
        lines.append("\t\telements = {")
        lines.extend(f"\t\t\t{e}," for e in elems)
        lines.append("\t\t}")
    lines.append("\t}")
    return lines


def render_match(m: Match) -> str:
    if isinstance(m, InSet):
        key = _addr_key(m.family)
        lhs = {
            Field.SADDR: f"{key} saddr",
            Field.DADDR: f"{key} daddr",
            Field.PROTO_DPORT: "meta l4proto . th dport",
            Field.DADDR_PROTO_DPORT: f"{key} daddr . meta l4proto . th dport",
            Field.IIF: "iifname",
            Field.IIF_SADDR: f"iifname . {key} saddr",
            Field.IIF_ARP_SADDR: "iifname . arp saddr ip",
        }[m.field]
        return f"{lhs} {'!= ' if m.negate else ''}@{m.set}"
    if isinstance(m, CtEstablished):
        return "ct state established,related"
    if isinstance(m, NeighbourDiscovery):
        return f"icmpv6 type {{ {ND} }}"
    if isinstance(m, IfacePrefix):
        return f'iifname {"!= " if m.negate else ""}"{m.prefix}*"'
    if isinstance(m, LinkLocalIcmp6):
        return f"ip6 saddr {{ ::, fe80::/10 }} icmpv6 type {{ {LINK_LOCAL_ICMP6} }}"
    if isinstance(m, ArpProbe):
        return "arp saddr ip 0.0.0.0"
    raise NotImplementedError(f"Unsupported match for nftables: {m!r}")


def _comment(text: str) -> str:
    return text.replace('"', "'")[:120]


def render_rule(rule: Rule) -> str:
    parts = [render_match(m) for m in rule.matches]
    parts.append(rule.action.verb.value + (f" {rule.action.target}" if rule.action.target else ""))
    if rule.comment:
        parts.append(f'comment "{_comment(rule.comment)}"')
    return "\t\t" + " ".join(parts)


def render_chain(chain: Chain) -> list[str]:
    lines = [f"\tchain {chain.name} {{"]
    if chain.hook is not None:
        lines.append(f"\t\t{HOOKS[chain.hook]}")
    lines.extend(render_rule(r) for r in chain.rules)
    lines.append("\t}")
    return lines


def render_table(family: str, sets: tuple[SetDef, ...], chains: tuple[Chain, ...]) -> list[str]:
    lines = [
        f"table {family} {TABLE}",
        f"delete table {family} {TABLE}",
        f"table {family} {TABLE} {{",
    ]
    for s in sets:
        lines.extend(render_set(s))
    for c in chains:
        lines.extend(render_chain(c))
    lines.append("}")
    return lines


def render(ruleset: Ruleset) -> str:
    lines = ["#!/usr/sbin/nft -f", "# generated by policyc; replaces only policyc's own tables"]
    lines += render_table("inet", ruleset.sets, ruleset.forward)
    lines += render_table("bridge", ruleset.bridge_sets, ruleset.bridge)
    return "\n".join(lines) + "\n"


def apply(script: str, check: bool = False) -> None:
    """Program the kernel of the current network namespace in one transaction.

    libnftables (the ``nftables`` Python bindings) runs the whole script as
    one batch: either all of it commits or none of it does.
    """
    try:
        import nftables  # type: ignore[import-not-found]
    except ImportError:
        nftables = None
    if nftables is not None and not check:
        nft = nftables.Nftables()
        rc, _out, err = nft.cmd(script)
        if rc != 0:
            raise BackendError(f"nft rejected the ruleset (nothing was changed):\n{err.strip()}")
        return
    binary = shutil.which("nft")
    if binary is None:
        raise BackendError("neither the nftables Python bindings nor the nft binary is installed")
    argv = [binary, "-c", "-f", "-"] if check else [binary, "-f", "-"]
    proc = subprocess.run(argv, input=script, text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        raise BackendError(
            f"nft rejected the ruleset (nothing was changed):\n{proc.stderr.strip()}"
        )
