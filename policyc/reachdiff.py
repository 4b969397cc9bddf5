"""``policyc diff``: the reachability delta between two versions of a cluster.

``reach_diff(old, new)`` evaluates, with the reference evaluator, every
connection (source pod, destination pod, port range, protocol) between the
pods present in both versions, in each IP family both pods have, and returns
the connections the change opens or closes, grouped by cause.

Ports: every port a policy (number, range, or named port resolved against
any pod's containerPorts) or a containerPort names, in either version, cuts
1-65535 into ranges that every policy treats alike; one probe per range and
protocol is therefore exact, and the ranges nothing names are the default
probe.  Causes: a connection is put under each policy whose change alone
(the old cluster with just that policy changed, added or removed) flips it;
else under ``labels`` if the new pods and namespaces under the old policies
flip it; else under ``combined``.  Pods are evaluated one pair per pair of
classes of interchangeable pods (``policyc.reachclass``), which is exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol as Protocol_
from typing import TypeVar

from policyc.evaluate import Evaluator
from policyc.model import Cluster, Pod, Protocol
from policyc.reachclass import pod_classes, representatives

MAX_PORT = 65535
Probe = tuple[str, str, Protocol, int, int]  # src, dst, protocol, first port, family


class Change(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"


class CauseKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    LABELS = "labels"
    COMBINED = "combined"


@dataclass(frozen=True, slots=True)
class PortSpan:
    protocol: Protocol
    port: int
    end_port: int


@dataclass(frozen=True, slots=True)
class Connection:
    """``src -> dst`` on ``ports`` in ``families`` (4, 6)."""

    change: Change
    src: str
    dst: str
    families: tuple[int, ...]
    ports: tuple[PortSpan, ...]

    @property
    def port_text(self) -> str:
        """``any port``, or per protocol ``TCP 80, 82-65535; UDP any``."""
        parts = []
        for proto in Protocol:
            spans = [s for s in self.ports if s.protocol is proto]
            if spans == [PortSpan(proto, 1, MAX_PORT)]:
                parts.append(f"{proto} any")
            elif spans:
                text = ",".join(
                    str(s.port) if s.port == s.end_port else f"{s.port}-{s.end_port}" for s in spans
                )
                parts.append(f"{proto} {text}")
        if parts == [f"{p} any" for p in Protocol]:
            return "any port"
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Group:
    """``cause``: the policy ``ns/name``, or ``labels`` / ``combined``."""

    cause: str
    kind: CauseKind
    connections: tuple[Connection, ...]


@dataclass(frozen=True, slots=True)
class ReachDiff:
    groups: tuple[Group, ...]
    changes: tuple[Connection, ...]
    pods: int
    only_old: tuple[str, ...]
    only_new: tuple[str, ...]

    def count(self, change: Change) -> int:
        return sum(1 for c in self.changes if c.change is change)


def port_ranges(clusters: Iterable[Cluster]) -> dict[Protocol, list[tuple[int, int]]]:
    """Per protocol, the ranges of 1-65535 that no policy or containerPort
    tells apart (see module doc)."""
    cuts: dict[Protocol, set[int]] = {p: {1} for p in Protocol}
    for cluster in clusters:
        named: dict[str, set[tuple[Protocol, int]]] = {}
        for pod in cluster.pods:
            for cp in pod.ports:
                cuts[cp.protocol] |= {cp.port, cp.port + 1}
                named.setdefault(cp.name, set()).add((cp.protocol, cp.port))
        for pol in cluster.policies:
            for rule in pol.ingress + pol.egress:
                for spec in rule.ports or ():
                    if isinstance(spec.port, int):
                        # "endPort indicates that the range of ports from port
                        # to endPort if set, inclusive, should be allowed"
                        hi = spec.end_port if spec.end_port is not None else spec.port
                        cuts[spec.protocol] |= {spec.port, hi + 1}
                    elif isinstance(spec.port, str):
                        for proto, port in named.get(spec.port, ()):
                            cuts[proto] |= {port, port + 1}
        for cnp in cluster.cluster_policies:
            for cnp_rule in cnp.ingress + cnp.egress:
                for pp in cnp_rule.protocols or ():
                    if pp.named:  # destinationNamedPort
                        for proto, port in named.get(pp.named, ()):
                            cuts[proto] |= {port, port + 1}
                    elif pp.protocol is not None:
                        cuts[pp.protocol] |= {pp.first, pp.last + 1}
    out = {}
    for proto, points in cuts.items():
        edges = sorted(p for p in points if p <= MAX_PORT) + [MAX_PORT + 1]
        out[proto] = [(lo, hi - 1) for lo, hi in zip(edges, edges[1:], strict=False)]
    return out


def _pods(cluster: Cluster) -> dict[str, Pod]:
    return {p.key: p for p in cluster.pods if p.ips and not p.host_network}


def _allowed(ev: Evaluator, src: Pod, dst: Pod, proto: Protocol, port: int, fam: int) -> bool:
    """Every address pair of family ``fam`` allowed."""
    return all(
        ev.allowed(s, d, port, proto).allowed
        for s in src.ips
        if s.version == fam
        for d in dst.ips
        if d.version == fam
    )


def _probes(
    old: Cluster, new: Cluster, pairs: Iterable[tuple[str, str]]
) -> Iterator[tuple[Probe, int]]:
    """(probe, last port of its range) for every pair, range and shared family."""
    ranges = port_ranges((old, new))
    po, pn = _pods(old), _pods(new)
    for src, dst in pairs:
        fams = [
            f
            for f in (4, 6)
            if all(any(ip.version == f for ip in p.ips) for p in (po[src], po[dst]))
            and all(any(ip.version == f for ip in p.ips) for p in (pn[src], pn[dst]))
        ]
        for proto, spans in ranges.items():
            for lo, hi in spans:
                for fam in fams:
                    yield (src, dst, proto, lo, fam), hi


class _Oracle:
    """Evaluators of one cluster version and its counterfactual variants."""

    def __init__(self, cluster: Cluster) -> None:
        self.pods = _pods(cluster)
        self.ev = Evaluator(cluster)

    def ok(self, probe: Probe) -> bool:
        src, dst, proto, port, fam = probe
        return _allowed(self.ev, self.pods[src], self.pods[dst], proto, port, fam)


class _Keyed(Protocol_):
    @property
    def key(self) -> str: ...


P = TypeVar("P", bound=_Keyed)


def _policy_changes(old: Cluster, new: Cluster) -> list[tuple[str, CauseKind, Cluster]]:
    """Per changed NetworkPolicy (key ``ns/name``), then per changed
    ClusterNetworkPolicy (key ``Kind name``): its key, the kind of change,
    and the old cluster with only that policy changed."""
    return _keyed_changes(
        old.policies, new.policies, lambda ps: dataclasses.replace(old, policies=ps)
    ) + _keyed_changes(
        old.cluster_policies,
        new.cluster_policies,
        lambda ps: dataclasses.replace(old, cluster_policies=ps),
    )


def _keyed_changes(
    was_all: tuple[P, ...], now_all: tuple[P, ...], rebuild: Callable[[tuple[P, ...]], Cluster]
) -> list[tuple[str, CauseKind, Cluster]]:
    """In key order, per key whose policy differs between ``was_all`` and
    ``now_all``: the key, the kind of change, and ``rebuild`` of ``was_all``
    with only that policy changed."""
    was = {p.key: p for p in was_all}
    now = {p.key: p for p in now_all}
    out = []
    for key in sorted(was.keys() | now.keys()):
        if was.get(key) == now.get(key):
            continue
        kind = CauseKind.ADDED if key not in was else CauseKind.CHANGED
        if key not in now:
            kind = CauseKind.REMOVED
        mine = [p for p in was_all if p.key != key]
        mine += [now[key]] if key in now else []
        out.append((key, kind, rebuild(tuple(mine))))
    return out


Flip = tuple[Probe, int, Change]  # probe, last port of its range, which way


def _attribute(
    old: Cluster, new: Cluster, flips: list[Flip]
) -> dict[tuple[str, CauseKind], list[Flip]]:
    """Each flip under every policy whose change alone makes it, else under
    ``labels`` or ``combined`` (see module doc)."""
    out: dict[tuple[str, CauseKind], list[Flip]] = {}
    if not flips:
        return out
    variants = [(key, kind, _Oracle(c)) for key, kind, c in _policy_changes(old, new)]
    labels = _Oracle(
        dataclasses.replace(new, policies=old.policies, cluster_policies=old.cluster_policies)
    )
    for flip in flips:
        probe, _, change = flip
        now = change is Change.OPENED
        hits = [(key, kind) for key, kind, o in variants if o.ok(probe) == now]
        if not hits:
            hits = [
                ("labels", CauseKind.LABELS)
                if labels.ok(probe) == now
                else ("combined", CauseKind.COMBINED)
            ]
        for hit in hits:
            out.setdefault(hit, []).append(flip)
    return out


def _merge(flips: list[Flip]) -> tuple[Connection, ...]:
    """Flips as connections: the families of one range together, adjacent
    ranges with the same families joined, then one connection per pod pair,
    change and families."""
    fams: dict[tuple[str, str, Change, Protocol, int, int], set[int]] = {}
    for (src, dst, proto, lo, fam), hi, change in flips:
        fams.setdefault((src, dst, change, proto, lo, hi), set()).add(fam)
    spans: dict[tuple[str, str, Change, tuple[int, ...]], list[PortSpan]] = {}
    rank = {p: i for i, p in enumerate(Protocol)}  # TCP, UDP, SCTP
    for (src, dst, change, proto, lo, hi), fs in sorted(
        fams.items(), key=lambda kv: (kv[0][:3], rank[kv[0][3]], kv[0][4:])
    ):
        got = spans.setdefault((src, dst, change, tuple(sorted(fs))), [])
        if got and got[-1].protocol is proto and got[-1].end_port + 1 == lo:
            got[-1] = PortSpan(proto, got[-1].port, hi)
        else:
            got.append(PortSpan(proto, lo, hi))
    return tuple(
        Connection(change, src, dst, fs, tuple(ps))
        for (src, dst, change, fs), ps in sorted(spans.items())
    )


def _expand(
    flips: list[Flip], stands_for: dict[tuple[str, str], list[tuple[str, str]]]
) -> list[Flip]:
    """Each representative's flips for every pod pair it stands for."""
    return [
        ((src, dst, probe[2], probe[3], probe[4]), hi, change)
        for probe, hi, change in flips
        for src, dst in stands_for[(probe[0], probe[1])]
    ]


