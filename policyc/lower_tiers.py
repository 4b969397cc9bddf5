"""A group chain with the ClusterNetworkPolicy tiers (docs/clusternetworkpolicy.md).

Issue 10, "Semantics", per direction at one pod:

1. "The Admin tier, by ascending priority, rules in order.  The first
   matching Accept or Deny is final.  Pass skips the rest of the Admin tier."
2. "NetworkPolicy, if the pod is isolated for that direction."
3. "The Baseline tier, same rules; there Pass means no Baseline verdict."
4. "Default allow."

Lowered, for the group ``eg4_x``::

    eg4_x:     <Admin rules: Accept -> return, Deny -> drop, Pass -> goto eg4_x_np>
               goto eg4_x_np                  (only if some Admin rule passes;
                                               else the rest follows inline)
    eg4_x_np:  ip daddr @node4 goto eg4_x_bl  (egress, NetworkPolicy's node
                                               exemption; return if no Baseline)
               <NetworkPolicy rules -> return>
               drop                           (isolated)
    eg4_x_bl:  <Baseline rules: Accept -> return, Deny -> drop, Pass -> return>
               (end: return, default allow)

``return`` goes back to ``forward`` (or ``input``): the direction allows.
Without NetworkPolicy the Baseline rules follow inline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from policyc.chains import DROP, RETURN, Action, Chain, Field, InSet, Rule, Verb
from policyc.ir import NODE, Family, Group, PolicyNode, RuleNode, SetKind
from policyc.logprefix import Tag, rule_ref
from policyc.lower_log import LogConfig, log_rule
from policyc.model import Action as TierAction
from policyc.model import Direction

Nodes = Mapping[tuple[str, Direction, Family], PolicyNode]
# ``lower.rule_variants``: one RuleNode -> its lowered rules (peer x port sets).
Variants = Callable[[RuleNode, dict[str, SetKind]], list[Rule]]


def tier_rules(
    group: Group,
    keys: tuple[str, ...],
    nodes: Nodes,
    kinds: dict[str, SetKind],
    on_pass: Action,
    variants: Variants,
    log: LogConfig | None = None,
    audits: list[Chain] | None = None,
) -> list[Rule]:
    """The rules of ``keys`` (in evaluation order), each with its action:
    Accept returns (the direction allows), Deny drops, Pass does ``on_pass``.
    With ``log`` (``--log-drops``) each Deny is logged first, its prefix
    naming the rule (``logprefix.rule_ref``); an audit policy becomes a
    ``jump`` to its own chain (:func:`audit_chain`), appended to ``audits``."""
    verbs = {TierAction.ACCEPT: RETURN, TierAction.DENY: DROP, TierAction.PASS: on_pass}
    out: list[Rule] = []
    for key in keys:
        node = nodes.get((key, group.direction, group.family))
        if node is not None and node.audit:
            if log is not None and audits is not None:
                chain = audit_chain(
                    group, node, f"{group.name}_a{len(audits)}", kinds, variants, log
                )
                if chain.rules:
                    audits.append(chain)
                    out.append(Rule((), Action(Verb.JUMP, chain.name), "audit policy"))
            continue
        for rule in node.rules if node is not None else ():
            action = verbs[rule.action or TierAction.ACCEPT]
            label = f"{rule.label} {rule.action}"
            logged = log is not None and rule.action is TierAction.DENY
            for v in variants(rule, kinds):
                if logged and log is not None:
                    ref = rule_ref(rule.policy, rule.index)
                    entry = log_rule(log, Tag.DROP, group.direction, group.family, ref)
                    out.append(replace(entry, matches=v.matches))
                out.append(Rule(v.matches, action, label))
    return out


def audit_chain(
    group: Group,
    node: PolicyNode,
    name: str,
    kinds: dict[str, SetKind],
    variants: Variants,
    log: LogConfig,
) -> Chain:
    """An audit-mode policy (``policyc.io/mode: audit``) decides nothing: the
    group's chain jumps here, and the policy's rules run as if enforced, but
    every verdict is ``return`` (back to the next rule of the group's chain):
    its first matching rule ends it ("the first matching Accept or Deny is
    final", Pass skips the rest), and a matching Deny is logged first, tagged
    ``audit`` (docs/observability.md).  Rules after the last Deny cannot log,
    so they are left out; a policy without Deny gives an empty chain."""
    last = max((i for i, r in enumerate(node.rules) if r.action is TierAction.DENY), default=-1)
    out: list[Rule] = []
    for rule in node.rules[: last + 1]:
        label = f"{rule.label} {rule.action} (audit)"
        for v in variants(rule, kinds):
            if rule.action is TierAction.DENY:
                ref = rule_ref(rule.policy, rule.index)
                entry = log_rule(log, Tag.AUDIT, group.direction, group.family, ref)
                out.append(replace(entry, matches=v.matches))
            out.append(Rule(v.matches, RETURN, label))
    return Chain(name, tuple(out))


def has_pass(group: Group, nodes: Nodes) -> bool:
    return any(
        r.action is TierAction.PASS
        for key in group.admin
        if (node := nodes.get((key, group.direction, group.family))) is not None and not node.audit
        for r in node.rules
    )


def tiered_chains(
    group: Group,
    np_rules: list[Rule],
    tiers: Nodes,
    kinds: dict[str, SetKind],
    node_exempt: bool,
    variants: Variants,
    log: LogConfig | None = None,
) -> list[Chain]:
    """The group's chain (and its ``_np``, ``_bl`` continuations when a
    Pass or the node exemption must skip ahead); ``np_rules`` are the
    NetworkPolicy rules (each returning).  ``node_exempt``: the forward chain
    no longer accepts traffic to the node, so the NetworkPolicy section skips
    it ("traffic to and from the node where a Pod is running is always
    allowed" binds NetworkPolicy only).  ``log``: Deny rules log first."""
    name, d, f = group.name, group.direction, group.family
    word = "egress" if d is Direction.EGRESS else "ingress"
    chains: list[Chain] = []
    audits: list[Chain] = []  # audit policies' chains, each reached by a jump
    baseline = tier_rules(group, group.baseline, tiers, kinds, RETURN, variants, log, audits)
    rest: list[Rule]
    if group.policies:
        rest = []
        if node_exempt and d is Direction.EGRESS:
            skip = RETURN
            if baseline:
                skip = Action(Verb.GOTO, f"{name}_bl")
                chains.append(Chain(f"{name}_bl", tuple(baseline)))
            node = InSet(Field.DADDR, NODE + f.suffix, f)
            rest.append(Rule((node,), skip, "to the node: exempt from NetworkPolicy"))
        rest += np_rules
        rest.append(Rule((), DROP, f"{word} not allowed by any policy"))
    else:
        rest = baseline
    if has_pass(group, tiers) and not rest:  # nothing after the Admin tier
        admin = tier_rules(group, group.admin, tiers, kinds, RETURN, variants, log, audits)
    elif has_pass(group, tiers):
        goto_rest = Action(Verb.GOTO, f"{name}_np")
        admin = tier_rules(group, group.admin, tiers, kinds, goto_rest, variants, log, audits)
        admin.append(Rule((), goto_rest, "after the Admin tier"))
        chains.append(Chain(f"{name}_np", tuple(rest)))
    else:
        admin = tier_rules(group, group.admin, tiers, kinds, RETURN, variants, log, audits)
        admin += rest
    return [Chain(name, tuple(admin)), *chains, *audits]
