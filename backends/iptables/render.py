"""Ruleset -> IptablesState: typed sets, tables, chains, rules and hooks; no text.

* the forward chains live in ``filter`` and are entered from ``FORWARD``;
* the bridge anti-spoofing chain lives in ``raw`` and is entered from
  ``PREROUTING`` (br_netfilter shows bridged IPv4/IPv6 frames there);
* rules for ARP become notes: iptables never sees ARP; the bridge chain is
  rendered for ebtables too (``backends.iptables.ebtables``);
* only the sets some rule refers to are programmed.
"""

from __future__ import annotations

from backends.iptables import ebtables
from backends.iptables.dialect import (
    ARP,
    FAMILIES,
    HOOKS,
    TABLE_ORDER,
    Ctx,
    chain_name,
    map_rules,
    reachable,
    render_action,
    rule_family,
    rule_variants,
)
from backends.iptables.ipset import ipsets
from backends.iptables.state import (
    BridgeSource,
    Chain,
    HookJump,
    IpSet,
    IptablesState,
    Note,
    Rule,
    Table,
    Tool,
)
from policyc.chains import Chain as LoweredChain
from policyc.chains import Ruleset, Verb
from policyc.errors import BackendError
from policyc.ir import Family, SetDef

TOOL = {Family.V4: Tool.IPTABLES, Family.V6: Tool.IP6TABLES}


def render_chain(ctx: Ctx, chain: LoweredChain) -> Chain:
    """One lowered chain -> its iptables rules for ``ctx.family``."""
    body: list[Rule | Note] = []
    for r in chain.rules:
        if r.action.verb is Verb.VMAP:
            if r.action.family not in (None, ctx.family):
                continue
            dispatch = map_rules(ctx, r)
            if not dispatch:
                body.append(Note(f"no group (empty map): {chain.name}: {r.comment}"))
            body.extend(Rule(args, target) for args, target in dispatch)
            continue
        fam = rule_family(r)
        if fam == ARP:
            body.append(Note(f"not for iptables (ARP): {chain.name}: {r.comment}"))
        elif fam in (None, ctx.family):
            variants = rule_variants(ctx, r)
            if not variants:  # a per-port set without members for this family
                body.append(Note(f"matches nothing (empty set): {chain.name}: {r.comment}"))
            target = render_action(chain, r)
            body.extend(Rule(v, target) for v in variants)
    return Chain(chain_name(chain), "-", tuple(body))


def table(name: str, chains: tuple[LoweredChain, ...], ctx: Ctx) -> Table | None:
    """One table of ``ctx.family`` (None: no chain of it is reachable)."""
    reached = reachable(chains, ctx)
    if not reached:
        return None
    hooks = tuple(HookJump(HOOKS[c.hook][1], chain_name(c)) for c in reached if c.hook is not None)
    rendered = tuple(render_chain(ctx, c) for c in reached)
    return Table(TOOL[ctx.family], name, rendered, hooks)


def family_tables(ruleset: Ruleset, ctx: Ctx) -> list[Table]:
    groups = {"filter": ruleset.forward, "raw": ruleset.bridge}
    out = []
    for name in TABLE_ORDER:
        t = table(name, groups[name], ctx)
        if t is not None:
            out.append(t)
    return out


def bridge_tables(source: BridgeSource) -> dict[tuple[Tool, str], Table]:
    """The anti-spoofing tables alone (``raw`` of both families, ebtables
    ``nat``), rendered from the bridge chain and its per-port sets: O(local
    pods) work, what ``diff.patch`` redoes on a pod event."""
    sets = {s.name: s for s in source.sets}
    out: dict[tuple[Tool, str], Table] = {}
    for f in FAMILIES:
        t = table("raw", source.chains, Ctx(f, sets))
        if t is not None:
            out[(t.tool, t.name)] = t
    if source.chains:
        eb = ebtables.render(source.chains, sets)
        out[(eb.tool, eb.name)] = eb
    return out


def used_sets(tables: list[Table]) -> set[str]:
    """Names after ``--match-set`` in any rule."""
    out: set[str] = set()
    for t in tables:
        for c in t.chains:
            for r in c.rules:
                out.update(
                    b for a, b in zip(r.args, r.args[1:], strict=False) if a == "--match-set"
                )
    return out


def render(ruleset: Ruleset) -> IptablesState:
    """The state a node's kernel should hold for ``ruleset``.

    Raises BackendError for what iptables cannot express."""
    sets: dict[str, SetDef] = {s.name: s for s in (*ruleset.sets, *ruleset.bridge_sets)}
    tables = [t for f in FAMILIES for t in family_tables(ruleset, Ctx(f, sets))]
    used = used_sets(tables)
    all_sets: list[IpSet] = []
    for s in sorted(sets.values(), key=lambda s: s.name):
        all_sets.extend(ipsets(s, FAMILIES))
    missing = used - {s.name for s in all_sets}
    if missing:
        raise BackendError(f"rules refer to sets that are not rendered: {sorted(missing)}")
    if ruleset.bridge:
        tables.append(ebtables.render(ruleset.bridge, sets))
    source = BridgeSource(ruleset.bridge, ruleset.bridge_sets)
    return IptablesState(tuple(s for s in all_sets if s.name in used), tuple(tables), source)
