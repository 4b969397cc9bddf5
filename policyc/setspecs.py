"""Set definitions and their membership, pod by pod.

A set's name is a hash of its definition; its members come from what each
pod contributes (``member``) or are fixed elements (``static``).  The full
compiler and the watcher's incremental updates use the same functions, so
their semantics cannot fork.

An address can have more than one live claimant (an old pod's delete not yet
seen while a new pod already holds its IP).  A set's ``claim`` says how such
an address is judged: sets that grant access take it only if *every* claimant
contributes it (every claimant on this node for a policy's selected pods),
sets that restrict take it if *any* does (docs/dataplane.md, "Shared
addresses").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from policyc.intervals import block_ranges, union
from policyc.ir import Element, Family, SetKind
from policyc.model import (
    IPAddress,
    IPBlock,
    NetworkPolicy,
    Op,
    Peer,
    Pod,
    PortSpec,
    Protocol,
    Requirement,
    Selector,
)
from policyc.names import pod_iface, short_hash
from policyc.scopeindex import Scope

NsLabels = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class World:
    """What a membership function may look at besides the pod itself."""

    ns_labels: NsLabels
    is_local: Callable[[Pod], bool]


Member = Callable[[Pod, World], Iterable[Element]]


class Claim(StrEnum):
    """How an element keyed on an address shared by several live pods is judged."""

    # Granting peer-side sets (peers, named ports): least privilege, the
    # element is a member only if every claimant, on any node, contributes it.
    EVERY = "every"
    # A policy's selected pods (the "own" side of its allow rules): only
    # if every claimant on this node contributes it.  A node enforces the own
    # side for its local pods only: a packet from or to the address on this
    # node is one of theirs (anti-spoofing, per-node pod CIDRs).
    EVERY_LOCAL = "every-local"
    # Restricting or per-pod sets (isolation, anti-spoofing, interfaces,
    # fixed sets): a member if any claimant contributes it.
    ANY = "any"


@dataclass(frozen=True, slots=True)
class SetSpec:
    name: str
    kind: SetKind
    # A set of a family holds only elements keyed on addresses of that family:
    # ``member`` yields nothing for a pod without one (Membership skips it).
    family: Family | None
    comment: str
    definition: str
    member: Member | None = None  # pod-driven
    static: tuple[Element, ...] = ()
    # The pods that can be members (``policyc.scopeindex``); None: any pod.
    # Only an index: ``member`` stays the authority.
    scopes: tuple[Scope, ...] | None = None
    claim: Claim = Claim.ANY
    # ``definition`` in a normal form (selectors' requirements sorted, peers
    # deduplicated, a peer another covers left out): sets equal here have one
    # member function, so equal elements after every event.  Empty: as
    # ``definition``.  Read by ``passes.hash_cons_sets`` (through ``SetDef``).
    normal: str = ""

    @property
    def canonical(self) -> str:
        return self.normal or self.definition

    def address_of(self, elem: Element) -> IPAddress:
        """The pod address an element of an ``EVERY*`` set is keyed on:
        ADDR elements are addresses, NAMED ones ``(address, proto, port)``,
        VMAP ones ``(address, chain)``."""
        if self.kind in (SetKind.NAMED, SetKind.VMAP):
            return elem[0]  # type: ignore[index,no-any-return]
        return elem  # type: ignore[return-value]


def spec_name(prefix: str, definition: str, family: Family | None) -> str:
    return f"{prefix}_{short_hash(definition, 10)}{family.suffix if family else ''}"


def pod_ips(pod: Pod, family: Family) -> list[object]:
    """``pod``'s addresses of ``family`` (set elements)."""
    return [ip for ip in pod.ips if Family.of(ip) is family]


