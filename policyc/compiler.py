"""Cluster model -> rule graph for the pods of one node, incrementally.

``Compiler`` keeps the cluster and the membership of every set.  Pods are
indexed by namespace and label (``policyc.podindex``), sets and policies by
the pods they can hold (``policyc.scopeindex``), so costs follow matches:

- a pod event evaluates only the sets that can contain that pod;
- a new set takes its members from the pod index;
- a namespace label change re-evaluates that namespace's pods against the
  sets whose namespace selectors now decide differently;
- a policy change rebuilds that policy's nodes and re-checks isolation of the
  pods its old and new pod selectors select.

A full build is O(pods + policies + memberships).  ``compile_cluster`` is the
same machine fed all at once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from policyc import setspecs as ss
from policyc.bulk import bulk
from policyc.cnp_sets import node_addresses, peer_nodes, subject_selects
from policyc.compile_tiers import policy_node as tier_node
from policyc.compile_tiers import rules_of
from policyc.ir import (
    DISPATCH_MAP,
    GROUP_PREFIX,
    IFACE_ADDR,
    IFACES,
    ISOLATED,
    NODE,
    Changes,
    Element,
    Endpoint,
    Family,
    Group,
    PolicyNode,
    RuleGraph,
    RuleNode,
    SetDef,
    SetKind,
    sort_key,
)
from policyc.kinds import Key, Kind, Model
from policyc.membership import Membership
from policyc.model import (
    Cluster,
    ClusterNetworkPolicy,
    Direction,
    IPAddress,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    Selector,
    Tier,
)
from policyc.names import pod_iface, short_hash
from policyc.podindex import PodIndex
from policyc.scopeindex import Scope, ScopeIndex

FAMILIES = (Family.V4, Family.V6)
DIRECTIONS = (Direction.INGRESS, Direction.EGRESS)


class Compiler:
    def __init__(self, node: str | None = None) -> None:
        self.node = node
        self.index = PodIndex()
        self.pods: dict[str, Pod] = self.index.pods  # kept by the index
        self.namespaces: dict[str, Namespace] = {}
        self.nodes: dict[str, Node] = {}
        self.policies: dict[str, NetworkPolicy] = {}
        self.policy_nodes: dict[str, list[PolicyNode]] = {}
        self.policy_specs: dict[str, list[str]] = {}
        # ClusterNetworkPolicies by ``Kind name``, their rule nodes and sets.
        self.cluster_policies: dict[str, ClusterNetworkPolicy] = {}
        self.tier_nodes: dict[str, list[PolicyNode]] = {}
        # ``nodes`` peer sets: name -> (selectors, family), refreshed on Node events.
        self.node_peers: dict[str, tuple[list[Selector], Family]] = {}
        self._rules_changed = True
        self._ns_labels: dict[str, dict[str, str]] = {}
        # Policies filed by the pods they select: isolation asks only those.
        self.selecting = ScopeIndex(self.ns_labels)
        self.world = ss.World(self.ns_labels, self.is_local)
        self.m = Membership(self.world, self.ns_labels, self.index)
        for f in FAMILIES:
            for d, prefix in ISOLATED.items():
                self.m.fixed(
                    ss.isolation(
                        prefix + f.suffix,
                        f,
                        f"local pods isolated for {d.value.lower()}",
                        functools.partial(self.isolated, direction=d),
                    )
                )
            for d, prefix in DISPATCH_MAP.items():
                self.m.fixed(
                    ss.dispatch(
                        prefix + f.suffix,
                        f,
                        f"local pods -> their {d.value.lower()} group chain",
                        functools.partial(self.group_of, direction=d, family=f),
                    )
                )
            self.m.fixed(ss.spoof(IFACE_ADDR + f.suffix, f))
        self.m.fixed(ss.ifaces(IFACES))
        self._node_sets()
        # Every group a pod was put in, by chain name; ``_groups_used`` is the
        # set of those some dispatch map element points to, as last reported.
        self.group_defs: dict[str, Group] = {}
        self._groups_used: frozenset[str] = frozenset()
        self._shared = False  # shared addresses, as last reported

    @property
    def specs(self) -> dict[str, ss.SetSpec]:
        return self.m.specs

    @property
    def members(self) -> dict[str, Counter[Element]]:
        return self.m.members

    # -- world ---------------------------------------------------------
    def ns_labels(self, name: str) -> dict[str, str]:
        labels = self._ns_labels.get(name)
        if labels is None:
            ns = self.namespaces.get(name)
            labels = ns.label_map if ns else _default_labels(name)
            self._ns_labels[name] = labels
        return labels

    def is_local(self, pod: Pod) -> bool:
        return self.node is None or pod.node_name == self.node

    def isolated(self, pod: Pod, direction: Direction) -> bool:
        """Does an enforced policy of the pod's namespace select it for
        ``direction``, or a ClusterNetworkPolicy with rules for it?  An
        audit-mode policy isolates nothing ("drop nothing because of it",
        docs/observability.md).  (An address in no group then drops: fail
        closed.)"""
        labels = pod.label_map
        for key in self.selecting.candidates(pod):
            pol = self.policies[key]
            if not pol.audit and direction in pol.policy_types and pol.pod_selector.matches(labels):
                return True
        return any(self.tier_subject(pod, direction, t) for t in Tier)

    def tier_subject(self, pod: Pod, direction: Direction, tier: Tier) -> tuple[str, ...]:
        """The ClusterNetworkPolicies of ``tier`` with rules for ``direction``
        whose subject selects ``pod``, in evaluation order.  O(cluster
        policies): they are few, and a pod event asks once per direction."""
        if not self.cluster_policies or pod.host_network:
            return ()
        ns = self.ns_labels(pod.namespace)
        found = [
            p
            for p in self.cluster_policies.values()
            if p.tier is tier and rules_of(p, direction) and subject_selects(p.subject, pod, ns)
        ]
        return tuple(p.key for p in sorted(found, key=lambda p: p.order))

    def selecting_policies(
        self, pod: Pod, direction: Direction, audit: bool = False
    ) -> tuple[str, ...]:
        """The keys of the enforced (``audit``: the audit-mode) policies
        that select ``pod`` for ``direction``, sorted."""
        labels = pod.label_map
        return tuple(
            sorted(
                key
                for key in self.selecting.candidates(pod)
                if self.policies[key].audit is audit
                and direction in self.policies[key].policy_types
                and self.policies[key].pod_selector.matches(labels)
            )
        )

    def group_of(self, pod: Pod, direction: Direction, family: Family) -> str | None:
        """The chain of the group ``pod`` is in for ``direction`` and
        ``family``: named by a hash of the policies selecting it, so pods
        with identical policy sets share it.  None if no policy selects it.
        Audit-mode policies count only when nothing enforced selects the pod:
        an extra policy can only open traffic for an isolated pod, so audit
        "would drop" only what it newly isolates (docs/observability.md)."""
        keys, audit = self.selecting_policies(pod, direction), False
        admin = self.tier_subject(pod, direction, Tier.ADMIN)
        baseline = self.tier_subject(pod, direction, Tier.BASELINE)
        if not (keys or admin or baseline):
            keys, audit = self.selecting_policies(pod, direction, audit=True), True
        if not (keys or admin or baseline):
            return None
        sig = ("audit " if audit else "") + f"{direction.value} " + " ".join(keys)
        if admin or baseline:  # NetworkPolicy-only groups keep their names
            sig += f" | admin {' '.join(admin)} | baseline {' '.join(baseline)}"
        name = f"{GROUP_PREFIX[direction]}{family.suffix}_{short_hash(sig, 8)}"
        if name not in self.group_defs:
            self.group_defs[name] = Group(
                name, direction, family, keys, audit=audit, admin=admin, baseline=baseline
            )
        return name

    def groups_used(self) -> frozenset[str]:
        """The group chains some dispatch map element points to: O(local pods)."""
        return frozenset(
            e[1]  # type: ignore[index]
            for prefix in DISPATCH_MAP.values()
            for f in FAMILIES
            for e in self.members[prefix + f.suffix]
        )

    def pods_in(self, ns: str | None) -> Iterable[Pod]:
        return self.index.pods_in(ns)

    # -- events --------------------------------------------------------
    def put(self, obj: Model) -> None:
        """Add or replace one validated object (Namespace, Node, Pod or
        NetworkPolicy; ``policyc.parse.read_one`` makes them).  TypeError for
        anything else."""
        key = Key.of(obj)
        if key.kind.cluster_policy:
            self._cluster_policy(str(key), obj)
            return
        self._APPLY[key.kind](self, key.id, obj)

    def remove(self, kind: Kind, key: str) -> None:
        """Forget the object ``key`` (``Key.id``: ``namespace/name``, or the
        name of a Namespace or Node); a key not held is a no-op."""
        if Kind(kind).cluster_policy:
            self._cluster_policy(f"{Kind(kind)} {key}", None)
            return
        self._APPLY[Kind(kind)](self, key, None)

    def keys(self, kind: Kind) -> set[str]:
        """The keys of every object of ``kind`` held now."""
        held: dict[Kind, Mapping[str, object]] = {
            Kind.NAMESPACE: self.namespaces,
            Kind.NODE: self.nodes,
            Kind.POD: self.pods,
            Kind.NETWORK_POLICY: self.policies,
        }
        if Kind(kind).cluster_policy:
            prefix = f"{Kind(kind)} "
            return {k.removeprefix(prefix) for k in self.cluster_policies if k.startswith(prefix)}
        return set(held.get(Kind(kind), {}))

    def _pod(self, key: str, pod: Model | None) -> None:
        old = self.pods.get(key)
        if old == pod:
            return
        if old is not None:
            self.index.remove(old)
            self.m.contribute(old, -1)
        if isinstance(pod, Pod):
            self.index.add(pod)
            self.m.contribute(pod, +1)

    def _namespace(self, name: str, ns: Model | None) -> None:
        labels = ns.label_map if isinstance(ns, Namespace) else _default_labels(name)
        affected = self.m.ns_affected(name, labels)
        if self.cluster_policies:  # subjects select namespaces by label
            affected += self._dispatch_specs()
        pods = list(self.pods_in(name)) if affected else []
        for pod in pods:
            self.m.contribute(pod, -1, affected)
        if isinstance(ns, Namespace):
            self.namespaces[name] = ns
        else:
            self.namespaces.pop(name, None)
        self._ns_labels.pop(name, None)
        self.m.namespace_changed(name)
        for pod in pods:
            self.m.contribute(pod, +1, affected)

    def _node(self, name: str, node: Model | None) -> None:
        if isinstance(node, Node):
            self.nodes[name] = node
        else:
            self.nodes.pop(name, None)
        self._node_sets()
        for set_name, (sels, family) in self.node_peers.items():
            self.m.restate(set_name, node_addresses(sels, family, self.nodes.values()))

    def _dispatch_specs(self) -> list[ss.SetSpec]:
        """The isolation sets and dispatch maps: what a policy change re-checks."""
        return [
            self.specs[prefix[d] + f.suffix]
            for prefix in (ISOLATED, DISPATCH_MAP)
            for d in DIRECTIONS
            for f in FAMILIES
        ]

    def _cluster_policy(self, key: str, pol: Model | None) -> None:
        """Add, replace (``pol``) or remove (None) a ClusterNetworkPolicy.
        Its subject selects by namespace labels, so every pod's group is
        re-checked: O(pods), as cluster policies change rarely."""
        old = self.cluster_policies.get(key)
        if old == pol:
            return
        iso = self._dispatch_specs()
        pods = [p for p in self.pods.values() if not p.host_network]
        for pod in pods:
            self.m.contribute(pod, -1, iso)
        for name in self.policy_specs.pop(key, []):
            self.m.unref(name)
            if name not in self.specs:
                self.node_peers.pop(name, None)
        self.tier_nodes.pop(key, None)
        self.cluster_policies.pop(key, None)
        if isinstance(pol, ClusterNetworkPolicy):
            self.cluster_policies[key] = pol
            self.policy_specs[key] = mine = []

            def ref(spec: ss.SetSpec) -> str:
                mine.append(self.m.ref(spec))
                return spec.name

            self.tier_nodes[key] = [
                tier_node(pol, d, f, ref, self.nodes.values())
                for d in DIRECTIONS
                if rules_of(pol, d)
                for f in FAMILIES
            ]
            self._track_node_peers(pol)
        for pod in pods:
            self.m.contribute(pod, +1, iso)
        self._rules_changed = True

    def _track_node_peers(self, pol: ClusterNetworkPolicy) -> None:
        for rule in pol.egress:
            sels = [p.nodes for p in rule.peers if p.nodes is not None]
            if sels:
                for f in FAMILIES:
                    self.node_peers[peer_nodes(sels, f, ()).name] = (sels, f)

    def _policy(self, key: str, pol: Model | None) -> None:
        old = self.policies.get(key)
        if old == pol:
            return
        iso = self._dispatch_specs()
        # Only the pods the old or the new policy selects can change isolation.
        found = {
            p.key: p
            for x in (old, pol)
            if isinstance(x, NetworkPolicy)
            for p in self.index.select(x.namespace, x.pod_selector)
        }
        pods = list(found.values())
        for pod in pods:
            self.m.contribute(pod, -1, iso)
        for name in self.policy_specs.pop(key, []):
            self.m.unref(name)
        self.policy_nodes.pop(key, None)
        if old is not None:
            self.policies.pop(key, None)
            self.selecting.remove(key)
        if isinstance(pol, NetworkPolicy):
            self.policies[key] = pol
            self.selecting.add(key, (Scope(pol.pod_selector, pol.namespace),))
            self.policy_specs[key] = []
            self.policy_nodes[key] = [
                self._policy_node(pol, d, f)
                for d in DIRECTIONS
                if d in pol.policy_types
                for f in FAMILIES
            ]
        for pod in pods:
            self.m.contribute(pod, +1, iso)
        self._rules_changed = True

    # One handler per kind: (builder, key, the object or None to remove it).
    _APPLY: ClassVar[dict[Kind, Callable[[Compiler, str, Model | None], None]]] = {
        Kind.NAMESPACE: _namespace,
        Kind.NODE: _node,
        Kind.POD: _pod,
        Kind.NETWORK_POLICY: _policy,
    }

    # -- graph ---------------------------------------------------------
    def _policy_node(self, pol: NetworkPolicy, direction: Direction, family: Family) -> PolicyNode:
        mine = self.policy_specs[pol.key]

        def ref(spec: ss.SetSpec) -> str:
            mine.append(self.m.ref(spec))
            return spec.name

        rules = []
        for i, rule in enumerate(pol.rules(direction)):
            peers: tuple[str, ...] | None = None
            if rule.peers is not None:
                names = []
                selectors = [p for p in rule.peers if p.ip_block is None]
                if selectors:
                    names.append(ref(ss.peer_pods(selectors, pol.namespace, family)))
                blocks = [p.ip_block for p in rule.peers if p.ip_block is not None]
                spec = ss.peer_blocks(blocks, family)
                if spec is not None:
                    names.append(ref(spec))
                if not names:
                    continue  # e.g. only IPv6 ipBlocks: nothing to match in IPv4
                peers = tuple(names)
            ports: tuple[str, ...] | None = None
            if rule.ports is not None:
                pnames = []
                numeric = [s for s in rule.ports if not isinstance(s.port, str)]
                if numeric:
                    pnames.append(ref(ss.numeric_ports(numeric)))
                named = sorted(
                    {(s.port, s.protocol) for s in rule.ports if isinstance(s.port, str)}
                )
                if named:
                    pnames.append(ref(ss.named_ports(named, family)))  # type: ignore[arg-type]
                ports = tuple(pnames)
            rules.append(RuleNode(pol.key, direction, i, family, peers, ports))
        selected = ref(ss.selection(pol, family))
        return PolicyNode(pol.key, direction, family, selected, tuple(rules), pol.audit)

    def _node_sets(self) -> None:
        addrs: set[IPAddress] = set()
        for n in self.nodes.values():
            if self.node is None or n.name == self.node:
                # 0.0.0.0 / :: is no address of the node's (ipset rejects it).
                addrs.update(a for a in n.addresses if not a.is_unspecified)
                addrs.update(c.network_address + 1 for c in n.pod_cidrs if c.num_addresses > 1)
        for f in FAMILIES:
            name = NODE + f.suffix
            elems: Counter[Element] = Counter(a for a in addrs if Family.of(a) is f)
            if self.members.get(name) != elems:
                spec = ss.SetSpec(name, SetKind.ADDR, f, "node addresses and bridge gateways", name)
                self.m.fixed(spec, elems)

    def set_def(self, name: str, elements: bool = True) -> SetDef:
        spec = self.specs[name]
        elems = tuple(sorted(self.members[name], key=sort_key)) if elements else ()
        return SetDef(name, spec.kind, spec.family, elems, spec.comment, spec.canonical)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(p.namespace, p.name, pod_iface(p.namespace, p.name), p.ips)
            for p in sorted(self.pods.values(), key=lambda p: (p.namespace, p.name))
            if self.is_local(p) and not p.host_network
        ]

    def graph(self, elements: bool = True) -> RuleGraph:
        """The rule graph; ``elements=False`` leaves sets empty (the shape only,
        for recomputing chains without touching every member)."""
        order = sorted(self.policies.values(), key=lambda p: (p.namespace, p.name))
        nodes = [n for pol in order for n in self.policy_nodes[pol.key]]
        tiers = sorted(self.cluster_policies.values(), key=lambda p: (p.tier, p.order))
        tier_nodes = [n for pol in tiers for n in self.tier_nodes[pol.key]]
        return RuleGraph(
            node=self.node or "",
            endpoints=tuple(self.endpoints()),
            policies=tuple(nodes),
            sets=tuple(self.set_def(name, elements) for name in sorted(self.specs)),
            groups=tuple(self.group_defs[n] for n in sorted(self.groups_used())),
            shared=self.m.shared > 0,
            tiers=tuple(tier_nodes),
        )

    def changes(self) -> Changes:
        """What changed since the last call, as a value: whether the rules
        (policies) changed, and which set elements came and went."""
        out = self.m.take(rules=self._rules_changed)
        self._rules_changed = False
        if (self.m.shared > 0) != self._shared:
            self._shared = self.m.shared > 0  # the shared-address chains come or go
            out = dataclasses.replace(out, rules=True)
        maps = {prefix + f.suffix for prefix in DISPATCH_MAP.values() for f in FAMILIES}
        if out.dirty & maps:
            # A group chain appears or goes: a rules change (the chain itself),
            # O(local pods) to find out.  Moving a pod between groups that
            # exist stays a map-element change.
            used = self.groups_used()
            if used != self._groups_used:
                self._groups_used = used
                # Keep the groups of counted elements too: an address shared
                # by pods of different groups has no map element, and its
                # element comes back, without a new group_of call, when the
                # other claimant goes.
                held = self._groups_held()
                self.group_defs = {n: g for n, g in self.group_defs.items() if n in held}
                out = dataclasses.replace(out, rules=True)
        return out

    def _groups_held(self) -> frozenset[str]:
        """The group chains some local pod is in, whether or not its address
        is shared (``groups_used`` ⊆ this): O(local pods)."""
        return frozenset(
            e[1]  # type: ignore[index]
            for prefix in DISPATCH_MAP.values()
            for f in FAMILIES
            for e in self.m.counts[prefix + f.suffix]
        )

    def load(self, cluster: Cluster) -> Compiler:
        """Put every object of ``cluster``: namespaces and nodes, then policies, then pods."""
        objs: list[Model] = [*cluster.namespaces.values(), *cluster.nodes.values()]
        objs += [*cluster.cluster_policies, *cluster.policies, *cluster.pods]
        with bulk(len(objs)):
            for obj in objs:
                self.put(obj)
        return self


def _default_labels(name: str) -> dict[str, str]:
    # "The Kubernetes control plane sets an immutable label
    # kubernetes.io/metadata.name on all namespaces": also on those not read.
    return {"kubernetes.io/metadata.name": name}


def compile_cluster(cluster: Cluster, node: str | None = None) -> RuleGraph:
    return Compiler(node).load(cluster).graph()
