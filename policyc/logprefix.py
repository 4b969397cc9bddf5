"""The NFLOG prefix of a logged drop: how the kernel tells the agent what
dropped a packet, in a few bytes.

    pc:<tag>:<E|I>[:<chain>]     e.g. ``pc:drop:E:eg4_1a2b3c4d``
    pc:<tag>:<E|I>:cnp-<id>-<n>  a ClusterNetworkPolicy Deny: rule ``n`` of
                                 the policy whose key hashes to ``id``

``tag`` is ``drop`` (enforced: the packet was dropped) or ``audit`` (an
audit-mode policy would have dropped it; it passed).  The agent maps the
dropping side's address to the pod and to the policies isolating it
(``watcher.droplog``); the chain name is kept for debugging.

"The log prefix ... up to 127 characters" (nft(8), LOG STATEMENT);
iptables' ``--nflog-prefix`` takes at most 64 (iptables-extensions(8)), so
every prefix we emit fits in 63 bytes plus its NUL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from policyc.model import Direction

MAX_PREFIX = 63
LOG_GROUP = 7  # the NFLOG group policyc logs to (``--log-group`` of watch)
RATE = 10  # log lines per second per pod and direction; a burst of as many


class Tag(StrEnum):
    DROP = "drop"
    AUDIT = "audit"


LETTER = {Direction.EGRESS: "E", Direction.INGRESS: "I"}
BY_LETTER = {v: k for k, v in LETTER.items()}


@dataclass(frozen=True, slots=True)
class LogPrefix:
    tag: Tag
    direction: Direction
    chain: str = ""

    def __str__(self) -> str:
        text = f"pc:{self.tag}:{LETTER[self.direction]}"
        if self.chain:
            text += ":" + self.chain
        return text[:MAX_PREFIX]


RULE_REF = "cnp-"


def policy_id(key: str) -> str:
    """A ClusterNetworkPolicy key (``Kind name``) -> 10 hex digits: a name
    fits in 253 characters, the prefix in 63, so the prefix carries a hash
    the agent maps back (``watcher.droplog``)."""
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:10]


def rule_ref(key: str, index: int) -> str:
    """``cnp-<id>-<index>``: the chain part of a tier Deny rule's prefix."""
    return f"{RULE_REF}{policy_id(key)}-{index}"


def parse_rule_ref(chain: str) -> tuple[str, int] | None:
    """``cnp-<id>-<index>`` -> (id, index); None for any other chain part."""
    if not chain.startswith(RULE_REF):
        return None
    pid, _, index = chain.removeprefix(RULE_REF).partition("-")
    return (pid, int(index)) if index.isdigit() else None


def parse_prefix(text: str) -> LogPrefix | None:
    """The prefix policyc wrote, or None for any other (a foreign log rule)."""
    parts = text.strip().split(":", 3)
    if len(parts) < 3 or parts[0] != "pc":
        return None
    if parts[1] not in {t.value for t in Tag} or parts[2] not in BY_LETTER:
        return None
    return LogPrefix(Tag(parts[1]), BY_LETTER[parts[2]], parts[3] if len(parts) > 3 else "")