def selection(pol: NetworkPolicy, family: Family) -> SetSpec:
    ns, sel = pol.namespace, pol.pod_selector

    def member(pod: Pod, world: World) -> Iterable[Element]:
        if pod.namespace == ns and world.is_local(pod) and sel.matches(pod.label_map):
            return pod_ips(pod, family)
        return ()

    definition = f"select {ns} {sel}"
    return SetSpec(
        spec_name("sel", definition, family),
        SetKind.ADDR,
        family,
        f"local pods of {ns} matching {sel}",
        definition,
        member,
        scopes=(Scope(sel, ns),),
        claim=Claim.EVERY_LOCAL,
        normal=f"select {ns} {normal_selector(sel)}",
    )


def _requirement_text(req: Requirement) -> str:
    if req.op is Op.EXISTS:
        return req.key
    if req.op is Op.DOES_NOT_EXIST:
        return "!" + req.key
    word = "in" if req.op is Op.IN else "notin"
    return f"{req.key} {word} ({','.join(sorted(set(req.values)))})"


def normal_selector(sel: Selector | None) -> str:
    """A selector's normal text: "*" when it matches everything (None or
    empty: "An empty label selector matches all objects"), else its
    requirements (ANDed, so their order is immaterial) sorted, once each."""
    if sel is None or not sel.requirements:
        return "*"
    return ",".join(sorted({_requirement_text(r) for r in sel.requirements}))


NAME_LABEL = "kubernetes.io/metadata.name"


def _normal_namespace(sel: Selector | None, policy_ns: str) -> str:
    """``<own>`` for the policy's namespace: no namespaceSelector, or one that
    names it by the label "The Kubernetes control plane sets ... on all
    namespaces" (``parse.parse_namespace`` and the builder's defaults set it
    to the name, always); "*" for every namespace; else the selector."""
    if sel is None:
        return "<own>"
    reqs = sel.requirements
    if len(reqs) == 1 and reqs[0].key == NAME_LABEL and reqs[0].op is Op.IN:
        if set(reqs[0].values) == {policy_ns}:
            return "<own>"
    return normal_selector(sel)


def _normal_peers(peers: Iterable[Peer], policy_ns: str) -> list[tuple[str, str]]:
    """(namespace part, pod part) of each peer, once each, leaving out a peer
    that another selects a superset of: the same or every namespace, and
    the same or every pod ("<own>" is the policy's namespace)."""
    found = {
        (_normal_namespace(p.namespace_selector, policy_ns), normal_selector(p.pod_selector))
        for p in peers
    }

    def covered(q: tuple[str, str]) -> bool:
        # p covers q (p != q) iff p[0] is "*" or q[0] and p[1] is "*" or q[1]:
        # three lookups, not a scan of every peer (10,000 peers: 60 s -> 0.1 s)
        return any(p != q and p in found for p in (("*", "*"), ("*", q[1]), (q[0], "*")))

    return sorted(q for q in found if not covered(q))


def peer_matches(peer: Peer, policy_ns: str, pod: Pod, ns_labels: NsLabels) -> bool:
    if peer.namespace_selector is None:
        # "If NamespaceSelector is also not set, this selects pods in the
        # policy's own namespace" (only with podSelector set).
        if pod.namespace != policy_ns:
            return False
    elif not peer.namespace_selector.matches(ns_labels(pod.namespace)):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(pod.label_map)


def _peer_scope(peer: Peer, policy_ns: str) -> Scope:
    """The pods ``peer`` can select, as ``peer_matches`` reads it."""
    own = policy_ns if peer.namespace_selector is None else ""  # as the definition
    return Scope(peer.pod_selector or Selector(), own, peer.namespace_selector)


def _peer_text(peer: Peer) -> str:
    ns = "<own>" if peer.namespace_selector is None else str(peer.namespace_selector)
    pod = "*" if peer.pod_selector is None else str(peer.pod_selector)
    return f"ns[{ns}] pod[{pod}]"


