"""ebtables side of the iptables backend: the bridge anti-spoofing chain for
the frames iptables never sees (ARP and other non-IP ethertypes).

iptables' ``raw PREROUTING`` checks the source of IPv4/IPv6 frames from pod
ports (br_netfilter), but ARP and every other ethertype bypass it.  The same
lowered bridge chain (``policyc.lower.bridge_chain``) is therefore also
rendered for ``ebtables``, in the ``nat`` table, entered first from
``PREROUTING`` (every frame entering a bridge port, bridged or for the node):

    -A POLICYC-ANTISPOOF -i ! pc+ -j RETURN                            not a pod port
    -A POLICYC-ANTISPOOF -p IPv4 -i pcX -j RETURN                      IP: source checked
    -A POLICYC-ANTISPOOF -p IPv6 -i pcX -j RETURN                      by iptables (raw)
    -A POLICYC-ANTISPOOF -p ARP -i pcX --arp-ip-src 10.244.1.10 -j RETURN   pod's own ARP
    -A POLICYC-ANTISPOOF -p ARP -i pcX --arp-ip-src 0.0.0.0 -j RETURN       ARP probe
    -A POLICYC-ANTISPOOF -j DROP        spoofed ARP, other ethertypes, unknown pc* ports

So ARP must carry the port's own pod address (or be an RFC 5227 probe), a
pod port carries only IPv4, IPv6 and ARP, and a ``pc*`` port no compiled pod
owns carries nothing (fail closed), like the nftables backend's bridge chain.

Only ``ebtables-nft`` is used: ``ebtables-legacy`` needs the kernel's legacy
ebtables tables (``CONFIG_BRIDGE_NF_EBTABLES_LEGACY``), which this kernel
lacks, and ``ebtables-nft-restore --noflush`` commits one table in one
nf_tables transaction.  The rules are written in ``ebtables-save``'s own
spelling, so the save output of the chain equals the rendered rules.
"""

from __future__ import annotations

import os
import re
import shutil

from policyc.chains import (
    ArpProbe,
    Chain,
    Field,
    IfacePrefix,
    InSet,
    LinkLocalIcmp6,
    Match,
    Rule,
    Verb,
)
from policyc.errors import BackendError
from policyc.ir import Family, SetDef

TABLE = "nat"
BUILTIN = "PREROUTING"
CHAIN = "POLICYC-ANTISPOOF"
CHAIN_PREFIX = "POLICYC-"
PROTO = {Family.V4: "IPv4", Family.V6: "IPv6"}
HOOK_COMMENT = f"# hook (apply inserts it unless ebtables-save shows it): -I {BUILTIN} 1 -j {CHAIN}"
HOOK_RULE = f"-A {BUILTIN} -j {CHAIN}"


def tool(suffix: str = "") -> str:
    """``ebtables-nft<suffix>``; the plain name only if it is the nft variant."""
    for name in (f"ebtables-nft{suffix}", f"ebtables{suffix}"):
        path = shutil.which(name)
        if path is not None and "legacy" not in os.path.realpath(path):
            return path
    raise BackendError(
        "ebtables-nft is not installed (package iptables); it is needed for ARP "
        "anti-spoofing with --backend iptables"
    )


def _members(sets: dict[str, SetDef], m: InSet) -> tuple[object, ...]:
    s = sets.get(m.set)
    if s is None:
        raise BackendError(f"rule refers to an unknown set {m.set!r}")
    if m.negate:
        raise BackendError("Unsupported for ebtables: a negated bridge-port set")
    return s.elements


