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
import shutil

from backends.iptables.state import CHAIN_PREFIX, HookJump, Note, Rule, Table, Tool
from backends.iptables.state import Chain as StateChain
from policyc.chains import (
    ArpProbe,
    Chain,
    Field,
    IfacePrefix,
    InSet,
    LinkLocalIcmp6,
    Match,
    Verb,
)
from policyc.chains import Rule as LoweredRule
from policyc.errors import BackendError
from policyc.ir import Family, SetDef

TABLE = "nat"
BUILTIN = "PREROUTING"
CHAIN = CHAIN_PREFIX + "ANTISPOOF"
PROTO = {Family.V4: "IPv4", Family.V6: "IPv6"}


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


def rule_lines(sets: dict[str, SetDef], rule: LoweredRule) -> list[str]:
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


def render_chain(chain: Chain, sets: dict[str, SetDef]) -> tuple[Rule | Note, ...]:
    """The rules of the hooked bridge chain, duplicates dropped."""
    if chain.hook is None:
        raise BackendError(f"Unsupported for ebtables: bridge chain {chain.name} without a hook")
    body: list[Rule | Note] = []
    seen: set[Rule] = set()
    for rule in chain.rules:
        verb = rule.action.verb
        if verb not in (Verb.ACCEPT, Verb.DROP, Verb.RETURN):
            raise BackendError(f"Unsupported for ebtables: {verb} in {chain.name}")
        target = ("-j", "DROP" if verb is Verb.DROP else "RETURN")
        variants = rule_lines(sets, rule)
        body.append(Note(f"{chain.name}: {rule.comment}"))
        if not variants:
            body.append(Note("matches nothing (empty set)"))
        for v in variants:
            r = Rule(tuple(v.split()), target)
            if r not in seen:
                seen.add(r)
                body.append(r)
    return tuple(body)


def render(bridge: tuple[Chain, ...], sets: dict[str, SetDef]) -> Table:
    """policyc's part of ebtables' ``nat`` table: the chain and its hook."""
    hooked = [c for c in bridge if c.hook is not None]
    if len(hooked) != 1 or len(bridge) != 1:
        raise BackendError("Unsupported for ebtables: more than one bridge chain")
    chain = StateChain(CHAIN, "RETURN", render_chain(hooked[0], sets))
    return Table(Tool.EBTABLES, TABLE, (chain,), (HookJump(BUILTIN, CHAIN),))