def reach_diff(old: Cluster, new: Cluster) -> ReachDiff:
    """The connections among the pods of both versions that ``new`` opens
    or closes, grouped by cause (policies in key order, then labels, combined)."""
    po, pn = _pods(old), _pods(new)
    keys = sorted(po.keys() & pn.keys())
    before, after = _Oracle(old), _Oracle(new)
    # One pair per pair of classes of interchangeable pods (policyc.reachclass).
    stands_for = dict(representatives(old, new, pod_classes(old, new, keys)))
    found: list[Flip] = []
    for probe, hi in _probes(old, new, stands_for):
        was, now = before.ok(probe), after.ok(probe)
        if was != now:
            found.append((probe, hi, Change.OPENED if now else Change.CLOSED))
    causes = {cause: _expand(fs, stands_for) for cause, fs in _attribute(old, new, found).items()}
    flips = _expand(found, stands_for)
    order = {CauseKind.LABELS: 1, CauseKind.COMBINED: 2}
    groups = tuple(
        Group(cause, kind, _merge(items))
        for (cause, kind), items in sorted(
            causes.items(), key=lambda kv: (order.get(kv[0][1], 0), kv[0][0])
        )
    )
    return ReachDiff(
        groups,
        _merge(flips),
        len(keys),
        tuple(sorted(po.keys() - pn.keys())),
        tuple(sorted(pn.keys() - po.keys())),
    )