def rule_lines(sets: dict[str, SetDef], rule: Rule) -> list[str]:
    """One lowered bridge rule -> ebtables match strings (before ``-j``)."""
    matches: list[Match] = list(rule.matches)
    if not matches:
        return [""]
    first = matches[0]
    if len(matches) == 1 and isinstance(first, IfacePrefix):
        return [f"-i {'! ' if first.negate else ''}{first.prefix}+"]
    sets_m = [m for m in matches if isinstance(m, InSet)]
    other = [m for m in matches if not isinstance(m, InSet)]
    if len(sets_m) != 1:
        raise BackendError(f"Unsupported bridge rule for ebtables: {rule!r}")
    m = sets_m[0]
    out: list[str] = []
    if m.field is Field.IIF_SADDR and not other:
        # IPv4/IPv6 from the pod's port: iptables/ip6tables raw PREROUTING
        # checks the source address (br_netfilter); here only the ethertype.
        assert m.family is not None
        for e in _members(sets, m):
            assert isinstance(e, tuple)
            iface, ip = e
            if Family.of(ip) is m.family:
                out.append(f"-p {PROTO[m.family]} -i {iface}")
    elif m.field is Field.IIF_ARP_SADDR and not other:
        for e in _members(sets, m):
            assert isinstance(e, tuple)
            iface, ip = e
            if Family.of(ip) is Family.V4:
                out.append(f"-p ARP -i {iface} --arp-ip-src {ip}")
    elif m.field is Field.IIF and len(other) == 1 and isinstance(other[0], ArpProbe):
        out = [f"-p ARP -i {e} --arp-ip-src 0.0.0.0" for e in _members(sets, m)]
    elif m.field is Field.IIF and len(other) == 1 and isinstance(other[0], LinkLocalIcmp6):
        # ND/DAD/MLD: ICMPv6, checked by ip6tables raw PREROUTING
        out = [f"-p IPv6 -i {e}" for e in _members(sets, m)]
    else:
        raise BackendError(f"Unsupported bridge rule for ebtables: {rule!r}")
    return out


def render_chain(chain: Chain, sets: dict[str, SetDef]) -> list[str]:
    """The rules of the hooked bridge chain, duplicates dropped."""
    if chain.hook is None:
        raise BackendError(f"Unsupported for ebtables: bridge chain {chain.name} without a hook")
    lines: list[str] = []
    seen: set[str] = set()
    for rule in chain.rules:
        verb = rule.action.verb
        if verb not in (Verb.ACCEPT, Verb.DROP, Verb.RETURN):
            raise BackendError(f"Unsupported for ebtables: {verb} in {chain.name}")
        target = "DROP" if verb is Verb.DROP else "RETURN"
        variants = rule_lines(sets, rule)
        lines.append(f"# {chain.name}: {rule.comment}")
        if not variants:
            lines.append("# matches nothing (empty set)")
        for v in variants:
            line = " ".join(p for p in (f"-A {CHAIN}", v, f"-j {target}") if p)
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def render(bridge: tuple[Chain, ...], sets: dict[str, SetDef]) -> list[str]:
    """A complete ``ebtables-restore --noflush`` input (without the hook jump,
    which is a comment: apply inserts it when missing)."""
    hooked = [c for c in bridge if c.hook is not None]
    if len(hooked) != 1 or len(bridge) != 1:
        raise BackendError("Unsupported for ebtables: more than one bridge chain")
    return [
        f"*{TABLE}",
        f":{CHAIN} RETURN",
        *render_chain(hooked[0], sets),
        HOOK_COMMENT,
        "COMMIT",
    ]


def rules_of(text: str) -> list[str]:
    """policyc's rules (``-A POLICYC-...``) in ebtables-save output or our input."""
    return [ln for ln in text.splitlines() if re.match(rf"-A {CHAIN_PREFIX}\S+ ", ln)]


def chains_of(text: str) -> list[str]:
    return [ln[1:].split()[0] for ln in text.splitlines() if ln.startswith(":" + CHAIN_PREFIX)]


def hooks_of(text: str) -> list[str]:
    """Jumps from a builtin chain to policyc's chains, as ``-A B -j X`` lines."""
    return [ln for ln in text.splitlines() if re.match(rf"-A [A-Z]+ -j {CHAIN_PREFIX}\S+$", ln)]


def with_hook(text: str, saved: str) -> tuple[str, bool]:
    """The input with the hook comment turned into ``-I`` unless present."""
    present = HOOK_RULE in hooks_of(saved)
    if present:
        return text, False
    return text.replace(HOOK_COMMENT, f"-I {BUILTIN} 1 -j {CHAIN}"), True


def rollback_text(saved: str, added_hook: bool) -> str:
    """Restore policyc's chain as in ``saved`` (an ebtables-save of ``nat``)."""
    old_chains = chains_of(saved)
    lines = [f"*{TABLE}", f":{CHAIN} RETURN"]
    lines.extend(rules_of(saved))
    if added_hook:
        lines.append(f"-D {BUILTIN} -j {CHAIN}")
    if CHAIN not in old_chains:
        lines.append(f"-X {CHAIN}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def cleanup_text(saved: str) -> str:
    """Remove policyc's hook and chains from ``nat`` (nothing else)."""
    chains = chains_of(saved)
    if not chains:
        return ""
    lines = [f"*{TABLE}"]
    lines.extend(f":{c} RETURN" for c in chains)
    lines.extend("-D" + h[2:] for h in hooks_of(saved))
    lines.extend(f"-X {c}" for c in chains)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
