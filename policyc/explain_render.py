"""Text and JSON renderings of ``policyc.explain.Explained``.

Text: a headline, then per address pair the verdict, one block per
direction (isolating policies, the admitting rule, or the closest rules and
why each failed) and the packet's path through each node's ruleset.  JSON
carries the same facts with stable keys; ``render(explained, "text"|"json")``.
"""

from __future__ import annotations

import json
from typing import Any

from policyc.evaluate_tiers import Decider
from policyc.explain import Explained, Explanation, Hop, Side
from policyc.explain_tiers import TierLine
from policyc.model import Direction
from policyc.trace import Step

FORMATS = ("text", "json")


def render(explained: Explained, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(explained), indent=2) + "\n"
    return text(explained)


def _word(allowed: bool) -> str:
    return "ALLOWED" if allowed else "DENIED"


def text(e: Explained) -> str:
    lines = [f"{e.src} -> {e.dst} {e.port}: {_word(e.allowed)}"]
    for case in e.cases:
        lines += _case(case)
    return "\n".join(lines) + "\n"


def _case(c: Explanation) -> list[str]:
    out = [f"  {c.src.ip} -> {c.dst.ip}: {_word(c.allowed)}"]
    if c.exempt:
        out.append(f"    {c.exempt}: no policy applies")
    elif (
        c.egress.is_pod
        and c.ingress.is_pod
        and not (c.egress.isolated_by or c.ingress.isolated_by)
        and not (c.egress.tiers or c.ingress.tiers)
    ):
        out.append(
            "    neither pod is isolated: no policy selects the source for egress "
            "or the destination for ingress"
        )
    else:
        out += _side(c.egress) + _side(c.ingress)
    for hop in c.hops:
        out += _hop(hop)
    if not c.hops:
        out.append("    not traced: " + _untraced(c))
    return out


def _untraced(c: Explanation) -> str:
    if c.src.ip == c.dst.ip:
        return "the packet never leaves the pod"
    return "no node holds a pod with either address, so no node's ruleset sees it"


def _tier(line: TierLine) -> str:
    """``tier Admin: ...``; the lines where no tier decided stand alone."""
    if line.tier in (Decider.ADMIN, Decider.BASELINE):
        return f"      tier {line}"
    return f"      {line}"


def _side(s: Side) -> list[str]:
    head = f"    {s.direction.lower()} of {s.subject}: "
    tiers = [_tier(line) for line in s.tiers]
    if s.is_pod and s.decided is not None:
        # An Admin or Baseline verdict is final for this direction; the lines
        # before it are the tiers' rules that did not decide (Pass, no match).
        return [head + ("allowed" if s.allowed else "denied") + " by a tier", *tiers]
    lines = _side_head(s, head)
    return lines[:1] + tiers + lines[1:]


def _side_head(s: Side, head: str) -> list[str]:
    if not s.is_pod:
        return [head + "not a pod, no policy applies"]
    kind = "Egress" if s.direction is Direction.EGRESS else "Ingress"
    if not s.isolated_by:
        return [head + f"not isolated (no NetworkPolicy with policyTypes {kind} selects it)"]
    out = [head + f"isolated by {', '.join(s.isolated_by)}"]
    for rule in s.allowed_by:
        out.append(f"      allowed by {rule}")
    if not s.allowed:
        out.append("      denied: no rule of these policies admits it; closest rules:")
        for miss in s.closest:
            out.append(f"        {miss.rule}:")
            out += [f"          {why}" for why in miss.reasons]
    return out


def _step(s: Step) -> str:
    target = f" {s.target}" if s.target else ""
    note = f"  # {s.comment}" if s.comment else ""
    return f"      {s.hook} {s.chain}[{s.index}] {s.verb}{target}{note}"


def _hop(h: Hop) -> list[str]:
    entry = f" from {h.iifname}" if h.iifname else ""
    out = [f"    trace on {h.node}{entry}: {'accept' if h.allowed else 'drop'}"]
    return out + [_step(s) for s in h.steps]


def _side_json(s: Side) -> dict[str, Any]:
    return {
        "direction": str(s.direction),
        "subject": s.subject,
        "isPod": s.is_pod,
        "tiers": [str(line) for line in s.tiers],
        "isolatedBy": list(s.isolated_by),
        "allowed": s.allowed,
        "allowedBy": list(s.allowed_by),
        "closest": [
            {"rule": m.rule, "distance": m.distance, "reasons": list(m.reasons)} for m in s.closest
        ],
    }


def _hop_json(h: Hop) -> dict[str, Any]:
    return {
        "node": h.node,
        "iifname": h.iifname,
        "verdict": "accept" if h.allowed else "drop",
        "steps": [
            {
                "hook": str(s.hook),
                "chain": s.chain,
                "index": s.index,
                "verb": str(s.verb),
                "target": s.target,
                "comment": s.comment,
            }
            for s in h.steps
        ],
    }


def to_json(e: Explained) -> dict[str, Any]:
    return {
        "src": e.src,
        "dst": e.dst,
        "port": e.port.port,
        "protocol": str(e.port.protocol),
        "portName": e.port.name or None,
        "allowed": e.allowed,
        "cases": [
            {
                "src": {"ip": str(c.src.ip), "pods": list(c.src.pods)},
                "dst": {"ip": str(c.dst.ip), "pods": list(c.dst.pods)},
                "allowed": c.allowed,
                "exempt": c.exempt or None,
                "egress": _side_json(c.egress),
                "ingress": _side_json(c.ingress),
                "trace": [_hop_json(h) for h in c.hops],
            }
            for c in e.cases
        ],
    }
