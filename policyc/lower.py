"""Rule graph -> backend-neutral chains.

Forward path (stateful; sees bridged traffic through br_netfilter, keyed on
addresses because the ports are invisible there):

    forward:   established -> accept; node traffic -> accept;
               jump from_pods (egress); jump to_pods (ingress); accept
    from_pods: ip saddr vmap @disp_eg4 (-> goto eg4_<hash>); same for IPv6;
               isolated but in no group (shared address) -> drop
    eg4_<hash>: the group chain of the local pods that exactly the same
               policies select: [NetworkPolicy section: each rule of those
               policies, peer . port -> return; drop]

One map lookup per direction finds a pod's group chain, which holds only
the rules of the policies selecting the pod (docs/dataplane.md).

Bridge path (stateless, per port): a frame from a pod port must carry that
pod's address; frames from unknown ``pc*`` ports are dropped (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policyc.chains import (
    ACCEPT,
    DROP,
    RETURN,
    Action,
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
from policyc.concat import port_field, section_rules
from policyc.ir import (
    DISPATCH_MAP,
    GROUP_PREFIX,
    IFACE_ADDR,
    IFACES,
    ISOLATED,
    NODE,
    Family,
    Group,
    PolicyNode,
    RuleGraph,
    RuleNode,
    SetKind,
)
from policyc.logprefix import Tag
from policyc.lower_log import LogConfig, drop_end, log_rule
from policyc.lower_tiers import tiered_chains
from policyc.model import Direction
from policyc.names import BRIDGE_CHAIN, IFACE_PREFIX

FAMILIES = (Family.V4, Family.V6)
DISPATCH = {Direction.EGRESS: "from_pods", Direction.INGRESS: "to_pods"}
WORD = {Direction.EGRESS: "egress", Direction.INGRESS: "ingress"}


def forward_chain(tiers: bool = False) -> Chain:
    """``tiers``: ClusterNetworkPolicies are in force, and they judge traffic
    to the node too, so it is not accepted here: the group chains exempt it
    from NetworkPolicy only (``lower_tiers``).  Traffic from the node stays
    accepted: no ingress peer of theirs (namespaces, pods) can match a node
    address."""
    rules = [
        # "Replies of established flows always pass."
        Rule((CtEstablished(),), ACCEPT, "replies of allowed flows"),
        Rule((NeighbourDiscovery(),), ACCEPT, "IPv6 neighbour discovery between pods"),
    ]
    for f in FAMILIES:
        # "traffic to and from the node where a Pod is running is always allowed"
        rules.append(Rule((InSet(Field.SADDR, NODE + f.suffix, f),), ACCEPT, "from the node"))
        if not tiers:
            rules.append(Rule((InSet(Field.DADDR, NODE + f.suffix, f),), ACCEPT, "to the node"))
    rules.append(Rule((), Action(Verb.JUMP, DISPATCH[Direction.EGRESS]), "egress of local pods"))
    rules.append(Rule((), Action(Verb.JUMP, DISPATCH[Direction.INGRESS]), "ingress of local pods"))
    return Chain("forward", tuple(rules), Hook.FORWARD)


def input_chain() -> Chain:
    """Pods to their own node's addresses reach ``input``, not ``forward``.
    Only with ClusterNetworkPolicies: "An Admin Deny toward a node's address
    drops a pod's traffic to it, including its own node" (issue 10).  The
    egress group chain decides; its NetworkPolicy section exempts the node."""
    rules = [
        Rule((CtEstablished(),), ACCEPT, "replies of allowed flows"),
        Rule((NeighbourDiscovery(),), ACCEPT, "IPv6 neighbour discovery"),
    ]
    for f in FAMILIES:
        to_node = InSet(Field.DADDR, NODE + f.suffix, f)
        rules.append(
            Rule((to_node,), Action(Verb.JUMP, DISPATCH[Direction.EGRESS]), "pods to the node")
        )
    return Chain("input", tuple(rules), Hook.INPUT)


def shared_chain_name(direction: Direction, family: Family) -> str:
    return f"shared_{GROUP_PREFIX[direction]}{family.suffix}"


def dispatch_chain(direction: Direction, shared: bool) -> Chain:
    """One verdict-map lookup per family sends a pod's packet to its group
    chain.  An isolated address with no group (its local claimants are in
    different groups) goes to the shared-address chain when the graph has
    shared addresses, else is dropped: fail closed either way."""
    own = Field.SADDR if direction is Direction.EGRESS else Field.DADDR
    word = WORD[direction]
    rules = [
        Rule(
            (),
            Action(Verb.VMAP, DISPATCH_MAP[direction] + f.suffix, own, f),
            f"{word} of local pods: to their group chain",
        )
        for f in FAMILIES
    ]
    for f in FAMILIES:
        iso = InSet(own, ISOLATED[direction] + f.suffix, f)
        if shared:
            target = Action(Verb.GOTO, shared_chain_name(direction, f))
            rules.append(Rule((iso,), target, f"{word}-isolated shared address"))
        else:
            rules.append(Rule((iso,), DROP, f"{word}-isolated, no group: fail closed"))
    return Chain(DISPATCH[direction], tuple(rules))


def shared_chain(
    direction: Direction, family: Family, graph: RuleGraph, log: LogConfig | None = None
) -> Chain:
    """For an address held by local pods of different groups: every rule of
    the node, each on behalf of the pods its policy selects (``@selected``
    holds an address only if the policy selects every local claimant), so
    only what every claimant's policies allow passes (docs/dataplane.md,
    "Shared addresses")."""
    kinds = {s.name: s.kind for s in graph.sets}
    rules: list[Rule] = []
    for node in graph.policies:
        # An audit policy allows nothing (docs/observability.md).
        if node.direction is direction and node.family is family and not node.audit:
            for rule in node.rules:
                rules.extend(rule_variants(rule, kinds, node.selected))
    name = shared_chain_name(direction, family)
    end = f"{WORD[direction]} not allowed by any policy"
    rules.extend(drop_end(log, direction, family, name, end))
    return Chain(name, tuple(rules))


def rule_variants(
    rule: RuleNode, kinds: dict[str, SetKind], selected: str | None = None
) -> list[Rule]:
    """One RuleNode -> one lowered rule per (peer set, port set) pair.  In a
    group chain the chain stands for the pod's own side (``selected`` None);
    the shared-address chain matches the own address in ``selected``."""
    f = rule.family
    own, other = (
        (Field.SADDR, Field.DADDR)
        if rule.direction is Direction.EGRESS
        else (Field.DADDR, Field.SADDR)
    )
    base: Match | None = None if selected is None else InSet(own, selected, f)
    peers: list[Match | None] = (
        [None] if rule.peer_sets is None else [InSet(other, s, f) for s in rule.peer_sets]
    )
    ports: list[Match | None] = [None]
    if rule.port_sets is not None:
        ports = []
        for s in rule.port_sets:
            field = port_field(kinds[s], rule.direction)
            ports.append(InSet(field, s, None if field is Field.PROTO_DPORT else f))
    out = []
    for peer in peers:
        for port in ports:
            matches = tuple(m for m in (base, peer, port) if m is not None)
            out.append(Rule(matches, RETURN, rule.label))
    return out


@dataclass(frozen=True, slots=True)
class Section:
    """One tier of a group chain: its rules, then ``end`` (None: fall
    through to the next section).  NetworkPolicy is one section today;
    ClusterNetworkPolicy's Admin and Baseline tiers will be two more."""

    name: str
    rules: tuple[Rule, ...]
    end: Rule | None = None  # the section's default, e.g. drop when isolated


