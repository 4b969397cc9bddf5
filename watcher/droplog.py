"""Attribute logged drops to pods and policies.

A packet the kernel logged (``watcher.nflog.NflogPacket``) carries a
policyc prefix (``policyc.logprefix``): the tag (drop or audit) and the
direction.  The dropping side is the source pod for egress and the
destination pod for ingress; it is always a pod of this node.  The drop is
attributed to the policies isolating that pod for that direction: a packet
falls off the end of an isolated pod's chain exactly when none of their
rules allowed it, so those policies, all of them, are why it was dropped
(default deny included).  An audit line names the audit-mode policies that
would have dropped it.  A ClusterNetworkPolicy ``Deny`` logs its own rule
(``logprefix.rule_ref``): its record names that policy, its tier and the rule.

The view is a value the agent replaces after each commit; the reader thread
only reads it.  A line the view cannot attribute (no isolating policy, or
no local pod at the address) was dropped by rules newer than the view: the
kernel drops only at an isolated pod's chain end, and the agent replaces
the view only after the commit returns.  Such a line is held until the next
view (at most ``HOLD_SECONDS``) and attributed with it.  A TCP SYN
retransmitted for the same attempt (same addresses and ports within
``DEDUP_SECONDS``) is counted, not logged again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from queue import Full, Queue

from policyc.compiler import Compiler
from policyc.logprefix import LogPrefix, Tag, parse_prefix, parse_rule_ref, policy_id
from policyc.model import ClusterNetworkPolicy, Direction, NetworkPolicy, Pod
from watcher.nflog import NflogPacket

DEDUP_SECONDS = 10.0
DEDUP_MAX = 4096
HOLD_SECONDS = 1.0  # an unattributable line waits this long for the next view
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
DIRECTIONS = (Direction.EGRESS, Direction.INGRESS)


@dataclass(frozen=True, slots=True)
class Isolation:
    """One local pod: the policies isolating it per direction, enforced and audit."""

    pod: str
    enforced: Mapping[Direction, tuple[str, ...]]
    audit: Mapping[Direction, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class View:
    local: Mapping[str, Isolation] = field(default_factory=dict)  # address -> local pod
    pods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # address -> pod keys
    # ``logprefix.policy_id`` -> the ClusterNetworkPolicy it hashes
    cluster: Mapping[str, ClusterNetworkPolicy] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TierRule:
    """The ClusterNetworkPolicy rule a tier Deny log line names."""

    tier: str  # "Admin" or "Baseline"
    policy: str  # ``Kind name``
    rule: str  # the rule's name, or ``ingress[2]`` when it has none


def tier_rule(view: View, chain: str, direction: Direction) -> TierRule | None:
    """The rule a ``cnp-<id>-<n>`` chain part names; None for any other, or
    a policy gone since the kernel logged it."""
    ref = parse_rule_ref(chain)
    pol = view.cluster.get(ref[0]) if ref is not None else None
    if ref is None or pol is None:
        return None
    rules = pol.egress if direction is Direction.EGRESS else pol.ingress
    if ref[1] >= len(rules):
        return None
    word = "egress" if direction is Direction.EGRESS else "ingress"
    return TierRule(str(pol.tier), pol.key, rules[ref[1]].name or f"{word}[{ref[1]}]")


def _selects(pol: NetworkPolicy, pod: Pod, direction: Direction) -> bool:
    return (
        pol.namespace == pod.namespace
        and direction in pol.policy_types
        and pol.pod_selector.matches(pod.label_map)
    )


def isolation(compiler: Compiler, pod: Pod) -> Isolation:
    """The enforced and audit-mode policies selecting ``pod``, per direction."""
    pols = [compiler.policies[k] for k in compiler.selecting.candidates(pod)]
    cands, audits = [p for p in pols if not p.audit], [p for p in pols if p.audit]
    enf = {d: tuple(sorted(p.key for p in cands if _selects(p, pod, d))) for d in DIRECTIONS}
    aud = {d: tuple(sorted(p.key for p in audits if _selects(p, pod, d))) for d in DIRECTIONS}
    return Isolation(pod.key, enf, aud)


def build_view(
    compiler: Compiler, pods_by_ip: Mapping[str, tuple[str, ...]], local_pods: Iterable[Pod]
) -> View:
    """The attribution view after a sync: the local pods by address, and
    every pod's key by address (``pods_by_ip``, kept by the agent and read
    live: its values are tuples it replaces, never mutates)."""
    local: dict[str, Isolation] = {}
    for pod in local_pods:
        iso = isolation(compiler, pod)
        for ip in pod.ips:
            held = local.get(str(ip))
            # An address of several local pods (docs/dataplane.md, "Shared
            # addresses"): every claimant's policies take part in its drops.
            local[str(ip)] = iso if held is None else _merged(held, iso)
    cluster = {policy_id(k): p for k, p in compiler.cluster_policies.items()}
    return View(local, pods_by_ip, cluster)


def _merged(a: Isolation, b: Isolation) -> Isolation:
    PerDirection = Mapping[Direction, tuple[str, ...]]

    def union(x: PerDirection, y: PerDirection) -> dict[Direction, tuple[str, ...]]:
        return {d: tuple(sorted({*x.get(d, ()), *y.get(d, ())})) for d in DIRECTIONS}

    return Isolation(f"{a.pod},{b.pod}", union(a.enforced, b.enforced), union(a.audit, b.audit))


@dataclass(frozen=True, slots=True)
class DropRecord:
    """One logged new connection, as the agent prints it (``to_json``)."""

    ts: float
    tag: Tag
    direction: Direction
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    src_pods: tuple[str, ...]
    dst_pods: tuple[str, ...]
    pod: str  # the dropping side, "" when no local pod holds the address
    policies: tuple[str, ...]  # ns/name: the policies isolating ``pod``
    chain: str
    rule: TierRule | None = None  # a ClusterNetworkPolicy Deny's rule

    def to_json(self) -> dict[str, object]:
        # One rounding, then both fields from it: "time" truncated the
        # microseconds while "ts" rounded them (.521348 vs .521349).
        usec = round(self.ts * 1_000_000)
        sec, frac = divmod(usec, 1_000_000)
        out: dict[str, object] = {
            "ts": usec / 1_000_000,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:06d}Z",
            "event": "policy-audit" if self.tag is Tag.AUDIT else "policy-drop",
            "verdict": "would-drop" if self.tag is Tag.AUDIT else "drop",
            "direction": self.direction.value,
            "pod": self.pod,
            "policies": list(self.policies),
            "src": {"ip": self.src, "port": self.sport, "pods": list(self.src_pods)},
            "dst": {"ip": self.dst, "port": self.dport, "pods": list(self.dst_pods)},
            "proto": self.proto,
            "chain": self.chain,
        }
        if self.rule is not None:
            out |= {"tier": self.rule.tier, "policy": self.rule.policy, "rule": self.rule.rule}
        return out


class Attributor:
    """Packets -> DropRecords (deduplicated) -> ``sinks``."""

    def __init__(
        self,
        sinks: Iterable[Callable[[DropRecord], None]] = (),
        on_suppressed: Callable[[], None] | None = None,
        hold: float = HOLD_SECONDS,
    ) -> None:
        """``on_suppressed`` is called for each retransmission not logged
        (``policyc_drop_lines_suppressed_total``); ``hold``: seconds an
        unattributable line waits for the next view."""
        self._view = View()
        self.sinks = list(sinks)
        self._seen: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self.suppressed = 0
        self.on_suppressed = on_suppressed
        self.hold = hold
        self._held: list[tuple[float, NflogPacket, LogPrefix]] = []  # (deadline, ...)
        self._lock = threading.Lock()  # the reader thread and the agent's
        self._timer: threading.Timer | None = None

    @property
    def view(self) -> View:
        return self._view

    @view.setter
    def view(self, view: View) -> None:
        """The agent's view after a commit: held lines are attributed with it."""
        with self._lock:
            self._view = view
            held, self._held = self._held, []
            for _, pkt, prefix in held:
                self._emit(self._attribute(pkt, prefix))

    def record(self, pkt: NflogPacket) -> DropRecord | None:
        """The record of ``pkt``; None for a foreign prefix or a retransmission."""
        prefix = parse_prefix(pkt.prefix)
        if prefix is None or self._repeat(pkt, prefix.tag, prefix.direction):
            return None
        return self._attribute(pkt, prefix)

    def _attribute(self, pkt: NflogPacket, prefix: LogPrefix) -> DropRecord:
        view, d = self._view, prefix.direction
        own = pkt.saddr if d is Direction.EGRESS else pkt.daddr
        iso = view.local.get(own)
        policies: tuple[str, ...] = ()
        rule = tier_rule(view, prefix.chain, d)
        if rule is not None:
            policies = (rule.policy,)
        elif iso is not None:
            policies = (iso.audit if prefix.tag is Tag.AUDIT else iso.enforced).get(d, ())
        return DropRecord(
            ts=pkt.ts,
            tag=prefix.tag,
            direction=d,
            proto=PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
            src=pkt.saddr,
            dst=pkt.daddr,
            sport=pkt.sport,
            dport=pkt.dport,
            src_pods=view.pods.get(pkt.saddr, ()),
            dst_pods=view.pods.get(pkt.daddr, ()),
            pod=iso.pod if iso is not None else "",
            policies=policies,
            chain=prefix.chain,
            rule=rule,
        )

    def _repeat(self, pkt: NflogPacket, tag: Tag, direction: Direction) -> bool:
        # The direction is part of the attempt's key: one packet can be logged
        # by its source's egress and its destination's ingress (audit both).
        key = (tag, direction, pkt.proto, pkt.saddr, pkt.sport, pkt.daddr, pkt.dport)
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) < now - DEDUP_SECONDS:
            self._seen.popitem(last=False)
        if key in self._seen and pkt.sport:  # no ports (ICMP): every packet counts
            self.suppressed += 1
            if self.on_suppressed is not None:
                self.on_suppressed()
            return True
        self._seen[key] = now
        if len(self._seen) > DEDUP_MAX:
            self._seen.popitem(last=False)
        return False

    def __call__(self, pkt: NflogPacket) -> None:
        with self._lock:
            rec = self.record(pkt)
            if rec is not None and not rec.policies and self.hold > 0:
                # rules newer than the view: wait for the next one
                prefix = LogPrefix(rec.tag, rec.direction, rec.chain)
                self._held.append((time.monotonic() + self.hold, pkt, prefix))
                self._arm()
                return
            self._emit(rec)

    def _arm(self) -> None:
        """One timer for the earliest held line, not a thread per line."""
        if self._held and (self._timer is None or not self._timer.is_alive()):
            delay = max(0.0, self._held[0][0] - time.monotonic())
            self._timer = threading.Timer(delay, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self, everything: bool = False) -> None:
        """Emit the held lines whose wait is over (``everything``: all of
        them, e.g. when the reader stops) with the view as it is."""
        with self._lock:
            now = time.monotonic()
            due = [h for h in self._held if everything or h[0] <= now]
            self._held = [h for h in self._held if not (everything or h[0] <= now)]
            for _, pkt, prefix in due:
                self._emit(self._attribute(pkt, prefix))
            self._timer = None
            self._arm()

    def _emit(self, rec: DropRecord | None) -> None:
        if rec is not None:
            for sink in self.sinks:
                sink(rec)


class DropBus:
    """Recent records and live followers (``/drops`` on the metrics server)."""

    def __init__(self, keep: int = 1000) -> None:
        self.recent: deque[str] = deque(maxlen=keep)
        self.followers: list[Queue[str]] = []
        self.lock = threading.Lock()

    def __call__(self, rec: DropRecord) -> None:
        line = json.dumps(rec.to_json(), separators=(",", ":"))
        with self.lock:
            self.recent.append(line)
            for q in self.followers:
                try:
                    q.put_nowait(line)
                except Full:  # a slow follower loses lines, the agent never waits
                    pass

    def follow(self) -> Queue[str]:
        q: Queue[str] = Queue(maxsize=10000)
        with self.lock:
            for line in self.recent:
                q.put_nowait(line)
            self.followers.append(q)
        return q

    def unfollow(self, q: Queue[str]) -> None:
        with self.lock:
            if q in self.followers:
                self.followers.remove(q)
