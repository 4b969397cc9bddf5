"""The ClusterNetworkPolicy tiers in ``policyc explain``.

``tier_lines`` lists, in evaluation order, what each tier did with one
direction of a connection (issue 10, "Semantics"; docs/clusternetworkpolicy.md):

1. Admin: the policies that select the pod and whose rules did not match,
   then the rule that passed (``Pass``) or decided (``Accept``/``Deny``);
   "If Admin tier has made a final decision (Accept or Deny) on a
   connection, then no further evaluation is done".
2. NetworkPolicy: shown by ``policyc.explain.Side`` itself, not here.
3. Baseline, asked only when NetworkPolicy did not decide: the same.
4. No tier decided: node traffic exempt from NetworkPolicy, or the default
   allow ("all pods can communicate with each other").

A line names only ClusterNetworkPolicies that ``Tiers`` holds (enforced
ones; audit-mode ones count only for an audited evaluator).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policyc.evaluate_tiers import Decider, Decision, Tiers
from policyc.model import Action, Direction, IPAddress, Pod, Protocol, Tier


class TierOutcome(StrEnum):
    """What one tier did with a direction (:class:`TierLine`)."""

    ACCEPT = "Accept"
    DENY = "Deny"
    PASS = "Pass"
    NO_MATCH = "no rule matched"
    EXEMPT = "exempt"  # node traffic: NetworkPolicy skipped, no tier decided
    DEFAULT = "default"  # no tier decided: allowed


@dataclass(frozen=True, slots=True)
class TierLine:
    """One tier's part in a direction's verdict.

    ``policies``: ``ClusterNetworkPolicy name`` keys: the one that passed or
    decided, or (``NO_MATCH``) every one of the tier that selects the pod
    and has rules of ``direction``, none of which matched; ``rule``: ``ingress[0] "name"`` for
    ``Accept``, ``Deny`` and ``Pass``.
    """

    tier: Decider
    outcome: TierOutcome
    direction: Direction
    policies: tuple[str, ...] = ()
    rule: str = ""

    @property
    def final(self) -> bool:
        """An Admin or Baseline ``Accept``/``Deny``: the direction's verdict."""
        return self.outcome in (TierOutcome.ACCEPT, TierOutcome.DENY)

    def __str__(self) -> str:
        """``Admin: ClusterNetworkPolicy no-y ingress[0]: Deny``, ``Baseline:
        ClusterNetworkPolicy default selects it; none of its ingress rules
        matched``, ``no tier decided: allowed by default``."""
        word = self.direction.lower()
        if self.outcome is TierOutcome.NO_MATCH:
            if len(self.policies) == 1:
                return (
                    f"{self.tier}: {self.policies[0]} selects it; none of its {word} rules matched"
                )
            names = ", ".join(self.policies)
            return f"{self.tier}: {names} select it; none of their {word} rules matched"
        if self.outcome is TierOutcome.EXEMPT:
            return "node traffic: exempt from NetworkPolicy, no tier decided"
        if self.outcome is TierOutcome.DEFAULT:
            return "no tier decided: allowed by default"
        return f"{self.tier}: {self.policies[0]} {self.rule}: {self.outcome}"


def _final(d: Decision, direction: Direction) -> TierLine:
    outcome = TierOutcome.ACCEPT if d.allowed else TierOutcome.DENY
    return TierLine(d.tier, outcome, direction, (d.policy,), d.rule)


def _undecided(
    tiers: Tiers,
    tier: Tier,
    pods: tuple[Pod, ...],
    direction: Direction,
    peer_ip: IPAddress,
    peer: tuple[Pod, ...],
    proto: Protocol,
    port: int,
) -> tuple[TierLine, ...]:
    """A tier that gave no verdict: per claimant, the tier's policies with
    rules of ``direction`` that select it ahead of its first matching rule
    (all of them if none matched), then the ``Pass`` rules hit; "Pass: skip over all
    lower-priority ClusterNetworkPolicies in this tier"."""
    quiet: dict[str, None] = {}
    passed: dict[TierLine, None] = {}
    decider = Decider(tier.value)
    for pod in pods:
        hit = tiers.first_hit(tier, pod, direction, peer_ip, peer, proto, port)
        for pol in tiers.by_tier[tier]:
            if hit is not None and pol.key == hit.policy.key:
                break
            rules = pol.ingress if direction is Direction.INGRESS else pol.egress
            if rules and tiers.selects(pol.subject, pod):
                quiet[pol.key] = None
        if hit is not None and hit.action is Action.PASS:
            d = hit.decision()
            passed[TierLine(decider, TierOutcome.PASS, direction, (d.policy,), d.rule)] = None
    no_match = TierLine(decider, TierOutcome.NO_MATCH, direction, tuple(quiet))
    return ((no_match,) if quiet else ()) + tuple(passed)


def tier_lines(
    tiers: Tiers,
    d: Decision,
    pods: tuple[Pod, ...],
    direction: Direction,
    peer_ip: IPAddress,
    peer: tuple[Pod, ...],
    proto: Protocol,
    port: int,
) -> tuple[TierLine, ...]:
    """The tiers' lines for the direction ``d`` decided at the address held
    by ``pods`` (see module doc); () when no ClusterNetworkPolicy selects a
    claimant and NetworkPolicy or the default decided."""
    if d.tier is Decider.ADMIN:
        return (_final(d, direction),)
    args = (pods, direction, peer_ip, peer, proto, port)
    lines = _undecided(tiers, Tier.ADMIN, *args)
    if d.tier is Decider.NETWORK_POLICY:
        return lines
    if d.tier is Decider.BASELINE:
        # The Admin lines say why Admin did not decide (a Pass, no match).
        return (*lines, _final(d, direction))
    lines += _undecided(tiers, Tier.BASELINE, *args)
    if d.tier is Decider.EXEMPT:
        return (*lines, TierLine(Decider.EXEMPT, TierOutcome.EXEMPT, direction))
    return (*lines, TierLine(Decider.DEFAULT, TierOutcome.DEFAULT, direction)) if lines else ()