def group_chain(name: str, sections: Sequence[Section]) -> Chain:
    """A group chain from its ordered sections; a chain that falls off its
    end returns (to ``forward``: the direction allows)."""
    rules: list[Rule] = []
    for sec in sections:
        rules.extend(sec.rules)
        if sec.end is not None:
            rules.append(sec.end)
    return Chain(name, tuple(rules))


Nodes = dict[tuple[str, Direction, Family], PolicyNode]


def _policy_rules(group: Group, nodes: Nodes, kinds: dict[str, SetKind]) -> list[Rule]:
    rules: list[Rule] = []
    for rule in section_rules(group, nodes):  # passes.concat_lookups may have merged them
        rules.extend(rule_variants(rule, kinds))
    return rules


def network_policy_section(
    group: Group, nodes: Nodes, kinds: dict[str, SetKind], log: LogConfig | None = None
) -> Section:
    """'If any NetworkPolicy selects a pod for a direction, the pod is
    isolated for it; what the union of their rules allows is allowed.'
    With ``log``, the drop is logged first (``--log-drops``)."""
    rules = _policy_rules(group, nodes, kinds)
    *logged, end = drop_end(
        log,
        group.direction,
        group.family,
        group.name,
        f"{WORD[group.direction]} not allowed by any policy",
    )
    return Section("NetworkPolicy", (*rules, *logged), end)