@dataclass(frozen=True, slots=True)
class PeerIndex:
    """A policy's peers by a label their pod selector requires, so a pod is
    tested against the peers it could match, not all of them (100,000 peers
    times every pod otherwise).  Only an index: ``peer_matches`` decides.

    A peer whose pod selector has an ``In`` requirement is filed under each
    (key, value) it allows, else under an ``Exists`` key, else in ``rest``.
    """

    by_label: Mapping[tuple[str, str], tuple[Peer, ...]]
    by_key: Mapping[str, tuple[Peer, ...]]
    rest: tuple[Peer, ...]

    @staticmethod
    def of(peers: Iterable[Peer]) -> PeerIndex:
        by_label: dict[tuple[str, str], list[Peer]] = {}
        by_key: dict[str, list[Peer]] = {}
        rest: list[Peer] = []
        for peer in dict.fromkeys(peers):  # identical peers once
            reqs = peer.pod_selector.requirements if peer.pod_selector else ()
            anchor = next((r for r in reqs if r.op is Op.IN), None)
            if anchor is not None:
                for value in anchor.values:
                    by_label.setdefault((anchor.key, value), []).append(peer)
            elif (key := next((r.key for r in reqs if r.op is Op.EXISTS), None)) is not None:
                by_key.setdefault(key, []).append(peer)
            else:
                rest.append(peer)
        return PeerIndex(
            {k: tuple(v) for k, v in by_label.items()},
            {k: tuple(v) for k, v in by_key.items()},
            tuple(rest),
        )

    def candidates(self, labels: Mapping[str, str]) -> Iterator[Peer]:
        """Every peer that could match a pod with ``labels`` (and maybe more)."""
        yield from self.rest
        for item in labels.items():
            yield from self.by_label.get(item, ())
            yield from self.by_key.get(item[0], ())


def peer_pods(peers: list[Peer], policy_ns: str, family: Family) -> SetSpec:
    text = " | ".join(sorted(_peer_text(p) for p in peers))
    index = PeerIndex.of(peers)

    def member(pod: Pod, world: World) -> Iterable[Element]:
        candidates = index.candidates(pod.label_map)
        if any(peer_matches(p, policy_ns, pod, world.ns_labels) for p in candidates):
            return pod_ips(pod, family)
        return ()

    # "If NamespaceSelector is also not set, this selects pods in the policy's
    # own namespace": only then does the policy's namespace belong to the
    # definition.  Peers that all carry a namespaceSelector select the same
    # pods from any policy, so every policy that writes them shares one set
    # (hash-consed by definition: pod events still change elements only).
    own = any(p.namespace_selector is None for p in peers)
    definition = f"pods {policy_ns if own else '*'} {text}"
    normal = _normal_peers(peers, policy_ns)
    normal_own = any(ns == "<own>" for ns, _ in normal)
    normal_text = " | ".join(f"ns[{ns}] pod[{pod}]" for ns, pod in normal)
    return SetSpec(
        spec_name("peer", definition, family),
        SetKind.ADDR,
        family,
        f"pods: {text}",
        definition,
        member,
        scopes=tuple(_peer_scope(p, policy_ns) for p in peers),
        claim=Claim.EVERY,
        normal=f"pods {policy_ns if normal_own else '*'} {normal_text}",
    )


def _block_text(block: IPBlock) -> str:
    exc = ",".join(str(e) for e in block.excepts)
    return f"{block.cidr}" + (f" except {exc}" if exc else "")


def peer_blocks(blocks: list[IPBlock], family: Family) -> SetSpec | None:
    version = 4 if family is Family.V4 else 6
    mine = [b for b in blocks if b.cidr.version == version]
    if not mine:
        return None
    text = " | ".join(sorted(_block_text(b) for b in mine))
    definition = f"blocks {text}"
    return SetSpec(
        spec_name("net", definition, family),
        SetKind.CIDR,
        family,
        f"ipBlock: {text}",
        definition,
        static=tuple(block_ranges(mine, version)),
    )


def ports_definition(elems: Iterable[tuple[Protocol, int, int]]) -> str:
    """The definition of a PORTS set: its ``(protocol, lo, hi)`` elements, which
    must already be maximal intervals sorted by protocol and port.  A pass
    that makes a port set names it by this too, so equal sets share a name."""
    return "ports " + " ".join(f"{p}:{lo}-{hi}" for p, lo, hi in elems)


