"""Rule graph -> backend-neutral chains.

Forward path (stateful; sees bridged traffic through br_netfilter, keyed on
addresses because the ports are invisible there):

    forward:  established -> accept; node traffic -> accept;
              jump from_pods (egress); jump to_pods (ingress); accept
    egressF:  for every policy rule: selected src . peer dst . port -> return
              drop

Bridge path (stateless, per port): a frame from a pod port must carry that
pod's address; frames from unknown ``pc*`` ports are dropped (fail closed).
"""

from __future__ import annotations

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
from policyc.ir import (
    IFACE_ADDR,
    IFACES,
    ISOLATED,
    NODE,
    Family,
    PolicyNode,
    RuleGraph,
    RuleNode,
    SetKind,
)
from policyc.lower_log import LogConfig, drop_end
from policyc.model import Direction
from policyc.names import BRIDGE_CHAIN, IFACE_PREFIX

FAMILIES = (Family.V4, Family.V6)
DISPATCH = {Direction.EGRESS: "from_pods", Direction.INGRESS: "to_pods"}
WORD = {Direction.EGRESS: "egress", Direction.INGRESS: "ingress"}


def chain_name(direction: Direction, family: Family) -> str:
    return WORD[direction] + family.suffix


def forward_chain() -> Chain:
    rules = [
        # "Replies of established flows always pass."
        Rule((CtEstablished(),), ACCEPT, "replies of allowed flows"),
        Rule((NeighbourDiscovery(),), ACCEPT, "IPv6 neighbour discovery between pods"),
    ]
    for f in FAMILIES:
        # "traffic to and from the node where a Pod is running is always allowed"
        rules.append(Rule((InSet(Field.SADDR, NODE + f.suffix, f),), ACCEPT, "from the node"))
        rules.append(Rule((InSet(Field.DADDR, NODE + f.suffix, f),), ACCEPT, "to the node"))
    rules.append(Rule((), Action(Verb.JUMP, DISPATCH[Direction.EGRESS]), "egress of local pods"))
    rules.append(Rule((), Action(Verb.JUMP, DISPATCH[Direction.INGRESS]), "ingress of local pods"))
    return Chain("forward", tuple(rules), Hook.FORWARD)


def dispatch_chain(direction: Direction) -> Chain:
    own = Field.SADDR if direction is Direction.EGRESS else Field.DADDR
    rules = tuple(
        Rule(
            (InSet(own, ISOLATED[direction] + f.suffix, f),),
            Action(Verb.GOTO, chain_name(direction, f)),
            f"{WORD[direction]}-isolated pods",
        )
        for f in FAMILIES
    )
    return Chain(DISPATCH[direction], rules)


def rule_variants(rule: RuleNode, kinds: dict[str, SetKind], selected: str) -> list[Rule]:
    """One RuleNode -> one lowered rule per (peer set, port set) pair."""
    f = rule.family
    own, other = (
        (Field.SADDR, Field.DADDR)
        if rule.direction is Direction.EGRESS
        else (Field.DADDR, Field.SADDR)
    )
    base: Match = InSet(own, selected, f)
    peers: list[Match | None] = (
        [None] if rule.peer_sets is None else [InSet(other, s, f) for s in rule.peer_sets]
    )
    ports: list[Match | None] = [None]
    if rule.port_sets is not None:
        ports = []
        for s in rule.port_sets:
            field = Field.PROTO_DPORT if kinds[s] is SetKind.PORTS else Field.DADDR_PROTO_DPORT
            ports.append(InSet(field, s, f if field is Field.DADDR_PROTO_DPORT else None))
    out = []
    for peer in peers:
        for port in ports:
            matches = tuple(m for m in (base, peer, port) if m is not None)
            out.append(Rule(matches, RETURN, rule.label))
    return out


def policy_chain(
    direction: Direction, family: Family, graph: RuleGraph, log: LogConfig | None = None
) -> Chain:
    nodes: list[PolicyNode] = [
        p for p in graph.policies if p.direction is direction and p.family is family and not p.audit
    ]
    kinds = {s.name: s.kind for s in graph.sets}  # one index, not a scan per rule
    rules: list[Rule] = []
    for node in nodes:
        for rule in node.rules:
            rules.extend(rule_variants(rule, kinds, node.selected))
    name = chain_name(direction, family)
    rules.extend(
        drop_end(log, direction, family, name, f"{WORD[direction]} not allowed by any policy")
    )
    return Chain(name, tuple(rules))


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
    forward = [forward_chain()]
    for direction in (Direction.EGRESS, Direction.INGRESS):
        forward.append(dispatch_chain(direction))
        forward.extend(policy_chain(direction, f, graph, log) for f in FAMILIES)
    bridge_kinds = (SetKind.IFACE_ADDR, SetKind.IFACE)
    return Ruleset(
        forward=tuple(forward),
        bridge=(bridge_chain(),),
        sets=tuple(s for s in graph.sets if s.kind not in bridge_kinds),
        bridge_sets=tuple(s for s in graph.sets if s.kind in bridge_kinds),
    )