def audit_section(
    group: Group, nodes: Nodes, kinds: dict[str, SetKind], log: LogConfig | None = None
) -> Section:
    """An audit-only group (``policyc.io/mode: audit``, no enforced policy
    selects its pods): what the audit policies' rules allow returns; the
    rest is logged as "would drop" (with ``log``) and falls off the chain's
    end, which allows: audit "drops nothing because of it"."""
    rules = _policy_rules(group, nodes, kinds)
    if log is not None:
        rules.append(log_rule(log, Tag.AUDIT, group.direction, group.family, group.name))
    return Section("NetworkPolicy (audit)", tuple(rules))


def group_chains(graph: RuleGraph, log: LogConfig | None = None) -> list[Chain]:
    """One chain per group some local pod is in (``graph.groups``)."""
    kinds = {s.name: s.kind for s in graph.sets}  # one index, not a scan per rule
    nodes = {(p.policy, p.direction, p.family): p for p in graph.policies}
    tiers = {(p.policy, p.direction, p.family): p for p in graph.tiers}
    out = []
    for g in graph.groups:
        if g.alias:  # passes.share_chains: the same rules as g.alias
            out.append(Chain(g.name, (Rule((), Action(Verb.GOTO, g.alias), "same rules"),)))
        elif g.audit:
            out.append(group_chain(g.name, [audit_section(g, nodes, kinds, log)]))
        elif graph.tiers:
            np = network_policy_section(g, nodes, kinds, log).rules if g.policies else ()
            out.extend(tiered_chains(g, list(np), tiers, kinds, True, rule_variants, log))
        else:
            out.append(group_chain(g.name, [network_policy_section(g, nodes, kinds, log)]))
    return out


def bridge_chain() -> Chain:
    """Anti-spoofing per pod port: "a packet that enters from a pod's interface
    with a source address that isn't that pod's is dropped"."""
    rules = [
        Rule((IfacePrefix(IFACE_PREFIX, negate=True),), ACCEPT, "not a pod port"),
        Rule((InSet(Field.IIF_SADDR, IFACE_ADDR + "4", Family.V4),), ACCEPT, "pod's own IPv4"),
        Rule((InSet(Field.IIF_SADDR, IFACE_ADDR + "6", Family.V6),), ACCEPT, "pod's own IPv6"),
        Rule((InSet(Field.IIF_ARP_SADDR, IFACE_ADDR + "4", Family.V4),), ACCEPT, "pod's own ARP"),
        Rule((InSet(Field.IIF, IFACES, None), ArpProbe()), ACCEPT, "ARP probe"),
        Rule((InSet(Field.IIF, IFACES, None), LinkLocalIcmp6()), ACCEPT, "ND, DAD and MLD"),
        Rule((), DROP, "spoofed, or a pod port not programmed yet (fail closed)"),
    ]
    return Chain(BRIDGE_CHAIN, tuple(rules), Hook.BRIDGE_PREROUTING)


def lower(graph: RuleGraph, log: LogConfig | None = None) -> Ruleset:
    """``log``: log each drop at an isolated pod's chain end (``--log-drops``)."""
    forward = [forward_chain(bool(graph.tiers))]
    directions = (Direction.EGRESS, Direction.INGRESS)
    forward.extend(dispatch_chain(d, graph.shared) for d in directions)
    forward.extend(group_chains(graph, log))
    if graph.shared:
        forward.extend(shared_chain(d, f, graph, log) for d in directions for f in FAMILIES)
    if graph.tiers:
        forward.append(input_chain())
    bridge_kinds = (SetKind.IFACE_ADDR, SetKind.IFACE)
    return Ruleset(
        forward=tuple(forward),
        bridge=(bridge_chain(),),
        sets=tuple(s for s in graph.sets if s.kind not in bridge_kinds),
        bridge_sets=tuple(s for s in graph.sets if s.kind in bridge_kinds),
    )