def numeric_ports(specs: list[PortSpec]) -> SetSpec:
    raw = []
    for s in specs:
        if s.port is None:
            raw.append((s.protocol, 1, 65535))
        else:
            assert isinstance(s.port, int)
            raw.append((s.protocol, s.port, s.end_port or s.port))
    # Overlapping ranges of one protocol become one: interval sets reject overlaps.
    elems: list[tuple[Protocol, int, int]] = []
    for proto in sorted({p for p, _, _ in raw}, key=str):
        elems.extend(
            (proto, lo, hi) for lo, hi in union((lo, hi) for p, lo, hi in raw if p is proto)
        )
    definition = ports_definition(elems)
    return SetSpec(
        spec_name("port", definition, None),
        SetKind.PORTS,
        None,
        "",
        definition,
        static=tuple(elems),
    )


def named_ports(
    named: list[tuple[str, Protocol]], family: Family, claim: Claim = Claim.EVERY
) -> SetSpec:
    """The set of (pod address, protocol, port) the named ports resolve to.

    Its definition (and so its name) is the sorted, deduplicated list, so
    rules naming the same ports in any order or repetition share one set.
    """
    wanted = set(named)
    text = " ".join(f"{n}/{p}" for n, p in sorted(wanted))

    def member(pod: Pod, world: World) -> Iterable[Element]:
        # "a named port ... resolves against the destination pod's container ports"
        ips = pod_ips(pod, family)
        if not ips:
            return ()
        return [
            (ip, cp.protocol, cp.port)
            for cp in pod.ports
            if (cp.name, cp.protocol) in wanted
            for ip in ips
        ]

    # A Deny rule's named ports (ClusterNetworkPolicy) take a shared address
    # if any claimant resolves them: another definition, so another set.
    definition = f"named {text}" + ("" if claim is Claim.EVERY else f" {claim}")
    return SetSpec(
        spec_name("named", definition, family),
        SetKind.NAMED,
        family,
        f"named ports: {text}",
        definition,
        member,
        claim=claim,
    )


def isolation(name: str, family: Family, comment: str, isolated: Callable[[Pod], bool]) -> SetSpec:
    def member(pod: Pod, world: World) -> Iterable[Element]:
        return pod_ips(pod, family) if world.is_local(pod) and isolated(pod) else ()

    return SetSpec(name, SetKind.ADDR, family, comment, name, member)


def dispatch(
    name: str, family: Family, comment: str, group: Callable[[Pod], str | None]
) -> SetSpec:
    """The verdict map ``address -> group chain`` of the local pods that
    ``group`` puts in a group (None: no policy decides for the pod).

    Claimed by every local claimant (``EVERY_LOCAL``): two local pods holding
    one address in different groups give no element; the dispatch chain then
    drops what the isolation set still holds (fail closed)."""

    def member(pod: Pod, world: World) -> Iterable[Element]:
        if not world.is_local(pod):
            return ()
        chain = group(pod)
        return [(ip, chain) for ip in pod_ips(pod, family)] if chain else ()

    return SetSpec(name, SetKind.VMAP, family, comment, name, member, claim=Claim.EVERY_LOCAL)


def spoof(name: str, family: Family) -> SetSpec:
    def member(pod: Pod, world: World) -> Iterable[Element]:
        if not world.is_local(pod):
            return ()
        iface = pod_iface(pod.namespace, pod.name)
        return [(iface, ip) for ip in pod_ips(pod, family)]

    return SetSpec(name, SetKind.IFACE_ADDR, family, "pod interface . pod address", name, member)


def ifaces(name: str) -> SetSpec:
    def member(pod: Pod, world: World) -> Iterable[Element]:
        return [pod_iface(pod.namespace, pod.name)] if world.is_local(pod) else []

    return SetSpec(name, SetKind.IFACE, None, "known pod interfaces", name, member)


__all__ = ["Claim", "Selector", "SetSpec", "World"]
